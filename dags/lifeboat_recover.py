"""
### lifeboat_recover — restore failed datastores into new targets, repoint the services (manual, guarded)
### lifeboat_recover_service — restart failed services, shift capacity, check them (manual, guarded)

**Runbook: docs/recovery.md.** The DR plan's scenario 2 (database failure) and scenario 3 (service
failure), for a **scope** of services (or datastores): the dependency map (`services:` in the
inventory) adds what they depend on, restored or checked **first** (partial recovery).

**lifeboat_recover** params: `scope`, `region` (default the active region: runs from the standby
region alone), `target` (`latest` or an ISO time: PostgreSQL PITR, MongoDB oplog replay; snapshot
engines take their newest backup at or before it), `targets` (per datastore), `into` (`new`, the
default: a NEW instance / port / database / index, kept; `live`: the fenced live target, with
`confirm_live`), `failed_at`, `dry_run` (default **true**), `reason` (required), `confirm` (the region).
Steps: `guard` → `preflight` per datastore (backup chosen, what the catalog reaches, automated or
manual, live state) → `plan` (ordered steps, estimated duration from previous drills) → `approval` →
`fence` (live targets only) → `restore` (restore + validate: counts against the manifest, integrity
checks, heartbeat continuity) → `repoint` (each service's connection config, `rollout restart`, wait
Ready, in order) → `verify` (`/health`, `/ready`; the RTO clock stops) → `record` (a `recovery`
drill: RTO from the trigger, data loss from heartbeats) → `notify`.

**lifeboat_recover_service** params: `scope`, `region`, `restart`, `replicas`, `hpa_min` / `hpa_max`,
`dry_run`, `reason`, `confirm`. Steps: `guard` → `plan` → `approval` → `restart` (datastores checked,
dependency services checked, then rollout restart / scale in order, wait Ready) → `verify` (`/health`,
`/ready`, error-rate probe from `/metrics`) → `record` (a `service_recovery` drill) → `notify`.

Every step checks the run's timeline first: clear the whole run after an interruption and it resumes.
"""

from __future__ import annotations

from airflow.providers.standard.operators.empty import EmptyOperator

from lifeboat.inventory import load_inventory
from lifeboat.operators import recovery as ro

inventory = load_inventory()

with ro.recovery_dag(inventory, "recover", __doc__) as recover_dag:
    guard = ro.RecoveryStepOperator(task_id="guard", step="guard")
    preflight = ro.RecoveryStepOperator.partial(task_id="preflight", step="preflight",
                                                map_index_template="{{ task.datastore }}").expand(
        datastore=list(inventory.datastores))
    plan = ro.RecoveryStepOperator(task_id="plan", step="plan", trigger_rule="none_failed_min_one_success")
    approval = ro.approval_gate(inventory)
    fence = ro.RecoveryStepOperator(task_id="fence", step="fence")
    restore = ro.RecoveryStepOperator(task_id="restore", step="restore")
    repoint = ro.RecoveryStepOperator(task_id="repoint", step="repoint")
    verify = ro.RecoveryStepOperator(task_id="verify", step="verify")
    record, _notify = ro.closing_tasks("recover")
    guard >> preflight >> plan
    guard >> plan >> approval >> fence >> restore >> repoint >> verify >> record
    [verify, record] >> EmptyOperator(task_id="done")

with ro.recovery_dag(inventory, "recover_service", __doc__) as recover_service_dag:
    guard = ro.RecoveryStepOperator(task_id="guard", step="guard", kind="recover_service")
    plan = ro.RecoveryStepOperator(task_id="plan", step="plan", kind="recover_service")
    approval = ro.approval_gate(inventory)
    restart = ro.RecoveryStepOperator(task_id="restart", step="restart", kind="recover_service")
    verify = ro.RecoveryStepOperator(task_id="verify", step="verify", kind="recover_service")
    record, _notify = ro.closing_tasks("recover_service")
    guard >> plan >> approval >> restart >> verify >> record
    [verify, record] >> EmptyOperator(task_id="done")

"""
### lifeboat_failover — fail the platform over to the standby region (manual, guarded, timed)

**Runbook: docs/failover.md.** Trigger it by hand (no schedule) with:

- **target_region** — the region to take over (normally the standby, `regions.standby`);
- **scope** — `region` (every datastore in `failover.order`, every service, the DNS records) or chosen
  datastores / services;
- **dry_run** — default **true**: every step reads the current state and reports what it *would* do;
  nothing changes anywhere;
- **reason** — required; goes into the timeline, the drill record and the notification;
- **confirm** — for a real run, type the target region's name exactly. Without it the first task
  refuses before touching anything.

Steps: `guard` → `preflight` (per datastore: replica reachable, replication lag, newest verified
backup, standby capacity) → `plan` (ordered steps, expected data-loss window; blocks on problems) →
`approval` (a second person approves or rejects the plan in *Required actions*; rejection or timeout
stops with nothing changed) → `fence` the old primary where it is reachable (PostgreSQL read-only,
Redis `CLIENT PAUSE WRITE`; unreachable is recorded) → `promote` (PostgreSQL `pg_promote()`, Redis
`REPLICAOF NO ONE`; never twice) → `scale_services` (Kubernetes deployments) → `switch_traffic`
(Route 53 UPSERT) → `verify` (write + read on every promoted datastore, `/health` and `/ready` of every
service) → `record` (the timeline as a drill: RTO from the trigger to verified, data loss from
heartbeats) → `notify`; `done` fails the run when any step failed.

Every step checks the current state first: after an interruption, **clear the whole run** — it
resumes the same timeline (same trigger time), asks for approval again and continues without a
second promotion. Risky steps never retry on their own. Fail back with `lifeboat_failback`.
"""

from __future__ import annotations

from airflow.providers.standard.operators.empty import EmptyOperator

from lifeboat.operators import failover as fo

inventory = fo.checked_inventory()

with fo.failover_dag(inventory, "failover", __doc__, target=inventory.regions.standby, target_title="Target region",
                     target_description="The region that takes over."):
    approval = fo.opening_tasks(inventory, "failover")
    fence = fo.FailoverStepOperator(task_id="fence", step="fence")
    promote = fo.FailoverStepOperator(task_id="promote", step="promote")
    scale = fo.FailoverStepOperator(task_id="scale_services", step="scale_services")
    traffic = fo.FailoverStepOperator(task_id="switch_traffic", step="switch_traffic")
    verify = fo.FailoverStepOperator(task_id="verify", step="verify")
    record, _notify = fo.closing_tasks("failover")
    approval >> fence >> promote >> scale >> traffic >> verify >> record
    # The run's state: failed when any step failed (record and notify run whatever happened),
    # success when verified -- or when the approver rejected the plan (everything skipped).
    [verify, record] >> EmptyOperator(task_id="done")

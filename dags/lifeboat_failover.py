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

from datetime import timedelta

from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import DAG

from lifeboat.dagkit import START, default_args, tags
from lifeboat.failover import check_inventory, failover_datastores
from lifeboat.inventory import load_inventory
from lifeboat.operators.failover import FailoverStepOperator, approval_gate, trigger_params

inventory = load_inventory()
check_inventory(inventory)

with DAG(
    dag_id="lifeboat_failover",
    doc_md=__doc__,
    schedule=None,
    start_date=START,
    catchup=False,
    max_active_runs=1,
    default_args=default_args("critical", retries=0),
    tags=tags("failover"),
    params=trigger_params(inventory, target=inventory.regions.standby, target_title="Target region",
                          target_description="The region that takes over."),
) as dag:
    guard = FailoverStepOperator(task_id="guard", step="guard")
    preflight = FailoverStepOperator.partial(
        task_id="preflight", step="preflight", retries=1, retry_delay=timedelta(seconds=10),
        map_index_template="{{ task.datastore }}",
    ).expand(datastore=failover_datastores(inventory))
    plan = FailoverStepOperator(task_id="plan", step="plan", trigger_rule="none_failed_min_one_success")
    approval = approval_gate(inventory, "failover")
    fence = FailoverStepOperator(task_id="fence", step="fence")
    promote = FailoverStepOperator(task_id="promote", step="promote")
    scale = FailoverStepOperator(task_id="scale_services", step="scale_services")
    traffic = FailoverStepOperator(task_id="switch_traffic", step="switch_traffic")
    verify = FailoverStepOperator(task_id="verify", step="verify")
    record = FailoverStepOperator(task_id="record", step="record", trigger_rule="all_done", retries=1,
                                  retry_delay=timedelta(seconds=10))
    notify = FailoverStepOperator(task_id="notify", step="notify", trigger_rule="all_done", retries=1,
                                  retry_delay=timedelta(seconds=10))

    guard >> preflight >> plan
    guard >> plan
    plan >> approval >> fence >> promote >> scale >> traffic >> verify >> record >> notify
    # The run's state: failed when any step failed (record and notify run whatever happened),
    # success when verified -- or when the approver rejected the plan (everything skipped).
    [verify, record] >> EmptyOperator(task_id="done")

"""
### lifeboat_failback — rebuild the original primary region as a standby, optionally switch back

**Runbook: docs/failover.md.** After `lifeboat_failover`, once the lost region is back. Same guards as
the failover: **target_region** is the region to restore (normally `regions.primary`), **dry_run**
defaults to true, **reason** is required, and a real run needs **confirm** = the target region's name.
**switch_back** (default false) also moves the platform back.

Steps: `guard` → `preflight` → `plan` → `approval` (reject or timeout: nothing changes) →
`rebuild_target` (PostgreSQL: stop the old primary if it runs, `pg_rewind` onto the current primary's
timeline — or a fresh `pg_basebackup` — then `standby.signal` + `primary_conninfo` + slot; Redis:
`REPLICAOF` the current primary. **Writes made on the old primary after the failover are
discarded.**) → `caught_up` (every rebuilt standby streams and is within its lag limit).

With **switch_back**: `fence` the current primary (read-only / `CLIENT PAUSE WRITE`; it must be
reachable) → `promote` the target once it has replayed everything (a switchover loses no data; it
refuses otherwise) → `rebuild_source` (the region we leave becomes a standby again: the original
topology) → `scale_services` → `switch_traffic` → `drain_source` (after the DNS TTL, scale the old
region's services back to their standby replicas) → `verify`. Then `record` (a `failback` drill when
something was promoted) and `notify`;
`done` fails the run when any step failed. Every step checks the current state first: clear the whole run
to resume after an interruption.
"""

from __future__ import annotations

from datetime import timedelta

from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import DAG, Param, chain

from lifeboat.dagkit import START, default_args, tags
from lifeboat.failover import check_inventory, failover_datastores
from lifeboat.inventory import load_inventory
from lifeboat.operators.failover import FailoverStepOperator, approval_gate, trigger_params

inventory = load_inventory()
check_inventory(inventory)
KIND = "failback"

with DAG(
    dag_id="lifeboat_failback",
    doc_md=__doc__,
    schedule=None,
    start_date=START,
    catchup=False,
    max_active_runs=1,
    default_args=default_args("critical", retries=0),
    tags=tags("failover", "failback"),
    params=trigger_params(
        inventory, target=inventory.regions.primary, target_title="Region to restore",
        target_description="Rebuilt as a standby of the current primary (and primary again with switch_back).",
        extra={"switch_back": Param(False, type="boolean", title="Switch back",
                                    description="After the rebuild: make the target region the primary again "
                                                "(a switchover without data loss) and move traffic back.")}),
) as dag:
    guard = FailoverStepOperator(task_id="guard", step="guard", kind=KIND)
    preflight = FailoverStepOperator.partial(
        task_id="preflight", step="preflight", kind=KIND, retries=1, retry_delay=timedelta(seconds=10),
        map_index_template="{{ task.datastore }}",
    ).expand(datastore=failover_datastores(inventory))
    plan = FailoverStepOperator(task_id="plan", step="plan", kind=KIND, trigger_rule="none_failed_min_one_success")
    approval = approval_gate(inventory, "failback")
    rebuild_target = FailoverStepOperator(task_id="rebuild_target", step="rebuild_target", kind=KIND)
    caught_up = FailoverStepOperator(task_id="caught_up", step="caught_up", kind=KIND)
    switch = [
        FailoverStepOperator(task_id=step, step=step, kind=KIND, needs_switch_back=True)
        for step in ("fence", "promote", "rebuild_source", "scale_services", "switch_traffic", "drain_source",
                     "verify")
    ]
    record = FailoverStepOperator(task_id="record", step="record", kind=KIND, trigger_rule="all_done", retries=1,
                                  retry_delay=timedelta(seconds=10))
    notify = FailoverStepOperator(task_id="notify", step="notify", kind=KIND, trigger_rule="all_done", retries=1,
                                  retry_delay=timedelta(seconds=10))

    guard >> preflight >> plan
    guard >> plan
    chain(plan, approval, rebuild_target, caught_up, *switch, record, notify)
    # failed when any step failed; skipped (run successful) when rejected or not switching back
    [caught_up, switch[-1], record] >> EmptyOperator(task_id="done")

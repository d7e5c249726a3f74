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

from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import Param, chain

from lifeboat.operators import failover as fo

inventory = fo.checked_inventory()
KIND = "failback"

with fo.failover_dag(
        inventory, KIND, __doc__, target=inventory.regions.primary, target_title="Region to restore",
        target_description="Rebuilt as a standby of the current primary (and primary again with switch_back).",
        extra={"switch_back": Param(False, type="boolean", title="Switch back",
                                    description="After the rebuild: make the target region the primary again "
                                                "(a switchover without data loss) and move traffic back.")}):
    approval = fo.opening_tasks(inventory, KIND)
    rebuild_target = fo.FailoverStepOperator(task_id="rebuild_target", step="rebuild_target", kind=KIND)
    caught_up = fo.FailoverStepOperator(task_id="caught_up", step="caught_up", kind=KIND)
    switch = [
        fo.FailoverStepOperator(task_id=step, step=step, kind=KIND, needs_switch_back=True)
        for step in ("fence", "promote", "rebuild_source", "scale_services", "switch_traffic", "drain_source",
                     "verify")
    ]
    record, _notify = fo.closing_tasks(KIND)
    chain(approval, rebuild_target, caught_up, *switch, record)
    # failed when any step failed; skipped (run successful) when rejected or not switching back
    [caught_up, switch[-1], record] >> EmptyOperator(task_id="done")

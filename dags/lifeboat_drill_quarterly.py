"""
### lifeboat_drill_quarterly — the whole platform restored into a drill environment (full-system drill)

**Runbook: docs/recovery.md.** Quarterly (inventory `schedules.full_system_drill`, 05:00 UTC on the
1st of Jan/Apr/Jul/Oct) or by hand, in the acting region (`region`, default the active one: runs from
the standby region alone):

1. **One consistent recovery point** from the catalogs: the newest instant every datastore can be
   restored to (PostgreSQL: archived WAL end; snapshot engines: their newest snapshot); the earliest
   of those. PostgreSQL is restored exactly to it, snapshot engines from their newest snapshot at or
   before it.
2. Every datastore of the dependency map, in restore order, into a **new** target of the drill
   environment (`<recovery dir>/drill-<stamp>-*`; never a live one): restored, validated (counts
   against the manifest, integrity checks, heartbeat continuity).
3. Each service with a local process (the platform API stand-in) started against the restored stores;
   `/health` and `/ready` must pass.
4. Business checks across records (a post, its author and its comments agree; no orphans).
5. Teardown, guaranteed (also after a failed step), and checked: nothing may be left behind.

Recorded as a `full_system` drill: per-step and total RTO (restore start → services ready and
business checks passed) against `recovery.drill_timeout` (4 h), per-store RPO (drill start - newest
heartbeat restored), the planned and measured skew between stores. The DR page shows its steps as a
timeline.
"""

from __future__ import annotations

from airflow.sdk import Param

from lifeboat.dagkit import cron, dag, gate
from lifeboat.inventory import load_inventory
from lifeboat.operators import MirrorOperator
from lifeboat.operators.recovery import QuarterlyDrillOperator

inventory = load_inventory()

with dag("lifeboat_drill_quarterly", __doc__, schedule=cron(inventory.schedules.full_system_drill), retries=0,
         tag=("drill", "recovery"), dagrun_timeout=inventory.recovery.drill_timeout,
         params={"region": Param("active", type="string",
                                 enum=["active", inventory.regions.primary, inventory.regions.standby],
                                 title="Region", description="Where to run the drill ('active': the active region).")}):
    drill = QuarterlyDrillOperator(task_id="full_system_drill", region="{{ params.region }}",
                                   execution_timeout=inventory.recovery.drill_timeout)
    # the drill record goes to the standby region too, whatever the verdict; the gate fails the run
    drill >> MirrorOperator(task_id="mirror", trigger_rule="all_done", retries=1)
    gate("drill_passed", drill)

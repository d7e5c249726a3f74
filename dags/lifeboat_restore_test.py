"""
### lifeboat_restore_test_monthly — restore every datastore into a scratch target, measure RTO/RPO

Monthly (inventory `schedules.restore_test`, the 1st at 04:00 UTC by default), for every datastore:
restore the newest verified backup into a **scratch** target (PostgreSQL: a throw-away instance on a
free port, unix socket only, `archive_mode=off`; never the live cluster), pause at the backup's
restore point and compare row counts with the manifest, roll forward to the newest archived WAL (or
the `target` time), run `pg_amcheck`, restore the newest logical dump beside it, then tear it down.

RTO = restore start → target ready and verified; RPO = drill start → newest heartbeat found in the
restored data. Both are stored as a drill record in the catalog and shown on the DR page. A drill
whose RTO or RPO misses the objective fails the task (alert severity *high*).
"""

from __future__ import annotations

from airflow.sdk import Param

from lifeboat.dagkit import cron, dag, gate, heavy_pool
from lifeboat.inventory import load_inventory
from lifeboat.operators import MirrorOperator, RestoreTestOperator

inventory = load_inventory()

with dag(
    "lifeboat_restore_test_monthly", __doc__, schedule=cron(inventory.schedules.restore_test), retries=0,
    tag=("restore-test", "drill"),
    params={"target": Param("latest", type="string", title="Recovery target",
                            description="'latest' or an ISO-8601 time with zone, e.g. 2026-11-27T03:00:00+00:00")},
):
    drills = RestoreTestOperator.partial(
        task_id="restore_test",
        target="{{ params.target }}",
        map_index_template="{{ task.datastore }} · {{ task.drill_summary or 'running' }}",
        **heavy_pool(),
    ).expand(
        datastore=[ds.name for ds in inventory.enabled_datastores()]
    )
    # Drill records go to the standby region too, whatever the verdicts.
    drills >> MirrorOperator(task_id="mirror", trigger_rule="all_done")
    gate("all_drills_passed", drills)

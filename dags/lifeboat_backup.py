"""
### lifeboat_backup_&lt;datastore&gt; — scheduled backups, one DAG per inventory datastore

Runs on every cron of the datastore's `backups` section in `include/inventory.yaml`. At each run:

1. **plan** — which backup kinds are due at this run's logical date (when a full and a diff or
   incremental fall due together, the full covers them); a manual run may name one kind.
2. **backup** — one mapped task per due kind, through the datastore's native tool (PostgreSQL:
   pgBackRest full/diff/incr plus `pg_dump` directory dumps). The manifest is written last; each
   task emits an asset event with the backup id, which triggers `lifeboat_verify_new_backups`.
3. **mirror** — copies new repository objects to the standby region (manifests last).
4. **retention** — computes the keep plan; deletes only if the inventory sets `retention.enforce: true`.
   It never deletes the newest verified backup nor anything a kept backup depends on.
"""

from __future__ import annotations

from airflow.sdk import Param, task
from airflow.timetables.trigger import MultipleCronTriggerTimetable

from lifeboat.dagkit import dag, gate, heavy_pool
from lifeboat.inventory import load_inventory
from lifeboat.operators import BackupOperator, MirrorOperator, RetentionOperator, backups_asset

inventory = load_inventory()

for spec in inventory.enabled_datastores():
    with dag(
        f"lifeboat_backup_{spec.name}", __doc__,
        schedule=MultipleCronTriggerTimetable(*sorted({b.schedule for b in spec.backups.values()}), timezone="UTC"),
        tag=("backup", spec.engine),
        params={"kind": Param("auto", enum=["auto", "all", *spec.backups], title="Backup kind",
                              description="'auto': what the schedule says is due now; 'all': one backup "
                                          "of every series (e.g. full + logical)")},
    ) as backup_dag:

        @task(task_id="plan")
        def plan(name: str = spec.name, **context) -> list[str]:
            from lifeboat.jobs import due_kinds

            when = context.get("logical_date") or context["dag_run"].run_after
            return due_kinds(load_inventory(), name, when, context["params"]["kind"])

        backups = BackupOperator.partial(
            task_id="backup", datastore=spec.name, outlets=[backups_asset(spec.name)], **heavy_pool()
        ).expand(kind=plan())
        mirror = MirrorOperator(task_id="mirror", trigger_rule="all_done")
        retention = RetentionOperator(task_id="retention", datastore=spec.name, apply=spec.retention.enforce)
        backups >> mirror >> retention
        gate("all_backups_complete", backups, retention)
    globals()[backup_dag.dag_id] = backup_dag

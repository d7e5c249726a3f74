"""
### lifeboat_verify_weekly / lifeboat_verify_new_backups — verification of every backup

* **lifeboat_verify_weekly** (inventory `schedules.verify`, Monday 06:00 UTC by default) verifies
  every backup in the catalog of every datastore: the native verifier (`pgbackrest verify`,
  `pgbackrest check`), WAL/oplog chain continuity, sha256 of every artifact, `pg_restore --list`.
  Each verification is stored next to the backup. A failed check fails the task, naming the file
  or range at fault, and alerts with severity *high*.
* **lifeboat_verify_new_backups** runs whenever a backup DAG emits a backup asset event and verifies
  exactly the backups named in the events, so a broken backup is known within minutes. It skips checks
  that read the whole repository (`pgbackrest verify`); the weekly run does those.

Both end by mirroring to the standby region, which emits the `lifeboat_verifications` asset event
that regenerates the runbooks (lifeboat_runbooks) with the newest verified backup ids.
"""

from __future__ import annotations

from airflow.sdk import AssetAny, task

from lifeboat.dagkit import cron, dag, gate
from lifeboat.inventory import load_inventory
from lifeboat.operators import MirrorOperator, VerifyOperator, backups_asset
from lifeboat.operators.ops import verifications_asset

inventory = load_inventory()
names = [ds.name for ds in inventory.enabled_datastores()]

with dag("lifeboat_verify_weekly", __doc__, schedule=cron(inventory.schedules.verify), retries=1, tag=("verify",)):
    verified = VerifyOperator.partial(task_id="verify").expand(datastore=names)
    verified >> MirrorOperator(task_id="mirror", trigger_rule="all_done", outlets=[verifications_asset()])
    gate("all_backups_verified", verified)

with dag("lifeboat_verify_new_backups", __doc__, schedule=AssetAny(*(backups_asset(n) for n in names)),
         retries=1, tag=("verify",), max_active_runs=None) as verify_new:  # any datastore's new backup

    @task
    def new_backups(**context) -> list[dict]:
        by_ds: dict[str, list[str]] = {}
        for events in context["triggering_asset_events"].values():
            for ev in events:
                if ev.extra.get("backup_id"):
                    by_ds.setdefault(ev.extra["datastore"], []).append(ev.extra["backup_id"])
        return [{"datastore": ds, "backup_ids": ids} for ds, ids in by_ds.items()]

    verified_new = VerifyOperator.partial(task_id="verify", deep=False).expand_kwargs(new_backups())
    verified_new >> MirrorOperator(task_id="mirror", trigger_rule="all_done", outlets=[verifications_asset()])
    gate("all_backups_verified", verified_new)

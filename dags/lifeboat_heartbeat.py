"""
### lifeboat_heartbeat — the heartbeat every RPO measurement is read from (Airflow DAG)

Every minute (inventory `schedules.heartbeat`) writes one heartbeat into every datastore's primary
(PostgreSQL: a row in `lifeboat_heartbeat`). A restore test or failover measures its RPO as the gap
between the drill start and the newest heartbeat present in the restored data.
"""

from __future__ import annotations

from datetime import timedelta

from lifeboat.dagkit import cron, dag
from lifeboat.inventory import load_inventory
from lifeboat.operators import HeartbeatOperator

inventory = load_inventory()

with dag("lifeboat_heartbeat", __doc__, schedule=cron(inventory.schedules.heartbeat), severity="medium", retries=1,
         default={"retry_delay": timedelta(seconds=10)}, tag=("heartbeat",), dagrun_timeout=timedelta(minutes=5)):
    HeartbeatOperator.partial(task_id="heartbeat").expand(datastore=[ds.name for ds in inventory.enabled_datastores()])

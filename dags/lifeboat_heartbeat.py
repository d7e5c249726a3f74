"""
### lifeboat_heartbeat — the heartbeat every RPO measurement is read from

Every minute (inventory `schedules.heartbeat`) writes one heartbeat into every datastore's primary
(PostgreSQL: a row in `lifeboat_heartbeat`). A restore test or failover measures its RPO as the gap
between the drill start and the newest heartbeat present in the restored data.
"""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import DAG
from airflow.timetables.trigger import CronTriggerTimetable

from lifeboat.dagkit import START, default_args, tags
from lifeboat.inventory import load_inventory
from lifeboat.operators import HeartbeatOperator

inventory = load_inventory()

with DAG(
    dag_id="lifeboat_heartbeat",
    doc_md=__doc__,
    schedule=CronTriggerTimetable(inventory.schedules.heartbeat, timezone="UTC"),
    start_date=START,
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=timedelta(minutes=5),
    default_args={**default_args("medium", retries=1), "retry_delay": timedelta(seconds=10)},
    tags=tags("heartbeat"),
):
    HeartbeatOperator.partial(task_id="heartbeat").expand(datastore=[ds.name for ds in inventory.enabled_datastores()])

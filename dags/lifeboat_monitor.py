"""
### lifeboat_monitor — distance from the objectives, every 5 minutes, with severity-routed alerts (Airflow DAG)

For every datastore: the data a failure right now would lose (PostgreSQL: WAL archive lag and the
standby's replay lag) against the RPO — over the RPO is **critical** (PagerDuty/SMS), over half of it
**high** (Slack + e-mail); the newest backup of each series against its schedule (older than two
intervals: **high**); the newest verified backup (older than 8 days: **medium**); the newest restore
test (failed: **high**, older than 35 days: **low**). Routes and channels: inventory `alerts`.
"""

from __future__ import annotations

from datetime import timedelta

from lifeboat.dagkit import cron, dag
from lifeboat.inventory import load_inventory
from lifeboat.operators import MonitorOperator

inventory = load_inventory()

with dag("lifeboat_monitor", __doc__, schedule=cron("*/5 * * * *"), retries=1,
         default={"retry_delay": timedelta(seconds=30)}, tag=("monitor",), dagrun_timeout=timedelta(minutes=10)):
    MonitorOperator.partial(task_id="monitor").expand(datastore=[ds.name for ds in inventory.enabled_datastores()])

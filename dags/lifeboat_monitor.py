"""
### lifeboat_monitor — distance from the objectives, every 5 minutes, with severity-routed alerts (Airflow DAG)

For every datastore: the data a failure right now would lose (PostgreSQL: WAL archive lag and the
standby's replay lag) against the RPO — over the RPO is **critical** (PagerDuty/SMS), over half of it
**high** (Slack + e-mail); the newest backup of each series against its schedule (older than two
intervals: **high**); the newest verified backup (older than 8 days: **medium**); the newest restore
test (failed: **high**, older than 35 days: **low**). Routes and channels: inventory `alerts`.

**incidents** turns the findings into incidents (lifeboat.incidents): one open incident per finding,
stored in both regions' catalogs; notices within the plan's windows (critical at once, high 5 min,
medium 15 min, low as an hourly digest), never twice; escalation level 1 on-call -> 2 senior ->
3 architect -> 4 CTO while a critical/high one is unacknowledged (`alerts.escalation`); a resolution
notice when it clears. Acknowledge on the Disaster Recovery page or `python -m lifeboat incidents ack`.
"""

from __future__ import annotations

from datetime import timedelta

from lifeboat.dagkit import cron, dag, gate
from lifeboat.inventory import load_inventory
from lifeboat.operators import MonitorOperator
from lifeboat.operators.ops import IncidentsOperator

inventory = load_inventory()

with dag("lifeboat_monitor", __doc__, schedule=cron("*/5 * * * *"), retries=1,
         default={"retry_delay": timedelta(seconds=30)}, tag=("monitor",), dagrun_timeout=timedelta(minutes=10)):
    checks = MonitorOperator.partial(task_id="monitor", send_alerts=False).expand(
        datastore=[ds.name for ds in inventory.enabled_datastores()])
    IncidentsOperator(task_id="incidents", results=checks.output, trigger_rule="all_done")
    gate("all_datastores_checked", checks)

"""
### lifeboat_report_monthly / lifeboat_report_quarterly — the DR plan's periodic reviews

* **lifeboat_report_monthly** (1st of each month, 07:00 UTC): the *monthly DR review* of the month
  before — restore-test drills with measured RTO/RPO against the objectives (and a 12-month chart),
  verification pass rate with every failure named, backup freshness per series, chaos/failure
  simulation scores when there are any, incidents opened and still open with their age.
* **lifeboat_report_quarterly** (1 Jan/Apr/Jul/Oct, 08:00 UTC): the *quarterly test-result analysis*
  of the quarter before — the same plus the month-by-month trend and mean times to acknowledge/resolve.

Each renders HTML and PDF (WeasyPrint) with matplotlib charts from the catalog alone and stores
`reports/<kind>/<period>/report.{html,pdf,json}` in both regions' catalogs; the Disaster Recovery
page links them. A manual run may name the period (`YYYY-MM` / `YYYY-Qn`).
"""

from __future__ import annotations

from airflow.sdk import Param

from lifeboat.dagkit import cron, dag
from lifeboat.operators.ops import ReportOperator

for kind, expr, pattern in (("monthly", "0 7 1 * *", r"^(\d{4}-\d{2})?$"),
                            ("quarterly", "0 8 1 1,4,7,10 *", r"^(\d{4}-Q[1-4])?$")):
    with dag(f"lifeboat_report_{kind}", __doc__, schedule=cron(expr), severity="low", retries=1, tag=("report",),
             params={"period": Param("", type="string", pattern=pattern, title="Period",
                                     description="empty: the period before the run's logical date")}) as report_dag:
        ReportOperator(task_id="report", kind=kind, period="{{ params.period }}")
    globals()[report_dag.dag_id] = report_dag

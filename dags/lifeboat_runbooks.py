"""
### lifeboat_runbooks — runbooks and checklists regenerated after every verification

Asset-triggered by `lifeboat_verifications` (emitted by the mirror step of lifeboat_verify_weekly and
lifeboat_verify_new_backups), so the runbooks always name the newest *verified* backup ids. Writes,
from the inventory and the catalog, a runbook + checklist per DR-plan scenario (region loss, database
failure, service failure) and per datastore — the exact standard-tool commands
(docs/datastores/<engine>.md and each backup's restore hint), contacts and the escalation path — as
Markdown and HTML into `runbooks/` of **both** regions' catalogs: readable with Airflow gone,
`python -m lifeboat runbook region-loss` prints one from the standby copy.
"""

from __future__ import annotations

from lifeboat.dagkit import dag
from lifeboat.operators.ops import RunbookOperator, verifications_asset

with dag("lifeboat_runbooks", __doc__, schedule=[verifications_asset()], severity="medium", retries=1,
         tag=("runbook",)):
    RunbookOperator(task_id="runbooks")

"""Operators for operations: incidents after the monitor, reports, runbooks. Thin wrappers over job
functions that the `python -m lifeboat` CLI uses too; keyword-only constructors without I/O."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow.sdk import Asset, BaseOperator

from lifeboat.operators.core import _run, _when


def verifications_asset() -> Asset:
    """Updated when a verification DAG has verified (and mirrored) backups; lifeboat_runbooks follows it."""
    return Asset(name="lifeboat_verifications", uri="lifeboat://verifications")


class IncidentsOperator(BaseOperator):
    """Open, update, escalate and resolve incidents from the monitor's findings of this run and send
    the notices that are due (de-duplicated; see lifeboat.incidents)."""

    template_fields: Sequence[str] = ("results",)
    ui_color = "#f7e1d8"

    def __init__(self, *, results: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.results = results

    def execute(self, context) -> dict:
        from lifeboat.incidents import jobs

        return jobs.process([r for r in (self.results or []) if r], run=_run(context))


class ReportOperator(BaseOperator):
    """Render the monthly DR review or the quarterly test-result analysis for the period before the
    run's logical date; HTML + PDF + JSON into the catalog of both regions."""

    template_fields: Sequence[str] = ("kind", "period")
    ui_color = "#e4f0d8"

    def __init__(self, *, kind: str, period: str = "", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.kind = kind
        self.period = period

    def execute(self, context) -> dict:
        from lifeboat.reports import jobs

        return jobs.generate(self.kind, period=self.period or None, when=_when(context), run=_run(context))


class RunbookOperator(BaseOperator):
    """Regenerate every runbook and checklist from the inventory and the catalog, in both regions."""

    ui_color = "#e9e0f5"

    def execute(self, context) -> dict:
        from lifeboat.runbooks import jobs

        return jobs.generate(run=_run(context))

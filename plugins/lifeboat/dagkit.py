"""What every Lifeboat DAG shares: default args, tags, the inventory. Cheap to import."""

from __future__ import annotations

from datetime import datetime, timedelta

from lifeboat.alerts import on_failure
from lifeboat.inventory import load_inventory

START = datetime(2026, 1, 1)


def default_args(severity: str = "high", retries: int = 2) -> dict:
    inv = load_inventory()
    return {
        "owner": inv.owner,
        "retries": retries,
        "retry_delay": timedelta(minutes=2),
        "retry_exponential_backoff": True,
        "on_failure_callback": on_failure(severity),
    }


def tags(*extra: str) -> list[str]:
    return ["lifeboat", "dr", *extra]


def gate(task_id: str, *upstream):
    """A leaf that fails the run when any `upstream` task failed. Needed wherever an `all_done`
    housekeeping task (mirror) would otherwise be the only leaf and mark a failed run successful."""
    from airflow.providers.standard.operators.empty import EmptyOperator

    leaf = EmptyOperator(task_id=task_id, trigger_rule="all_success")
    for u in upstream:
        u >> leaf
    return leaf

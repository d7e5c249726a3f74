"""What every Lifeboat DAG shares: default args, tags, the inventory, worker queues and pools. Cheap to import.

Workers (CeleryExecutor, docs/workers.md): with LIFEBOAT_REGION_QUEUES=1 in the deployment's environment,
every task goes to the queue of the region it works for, `lifeboat-<region>` (backups, verification,
restore tests: the primary; failover/failback: the target region), so a worker in a lost region cannot
hold up the survivor's tasks. LIFEBOAT_HEAVY_POOL=<pool> puts the heavy steps (backups, restore tests)
into that Airflow pool, which bounds how many run at once. Both unset (LocalExecutor, dag.test): the
default queue and default_pool.
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta

from lifeboat.alerts import Severity, on_failure
from lifeboat.inventory import load_inventory

START = datetime(2026, 1, 1)


def region_queue(region: str) -> str:
    return f"lifeboat-{region}"


def heavy_pool() -> dict:
    """`pool=` for a heavy step's operator (spread into its kwargs); empty without LIFEBOAT_HEAVY_POOL."""
    pool = os.environ.get("LIFEBOAT_HEAVY_POOL", "").strip()
    return {"pool": pool} if pool else {}


def default_args(severity: Severity = "high", retries: int = 2, region: str | None = None) -> dict:
    inv = load_inventory()
    queue = {"queue": region_queue(region or inv.regions.primary)} \
        if os.environ.get("LIFEBOAT_REGION_QUEUES", "") in ("1", "true", "True") else {}
    return {
        **queue,
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


def cron(expr: str):
    """A cron schedule in UTC (the inventory's schedules are UTC)."""
    from airflow.timetables.trigger import CronTriggerTimetable

    return CronTriggerTimetable(expr, timezone="UTC")


def dag(dag_id: str, doc: str | None, *, schedule, severity: Severity = "high", retries: int = 2,
        tag: tuple[str, ...] = (), default: dict | None = None, region: str | None = None, **kwargs):
    """A Lifeboat DAG: the project's start date, no catch-up, one run at a time (unless
    `max_active_runs=None`), owner, retries and severity-routed failure alerts, tags; its tasks on the
    queue of `region` (default: the primary) when region queues are on."""
    from airflow.sdk import DAG

    kwargs.setdefault("max_active_runs", 1)
    if kwargs["max_active_runs"] is None:
        del kwargs["max_active_runs"]
    return DAG(dag_id=dag_id, doc_md=doc, schedule=schedule, start_date=START, catchup=False,
               default_args={**default_args(severity, retries, region), **(default or {})}, tags=tags(*tag), **kwargs)

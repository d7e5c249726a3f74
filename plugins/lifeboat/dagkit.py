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

"""Which backup kinds a run takes: cron matching with full > diff > incr precedence."""

from datetime import UTC, datetime
from pathlib import Path

import pytest

from lifeboat.errors import Refused
from lifeboat.inventory import load_inventory
from lifeboat.jobs import due_kinds

INV = load_inventory(Path(__file__).resolve().parents[2] / "include" / "inventory.yaml")


@pytest.mark.parametrize(
    ("when", "kinds"),
    [
        (datetime(2026, 11, 29, 3, 0, tzinfo=UTC), ["full"]),  # Sunday 03:00: full covers diff and incr
        (datetime(2026, 11, 27, 3, 0, tzinfo=UTC), ["diff"]),  # Friday 03:00
        (datetime(2026, 11, 27, 14, 0, tzinfo=UTC), ["incr"]),
        (datetime(2026, 11, 27, 2, 30, tzinfo=UTC), ["logical"]),
        (datetime(2026, 11, 27, 14, 5, tzinfo=UTC), []),
    ],
)
def test_schedule_due_kinds(when, kinds):
    assert due_kinds(INV, "postgres", when) == kinds


def test_schedule_manual_kind_must_exist():
    assert due_kinds(INV, "postgres", datetime(2026, 11, 27, 14, 5, tzinfo=UTC), "full") == ["full"]
    with pytest.raises(Refused, match="no backup kind 'rdb'"):
        due_kinds(INV, "postgres", datetime(2026, 11, 27, 14, 5, tzinfo=UTC), "rdb")


def test_schedule_all_takes_one_backup_per_series():
    assert due_kinds(INV, "postgres", datetime(2026, 11, 27, 14, 5, tzinfo=UTC), "all") == ["full", "logical"]


@pytest.mark.parametrize("name", sorted(INV.datastores))
def test_schedule_every_inventory_datastore_plans_all_and_auto(name):
    """Every engine's series_of works as the scheduler calls it (on the class, before any connection)."""
    kinds = due_kinds(INV, name, datetime(2026, 11, 27, 14, 5, tzinfo=UTC), "all")
    assert kinds and set(kinds) <= set(INV.datastore(name).backups)


def test_schedule_a_continuation_never_runs_beside_its_base():
    """MongoDB: an oplog slice continues from a full; when both are due, only the full runs (it covers
    the slot), so the two never race on a fresh catalog."""
    assert due_kinds(INV, "mongodb", datetime(2026, 11, 27, 14, 5, tzinfo=UTC), "all") == ["full"]
    assert due_kinds(INV, "mongodb", datetime(2026, 11, 27, 1, 30, tzinfo=UTC)) == ["full"]
    assert due_kinds(INV, "mongodb", datetime(2026, 11, 27, 1, 45, tzinfo=UTC)) == ["oplog"]

"""Inventory: the shipped file is valid; every kind of mistake names the file and the field."""

import re
from pathlib import Path

import pytest

from lifeboat.errors import InventoryError
from lifeboat.inventory import load_inventory, parse_duration, parse_inventory

SHIPPED = Path(__file__).resolve().parents[2] / "include" / "inventory.yaml"
TEXT = SHIPPED.read_text()


def test_inventory_shipped_file_is_valid_and_has_both_regions():
    inv = load_inventory(SHIPPED)
    assert inv.regions.primary == "us-west-2" and inv.regions.standby == "us-east-1"
    assert inv.objectives.rto.total_seconds() == 4 * 3600 and inv.objectives.rpo.total_seconds() == 3600
    assert inv.objectives_for("postgres").rpo.total_seconds() == 15 * 60  # per-datastore override
    assert inv.objectives_for("postgres").rto.total_seconds() == 4 * 3600  # default kept
    assert set(inv.datastore("postgres").backups) == {"full", "diff", "incr", "logical"}


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (("stanza: community", "stanza: [a]"), "datastores.postgres.options.stanza"),
        (("dump_jobs: 2", "dump_jobs: 2\n      dump_job: 3"), "datastores.postgres.options.dump_job: unknown field"),
        (('"0 3 * * 0"', '"0 3 * *"'), "datastores.postgres.backups.full.schedule: not a valid cron expression"),
        (("rto: 4h", "rto: four hours"), "objectives.rto: not a duration"),
        (("primary: us-west-2", "primary: us-east-1"), "regions: primary and standby must be different"),
        (("engine: postgres", "engine: oracle"), "datastores.postgres.engine"),
        (("keep_last: 24", "keep_last: 0"), "datastores.postgres.retention.keep_last"),
        (("dump_jobs: 2", "dump_jobs: 2\n      lock_timeout: ten seconds"),
         "datastores.postgres.options.lock_timeout: not a duration: 'ten seconds'"),
        (("count_tables: [public.users", "count_tables: [users"), "datastores.postgres.options.count_tables"),
        (("      us-west-2: lifeboat_pg_us_west_2\n", ""), "datastores.postgres.connections: needs a connection id"),
        (("critical: [pagerduty, sms]", "critical: [pager]"), "alerts.routes.critical: unknown channel 'pager'"),
        (("version: 1", "version: 1\n  oops: [}"), "not valid YAML"),
    ],
)
def test_inventory_error_names_file_and_field(change, expected):
    old, new = change
    assert old in TEXT, old
    with pytest.raises(InventoryError) as err:
        parse_inventory(TEXT.replace(old, new, 1), source="include/inventory.yaml")
    assert str(err.value).startswith("include/inventory.yaml"), str(err.value)
    assert expected in str(err.value), str(err.value)


def test_inventory_env_reference_without_default_is_named(monkeypatch):
    monkeypatch.delenv("LIFEBOAT_NOPE", raising=False)
    text = TEXT.replace("${LIFEBOAT_WORKDIR:-/tmp/lifeboat}", "${LIFEBOAT_NOPE}")
    with pytest.raises(InventoryError,
                       match=re.escape("include/inventory.yaml: workdir: environment variable ${LIFEBOAT_NOPE}")):
        parse_inventory(text, source="include/inventory.yaml")


def test_inventory_missing_file_is_named(tmp_path):
    with pytest.raises(InventoryError, match="inventory file not found"):
        load_inventory(tmp_path / "nope.yaml")


@pytest.mark.parametrize(("text", "seconds"), [("30s", 30), ("15m", 900), ("4h", 14400), ("7d", 604800), (90, 90)])
def test_inventory_durations(text, seconds):
    assert parse_duration(text).total_seconds() == seconds

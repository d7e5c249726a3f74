"""The active-region record (lifeboat.regions, lifeboat.failover.active) on a file:// catalog in both
regions: written by a failover while the other region's copy is gone, read back, followed by the jobs
that act on primaries, shown on the DR page."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
WEST, EAST = "us-west-2", "us-east-1"


@pytest.fixture
def two_copies(tmp_path, monkeypatch):
    from lifeboat import inventory

    west, east = tmp_path / WEST, tmp_path / EAST
    west.mkdir()
    east.mkdir()
    monkeypatch.setenv("LIFEBOAT_INVENTORY", str(ROOT / "include" / "inventory.yaml"))
    monkeypatch.setenv("LIFEBOAT_REPO_PRIMARY", f"file://{west}")
    monkeypatch.setenv("LIFEBOAT_REPO_STANDBY", f"file://{east}")
    monkeypatch.delenv("LIFEBOAT_REGION", raising=False)
    inventory._CACHE.clear()
    yield west, east
    inventory._CACHE.clear()


def test_no_record_means_the_inventory_primary(two_copies):
    from lifeboat.inventory import load_inventory
    from lifeboat.regions import active_region, read_active

    inv = load_inventory()
    assert read_active(inv) is None and active_region(inv) == WEST


def test_failover_record_with_the_primary_copy_gone_is_written_to_the_standby_only(two_copies):
    from lifeboat.failover.active import write_active
    from lifeboat.inventory import load_inventory
    from lifeboat.regions import active_region, read_active
    from lifeboat.ui.data import load_snapshot

    west, east = two_copies
    west.rename(west.with_name("lost"))
    inv = load_inventory()
    out = write_active(inv, EAST, by="lifeboat_failover/run1", kind="failover", reason="test")
    assert out["changed"] and out["active_region"] == EAST and out["previous"] == WEST
    assert not west.exists(), "the lost region's copy was re-created"
    assert (east / "regions" / "active.json").is_file()
    rec = read_active(inv, prefer=EAST)
    assert rec is not None and rec.region == EAST and rec.by == "lifeboat_failover/run1"
    assert active_region(inv, prefer=EAST) == EAST
    again = write_active(inv, EAST, by="lifeboat_failover/run1", kind="failover")  # a re-run keeps `since`
    assert again["since"] == out["since"] and not again["changed"]
    page = load_snapshot(EAST, inventory=inv).source()
    assert page["active"]["region"] == EAST and page["active"]["since"] and page["active"]["kind"] == "failover"


def test_jobs_on_primaries_refuse_a_region_that_is_not_active(two_copies):
    from lifeboat import jobs
    from lifeboat.regions import NotActiveRegion

    with pytest.raises(NotActiveRegion, match="us-east-1"):
        jobs.heartbeat("redis", region=EAST)


def test_mongodb_headroom_is_not_judged_on_another_regions_server():
    """The oplog window that matters is that of the server the chain was read from: verifying us-west-2's
    chain in us-east-1 (the standby, or the restored primary after a region loss) does not read
    us-east-1's oplog; in the chain's own region the check runs against the server."""
    from types import SimpleNamespace

    from lifeboat.datastores.mongodb.engine import MongoDatastore

    eng = MongoDatastore.__new__(MongoDatastore)
    eng.region = EAST
    c = eng._check_headroom(SimpleNamespace(id="mongodb-oplog-1", region=WEST))  # type: ignore[arg-type]
    assert c.ok and "not checked in us-east-1" in c.detail and "us-west-2" in c.detail

    def no_server():
        raise ConnectionError("no server here")

    eng.region = WEST
    eng.spec = SimpleNamespace(backups={})
    eng._session = no_server
    c = eng._check_headroom(SimpleNamespace(id="mongodb-oplog-1", region=WEST))  # type: ignore[arg-type]
    assert not c.ok and "cannot read the server's oplog" in c.detail

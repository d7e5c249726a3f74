"""Monitoring against the real stack: a healthy PostgreSQL is within its RPO; broken archiving is critical."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from lifeboat import monitor
from lifeboat.datastores import open_engine
from lifeboat.inventory import parse_inventory

pytestmark = pytest.mark.integration
INV_TEXT = (Path(__file__).resolve().parents[2] / "include" / "inventory.yaml").read_text()


def _inventory(rpo: str):
    return parse_inventory(INV_TEXT.replace("objectives: {rpo: 15m}", f"objectives: {{rpo: {rpo}}}"), "inventory.yaml")


def test_monitor_postgres_healthy_exposure_is_within_rpo(engine):
    engine.backup("incr", f"test-mon-{time.time_ns()}")
    findings = {f.check: f for f in monitor.evaluate(_inventory("15m"), engine)}
    assert findings["WAL archive lag"].severity == "ok", findings["WAL archive lag"]
    assert findings["standby replay lag"].severity == "ok", findings["standby replay lag"]
    assert findings["physical backup age"].severity == "ok"


def test_monitor_postgres_broken_archiving_is_critical(seeded, pg):
    inv = _inventory("2s")
    eng = open_engine("postgres", inventory=inv)
    pg.execute("ALTER SYSTEM SET archive_command = 'false'")
    pg.execute("SELECT pg_reload_conf()")
    try:
        time.sleep(0.5)
        pg.execute("CREATE TABLE IF NOT EXISTS monitor_probe (x int)")
        pg.execute("INSERT INTO monitor_probe VALUES (1)")
        pg.execute("SELECT pg_switch_wal()")
        deadline = time.time() + 30
        while True:
            f = {x.check: x for x in monitor.evaluate(inv, eng)}["WAL archive lag"]
            if f.severity == "critical" or time.time() > deadline:
                break
            time.sleep(1)
        assert f.severity == "critical", f
    finally:
        pg.execute("ALTER SYSTEM RESET archive_command")
        pg.execute("SELECT pg_reload_conf()")
    deadline = time.time() + 60
    while {x.check: x for x in monitor.evaluate(_inventory("15m"), eng)}["WAL archive lag"].severity != "ok":
        assert time.time() < deadline, "archiving did not recover"
        time.sleep(1)

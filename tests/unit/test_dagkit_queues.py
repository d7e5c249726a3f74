"""Region queues and the heavy pool (lifeboat.dagkit): off by default, on through the deployment's env."""

from __future__ import annotations

from lifeboat import dagkit
from lifeboat.inventory import load_inventory


def test_no_queue_and_no_pool_by_default(monkeypatch):
    monkeypatch.delenv("LIFEBOAT_REGION_QUEUES", raising=False)
    monkeypatch.delenv("LIFEBOAT_HEAVY_POOL", raising=False)
    assert "queue" not in dagkit.default_args()
    assert dagkit.heavy_pool() == {}


def test_region_queues_follow_the_region_a_dag_works_for(monkeypatch):
    monkeypatch.setenv("LIFEBOAT_REGION_QUEUES", "1")
    monkeypatch.setenv("LIFEBOAT_HEAVY_POOL", "lifeboat_heavy")
    inv = load_inventory()
    assert dagkit.default_args()["queue"] == f"lifeboat-{inv.regions.primary}"
    from lifeboat.operators.failover import failover_dag

    with failover_dag(inv, "failover", None, target=inv.regions.standby, target_title="t",
                      target_description="d") as d:
        pass
    assert d.default_args["queue"] == f"lifeboat-{inv.regions.standby}"
    assert dagkit.heavy_pool() == {"pool": "lifeboat_heavy"}

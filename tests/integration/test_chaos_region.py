"""The yearly region failure against the real local stack: the failover drill (lifeboat.failover's steps:
fence, promote, scale, Route 53 switch, verify, record) run as a chaos experiment in the drill environment,
probed through the traffic record, reverted by the failback with switch_back -- and the stack back as it was.

Its own stack (`.stack-chaos-region/`: PostgreSQL primary + standby, moto, redis, platform_api, kubernetes)
because it moves the primary region and back; torn down with `down --wipe` at the end. Its inventory is the
project's minus the engines this stack does not run, a 1-second DNS TTL (the failback's drain wait) and a
chaos drill environment that is this stack's us-west-2.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
import yaml

from tests.integration.own_stack import lifeboat_env

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
STATE = Path(os.environ.get("LIFEBOAT_CHAOS_REGION_STACK_DIR") or ROOT / ".stack-chaos-region")
COMPONENTS = "redis,platform_api,kubernetes"
WEST, EAST = "us-west-2", "us-east-1"
RECORD = "api.community.example.com"


def _inventory(path: Path, drill_conns: bool) -> None:
    src = yaml.safe_load((ROOT / "include" / "inventory.yaml").read_text())
    for name in ("mongodb", "elasticsearch"):
        src["datastores"].pop(name, None)
    for svc in src.get("services", {}).values():
        svc["datastores"] = [d for d in svc.get("datastores", []) if d in src["datastores"]]
        svc["env"] = {d: k for d, k in svc.get("env", {}).items() if d in src["datastores"]}
    fo = src["failover"]
    fo["order"] = [n for n in fo["order"] if n in src["datastores"]]
    fo["traffic"]["records"][0]["ttl"] = 1
    for svc in fo["services"]:
        svc["ready_timeout"] = "90s"
    src["alerts"] = {"routes": {s: ["log"] for s in ("critical", "high", "medium", "low")},
                     "channels": {"log": {"type": "log"}}}
    conn = (lambda kind: f"lifeboat_{kind}_drill") if not drill_conns else (lambda kind: f"lifeboat_{kind}_us_west_2")
    chaos = src["chaos"]
    chaos["schedules"] = {"region": chaos["schedules"]["region"]}
    chaos["environments"] = {"drill": {"kubernetes": conn("k8s"), "namespace": "community",
                                       "datastores": {"postgres": {"connection": conn("pg")},
                                                      "redis": {"connection": conn("redis")}}}}
    chaos["experiments"] = [dict(e, recover_timeout="5m", abort_after="5m", duration="5m")
                            for e in chaos["experiments"] if e["kind"] == "region"]
    path.write_text(yaml.safe_dump(src, sort_keys=False))


@pytest.fixture(scope="module")
def region_env():
    from devstack import stack

    with lifeboat_env({"LIFEBOAT_STACK_COMPONENTS": COMPONENTS}):
        stack.down(STATE, wipe=True, quiet=True)  # a fresh region pair: an aborted run leaves a failed-over one
        env = stack.up(state_dir=STATE, quiet=True)
    (STATE / "work").mkdir(exist_ok=True)
    for drill in (False, True):
        _inventory(STATE / f"inventory-{'drill' if drill else 'other'}.yaml", drill)
    try:
        yield dict(env, LIFEBOAT_WORKDIR=str(STATE / "work"), LIFEBOAT_STACK_COMPONENTS=COMPONENTS)
    finally:
        with lifeboat_env({"LIFEBOAT_STACK_COMPONENTS": COMPONENTS}):
            stack.down(STATE, wipe=os.environ.get("LIFEBOAT_KEEP_CHAOS_REGION_STACK") != "1", quiet=True)


def _deployments(region: str) -> dict[str, tuple[int, int]]:
    from lifeboat.clients.kubernetes import KubernetesClient

    c = KubernetesClient(f"lifeboat_k8s_{region.replace('-', '_')}")
    return {d.metadata.name: (d.spec.replicas, d.status.ready_replicas or 0)
            for d in c.apps.list_namespaced_deployment("community").items}


def assert_back_as_before(inv, before: dict) -> None:
    """us-west-2 primary again (us-east-1 a standby), traffic there, the services where they were."""
    from lifeboat.failover import open_failover
    from lifeboat.failover.traffic import Traffic

    assert open_failover("postgres").role(WEST).live_primary
    assert open_failover("postgres").role(EAST).role == "standby"
    assert open_failover("redis").role(WEST).live_primary
    traffic = Traffic(inv.failover.traffic)
    assert traffic.region_of(RECORD, traffic.current()[RECORD]) == WEST
    assert {r: _deployments(r) for r in (WEST, EAST)} == before


def test_chaos_region_refuses_when_the_failover_targets_are_not_the_drill_environment(region_env, unique):
    from lifeboat.chaos.experiment import Experiment
    from lifeboat.errors import Refused
    from lifeboat.inventory import load_inventory

    with lifeboat_env(region_env | {"LIFEBOAT_INVENTORY": str(STATE / "inventory-other.yaml")}):
        inv = load_inventory()
        with pytest.raises(Refused, match=r"datastores\.postgres\.connections\.us-west-2.*drill environment"):
            Experiment(inv, inv.chaos.experiment("region-failover"), "drill", record_id=f"refused-{unique}")


def test_chaos_region_failure_is_the_failover_drill_then_failed_back(region_env, unique):
    from lifeboat.chaos import jobs
    from lifeboat.chaos.experiment import Experiment
    from lifeboat.chaos.store import ChaosStore
    from lifeboat.inventory import load_inventory
    from lifeboat.repository import Repository

    with lifeboat_env(region_env | {"LIFEBOAT_INVENTORY": str(STATE / "inventory-drill.yaml")}):
        inv = load_inventory()
        store = ChaosStore(Repository.from_inventory(inv))
        before = {r: _deployments(r) for r in (WEST, EAST)}
        t0 = time.monotonic()
        rec = Experiment(inv, inv.chaos.experiment("region-failover"), "drill", record_id=f"region-{unique}",
                         store=store).run()
        took = time.monotonic() - t0
        print({k: getattr(rec, k) for k in ("verdict", "detect_seconds", "recover_seconds", "score", "reasons")},
              f"total {took:.1f}s")
        print([(p.name, p.passes, p.polls, p.last_detail) for p in rec.probes], rec.data_loss)
        print([(s["name"], s["detail"][:300]) for s in rec.steps])
        assert rec.verdict == "pass", rec.reasons
        assert rec.steady_before and rec.steady_after
        assert 0 <= rec.detect_seconds <= 60  # the fence made the platform fail, seen through the traffic record
        assert rec.detect_seconds < rec.recover_seconds <= 240  # ... and it answered again from us-east-1
        ready = next(p for p in rec.probes if p.name == "platform-ready")
        assert 0 < ready.passes < ready.polls
        assert 0 < rec.score < 100
        steps = {s["name"]: s["detail"] for s in rec.steps}
        assert "failover completed" in steps["recovery step"] and "drill platform-failover-" in steps["recovery step"]
        assert steps["reverted"].startswith("failed back to us-west-2") and "failback completed" in steps["reverted"]
        # data lost over failover + failback, from the probes' heartbeats read back on us-west-2
        losses = {d.datastore: d for d in rec.data_loss}
        assert set(losses) == {"postgres", "redis"}
        for d in losses.values():
            assert d.acknowledged >= 3 and d.lost == 0, d
        # the stack is back as it was: us-west-2 primary, traffic there, the services where they were
        assert_back_as_before(inv, before)
        assert [m.id for m in store.injected()] == []
        for st in store.repo.storages():
            assert st.exists(f"chaos/experiments/{rec.id}.json"), st.url
        # on the DR page like every experiment (lifeboat_chaos_region from the yearly schedule)
        row = next(e for e in jobs.summary(inv)["experiments"] if e["experiment"] == "region-failover")
        assert row["last"]["id"] == rec.id and row["last"]["score"] == rec.score



def test_chaos_region_revert_mid_drill_lets_the_failover_finish_then_fails_back(region_env, unique):
    """What an abort (or a cleanup) does when it reverts while the failover drill is still running: a
    failover cannot be stopped halfway safely, so the revert waits for the drill to end, then fails back
    (switch_back); the stack ends as it began. (On this stack the failover takes ~7 s, faster than two
    failing probe rounds, so the experiment's own abort rarely fires; the revert is called at once here.)"""
    from lifeboat.chaos.faults.region import RegionFailover
    from lifeboat.inventory import load_inventory

    with lifeboat_env(region_env | {"LIFEBOAT_INVENTORY": str(STATE / "inventory-drill.yaml")}):
        inv = load_inventory()
        before = {r: _deployments(r) for r in (WEST, EAST)}
        fault = RegionFailover(inv.chaos.experiment("region-failover"), inv.chaos.environments["drill"], inv,
                               f"region-revert-{unique}")
        fault.info = fault.revert_info()
        t0 = time.monotonic()
        started = fault.inject()
        assert "failover drill us-west-2 -> us-east-1 started" in started
        assert not fault._out  # the drill is still running ...
        detail = RegionFailover.revert(fault.info)  # ... when the revert comes
        took = time.monotonic() - t0
        print(f"revert after {took:.1f}s: {detail}")
        assert fault._out and fault._out[0][0] == "ok", fault._out  # the drill ran to its end first
        assert fault._out[0][1]["outcome"] == "completed"
        assert detail.startswith("failed back to us-west-2 (postgres, redis promoted in us-east-1)"), detail
        assert "failback completed" in detail
        assert took <= 400
        assert_back_as_before(inv, before)
        # a second revert (a cleanup run after the finally) finds nothing promoted and changes nothing
        assert RegionFailover.revert(fault.info).startswith("nothing promoted in us-east-1")

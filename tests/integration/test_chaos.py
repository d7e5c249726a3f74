"""Failure simulations against the real local stack (lifeboat.chaos): each fault kind injected for real
(pods deleted and a Deployment scaled to 0 in the us-west-2 cluster, datastore processes SIGKILLed and
restarted by the devstack's restart step, toxiproxy toxics on the platform API's path to its datastores),
with measured detection and recovery, the abort bound, the cleanup of a killed task's leftovers, and
steady state (probes) after every experiment.

Stack: LIFEBOAT_STACK_COMPONENTS=kubernetes,redis,mongodb,platform_api,toxiproxy (the core PostgreSQL + moto
always run).
"""

from __future__ import annotations

import json
import time
import urllib.request
from datetime import timedelta

import pytest

pytestmark = pytest.mark.integration

WEST = "us-west-2"
_HTTP = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def stack_with(stack_env: dict, *keys: str) -> dict:
    """stack_env, after asserting the test stack set every one of keys (it runs the components they name)."""
    missing = [k for k in keys if not stack_env.get(k)]
    assert not missing, f"the test stack lacks components for chaos (LIFEBOAT_STACK_COMPONENTS?): {missing}"
    return stack_env


@pytest.fixture(scope="session")
def chaos_env(stack_env):
    return stack_with(stack_env, "LIFEBOAT_TOXIPROXY_URL", "LIFEBOAT_CHAOS_API_URL",
                      "AIRFLOW_CONN_LIFEBOAT_K8S_US_WEST_2", "AIRFLOW_CONN_LIFEBOAT_REDIS_US_WEST_2",
                      "AIRFLOW_CONN_LIFEBOAT_MONGO_US_WEST_2")


@pytest.fixture
def inv(chaos_env):  # chaos_env: the requesting module's (test_chaos_dns_packet.py uses inv and store too)
    from lifeboat.inventory import load_inventory

    return load_inventory()


@pytest.fixture
def store(inv):
    from lifeboat.chaos.store import ChaosStore
    from lifeboat.repository import Repository

    return ChaosStore(Repository.from_inventory(inv))


def run(inv, store, name: str, unique: str, **changes):
    """Run experiment `name` of the inventory (with `changes` to its spec) in the drill environment."""
    from lifeboat.chaos.experiment import Experiment

    spec = inv.chaos.experiment(name).model_copy(update=changes)
    rec = Experiment(inv, spec, "drill", record_id=f"{name}-{unique}", store=store).run()
    print(json.dumps({k: getattr(rec, k) for k in ("id", "verdict", "detect_seconds", "recover_seconds", "score",
                                                    "abort_revert_seconds", "reasons")}, default=str))
    print([(p.name, p.passes, p.polls) for p in rec.probes], [d.model_dump() for d in rec.data_loss])
    return rec


def toxiproxy(env: dict, path: str):
    with _HTTP.open(env["LIFEBOAT_TOXIPROXY_URL"] + path, timeout=5) as r:
        return json.loads(r.read())


def assert_steady_and_clean(rec, store, env):
    """The probes saw steady state after the fault, nothing is left injected, the record is in both regions."""
    assert rec.steady_after, rec.steps[-1]
    assert rec.reverted_at is not None
    assert [m.id for m in store.injected()] == []
    for st in store.repo.storages():
        assert st.exists(f"chaos/experiments/{rec.id}.json"), st.url
    for proxy in toxiproxy(env, "/proxies").values():
        assert proxy["enabled"] and proxy["toxics"] == [], proxy
    with _HTTP.open(env["LIFEBOAT_CHAOS_API_URL"] + "/ready", timeout=5) as r:
        assert r.status == 200


def probe(rec, name):
    return next(p for p in rec.probes if p.name == name)


def test_chaos_service_pods_deleted_the_platform_heals_itself(inv, store, chaos_env, kube, unique):
    before = {p["metadata"]["name"] for p in kube[WEST].get("/api/v1/namespaces/community/pods",
                                                            {"labelSelector": "app=api-gateway"})["items"]}
    rec = run(inv, store, "api-gateway-pod-delete", unique)
    assert rec.verdict == "pass", rec.reasons
    assert 0 <= rec.detect_seconds <= 10 and rec.detect_seconds <= rec.objective_detect_seconds
    assert rec.detect_seconds < rec.recover_seconds <= 90
    ready = probe(rec, "ready-api-gateway")
    assert 0 < ready.passes < ready.polls  # the probe saw the pods gone, then back
    after = {p["metadata"]["name"] for p in kube[WEST].get("/api/v1/namespaces/community/pods",
                                                           {"labelSelector": "app=api-gateway"})["items"]}
    assert len(after) == 3 and not (after & before)  # all three are new pods
    assert kube[WEST].deployments("community")["api-gateway"].is_ready()
    assert 0 < rec.score < 100
    assert_steady_and_clean(rec, store, chaos_env)


def test_chaos_service_scaled_to_zero_the_recovery_step_scales_it_back(inv, store, chaos_env, kube, unique):
    rec = run(inv, store, "api-gateway-scale-zero", unique, duration=timedelta(seconds=3))
    assert rec.verdict == "pass", rec.reasons
    assert 0 <= rec.detect_seconds <= 10
    assert 3 <= rec.recover_seconds <= 60  # the fault lasted its 3 s, then the runbook step scaled it back
    assert "scaled 0 -> 3" in next(s["detail"] for s in rec.steps if s["name"] == "recovery step")
    dep = kube[WEST].deployments("community")["api-gateway"]
    assert (dep.replicas, dep.ready) == (3, 3)
    assert_steady_and_clean(rec, store, chaos_env)


@pytest.mark.parametrize(("name", "datastore"), [("postgres-latency", "postgres"), ("postgres-outage", "postgres"),
                                             ("redis-timeout", "redis")])
def test_chaos_network_faults_on_the_platform_path(inv, store, chaos_env, unique, name, datastore):
    rec = run(inv, store, name, unique, duration=timedelta(seconds=3))
    assert rec.verdict == "pass", rec.reasons
    assert 0 <= rec.detect_seconds <= 5
    assert 3 <= rec.recover_seconds <= 30
    ready = probe(rec, "api-ready")
    assert ready.passes < ready.polls  # the platform's readiness failed through the proxy ...
    direct = probe(rec, f"write-read-{datastore}")
    assert direct.passes == direct.polls  # ... while the datastore itself answered Lifeboat directly throughout
    assert rec.data_loss[0].lost == 0
    assert_steady_and_clean(rec, store, chaos_env)


@pytest.mark.parametrize(("name", "datastore"), [("redis-kill", "redis"), ("mongodb-kill", "mongodb"),
                                             ("postgres-kill", "postgres")])
def test_chaos_database_process_killed_and_restarted(inv, store, chaos_env, unique, name, datastore):
    from lifeboat.chaos.faults.process import running_pid

    ds = inv.chaos.environments["drill"].datastores[datastore]
    pid_before = running_pid(ds.pidfile, ds.program)
    assert pid_before
    rec = run(inv, store, name, unique)
    assert rec.verdict == "pass", rec.reasons
    assert 0 <= rec.detect_seconds <= 5
    assert 3 <= rec.recover_seconds <= 120
    pid_after = running_pid(ds.pidfile, ds.program)
    assert pid_after and pid_after != pid_before  # a new server process
    loss = rec.data_loss[0]
    assert loss.datastore == datastore and loss.acknowledged >= 3
    assert loss.lost == 0, loss  # a SIGKILL keeps what the server acknowledged (PostgreSQL WAL, Redis AOF, SQLite)
    assert probe(rec, f"write-read-{datastore}").passes < probe(rec, f"write-read-{datastore}").polls
    assert_steady_and_clean(rec, store, chaos_env)


def test_chaos_abort_ends_the_fault_within_its_bound(inv, store, chaos_env, kube, unique):
    t0 = time.monotonic()
    rec = run(inv, store, "api-gateway-scale-zero", unique, duration=timedelta(seconds=120),
              abort_after=timedelta(seconds=2))
    took = time.monotonic() - t0
    assert rec.aborted and rec.verdict == "fail" and any("aborted" in r for r in rec.reasons), rec.reasons
    assert "ready-api-gateway failing for" in rec.abort_reason
    # abort decided just after the probe had failed for 2 s (one poll later at most) ...
    failing_for = (rec.fault_ended_at - probe(rec, "ready-api-gateway").first_failure_at).total_seconds()
    assert 2.0 <= failing_for <= 2.0 + 1.5, failing_for
    # ... and the fault reverted at once: scaled back, Ready again, long before the 120 s fault would have ended
    assert rec.abort_revert_seconds is not None and rec.abort_revert_seconds <= 2.0
    assert took < 60
    dep = kube[WEST].deployments("community")["api-gateway"]
    assert (dep.replicas, dep.ready) == (3, 3)
    assert_steady_and_clean(rec, store, chaos_env)


def test_chaos_cleanup_reverts_a_killed_tasks_leftover_and_leaves_running_ones(inv, store, chaos_env, unique):
    from lifeboat.chaos import jobs
    from lifeboat.chaos.faults.network import NetworkFault
    from lifeboat.chaos.records import Injected, utcnow

    spec = inv.chaos.experiment("postgres-outage")
    fault = NetworkFault(spec, inv.chaos.environments["drill"], inv, f"leftover-{unique}")
    fault.info = fault.revert_info()
    now = utcnow()
    store.mark_injected(Injected(id=f"leftover-{unique}", experiment=spec.name, kind="network", environment="drill",
                                 injected_at=now - timedelta(hours=1), stale_at=now - timedelta(minutes=1),
                                 revert=fault.info))
    running = Injected(id=f"running-{unique}", experiment=spec.name, kind="network", environment="drill",
                       injected_at=now, stale_at=now + timedelta(minutes=10), revert=dict(fault.info, toxic="x"))
    store.mark_injected(running)
    fault.inject()  # ... and the task that injected it was killed before its finally ran
    try:
        proxy = toxiproxy(chaos_env, f"/proxies/{fault.info['proxy']}")
        assert not proxy["enabled"]
        out = jobs.cleanup({}, inv=inv, repo=store.repo)
        assert [r["id"] for r in out["reverted"]] == [f"leftover-{unique}"]
        assert out["left_to_running_experiments"] == [f"running-{unique}"]
        assert toxiproxy(chaos_env, f"/proxies/{fault.info['proxy']}")["enabled"]
        assert [m.id for m in store.injected()] == [f"running-{unique}"]
    finally:
        store.clear_injected(running.id)
        NetworkFault.revert(fault.info)


def test_chaos_refuses_a_target_that_is_not_steady_and_injects_nothing(inv, store, chaos_env, unique):
    from lifeboat.chaos.faults.network import NetworkFault

    spec = inv.chaos.experiment("postgres-outage")
    blocker = NetworkFault(spec, inv.chaos.environments["drill"], inv, f"blocker-{unique}")
    blocker.info = blocker.revert_info()
    blocker.inject()  # the platform is already failing before the experiment starts
    try:
        import lifeboat.chaos.experiment as experiment

        old, experiment.STEADY_TIMEOUT_S = experiment.STEADY_TIMEOUT_S, 3.0
        try:
            rec = run(inv, store, "redis-timeout", unique)
        finally:
            experiment.STEADY_TIMEOUT_S = old
        assert not rec.steady_before and rec.injected_at is None and rec.verdict == "fail"
        assert "nothing was injected" in rec.reasons[0]
        redis_proxy = toxiproxy(chaos_env, "/proxies/platform_redis_us_west_2")
        assert redis_proxy["toxics"] == []  # its own fault was never injected
    finally:
        NetworkFault.revert(blocker.info)


def test_chaos_dr_page_lists_experiments_with_scores_and_trends(inv, store, chaos_env, unique):
    from fastapi.testclient import TestClient

    from lifeboat.ui.app import create_app

    rec = run(inv, store, "postgres-outage", unique, duration=timedelta(seconds=1))  # at least one run to show
    app = create_app()
    client = TestClient(app)
    assert client.get("/chaos/overview").status_code == 401  # behind Airflow's login
    route = next(r for r in app.routes if getattr(r, "path", "") == "/chaos/overview")
    for dep in route.dependencies:  # the login itself is Airflow's (tests/integration/test_ops_prometheus.py)
        app.dependency_overrides[dep.dependency] = lambda: None
    resp = client.get("/chaos/overview")
    assert resp.status_code == 200, resp.text
    data = resp.json()
    row = next(e for e in data["experiments"] if e["experiment"] == "postgres-outage")
    assert row["last"]["id"] == rec.id and row["last"]["score"] == rec.score and row["last"]["verdict"] == "pass"
    assert row["trend"][-1] == {"id": rec.id, "at": rec.started_at.isoformat(), "score": rec.score, "verdict": "pass"}
    assert all(0 <= t["score"] <= 100 for e in data["experiments"] for t in e["trend"] if t["score"] is not None)
    assert row["quarters"] and data["quarters"] and data["injected"] == []
    assert b"chaos/overview" in client.get("/ops/ops.js").content  # the page's section that renders it
    from lifeboat import metrics
    from lifeboat.records import utcnow

    samples = {labels["scenario"]: v for labels, v in metrics._HOOKS["chaos_scores"](inv, utcnow())}
    assert samples["postgres-outage"] == round(rec.score / 100, 4)  # lifeboat_chaos_score for Prometheus

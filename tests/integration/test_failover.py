"""Failover and failback on the real local stack, driven through a real Airflow.

Its own stack (`.stack-failover/`, only the redis, platform_api and kubernetes components besides
PostgreSQL primary + standby and moto) because it destroys and rebuilds the primary region; torn down with
`down --wipe` at the end of the module. Airflow runs for real: `airflow db migrate`, then scheduler,
dag-processor and api-server from the project's venv on a free loopback port (SimpleAuthManager,
passwords file); every run is triggered, approved or rejected, and cleared through the REST API.

Kubernetes: each region is a real local cluster (devstack/components/kubernetes.py: kube-apiserver,
controller-manager, scheduler, kwok nodes that mark pods Ready) running the platform's `community`
namespace; the tasks scale it through the provider's KubernetesHook, the test observes it through its own
client on the region's kubeconfig. Route 53 is moto's (the stack's endpoint).

The tests run in file order and build on each other (as an on-call engineer would): refusals and a
dry run and a rejection change nothing; a region loss is failed over, interrupted after the
promotion and resumed without a second promotion; then the region is failed back.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import time
from pathlib import Path

import pytest

from tests.integration.airflow_proc import running_airflow
from tests.integration.own_stack import components_env, http_status, kill_primary_region, lifeboat_env

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
STATE = Path(os.environ.get("LIFEBOAT_FAILOVER_STACK_DIR") or ROOT / ".stack-failover")
COMPONENTS = "redis,platform_api,kubernetes"
SERVICES = ("auth-service", "api-gateway", "frontend")
FULL = {"auth-service": 2, "api-gateway": 3, "frontend": 2}  # the inventory's active replicas
WEST, EAST = "us-west-2", "us-east-1"
RECORD = "api.community.example.com"
FAILOVER, FAILBACK = "lifeboat_failover", "lifeboat_failback"


# =========================================================================== fixtures

@pytest.fixture(scope="module")
def fstack():
    from devstack import stack

    with components_env(COMPONENTS):
        stack.down(STATE, wipe=True, quiet=True)  # a fresh region pair: an aborted run leaves a failed-over one
        env = stack.up(state_dir=STATE, quiet=True)
    try:
        yield env
    finally:
        with components_env(COMPONENTS):  # LIFEBOAT_KEEP_FAILOVER_STACK=1 keeps it (stopped) for a post-mortem
            stack.down(STATE, wipe=os.environ.get("LIFEBOAT_KEEP_FAILOVER_STACK") != "1", quiet=True)


def _write_inventory(path: Path) -> None:
    """The project's inventory minus the engines this stack does not run, alerts to the log only and a
    1-second DNS TTL (the failback's drain wait)."""
    import yaml

    src = yaml.safe_load((ROOT / "include" / "inventory.yaml").read_text())
    for name in ("mongodb", "elasticsearch"):
        src["datastores"].pop(name, None)
    for svc in src.get("services", {}).values():  # the dependency map names only what this stack runs
        svc["datastores"] = [d for d in svc.get("datastores", []) if d in src["datastores"]]
        svc["env"] = {d: k for d, k in svc.get("env", {}).items() if d in src["datastores"]}
    fo = src["failover"]
    fo["order"] = [n for n in fo["order"] if n in src["datastores"]]
    fo["approval_timeout"] = "15m"
    fo["traffic"]["records"][0]["ttl"] = 1
    for svc in fo["services"]:
        svc["ready_timeout"] = "90s"
    src["alerts"] = {"routes": {s: ["log"] for s in ("critical", "high", "medium", "low")},
                     "channels": {"log": {"type": "log"}}}
    path.write_text(yaml.safe_dump(src, sort_keys=False))


@pytest.fixture(scope="module")
def k8s(fstack):
    """The test's own view of both clusters: an AppsV1Api per region on the region's kubeconfig file."""
    from kubernetes import client, config

    return {r: client.AppsV1Api(config.new_client_from_config(
        config_file=fstack[f"LIFEBOAT_KUBECONFIG_{r.upper().replace('-', '_')}"])) for r in (WEST, EAST)}


def deployments(k8s, region: str) -> dict[str, dict]:
    """{name: replicas, ready, generation} of the community namespace's Deployments in a region."""
    items = k8s[region].list_namespaced_deployment("community").items
    return {d.metadata.name: {"replicas": d.spec.replicas, "ready": d.status.ready_replicas or 0,
                              "generation": d.metadata.generation} for d in items}


def wait_deployments(k8s, region: str, want: dict[str, int], timeout: float = 60) -> dict[str, dict]:
    deadline = time.monotonic() + timeout
    while True:
        deps = deployments(k8s, region)
        if all(deps[n]["replicas"] == r and deps[n]["ready"] == r for n, r in want.items()):
            return deps
        assert time.monotonic() < deadline, f"{region}: {deps} never reached {want}"
        time.sleep(0.5)


def ready_pods(k8s, region: str, app: str) -> int:
    from kubernetes import client

    core = client.CoreV1Api(k8s[region].api_client)
    pods = core.list_namespaced_pod("community", label_selector=f"app={app}").items
    return sum(1 for p in pods if p.metadata.deletion_timestamp is None and
               any(c.type == "Ready" and c.status == "True" for c in (p.status.conditions or [])))


@pytest.fixture(scope="module")
def fenv(fstack, k8s):
    """Everything the tasks (and this test's own checks) need, as environment variables."""
    inventory = STATE / "inventory.yaml"
    _write_inventory(inventory)
    (STATE / "work").mkdir(exist_ok=True)
    env = dict(fstack)
    env.update({
        "LIFEBOAT_INVENTORY": str(inventory),
        "LIFEBOAT_WORKDIR": str(STATE / "work"),
    })
    return env


@pytest.fixture(scope="module")
def airflow(fenv):
    with running_airflow(STATE / "airflow", fenv, [FAILOVER, FAILBACK]) as api:
        yield api


# =========================================================================== the world, observed

def _pg(fenv, region: str):
    import psycopg

    uri = fenv[f"AIRFLOW_CONN_LIFEBOAT_PG_{region.upper().replace('-', '_')}"]
    return psycopg.connect(uri, autocommit=True, connect_timeout=3)


def _redis(fenv, region: str):
    import redis

    uri = fenv[f"AIRFLOW_CONN_LIFEBOAT_REDIS_{region.upper().replace('-', '_')}"]
    return redis.Redis.from_url(uri, socket_timeout=5, socket_connect_timeout=3)


def _route53(fenv):
    import boto3

    ep = json.loads(fenv["AIRFLOW_CONN_LIFEBOAT_ROUTE53"])
    return boto3.client("route53", endpoint_url=ep["extra"]["endpoint_url"], region_name="us-east-1",
                        aws_access_key_id="testing", aws_secret_access_key="testing")


def dns(fenv) -> str | None:
    from devstack.components import platform_api

    return platform_api.record_value(json.loads(fenv["AIRFLOW_CONN_LIFEBOAT_ROUTE53"])["extra"]["endpoint_url"])


def pg_state(fenv, region: str) -> dict:
    try:
        with _pg(fenv, region) as c:
            rec = c.execute("SELECT pg_is_in_recovery()").fetchone()[0]
            tli = (c.execute("SELECT received_tli FROM pg_stat_wal_receiver").fetchone() or [None])[0] if rec else \
                int(c.execute("SELECT pg_walfile_name(pg_current_wal_lsn())").fetchone()[0][:8], 16)
            tables = [r[0] for r in c.execute("SELECT relname FROM pg_stat_user_tables ORDER BY relname")]
            counts = {t: c.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0] for t in tables}
            return {"role": "standby" if rec else "primary", "timeline": tli, "counts": counts,
                    "read_only": c.execute("SHOW default_transaction_read_only").fetchone()[0]}
    except Exception as exc:
        return {"role": "unreachable", "error": type(exc).__name__}


def redis_state(fenv, region: str) -> dict:
    try:
        c = _redis(fenv, region)
        info = c.info("replication")
        digest = hashlib.sha256()
        for key in sorted(c.scan_iter(count=1000)):
            digest.update(key + b"\0" + (c.dump(key) or b"") + b"\0")
        c.close()
        return {"role": info["role"], "master_port": info.get("master_port"), "replid": info["master_replid"],
                "digest": digest.hexdigest()}
    except Exception as exc:
        return {"role": "unreachable", "error": type(exc).__name__}


def world(fenv, k8s) -> dict:
    return {"pg": {r: pg_state(fenv, r) for r in (WEST, EAST)},
            "redis": {r: redis_state(fenv, r) for r in (WEST, EAST)},
            "dns": dns(fenv),
            # generation counts every change of a Deployment's spec (a scale patch included)
            "deployments": {r: {n: (d["replicas"], d["generation"]) for n, d in deployments(k8s, r).items()}
                            for r in (WEST, EAST)},
            "timelines": sorted(p.name for p in (STATE / "repo").rglob("failovers/*.json")),
            "drills": sorted(p.name for p in (STATE / "repo").rglob("drills/*.json"))}


def writable_redis(fenv, region: str) -> bool:
    c = _redis(fenv, region)
    try:
        c.set("lifeboat:test:writable", "1")  # CLIENT PAUSE WRITE would block this
        c.delete("lifeboat:test:writable")
        return True
    except Exception:
        return False
    finally:
        c.close()


def conf(**kw) -> dict:
    base = {"target_region": EAST, "scope": ["region"], "dry_run": True, "reason": "integration test", "confirm": ""}
    return {**base, **kw}


# =========================================================================== the tests

@pytest.fixture(scope="module")
def pair(fenv):
    with _pg(fenv, WEST) as c:
        c.execute("CREATE TABLE failover_demo (id serial PRIMARY KEY, note text NOT NULL)")
        c.execute("INSERT INTO failover_demo (note) SELECT 'row ' || g FROM generate_series(1, 100) g")
    r = _redis(fenv, WEST)
    r.mset({f"demo:{i}": f"value {i}" for i in range(50)})
    r.close()
    with lifeboat_env(fenv):
        from lifeboat.datastores import open_engine

        for name in ("postgres", "redis"):
            open_engine(name).heartbeat()
    deadline = time.monotonic() + 20  # the standby has everything before the baseline is taken
    while pg_state(fenv, EAST).get("counts", {}).get("failover_demo") != 100 or \
            redis_state(fenv, EAST)["digest"] != redis_state(fenv, WEST)["digest"]:
        assert time.monotonic() < deadline, "standbys did not catch up with the seed data"
        time.sleep(0.2)
    return fenv


def test_failover_trigger_without_reason_is_refused_by_the_api(airflow):
    code, data = airflow.call("POST", f"/api/v2/dags/{FAILOVER}/dagRuns",
                              {"logical_date": None, "conf": {"target_region": EAST, "dry_run": True}})
    assert code == 400 and "reason" in json.dumps(data), (code, data)


def test_failover_missing_or_wrong_confirmation_refuses_before_touching_anything(airflow, pair, k8s):
    before = world(pair, k8s)
    runs = [airflow.trigger(FAILOVER, conf(dry_run=False, confirm=c)) for c in ("", WEST)]
    for run_id, says in zip(runs, ("the confirmation is missing", "the confirmation is 'us-west-2'"), strict=False):
        assert airflow.wait(FAILOVER, run_id)["state"] == "failed"
        tasks = airflow.tasks(FAILOVER, run_id)
        assert tasks["guard"] == "failed"
        assert {s for t, s in tasks.items() if t not in ("guard", "record", "notify")} == {"upstream_failed"}, tasks
        assert airflow.xcom(FAILOVER, run_id, "record")["outcome"] == "refused"
        assert says in airflow.xcom(FAILOVER, run_id, "record")["detail"]
    assert world(pair, k8s) == before


def test_failover_dry_run_changes_nothing(airflow, pair, k8s):
    before = world(pair, k8s)
    run_id = airflow.trigger(FAILOVER, conf(dry_run=True))
    run = airflow.wait(FAILOVER, run_id)
    tasks = airflow.tasks(FAILOVER, run_id)
    assert run["state"] == "success", (tasks, airflow.tail())
    plan = airflow.xcom(FAILOVER, run_id, "plan")
    assert plan["dry_run"] and not plan["blockers"]
    assert any(s.startswith("promote postgres@us-east-1: pg_promote()") for s in plan["steps"]), plan["steps"]
    assert any("api.us-west-2.community.example.com -> api.us-east-1" in s for s in plan["steps"])
    assert plan["expected_data_loss"]["postgres"]["replication_lag_bytes"] == 0
    promote = airflow.xcom(FAILOVER, run_id, "promote")
    assert promote["promoted"]["redis"].startswith("DRY RUN: would promote redis@us-east-1")
    assert airflow.xcom(FAILOVER, run_id, "switch_traffic")["records"][0]["changed"] is False
    assert airflow.xcom(FAILOVER, run_id, "record")["outcome"] == "dry_run"
    after = world(pair, k8s)
    assert after == before
    assert after["pg"][WEST]["read_only"] == "off" and writable_redis(pair, WEST)


def test_failover_rejected_approval_leaves_everything_as_it_was(airflow, pair, k8s):
    before = world(pair, k8s)
    run_id = airflow.trigger(FAILOVER, conf(dry_run=False, confirm=EAST, reason="rehearsal, will reject"))
    request = airflow.wait_approval(FAILOVER, run_id)
    assert "FAILOVER to us-east-1" in request["subject"] and "pg_promote()" in request["body"]
    airflow.answer(FAILOVER, run_id, "Reject")
    run = airflow.wait(FAILOVER, run_id)
    tasks = airflow.tasks(FAILOVER, run_id)
    assert run["state"] == "success", tasks  # a decision, not a failure
    for t in ("fence", "promote", "scale_services", "switch_traffic", "verify", "done"):
        assert tasks[t] == "skipped", tasks
    assert airflow.xcom(FAILOVER, run_id, "record")["outcome"] == "rejected"
    after = world(pair, k8s)
    assert {k: v for k, v in after.items() if k != "timelines"} == \
        {k: v for k, v in before.items() if k != "timelines"}
    opened = set(after["timelines"]) - set(before["timelines"])  # the guard opened one, closed as rejected
    assert len(opened) == 1 and set(after["timelines"]) >= set(before["timelines"])
    tl = json.loads(next((STATE / "repo").rglob(f"failovers/{opened.pop()}")).read_text())
    assert tl["outcome"] == "rejected" and tl["heartbeats"] == {} and tl["steps"] == []
    assert writable_redis(pair, WEST) and after["pg"][WEST]["read_only"] == "off"


def _kill_region(fenv) -> None:
    """Region loss: SIGKILL every primary-region server (own_stack.kill_primary_region); returns when the
    primary PostgreSQL and Redis no longer answer."""
    kill_primary_region(STATE, Path(fenv["LIFEBOAT_PG_PRIMARY_DATA"]), WEST)
    deadline = time.monotonic() + 10
    while pg_state(fenv, WEST)["role"] != "unreachable" or redis_state(fenv, WEST)["role"] != "unreachable":
        assert time.monotonic() < deadline
        time.sleep(0.1)


def _delete_dns_zone(fenv) -> None:
    r53 = _route53(fenv)
    zone = r53.list_hosted_zones_by_name(DNSName="community.example.com")["HostedZones"][0]["Id"]
    for rrs in r53.list_resource_record_sets(HostedZoneId=zone)["ResourceRecordSets"]:
        if rrs["Type"] not in ("SOA", "NS"):
            r53.change_resource_record_sets(HostedZoneId=zone, ChangeBatch={
                "Changes": [{"Action": "DELETE", "ResourceRecordSet": rrs}]})
    r53.delete_hosted_zone(Id=zone)


def test_failover_region_loss_interrupted_after_promotion_and_resumed(airflow, pair, k8s):
    with lifeboat_env(pair):
        from lifeboat.datastores import open_engine

        last_hb = {name: open_engine(name).heartbeat() for name in ("postgres", "redis")}
    time.sleep(1)  # replicated; then the region goes
    _kill_region(pair)
    assert http_status(pair["LIFEBOAT_API_US_EAST_1_URL"] + "/ready") == 503  # the standby cannot serve yet

    run_id = airflow.trigger(FAILOVER, conf(dry_run=False, confirm=EAST, reason="us-west-2 lost (test)"))
    request = airflow.wait_approval(FAILOVER, run_id)
    assert "fence postgres@us-west-2: skipped, unreachable (Connection refused) (recorded, not fatal)" in \
        request["body"], request["body"]
    # Route 53's API fails after the approval: the run stops after promoting (interrupted).
    _delete_dns_zone(pair)
    airflow.answer(FAILOVER, run_id, "Approve")
    assert airflow.wait(FAILOVER, run_id)["state"] == "failed"
    tasks = airflow.tasks(FAILOVER, run_id)
    assert (tasks["promote"], tasks["scale_services"], tasks["switch_traffic"], tasks["verify"]) == \
        ("success", "success", "failed", "upstream_failed"), tasks
    first = airflow.xcom(FAILOVER, run_id, "promote")["promoted"]
    assert first["postgres"]["promoted_now"] and first["redis"]["promoted_now"]
    assert airflow.xcom(FAILOVER, run_id, "record")["outcome"] == "failed"
    promoted = {"pg": pg_state(pair, EAST), "redis": redis_state(pair, EAST)}
    assert promoted["pg"]["role"] == "primary" and promoted["redis"]["role"] == "master"

    # The zone is back (as it was: pointing at the lost region); clear the whole run to resume it.
    from devstack.components import platform_api

    platform_api.ensure_route53(json.loads(pair["AIRFLOW_CONN_LIFEBOAT_ROUTE53"])["extra"]["endpoint_url"])
    assert dns(pair) == "api.us-west-2.community.example.com"
    airflow.clear(FAILOVER, run_id)
    airflow.wait_approval(FAILOVER, run_id)
    airflow.answer(FAILOVER, run_id, "Approve")
    run = airflow.wait(FAILOVER, run_id)
    assert run["state"] == "success", (airflow.tasks(FAILOVER, run_id), airflow.tail())

    # No second promotion: the same timeline, the same PostgreSQL timeline, the same Redis replid.
    again = airflow.xcom(FAILOVER, run_id, "promote")["promoted"]
    assert not again["postgres"]["promoted_now"] and "not promoted again" in again["postgres"]["detail"]
    assert not again["redis"]["promoted_now"] and "not promoted again" in again["redis"]["detail"]
    assert pg_state(pair, EAST)["timeline"] == promoted["pg"]["timeline"] == 2
    assert redis_state(pair, EAST)["replid"] == promoted["redis"]["replid"]
    guard = airflow.xcom(FAILOVER, run_id, "guard")
    assert guard["resumed"] and guard["attempt"] == 2

    # The standby region serves: writable datastores, DNS, services, health.
    with _pg(pair, EAST) as c:
        c.execute("INSERT INTO failover_demo (note) VALUES ('written after the failover')")
        assert c.execute("SELECT count(*) FROM failover_demo").fetchone()[0] == 101
    r = _redis(pair, EAST)
    r.set("demo:after-failover", "yes")
    assert r.get("demo:after-failover") == b"yes"
    r.close()
    assert dns(pair) == "api.us-east-1.community.example.com"
    # The standby cluster runs the platform: every Deployment scaled up, its pods Ready (kwok), api-gateway 3.
    wait_deployments(k8s, EAST, FULL, timeout=5)
    assert ready_pods(k8s, EAST, "api-gateway") == 3
    assert http_status(pair["LIFEBOAT_API_US_EAST_1_URL"] + "/health") == 200
    assert http_status(pair["LIFEBOAT_API_US_EAST_1_URL"] + "/ready") == 200

    # The drill: RTO and data loss as measured numbers, in the catalog of both regions.
    rec = airflow.xcom(FAILOVER, run_id, "record")
    assert rec["outcome"] == "completed" and rec["verdict"] == "pass", rec
    with lifeboat_env(pair):
        from lifeboat.inventory import load_inventory
        from lifeboat.repository import Repository

        inv = load_inventory()
        drill = Repository.from_inventory(inv, EAST).drill(rec["drill_id"])
        assert drill.id in {d.id for d in Repository.from_inventory(inv, WEST).drills()}
    assert drill.type == "failover" and drill.target == EAST
    assert drill.scope == ["postgres", "redis", *SERVICES]
    started = drill.started_at
    assert isinstance(drill.rto_seconds, float) and 0 < drill.rto_seconds < 600
    assert drill.rto_seconds == pytest.approx((drill.ready_at - started).total_seconds())
    newest = min(last_hb.values())
    assert drill.newest_heartbeat_at == newest
    assert drill.rpo_seconds == pytest.approx((started - newest).total_seconds()) and drill.rpo_seconds > 0
    loss = rec["data_loss"]
    assert loss["postgres"]["old_primary_reachable"] is False and loss["postgres"]["unreplicated_seconds"] is None
    assert loss["redis"]["seconds_before_trigger"] > 0
    names = [s.name for s in drill.steps]
    assert names.count("promote postgres@us-east-1") == 2 and "switch traffic to us-east-1" in names
    verified = {s.name: s for s in drill.steps}["verify api-gateway in us-east-1"]
    assert "deployment 3/3 Ready" in verified.detail and verified.finished_at <= drill.ready_at
    scaled = [s for s in drill.steps if s.name.startswith("scale ")]  # the resumed run checked, did not patch
    assert [s.name for s in scaled] == [f"scale {n} in us-east-1" for n in SERVICES] * 2
    assert scaled[1].detail == "scaled 0 -> 3, ready 3" and scaled[4].detail == "already 3 replicas, ready 3"
    print(f"\nfailover drill {drill.id}: RTO {drill.rto_seconds:.1f}s (incl. approval and the resume), "
          f"data loss {drill.rpo_seconds:.1f}s; steps: " + ", ".join(f"{s.name} {s.seconds:.2f}s" for s in drill.steps))


def _region_returns(fenv) -> None:
    """The lost region's hosts come back: Redis starts with its old data (as a primary!), the API
    stand-in and the Kubernetes cluster restart; PostgreSQL stays stopped (the failback rewinds it)."""
    from devstack.components import kubernetes, platform_api

    subprocess.run(["redis-server", str(STATE / "redis" / "primary" / "redis.conf")], check=True, timeout=30)
    deadline = time.monotonic() + 20
    while redis_state(fenv, WEST)["role"] == "unreachable":
        assert time.monotonic() < deadline
        time.sleep(0.1)
    platform_api.up(STATE, lambda m: None)
    kubernetes.up(STATE, lambda m: None)


def test_failback_restores_the_original_topology_and_replication(airflow, pair, k8s):
    from devstack import stack

    _region_returns(pair)
    assert redis_state(pair, WEST)["role"] == "master"  # split brain until the failback
    run_id = airflow.trigger(FAILBACK, conf(target_region=WEST, dry_run=False, confirm=WEST, switch_back=True,
                                            reason="us-west-2 is back (test)"))
    request = airflow.wait_approval(FAILBACK, run_id)
    assert "rebuild postgres@us-west-2 as a standby of us-east-1" in request["body"]
    airflow.answer(FAILBACK, run_id, "Approve")
    run = airflow.wait(FAILBACK, run_id, timeout=240)
    assert run["state"] == "success", (airflow.tasks(FAILBACK, run_id), airflow.tail())

    # The original topology: west primary, east streaming standby through slot standby_us_east_1.
    with components_env(COMPONENTS):
        status = stack.status(STATE)
    assert status["ok"], status
    assert status["components"]["standby"]["replication"] == "streaming"
    assert pg_state(pair, WEST)["role"] == "primary" and pg_state(pair, EAST)["role"] == "standby"
    assert redis_state(pair, WEST)["role"] == "master" and redis_state(pair, EAST)["role"] == "slave"
    # Data written during the failover survived the switch back; new writes replicate west -> east.
    with _pg(pair, WEST) as c:
        assert c.execute("SELECT count(*) FROM failover_demo").fetchone()[0] == 101
        c.execute("INSERT INTO failover_demo (note) VALUES ('written after the failback')")
    r = _redis(pair, WEST)
    assert r.get("demo:after-failover") == b"yes"
    r.set("demo:after-failback", "yes")
    r.close()
    deadline = time.monotonic() + 20
    while True:
        e = _redis(pair, EAST)
        got = e.get("demo:after-failback")
        e.close()
        if got == b"yes" and pg_state(pair, EAST).get("counts", {}).get("failover_demo") == 102:
            break
        assert time.monotonic() < deadline, "writes on the restored primary do not reach the standby"
        time.sleep(0.2)
    assert dns(pair) == "api.us-west-2.community.example.com"
    wait_deployments(k8s, WEST, FULL, timeout=5)
    assert ready_pods(k8s, WEST, "api-gateway") == 3
    wait_deployments(k8s, EAST, dict.fromkeys(SERVICES, 0))  # drained: no pods left Ready
    assert ready_pods(k8s, EAST, "api-gateway") == 0
    assert http_status(pair["LIFEBOAT_API_US_WEST_2_URL"] + "/ready") == 200
    assert http_status(pair["LIFEBOAT_API_US_EAST_1_URL"] + "/ready") == 503  # standby again
    rec = airflow.xcom(FAILBACK, run_id, "record")
    assert rec["outcome"] == "completed" and rec["verdict"] == "pass", rec
    assert rec["data_loss"]["postgres"]["unreplicated_seconds"] == 0.0  # a switchover loses nothing
    assert rec["rpo_seconds"] == 0.0 and rec["rto_seconds"] > 0
    print(f"\nfailback drill {rec['drill_id']}: RTO {rec['rto_seconds']:.1f}s, data loss {rec['rpo_seconds']:.1f}s")

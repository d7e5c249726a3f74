"""lifeboat_recover and lifeboat_recover_service on the real local stack, driven through a real Airflow.

Its own stack (`.stack-recover/`: PostgreSQL primary + standby, pgBackRest, moto, Redis, the platform
API component), wiped at the end of the module, because it destroys the live PostgreSQL data directory
and the live Redis. The test inventory is the project's minus the engines this stack does not run,
without Kubernetes deployments (the services run as local processes: the platform API stand-in,
`services.<name>.process`), recovery targets under the state folder.

In file order (the two end-to-end tests first: the machine may be slow): the quarterly drill restores
both stores to one recovery point and leaves nothing behind; a crashed service is restarted after its
dependencies are checked; then the real thing -- PostgreSQL's data directory destroyed and Redis lost,
`lifeboat_recover` of the auth-service scope approved through the API restores both (dependencies
first) into NEW targets at a time between two known writes, exactly the rows committed before it come
back, the service's /ready passes against them, and the drill has RTO and data loss measured from
heartbeats; then refusals (no reason, no or a wrong confirmation, into=live without the second one), a
dry run and a rejected approval change nothing (asserted on the observed world).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from lifeboat.net import free_port
from tests.integration.airflow_proc import running_airflow
from tests.integration.own_stack import components_env, http_status, lifeboat_env

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
STATE = Path(os.environ.get("LIFEBOAT_RECOVER_STACK_DIR") or ROOT / ".stack-recover")
COMPONENTS = "redis,platform_api"
WEST = "us-west-2"
RECOVER, RECOVER_SERVICE, QUARTERLY = "lifeboat_recover", "lifeboat_recover_service", "lifeboat_drill_quarterly"
SERVICES = ("auth-service", "api-gateway")


def write_inventory(path: Path, ports: dict[str, int]) -> None:
    """The project's inventory for this stack: PostgreSQL and Redis only, no Kubernetes deployments (the
    services are local processes of the platform API stand-in), recovery targets and a 30-second
    continuity window with a 90 s gap allowance (the test writes its heartbeats in bursts a second apart,
    minutes between bursts: a longer window rightly fails on the gap), alerts to the log."""
    import yaml

    src = yaml.safe_load((ROOT / "include" / "inventory.yaml").read_text())
    for name in ("mongodb", "elasticsearch"):
        src["datastores"].pop(name, None)
    src.pop("failover", None)
    services = {}
    for name, svc in src["services"].items():
        svc["datastores"] = [d for d in svc.get("datastores", []) if d in src["datastores"]]
        svc["env"] = {d: k for d, k in svc.get("env", {}).items() if d in src["datastores"]}
        svc.pop("secret", None)
        if name in ports:
            svc["process"] = {"command": ["{python}", str(ROOT / "devstack" / "platform_api_server.py"), "--region",
                                          "{region}", "--port", "{port}", "--env-file", "{env_file}"],
                              "port": ports[name], "dir": str(STATE / "services")}
        services[name] = svc
    src["services"] = services
    src["recovery"] = {"dir": str(STATE / "recovered"), "approval_timeout": "15m", "continuity_window": "30s",
                       "heartbeat_gap": "90s", "probe_requests": 20, "max_error_ratio": 0.05}
    src["alerts"] = {"routes": {s: ["log"] for s in ("critical", "high", "medium", "low")},
                     "channels": {"log": {"type": "log"}}}
    path.write_text(yaml.safe_dump(src, sort_keys=False))


# =========================================================================== fixtures

@pytest.fixture(scope="module")
def rstack():
    from devstack import stack

    stop_recovered()
    with components_env(COMPONENTS):
        stack.down(STATE, wipe=True, quiet=True)
        env = stack.up(state_dir=STATE, quiet=True)
    try:
        yield env
    finally:
        stop_recovered()
        with components_env(COMPONENTS):
            stack.down(STATE, wipe=os.environ.get("LIFEBOAT_KEEP_RECOVER_STACK") != "1", quiet=True)


@pytest.fixture(scope="module")
def renv(rstack):
    ports = {s: free_port() for s in SERVICES}
    inventory = STATE / "inventory.yaml"
    write_inventory(inventory, ports)
    (STATE / "work").mkdir(exist_ok=True)
    env = dict(rstack)
    env.update({"LIFEBOAT_INVENTORY": str(inventory), "LIFEBOAT_WORKDIR": str(STATE / "work")})
    return env


def _instance(renv, name: str):
    from lifeboat.inventory import load_inventory
    from lifeboat.recovery.runtime import ProcessInstance

    with lifeboat_env(renv):
        inv = load_inventory()
        p = inv.services[name].process
        return ProcessInstance(p, name, Path(p.dir), WEST)


@pytest.fixture(scope="module")
def services(renv):
    """The live services: one platform API stand-in per service, its env file pointing at the live
    PostgreSQL and Redis of us-west-2 (what a deployment's Secret would hold)."""
    from lifeboat.recovery.runtime import write_env_file

    started = []
    for name in SERVICES:
        inst = _instance(renv, name)
        write_env_file(inst.env_file, {"DATABASE_URL": renv["AIRFLOW_CONN_LIFEBOAT_PG_US_WEST_2"],
                                       "REDIS_URL": renv["AIRFLOW_CONN_LIFEBOAT_REDIS_US_WEST_2"]})
        inst.start()
        started.append(inst)
    for inst in started:
        wait_for(lambda i=inst: http_status(i.url("ready")) == 200, 30, f"{inst.name} /ready")
    try:
        yield {i.name: i for i in started}
    finally:
        for inst in started:
            inst.stop()


@pytest.fixture(scope="module")
def airflow(renv):
    with running_airflow(STATE / "airflow", renv, [RECOVER, RECOVER_SERVICE, QUARTERLY],
                         ["lifeboat_recover.py", "lifeboat_drill_quarterly.py"]) as api:
        yield api


# =========================================================================== the world, observed

def wait_for(check, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"{what}: not reached after {timeout:.0f}s"
        time.sleep(0.3)


def _pg(renv):
    import psycopg

    return psycopg.connect(renv["AIRFLOW_CONN_LIFEBOAT_PG_US_WEST_2"], autocommit=True, connect_timeout=3)


def _redis(renv):
    import redis

    return redis.Redis.from_url(renv["AIRFLOW_CONN_LIFEBOAT_REDIS_US_WEST_2"], socket_timeout=5,
                                socket_connect_timeout=3)


def _tree(p: Path) -> list[str]:
    return sorted(str(x.relative_to(p)) for x in p.rglob("*")) if p.exists() else []


def world(renv, services) -> dict:
    """Everything a recovery could change: the live data, the recovery folder, the services' config and
    processes, the records in both regions' repositories."""
    out: dict = {}
    try:
        with _pg(renv) as c:
            out["pg"] = c.execute("SELECT count(*), coalesce(max(id), 0) FROM recover_probe").fetchone()
    except Exception as exc:
        out["pg"] = type(exc).__name__
    try:
        r = _redis(renv)
        digest = hashlib.sha256()
        for key in sorted(r.scan_iter(count=1000)):
            if not key.startswith(b"lifeboat:"):
                digest.update(key + b"\0" + (r.dump(key) or b"") + b"\0")
        r.close()
        out["redis"] = digest.hexdigest()
    except Exception as exc:
        out["redis"] = type(exc).__name__
    out["recovered"] = _tree(STATE / "recovered")
    out["services"] = {n: (i.env_file.read_text(), i.pid()) for n, i in services.items()}
    repo = STATE / "repo"
    out["records"] = sorted(str(p.relative_to(repo)) for p in repo.rglob("*.json")
                            if any(part in ("recoveries", "drills") for part in p.parts))
    return out


def conf(**kw) -> dict:
    return {"scope": ["auth-service"], "region": WEST, "dry_run": True, "reason": "integration test",
            "confirm": "", **kw}


def read_timeline(tid: str) -> dict:
    p = next((STATE / "repo").rglob(f"recoveries/{tid}.json"))
    return json.loads(p.read_text())


def read_drill(did: str) -> dict:
    p = next((STATE / "repo").rglob(f"drills/{did}.json"))
    return json.loads(p.read_text())


# =========================================================================== data with known history

def rows_around_target(renv, pg, truncate: bool = False) -> datetime:
    """100 'before' rows, the target T (returned), 50 'after' rows and a heartbeat after T (which must
    NOT be in the recovered data), the WAL archived; with truncate, the probe table emptied first."""
    with _pg(renv) as c:
        if truncate:
            c.execute("TRUNCATE recover_probe")
        c.execute("INSERT INTO recover_probe (batch) SELECT 'before' FROM generate_series(1, 100)")
        time.sleep(1.2)
        target = c.execute("SELECT clock_timestamp()").fetchone()[0]
        time.sleep(1.2)
        c.execute("INSERT INTO recover_probe (batch) SELECT 'after' FROM generate_series(1, 50)")
        pg.heartbeat()
        lsn = c.execute("SELECT pg_walfile_name(pg_current_wal_lsn())").fetchone()[0]
        c.execute("SELECT pg_switch_wal()")
        wait_for(lambda: (c.execute("SELECT last_archived_wal FROM pg_stat_archiver").fetchone()[0] or "")[:24]
                 >= lsn, 60, f"WAL {lsn} archived")
    return target


@pytest.fixture(scope="module")
def history(renv):
    """Rows and keys written in two batches around a recorded instant T, with heartbeats and backups:
    PostgreSQL -- a full pgBackRest backup, 100 'before' rows, T, 50 'after' rows, WAL archived;
    Redis -- 40 'before' keys and an RDB backup, then 30 'after' keys."""
    import subprocess
    import sys

    subprocess.run([sys.executable, str(ROOT / "scripts" / "seed_community.py"), "--users", "50", "--posts", "100",
                    "--comments", "200"], check=True, env={**os.environ, **renv})
    with _pg(renv) as c:
        c.execute("CREATE TABLE IF NOT EXISTS recover_probe (id serial PRIMARY KEY, batch text NOT NULL, "
                  "at timestamptz NOT NULL DEFAULT clock_timestamp())")
    r = _redis(renv)
    r.mset({f"probe:before:{i}": f"value {i}" for i in range(40)})
    with lifeboat_env(renv):
        from lifeboat.datastores import open_engine

        run = {"dag_id": "pytest", "run_id": "pytest"}
        pg, rd = open_engine("postgres", run=run), open_engine("redis", run=run)
        for _ in range(2):  # heartbeats before the base backup: the quarterly drill's point is near it
            pg.heartbeat()
            time.sleep(1.0)
        rd.heartbeat()
        full = pg.backup("full", f"test-recover-full-{int(time.time())}")
        time.sleep(1.5)  # the RDB's instant (whole seconds) after the base backup's restore point
        rdb = rd.backup("rdb", f"test-recover-rdb-{int(time.time())}")
        for _ in range(3):  # a series of heartbeats for the continuity check (gaps well under 90 s)
            time.sleep(1.0)
            pg.heartbeat()
        target = rows_around_target(renv, pg)
    r.mset({f"probe:after:{i}": f"value {i}" for i in range(30)})
    r.close()
    return {"target": target.astimezone(UTC), "pg_backup": full.id, "redis_backup": rdb.id,
            "redis_heartbeat": rdb.position.get("heartbeat_at")}


def fresh_history(renv, old: dict) -> dict:
    """Just before the failure: heartbeats, 100 more 'before' rows, the target T, 50 'after' rows (WAL
    archived); a new RDB backup of Redis (its 'before' keys unchanged), then more 'after' keys. The
    PostgreSQL base backup stays the module's first one (PITR replays the WAL since)."""
    r = _redis(renv)
    with lifeboat_env(renv):
        from lifeboat.datastores import open_engine

        run = {"dag_id": "pytest", "run_id": "pytest"}
        pg, rd = open_engine("postgres", run=run), open_engine("redis", run=run)
        r.delete(*r.keys("probe:after:*"))
        rd.heartbeat()
        rdb = rd.backup("rdb", f"test-recover-rdb2-{int(time.time())}")
        r.mset({f"probe:after:{i}": f"value {i}" for i in range(30)})
        for _ in range(3):
            pg.heartbeat()
            time.sleep(1.0)
        target = rows_around_target(renv, pg, truncate=True)
    r.close()
    return {**old, "target": target.astimezone(UTC), "redis_backup": rdb.id,
            "redis_heartbeat": rdb.position.get("heartbeat_at")}


# =========================================================================== failures, for real

def destroy_postgres(renv) -> datetime:
    """The primary's data directory destroyed: the server killed (immediate stop), the folder deleted."""
    import shutil
    import subprocess

    data = Path(renv["LIFEBOAT_PG_PRIMARY_DATA"])
    pg_ctl = str(Path(renv["LIFEBOAT_PG_BIN"]) / "pg_ctl")
    subprocess.run(["runuser", "-u", renv["LIFEBOAT_PG_OS_USER"], "--", pg_ctl, "-D", str(data), "-m", "immediate",
                    "-w", "stop"], check=False, capture_output=True)
    at = datetime.now(UTC)
    shutil.rmtree(data)
    return at


def destroy_redis(renv) -> None:
    """The live Redis primary gone with its data: SHUTDOWN NOSAVE, its data folder emptied."""
    import shutil

    r = _redis(renv)
    with contextlib.suppress(Exception):  # the connection drops as the server exits
        r.shutdown(nosave=True)
    r.close()
    for p in Path(renv["LIFEBOAT_REDIS_PRIMARY_DIR"]).iterdir():
        shutil.rmtree(p) if p.is_dir() else p.unlink()


def stop_recovered() -> list[str]:
    """Stop every server a recovery left running under the state folder (they are kept on purpose)."""
    import signal
    import subprocess

    done = []
    for pm in (STATE / "recovered").glob("*/data/postmaster.pid"):
        subprocess.run(["runuser", "-u", "postgres", "--", "/usr/lib/postgresql/15/bin/pg_ctl", "-D", str(pm.parent),
                        "-m", "fast", "-w", "stop"], check=False, capture_output=True)
        done.append(str(pm.parent))
    for pf in (STATE / "recovered").glob("*/redis.pid"):
        with contextlib.suppress(OSError, ValueError):
            os.kill(int(pf.read_text().split()[0]), signal.SIGTERM)
            done.append(str(pf))
    return done


# =========================================================================== the tests

def test_quarterly_drill_restores_everything_to_one_point_and_leaves_nothing_behind(airflow, services, history,
                                                                                    renv):
    before = world(renv, services)
    run_id = airflow.trigger(QUARTERLY, {"region": WEST})
    assert airflow.wait(QUARTERLY, run_id, timeout=900)["state"] == "success", \
        f"{airflow.tasks(QUARTERLY, run_id)}\n{airflow.tail()}"
    out = airflow.xcom(QUARTERLY, run_id, "full_system_drill")
    drill = read_drill(out["id"])
    m = drill["measurements"]
    assert drill["type"] == "full_system" and drill["verdict"] == "pass", drill["reasons"]
    # one recovery point: the RDB snapshot is older than the WAL end, so it sets the point
    assert m["limited_by"] == "redis", m
    point = datetime.fromisoformat(m["point"])
    assert m["stores"]["postgres"]["restored_to"] == m["point"]
    assert m["stores"]["redis"]["backup_id"] == history["redis_backup"]
    assert datetime.fromisoformat(m["stores"]["postgres"]["newest_heartbeat"]) <= point
    assert all(v["rpo_seconds"] > 0 for v in m["stores"].values()), m
    assert m["planned_skew_seconds"] == 0.0 and m["measured_skew_seconds"] >= 0, m
    names = [s["name"] for s in drill["steps"]]
    first = {k: next(i for i, n in enumerate(names) if n.startswith(k)) for k in (
        "recovery point", "pgbackrest restore postgres", "fetch redis", "start auth-service",
        "verify auth-service", "business checks postgres", "tear down")}
    assert list(first.values()) == sorted(first.values()), names
    checks = next(s for s in drill["steps"] if s["name"] == "business checks postgres")
    assert "no orphans" in checks["detail"] and "posts=100" in checks["detail"], checks
    assert 0 < drill["rto_seconds"] < drill["objective_rto_seconds"]
    # nothing left behind: no drill folder, no drill server or service listening, the live world as it was
    assert m["leftovers"] == [] and not list((STATE / "recovered").glob("drill-*"))
    after = world(renv, services)
    assert {k: v for k, v in after.items() if k != "records"} == {k: v for k, v in before.items() if k != "records"}
    # the DR page's drill view: the steps as a timeline, the measurements beside them
    from lifeboat.records import Drill
    from lifeboat.ui.data import drill_detail

    page = drill_detail(Drill.model_validate(drill))
    assert [s["name"] for s in page["steps"]] == names and all(s["seconds"] is not None for s in page["steps"])
    assert page["measurements"]["point"] == m["point"] and page["marks"]["ready"] > page["marks"]["restore_started"]
    print(f"\nquarterly drill {drill['id']}: point {m['point']} (set by {m['limited_by']}), RTO "
          f"{drill['rto_seconds']:.1f}s of {drill['objective_rto_seconds']:.0f}s, RPO per store "
          + ", ".join(f"{k} {v['rpo_seconds']:.1f}s" for k, v in m["stores"].items())
          + f", skew planned {m['planned_skew_seconds']}s measured {m['measured_skew_seconds']}s")


def test_recover_service_restarts_a_crashed_service_after_checking_its_dependencies(airflow, services, renv):
    gw = services["api-gateway"]
    gw.stop()  # the crash
    assert http_status(gw.url("health")) == 0
    run_id = airflow.trigger(RECOVER_SERVICE, {"scope": ["api-gateway"], "region": WEST, "dry_run": False,
                                               "reason": "api-gateway crashed (integration test)", "confirm": WEST})
    airflow.wait_approval(RECOVER_SERVICE, run_id)
    airflow.answer(RECOVER_SERVICE, run_id, "Approve")
    assert airflow.wait(RECOVER_SERVICE, run_id, timeout=900)["state"] == "success", \
        f"{airflow.tasks(RECOVER_SERVICE, run_id)}\n{airflow.tail()}"
    assert http_status(gw.url("health")) == 200 and http_status(gw.url("ready")) == 200
    rec = airflow.xcom(RECOVER_SERVICE, run_id, "record")
    tl = read_timeline(rec["timeline_id"])
    names = [s["name"] for s in tl["steps"]]
    # dependencies first: the datastores answer, the service it depends on is healthy, then the restart
    assert names.index("check postgres") < names.index("check redis") < names.index("check auth-service") \
        < names.index("restart api-gateway") < names.index("verify api-gateway"), names
    probe = next(s for s in tl["steps"] if s["name"] == "error-rate probe api-gateway")
    assert probe["ok"] and " 0 errors" in probe["detail"], probe
    drill = read_drill(rec["drill_id"])
    assert drill["type"] == "service_recovery" and drill["rto_seconds"] > 0, drill
    print(f"\nservice recovery drill {drill['id']}: RTO {drill['rto_seconds']:.1f}s (incl. approval); "
          f"{probe['detail']}")


def test_recover_destroyed_postgres_and_lost_redis_into_new_targets_at_a_point_in_time(
        airflow, services, history, renv):
    import psycopg
    import redis

    auth, gw = services["auth-service"], services["api-gateway"]
    history = fresh_history(renv, history)  # the data lost is minutes old, not the module's first minutes
    failed_at = destroy_postgres(renv)
    destroy_redis(renv)
    wait_for(lambda: http_status(auth.url("ready")) == 503, 15, "auth-service not ready without its datastores")
    target = history["target"]
    run_id = airflow.trigger(RECOVER, conf(dry_run=False, confirm=WEST, target=target.isoformat(),
                                           failed_at=failed_at.isoformat(), reason="postgres data directory lost"))
    airflow.wait_approval(RECOVER, run_id)
    airflow.answer(RECOVER, run_id, "Approve")
    assert airflow.wait(RECOVER, run_id, timeout=900)["state"] == "success", \
        f"{airflow.tasks(RECOVER, run_id)}\n{airflow.tail()}"
    rec = airflow.xcom(RECOVER, run_id, "record")
    assert rec["outcome"] == "completed", rec
    est = airflow.xcom(RECOVER, run_id, "plan")["estimate"]["per"]
    if list((STATE / "repo").rglob("drills/platform-full-system-*.json")):  # the quarterly drill ran before
        assert est["postgres"]["from"].startswith("full system drill") and est["postgres"]["seconds"] > 0, est
    pg_loc, rd_loc = rec["recovered"]["postgres"], rec["recovered"]["redis"]
    assert pg_loc["into"] == "new" and pg_loc["port"] != int(renv["LIFEBOAT_PG_PRIMARY_PORT"])
    assert Path(pg_loc["data_dir"]).is_relative_to(STATE / "recovered")

    # exactly the rows committed before the target time
    live = psycopg.conninfo.conninfo_to_dict(renv["AIRFLOW_CONN_LIFEBOAT_PG_US_WEST_2"])
    with psycopg.connect(**{**live, "port": pg_loc["port"]}, autocommit=True, connect_timeout=3) as c:
        rows = dict(c.execute("SELECT batch, count(*) FROM recover_probe GROUP BY batch").fetchall())
        newest_hb = c.execute("SELECT max(written_at) FROM lifeboat_heartbeat").fetchone()[0]
    assert rows == {"before": 100}, rows
    assert newest_hb < target
    # Redis: the newest RDB at or before the target -- the 'before' keys, none of the later ones
    r = redis.Redis.from_url(renv["AIRFLOW_CONN_LIFEBOAT_REDIS_US_WEST_2"].rsplit(":", 1)[0] + f":{rd_loc['port']}/0")
    assert len(list(r.scan_iter("probe:before:*"))) == 40 and not list(r.scan_iter("probe:after:*"))
    r.close()

    # the service in scope runs against the recovered targets; the one outside the scope was not touched
    env_text = auth.env_file.read_text()
    assert f":{pg_loc['port']}/" in env_text and f":{rd_loc['port']}/" in env_text
    assert http_status(auth.url("ready")) == 200
    assert http_status(gw.url("ready")) == 503 and str(renv["LIFEBOAT_PG_PRIMARY_PORT"]) in gw.env_file.read_text()

    # dependencies first: both datastores restored and validated before the service is repointed
    tl = read_timeline(rec["timeline_id"])
    names = [s["name"] for s in tl["steps"]]
    first = {k: next(i for i, n in enumerate(names) if n.startswith(k))
             for k in ("pgbackrest restore postgres", "heartbeat continuity postgres", "fetch redis",
                       "heartbeat continuity redis", "repoint auth-service", "verify auth-service")}
    assert list(first.values()) == sorted(first.values()), names

    # the drill: RTO from the trigger to verified, data loss from the recovered heartbeats vs the failure
    drill = read_drill(rec["drill_id"])
    assert drill["type"] == "recovery" and drill["verdict"] == "pass", drill
    assert 0 < drill["rto_seconds"] < 400
    loss = rec["data_loss"]
    assert 0 < loss["postgres"]["seconds"] < (failed_at - history["target"]).total_seconds() + 60
    assert loss["redis"]["newest_heartbeat"] == history["redis_heartbeat"]
    assert drill["rpo_seconds"] == pytest.approx(max(v["seconds"] for v in loss.values()), abs=0.01)
    print(f"\nrecovery drill {drill['id']}: RTO {drill['rto_seconds']:.1f}s (incl. approval), data loss "
          f"postgres {loss['postgres']['seconds']:.1f}s, redis {loss['redis']['seconds']:.1f}s; steps "
          + ", ".join(s["name"] for s in drill["steps"]))


def test_recover_refusals_change_nothing(airflow, services, history, renv):
    before = world(renv, services)
    code, body = airflow.call("POST", f"/api/v2/dags/{RECOVER}/dagRuns",
                              {"logical_date": None, "conf": conf(reason="")})
    assert code == 400, f"a recovery without a reason must be refused by the API: {code} {body}"
    no_confirm = airflow.trigger(RECOVER, conf(dry_run=False, confirm=""))
    wrong_region = airflow.trigger(RECOVER, conf(dry_run=False, confirm="us-east-1"))
    live_unconfirmed = airflow.trigger(RECOVER, conf(dry_run=False, confirm=WEST, into="live", confirm_live=""))
    for run_id in (no_confirm, wrong_region, live_unconfirmed):
        assert airflow.wait(RECOVER, run_id)["state"] == "failed"
        tasks = airflow.tasks(RECOVER, run_id)
        assert tasks["guard"] == "failed", tasks
        assert all(tasks[t] in ("upstream_failed", "skipped", None) for t in ("approval", "restore", "repoint")), tasks
        assert airflow.xcom(RECOVER, run_id, "record")["outcome"] == "refused"
    assert world(renv, services) == before, "a refused recovery changed something"


def test_recover_dry_run_changes_nothing_and_prints_the_ordered_plan(airflow, services, history, renv):
    before = world(renv, services)
    run_id = airflow.trigger(RECOVER, conf(target=history["target"].isoformat()))
    assert airflow.wait(RECOVER, run_id, timeout=900)["state"] == "success", airflow.tasks(RECOVER, run_id)
    plan = airflow.xcom(RECOVER, run_id, "plan")
    assert plan["order"] == ["postgres", "redis", "auth-service"], plan["order"]
    assert "DRY RUN" in plan["text"] and "Estimated duration" in plan["text"]
    assert plan["preflights"]["postgres"]["backup"]["id"] == history["pg_backup"]
    assert plan["preflights"]["redis"]["backup"]["id"] == history["redis_backup"]
    assert airflow.xcom(RECOVER, run_id, "record")["outcome"] == "dry_run"
    assert world(renv, services) == before, "a dry run changed something"


def test_recover_rejected_approval_changes_nothing(airflow, services, history, renv):
    before = world(renv, services)
    run_id = airflow.trigger(RECOVER, conf(dry_run=False, confirm=WEST, target=history["target"].isoformat()))
    request = airflow.wait_approval(RECOVER, run_id)
    assert "REAL RUN" in request["body"] and "restore postgres" in request["body"]
    airflow.answer(RECOVER, run_id, "Reject")
    airflow.wait(RECOVER, run_id, timeout=600)
    tasks = airflow.tasks(RECOVER, run_id)
    assert tasks["restore"] in ("skipped", "upstream_failed") and tasks["repoint"] in ("skipped", "upstream_failed")
    rec = airflow.xcom(RECOVER, run_id, "record")
    assert rec["outcome"] == "rejected", rec
    after = world(renv, services)
    assert {k: v for k, v in after.items() if k != "records"} == {k: v for k, v in before.items() if k != "records"}
    assert set(after["records"]) - set(before["records"]) == \
        {f"{r}/recoveries/{rec['timeline_id']}.json" for r in ("us-west-2", "us-east-1")}, "only the timeline"

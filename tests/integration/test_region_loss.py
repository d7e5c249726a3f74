"""Region-loss game day: the primary region and its Airflow are gone; the standby region's Airflow fails
over from the standby catalog alone, then fails back when the region returns.

Its own stack (`.stack-regionloss/`: PostgreSQL primary + standby, one moto per region, Redis, both
regions' Elasticsearch clusters and FerretDB servers, both Kubernetes clusters, the platform API) and
two real Airflows, each with its own metadata database: the primary region's (LIFEBOAT_REGION=us-west-2)
and the standby region's (LIFEBOAT_REGION=us-east-1). Backups are taken, verified and mirrored; then
every primary-region process is SIGKILLed (PostgreSQL, Redis, Elasticsearch, FerretDB, the Kubernetes
cluster, the platform API, us-west-2's S3 endpoint, the primary Airflow) and its repository folders are
moved away (unreachable). The standby Airflow runs lifeboat_failover; the test reads the RTO and the
data loss of every datastore from the drill record and prints them. The tests build on each other.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
from pathlib import Path

import pytest

from lifeboat.net import free_port
from tests.integration.airflow_proc import Airflow, stop_procs
from tests.integration.own_stack import components_env, http_status, kill_primary_region, lifeboat_env
from tests.integration.test_failover import _pg, _redis, dns, pg_state, redis_state, wait_deployments

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(os.environ.get("LIFEBOAT_REGIONLOSS_TEST") == "0",
                       reason="LIFEBOAT_REGIONLOSS_TEST=0: the region-loss game day (~7 min, two Airflows and every "
                              "standby) left out"),
]

ROOT = Path(__file__).resolve().parents[2]
STATE = Path(os.environ.get("LIFEBOAT_REGIONLOSS_STACK_DIR") or ROOT / ".stack-regionloss")
COMPONENTS = "redis,platform_api,kubernetes,elasticsearch,mongodb"
ENGINES = ("postgres", "redis", "mongodb", "elasticsearch")
KINDS = {"postgres": "full", "redis": "rdb", "mongodb": "full", "elasticsearch": "snapshot"}
SERVICES = ("auth-service", "api-gateway", "frontend")
FULL = {"auth-service": 2, "api-gateway": 3, "frontend": 2}
VENV_BIN = Path(sys.executable).parent
WEST, EAST = "us-west-2", "us-east-1"
FAILOVER, FAILBACK, HEARTBEAT = "lifeboat_failover", "lifeboat_failback", "lifeboat_heartbeat"
LOST = STATE / "lost-us-west-2"  # where the primary region's storage goes while it is "gone"
MEASURED: dict = {}
USER, PASSWORD = "admin", secrets.token_urlsafe(12)  # both Airflows' API user


@pytest.fixture(scope="module")
def rstack():
    from devstack import stack

    with components_env(COMPONENTS):
        if os.environ.get("LIFEBOAT_REGIONLOSS_REUSE") != "1":  # 1: a kept stack no game day has run on yet
            stack.down(STATE, wipe=True, quiet=True)
        env = stack.up(state_dir=STATE, quiet=True)
    try:
        yield env
    finally:
        with components_env(COMPONENTS):
            stack.down(STATE, wipe=os.environ.get("LIFEBOAT_KEEP_REGIONLOSS_STACK") != "1", quiet=True)


def _write_inventory(path: Path) -> None:
    import yaml

    src = yaml.safe_load((ROOT / "include" / "inventory.yaml").read_text())
    fo = src["failover"]
    fo["approval_timeout"] = "15m"
    fo["traffic"]["records"][0]["ttl"] = 1
    for svc in fo["services"]:
        svc["ready_timeout"] = "90s"
    for name in list(src["datastores"]):  # the engines this stack does not run
        if name not in ENGINES:
            src["datastores"].pop(name)
    fo["order"] = [n for n in fo["order"] if n in src["datastores"]]
    src["alerts"] = {"routes": {s: ["log"] for s in ("critical", "high", "medium", "low")},
                     "channels": {"log": {"type": "log"}}}
    path.write_text(yaml.safe_dump(src, sort_keys=False))


@pytest.fixture(scope="module")
def renv(rstack):
    inventory = STATE / "inventory.yaml"
    _write_inventory(inventory)
    (STATE / "work").mkdir(exist_ok=True)
    return {**rstack, "LIFEBOAT_INVENTORY": str(inventory), "LIFEBOAT_WORKDIR": str(STATE / "work")}


def _env(renv, region: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "LIFEBOAT_")) and k != "PYTHONPATH"}
    env.update(renv)
    env.update({"PATH": f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}",
                "PYTHONPATH": f"{ROOT / 'plugins'}{os.pathsep}{ROOT}", "LIFEBOAT_REGION": region})
    return env


def cli(renv, region: str, *args: str, check: bool = True, timeout: float = 240) -> dict:
    """`python -m lifeboat --region <region> ...` as the runbook runs it; its JSON output."""
    r = subprocess.run([sys.executable, "-m", "lifeboat", "--region", region, *args], env=_env(renv, region),
                       cwd=ROOT, capture_output=True, text=True, timeout=timeout, check=False)
    if check:
        assert r.returncode == 0, f"lifeboat --region {region} {' '.join(args)}: rc {r.returncode}\n" \
                                  f"{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    try:
        return json.loads(r.stdout)
    except ValueError:
        return {"stdout": r.stdout, "rc": r.returncode}


class _PatientAirflow(Airflow):
    """The REST client of airflow_proc, retrying a call that timed out or was refused (a loaded 2-core
    machine stalls the single API-server worker for tens of seconds) for at most API_PATIENCE seconds."""

    def call(self, method: str, path: str, body=None, auth: bool = True) -> tuple[int, dict]:
        deadline = time.monotonic() + API_PATIENCE
        while True:
            try:
                return super().call(method, path, body, auth)
            except (TimeoutError, urllib.error.URLError, ConnectionError) as exc:
                if isinstance(exc, urllib.error.HTTPError) or time.monotonic() > deadline:
                    raise
                time.sleep(2)


API_PATIENCE = 180.0
# Both Airflows: parse each DAG file once (no re-parse churn), and wait for a slow API / DAG file rather
# than failing a task or a parse under load.
_PATIENT = {
    "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "3600", "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "300",
    "AIRFLOW__DAG_PROCESSOR__PARSING_PROCESSES": "1", "AIRFLOW__DAG_PROCESSOR__DAG_FILE_PROCESSOR_TIMEOUT": "600",
    "AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT": "600", "AIRFLOW__WORKERS__EXECUTION_API_TIMEOUT": "60",
    "AIRFLOW__WORKERS__EXECUTION_API_RETRIES": "10", "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "1200",
}


class _AirflowProcs:
    """One region's Airflow: its own AIRFLOW_HOME and SQLite metadata database; `services` its processes
    (the standby's: api-server, scheduler, dag-processor); `kill()` is the region loss (SIGKILL to every
    process group)."""

    def __init__(self, renv, region: str, services: tuple[str, ...] = ("api-server", "scheduler", "dag-processor")):
        self.services = services
        self.home = STATE / f"airflow-{region}"
        self.home.mkdir(exist_ok=True)
        (self.home / "passwords.json").write_text(json.dumps({USER: PASSWORD}))
        port = free_port()
        self.env = _env(renv, region)
        self.env.update({
            "AIRFLOW_HOME": str(self.home), "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"), "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True", "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__CORE__PARALLELISM": "4",
            "AIRFLOW__CORE__AUTH_MANAGER":
                "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{USER}:admin",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(self.home / "passwords.json"),
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
            "AIRFLOW__API__HOST": "127.0.0.1", "AIRFLOW__API__PORT": str(port), "AIRFLOW__API__WORKERS": "1",
            "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{port}",
            "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(32),
            "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",  # runs only when the test triggers them
            **_PATIENT,
        })
        self.port = port
        self.procs: list[subprocess.Popen] = []
        self.api = _PatientAirflow(f"http://127.0.0.1:{port}", self.home, USER, PASSWORD)

    def migrate(self, like: _AirflowProcs | None = None) -> float:
        """`airflow db migrate` (minutes on a loaded 2-core machine), or a copy of `like`'s freshly migrated,
        still unused SQLite database (its own file from then on). Seconds taken."""
        t = time.monotonic()
        if like is not None:
            shutil.copy2(like.home / "airflow.db", self.home / "airflow.db")
            return time.monotonic() - t
        m = subprocess.run([str(VENV_BIN / "airflow"), "db", "migrate"], env=self.env, cwd=self.home,
                           capture_output=True, text=True, timeout=1200, check=False)
        assert m.returncode == 0, m.stdout[-2000:] + m.stderr[-3000:]
        return time.monotonic() - t

    def start(self) -> None:
        airflow_bin = str(VENV_BIN / "airflow")
        argv = {"api-server": ["api-server", "--host", "127.0.0.1", "--port", str(self.port)],
                "scheduler": ["scheduler"], "dag-processor": ["dag-processor"]}
        for cmd in (argv[s] for s in self.services):
            with open(self.home / f"{cmd[0]}.log", "wb") as log:
                self.procs.append(subprocess.Popen([airflow_bin, *cmd], env=self.env, cwd=self.home, stdout=log,
                                                   stderr=subprocess.STDOUT, start_new_session=True))

    def alive(self) -> None:
        dead = [p.args[1] for p in self.procs if p.poll() is not None]
        assert self.procs and not dead, f"Airflow in {self.home}: {dead} exited"

    def ready(self, dags: tuple[str, ...]) -> Airflow:
        deadline = time.monotonic() + 900  # the first parse of every DAG file, under load
        while True:
            try:
                self.api.login()
                if all(self.api.call("GET", f"/api/v2/dags/{d}")[0] == 200 for d in dags):
                    break
            except (OSError, KeyError):
                pass
            dead = [p.args[1] for p in self.procs if p.poll() is not None]
            if dead or time.monotonic() > deadline:
                pytest.fail(f"Airflow in {self.home} did not come up (dead: {dead}):\n{self.api.tail()}")
            time.sleep(1)
        for d in dags:
            self.api.ok("PATCH", f"/api/v2/dags/{d}", {"is_paused": False})
        return self.api

    def kill(self, sig: int = signal.SIGKILL) -> None:
        stop_procs(self.procs, sig)


@pytest.fixture(scope="module")
def airflows(renv):
    # The primary region's Airflow is its scheduler only (the process that would run its DAGs; nothing is
    # triggered there): a live primary-region process to kill, without a second API server and DAG parser
    # on the 2-core machine. The standby's is complete.
    west, east = _AirflowProcs(renv, WEST, ("scheduler",)), _AirflowProcs(renv, EAST)
    try:
        MEASURED["airflow_migrate_seconds"] = round(east.migrate(), 1)
        west.migrate(like=east)
        east.start()
        west.start()
        yield {WEST: west, EAST: east}
    finally:
        west.kill(signal.SIGTERM)
        east.kill(signal.SIGTERM)


def in_region(renv, region: str) -> contextlib.AbstractContextManager[None]:
    """Lifeboat code in this process against the stack of renv as the Airflow of `region` runs it."""
    return lifeboat_env({**renv, "LIFEBOAT_REGION": region})


def newest_heartbeats(renv, region: str) -> dict:
    with in_region(renv, region):
        from lifeboat.failover import open_failover

        return {n: open_failover(n, target_region=region).newest_heartbeat_or_none(region) for n in ENGINES}


def _kill_primary_region(renv, airflow_west: _AirflowProcs) -> dict[str, float]:
    """SIGKILL every us-west-2 process; its repository storage moved away. Returns when each went."""
    from devstack import stack
    from devstack.components import elasticsearch, mongodb

    kill_primary_region(STATE, Path(renv["LIFEBOAT_PG_PRIMARY_DATA"]), WEST)
    notes = {"elasticsearch": elasticsearch.stop_region(STATE, WEST, kill=True),
             "mongodb": mongodb.stop_region(STATE, WEST, kill=True)}
    with components_env(COMPONENTS):
        notes["moto"] = stack.moto(STATE, WEST).stop()
    airflow_west.kill()
    LOST.mkdir(exist_ok=True)
    for src in (STATE / "repo" / WEST, STATE / "elasticsearch" / "snapshots"):  # the region's storage
        src.rename(LOST / src.name)
    deadline = time.monotonic() + 15
    while pg_state(renv, WEST)["role"] != "unreachable" or redis_state(renv, WEST)["role"] != "unreachable":
        assert time.monotonic() < deadline, "the primary region's servers still answer"
        time.sleep(0.1)
    return notes


# =========================================================================== the game day

def test_region_loss_failover_from_the_standby_region_alone(renv, airflows):
    # The platform before: data, heartbeats, verified backups mirrored to the standby region.
    with _pg(renv, WEST) as c:
        c.execute("CREATE TABLE gameday (id serial PRIMARY KEY, note text NOT NULL)")
        c.execute("INSERT INTO gameday (note) SELECT 'row ' || g FROM generate_series(1, 100) g")
    seed = subprocess.run([sys.executable, str(ROOT / "scripts" / "seed_community.py"), "--users", "200", "--posts",
                           "500", "--comments", "1000"], env=_env(renv, WEST), cwd=ROOT, capture_output=True,
                          text=True, timeout=120, check=False)
    assert seed.returncode == 0, seed.stderr[-2000:]
    for name in ENGINES:
        cli(renv, WEST, "heartbeat", name)
    for name in ENGINES:
        cli(renv, WEST, "backup", name, "--kind", KINDS[name])
    cli(renv, WEST, "backup", "mongodb", "--kind", "oplog")
    for name in ENGINES:
        assert not cli(renv, WEST, "verify", name)["failed"]
    mirrored = cli(renv, WEST, "mirror")
    assert not mirrored.get("pending"), mirrored
    # Written after the backups: replicated (PostgreSQL, Redis) or lost (restore-based Elasticsearch, MongoDB).
    for name in ENGINES:
        cli(renv, WEST, "heartbeat", name)
    before = newest_heartbeats(renv, WEST)
    east_before = airflows[EAST].ready((FAILOVER, FAILBACK, HEARTBEAT))
    airflows[WEST].alive()

    # The region goes, its Airflow with it.
    t_loss = time.time()
    killed = _kill_primary_region(renv, airflows[WEST])
    assert http_status(renv["LIFEBOAT_API_US_EAST_1_URL"] + "/ready") == 503
    assert not (STATE / "repo" / WEST).exists()

    api = east_before
    run_id = api.trigger(FAILOVER, {"target_region": EAST, "scope": ["region"], "dry_run": False, "confirm": EAST,
                                    "reason": "game day: us-west-2 lost"})
    request = api.wait_approval(FAILOVER, run_id, timeout=600)
    body = request["body"]
    for name in ENGINES:
        assert f"{name}@us-west-2" in body or name in body, body
    api.answer(FAILOVER, run_id, "Approve")
    run = api.wait(FAILOVER, run_id, timeout=1200)
    assert run["state"] == "success", (api.tasks(FAILOVER, run_id), api.tail())

    rec = api.xcom(FAILOVER, run_id, "record")
    assert rec["outcome"] == "completed" and rec["verdict"] == "pass", rec
    loss = rec["data_loss"]
    assert set(loss) == set(ENGINES), loss
    for name in ENGINES:
        assert loss[name]["old_primary_reachable"] is False
        assert loss[name]["newest_heartbeat_promoted"] is not None, (name, loss[name])
    # Restore-based engines lose what was written after the backup: the second heartbeat is not there.
    after = newest_heartbeats(renv, EAST)
    for name in ("mongodb", "elasticsearch"):
        assert after[name] is not None and after[name] < before[name], (name, after[name], before[name])
    for name in ("postgres", "redis"):  # replicated: the standby had the newest heartbeat
        assert after[name] is not None and after[name] >= before[name], (name, after[name], before[name])

    # The standby region serves: datastores written and read, services up, DNS switched.
    with _pg(renv, EAST) as c:
        c.execute("INSERT INTO gameday (note) VALUES ('after the failover')")
        assert c.execute("SELECT count(*) FROM gameday").fetchone()[0] == 101
    r = _redis(renv, EAST)
    r.set("gameday:after", "yes")
    r.close()
    assert dns(renv) == "api.us-east-1.community.example.com"
    assert http_status(renv["LIFEBOAT_API_US_EAST_1_URL"] + "/ready") == 200

    # Recorded in the standby catalog only; the lost region's copy was not (re)created.
    with in_region(renv, EAST):
        from lifeboat.inventory import load_inventory
        from lifeboat.regions import read_active
        from lifeboat.repository import Repository

        inv = load_inventory()
        drill = Repository.from_inventory(inv, EAST).drill(rec["drill_id"])
        active = read_active(inv, prefer=EAST)
    assert active is not None and active.region == EAST and active.kind == "failover"
    assert not (STATE / "repo" / WEST).exists(), "something wrote into the lost region's repository"
    assert drill.type == "failover" and drill.target == EAST and set(ENGINES) <= set(drill.scope)
    assert 0 < drill.rto_seconds < 900
    steps = {s.name: s for s in drill.steps}
    per = {}
    for name in ENGINES:
        promote = steps[f"promote {name}@{EAST}"]
        per[name] = {"promote_seconds": round(promote.seconds, 2),
                     "data_loss_seconds": loss[name]["seconds_before_trigger"]}
    MEASURED.update(failover_run=run_id, drill=drill.id, rto_seconds=round(drill.rto_seconds, 1),
                    rpo_seconds=round(drill.rpo_seconds, 1), per_datastore=per, killed=killed,
                    trigger_after_loss_seconds=round(drill.started_at.timestamp() - t_loss, 1))
    print(f"\nregion-loss game day: {json.dumps(MEASURED, indent=1, default=str)}")


def test_standby_cli_works_with_the_primary_repository_unreachable(renv):
    """catalog, verify, restore-test, drills with --region us-east-1 for every engine: nothing is written
    outside the us-east-1 copy (the lost region's folder stays absent)."""
    timings = {}
    for name in ENGINES:
        t = time.monotonic()
        cli(renv, EAST, "catalog", name)
        v = cli(renv, EAST, "verify", name)
        assert not v["failed"] and v["region"] == EAST, v
        rt = cli(renv, EAST, "restore-test", name, timeout=400)
        assert rt.get("verdict", rt.get("drill", {}).get("verdict")) != "fail", rt
        timings[name] = round(time.monotonic() - t, 1)
    drills = cli(renv, EAST, "drills", check=True)
    assert drills
    assert not (STATE / "repo" / WEST).exists()
    MEASURED["standby_cli_seconds"] = timings
    print(f"\nstandby CLI (catalog+verify+restore-test) per engine: {timings}")


def test_after_the_failover_heartbeats_and_backups_run_against_the_new_primary(renv, airflows):
    api = airflows[EAST].api
    t0 = newest_heartbeats(renv, EAST)
    run_id = api.trigger(HEARTBEAT, {})
    assert api.wait(HEARTBEAT, run_id, timeout=600)["state"] == "success", api.tasks(HEARTBEAT, run_id)
    t1 = newest_heartbeats(renv, EAST)
    for name in ENGINES:
        assert t1[name] > t0[name], (name, t0[name], t1[name])
    backup_dag = "lifeboat_backup_redis"
    api.ok("PATCH", f"/api/v2/dags/{backup_dag}", {"is_paused": False})
    run_id = api.trigger(backup_dag, {"kind": "rdb"})
    assert api.wait(backup_dag, run_id, timeout=600)["state"] == "success", (api.tasks(backup_dag, run_id),
                                                                             api.tail())
    with in_region(renv, EAST):
        from lifeboat.catalog import Catalog
        from lifeboat.inventory import load_inventory
        from lifeboat.repository import Repository

        newest = Catalog(Repository.from_inventory(load_inventory(), EAST)).latest("redis")
    assert newest.finished_at.timestamp() > t1["redis"].timestamp() - 1
    assert "us_east_1" in (newest.source or ""), newest.source
    assert not (STATE / "repo" / WEST).exists()


def _region_returns(renv) -> None:
    """us-west-2 is back: its storage, S3 endpoint, Redis (as a stale primary), Elasticsearch and FerretDB
    (with their stale data), the platform API and the Kubernetes cluster; PostgreSQL stays down (the
    failback rewinds it)."""
    from devstack import stack
    from devstack.components import elasticsearch, kubernetes, mongodb, platform_api

    for name, dst in (("us-west-2", STATE / "repo" / WEST), ("snapshots", STATE / "elasticsearch" / "snapshots")):
        (LOST / name).rename(dst)
    with components_env(COMPONENTS):
        m = stack.moto(STATE, WEST)
        m.start(lambda msg: None)
        m.finish()
    subprocess.run(["redis-server", str(STATE / "redis" / "primary" / "redis.conf")], check=True, timeout=30)
    say = lambda msg: None  # noqa: E731
    elasticsearch.up(STATE, say)
    mongodb.up(STATE, say)
    platform_api.up(STATE, say)
    kubernetes.up(STATE, say)
    deadline = time.monotonic() + 20
    while redis_state(renv, WEST)["role"] == "unreachable":
        assert time.monotonic() < deadline
        time.sleep(0.1)


def test_failback_when_the_region_returns(renv, airflows):
    _region_returns(renv)
    mirrored = cli(renv, EAST, "mirror")  # the records written while us-west-2 was gone reach it now
    assert not mirrored.get("pending"), mirrored
    assert (STATE / "repo" / WEST / Path(*Path("regions/active.json").parts)).exists()
    api = airflows[EAST].api
    run_id = api.trigger(FAILBACK, {"target_region": WEST, "scope": ["region"], "dry_run": False, "confirm": WEST,
                                    "switch_back": True, "reason": "game day: us-west-2 is back"})
    api.wait_approval(FAILBACK, run_id, timeout=600)
    api.answer(FAILBACK, run_id, "Approve")
    run = api.wait(FAILBACK, run_id, timeout=1200)
    assert run["state"] == "success", (api.tasks(FAILBACK, run_id), api.tail())
    rec = api.xcom(FAILBACK, run_id, "record")
    assert rec["outcome"] == "completed", rec

    assert pg_state(renv, WEST)["role"] == "primary" and pg_state(renv, EAST)["role"] == "standby"
    assert redis_state(renv, WEST)["role"] == "master" and redis_state(renv, EAST)["role"] == "slave"
    with _pg(renv, WEST) as c:
        assert c.execute("SELECT count(*) FROM gameday").fetchone()[0] == 101  # the failover's write survived
    r = _redis(renv, WEST)
    assert r.get("gameday:after") == b"yes"
    r.close()
    with in_region(renv, WEST):
        from lifeboat.failover import open_failover
        from lifeboat.inventory import load_inventory
        from lifeboat.regions import read_active

        inv = load_inventory()
        active = read_active(inv, prefer=WEST)
        roles = {n: {r: open_failover(n, target_region=WEST).role(r).role for r in (WEST, EAST)}
                 for n in ("mongodb", "elasticsearch")}
    assert active is not None and active.region == WEST and active.kind == "failback"
    assert roles == {n: {WEST: "primary", EAST: "standby"} for n in ("mongodb", "elasticsearch")}, roles
    assert dns(renv) == "api.us-west-2.community.example.com"
    wait_deployments(renv_k8s(renv), WEST, FULL, timeout=30)
    MEASURED.update(failback_rto_seconds=rec.get("rto_seconds"), failback_data_loss=rec.get("data_loss"))
    print(f"\nfailback: RTO {rec.get('rto_seconds')}s, data loss {json.dumps(rec.get('data_loss'), default=str)}")


def renv_k8s(renv):
    from kubernetes import client, config

    return {r: client.AppsV1Api(config.new_client_from_config(
        config_file=renv[f"LIFEBOAT_KUBECONFIG_{r.upper().replace('-', '_')}"])) for r in (WEST, EAST)}

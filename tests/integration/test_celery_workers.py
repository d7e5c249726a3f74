"""The DAGs on real workers: Airflow's CeleryExecutor with a real broker (a redis-server of its own,
not the platform's Redis), an Airflow metadata database on the stack's PostgreSQL, the API server, the
scheduler, the DAG processor and TWO Celery workers, one per region queue (LIFEBOAT_REGION_QUEUES=1),
heavy steps in the `lifeboat_heavy` pool (LIFEBOAT_HEAVY_POOL). A backup DAG run triggered through
the CLI runs every task on the us-west-2 queue, on the us-west-2 worker."""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = [
    pytest.mark.integration,
    pytest.mark.slow,
    pytest.mark.skipif(os.environ.get("LIFEBOAT_CELERY_TEST") == "0", reason="LIFEBOAT_CELERY_TEST=0"),
]
ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
DB = "airflow_celery_test"
POOL = "lifeboat_heavy"


def hostname() -> str:
    """AIRFLOW__CORE__HOSTNAME_CALLABLE of the test workers: both run on this host, the task
    instances must still say which worker ran them."""
    return os.environ.get("LIFEBOAT_WORKER_NAME") or os.uname().nodename


class Deployment:
    def __init__(self, base: Path, env: dict[str, str]):
        self.base, self.env, self.procs = base, env, {}

    def airflow(self, *args: str, timeout: float = 300) -> str:
        r = subprocess.run([str(BIN / "airflow"), *args], env=self.env, capture_output=True, text=True,
                           timeout=timeout, check=False)
        if r.returncode != 0:
            raise AssertionError(f"airflow {' '.join(args)} failed ({r.returncode}):\n{r.stdout[-2000:]}\n"
                                 f"{r.stderr[-3000:]}")
        return r.stdout

    def start(self, name: str, argv: list[str], **extra_env: str) -> None:
        log = open(self.base / f"{name}.log", "w")  # noqa: SIM115 - lives as long as the process
        self.procs[name] = (subprocess.Popen(argv, env={**self.env, **extra_env}, stdout=log,
                                             stderr=subprocess.STDOUT, start_new_session=True), log)

    def check_alive(self) -> None:
        for name, (p, _) in self.procs.items():
            if p.poll() is not None:
                raise AssertionError(f"{name} exited ({p.returncode}):\n{self.tail(name)}")

    def tail(self, name: str, n: int = 40) -> str:
        try:
            return "\n".join((self.base / f"{name}.log").read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""

    def stop(self) -> None:
        for _name, (p, _log) in self.procs.items():
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGTERM)
        for _name, (p, log) in self.procs.items():
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait(timeout=10)
            log.close()


@pytest.fixture(scope="module")
def celery(stack_env, seeded, tmp_path_factory):
    import psycopg

    from lifeboat.net import free_port

    base = tmp_path_factory.mktemp("celery")
    pg_dsn = stack_env["AIRFLOW_CONN_LIFEBOAT_PG_US_WEST_2"]
    with psycopg.connect(pg_dsn, autocommit=True) as c:  # kept between sessions: `db migrate` is then quick
        if not c.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DB,)).fetchone():
            c.execute(f"CREATE DATABASE {DB}")
    db_url = pg_dsn.rsplit("/", 1)[0] + f"/{DB}"
    broker_port, api_port = free_port(), free_port()
    broker = subprocess.Popen([shutil.which("redis-server") or "redis-server", "--port", str(broker_port), "--bind",
                               "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", str(base)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(base / "airflow_home"),
        "PYTHONPATH": f"{ROOT / 'plugins'}:{ROOT}",
        "PATH": f"{BIN}:{os.environ.get('PATH', '')}",
        "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
        "AIRFLOW__CORE__HOSTNAME_CALLABLE": "tests.integration.test_celery_workers.hostname",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{api_port}/execution/",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": db_url.replace("postgresql://", "postgresql+psycopg://", 1),
        "AIRFLOW__CELERY__BROKER_URL": f"redis://127.0.0.1:{broker_port}/0",
        "AIRFLOW__CELERY__RESULT_BACKEND": "db+" + db_url.replace("postgresql://", "postgresql+psycopg://", 1),
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": str(api_port),
        "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_hex(32),
        # a loaded 2-core CI machine: the execution API may answer slowly
        "AIRFLOW__WORKERS__EXECUTION_API_TIMEOUT": "60",
        "AIRFLOW__WORKERS__EXECUTION_API_RETRIES": "10",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
        "AIRFLOW__SCHEDULER__MIN_FILE_PROCESS_INTERVAL": "5",
        "LIFEBOAT_REGION_QUEUES": "1",
        "LIFEBOAT_HEAVY_POOL": POOL,
    }
    env.pop("AIRFLOW__CORE__UNIT_TEST_MODE", None)  # a deployment, not unit tests: its own airflow.cfg
    d = Deployment(base, env)
    t0 = time.monotonic()
    try:
        d.airflow("db", "migrate", timeout=900)
        # nothing left over from an earlier session: no runs (max_active_runs=1), every DAG paused
        _sql(d, "DELETE FROM dag_run", fetch=False)
        _sql(d, "UPDATE dag SET is_paused = true", fetch=False)
        print(f"celery deployment: db migrate {time.monotonic() - t0:.0f}s")
        d.airflow("pools", "set", POOL, "1", "Lifeboat heavy steps (backups, restore tests): one per host at once")
        airflow = str(BIN / "airflow")
        d.start("api-server", [airflow, "api-server", "--port", str(api_port)])
        d.start("scheduler", [airflow, "scheduler"])
        d.start("dag-processor", [airflow, "dag-processor"])
        for region in ("us-west-2", "us-east-1"):
            d.start(f"worker-{region}", [airflow, "celery", "worker", "--queues", f"lifeboat-{region}",
                                         "--concurrency", "2", "--celery-hostname", f"{region}@%h",
                                         "--skip-serve-logs", "--without-gossip", "--without-mingle"],
                    LIFEBOAT_WORKER_NAME=f"worker-{region}")
        yield d
    finally:
        d.stop()
        broker.terminate()
        broker.wait(timeout=30)


def _sql(d: Deployment, q: str, params=(), fetch: bool = True) -> list[tuple]:
    import psycopg

    url = d.env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].replace("postgresql+psycopg://", "postgresql://", 1)
    with psycopg.connect(url, autocommit=True) as c:
        cur = c.execute(q, params)
        return cur.fetchall() if fetch else []


def _wait(d: Deployment, what: str, fn, timeout: float, interval: float = 2.0):
    deadline = time.monotonic() + timeout
    while True:
        v = fn()
        if v:
            return v
        d.check_alive()
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}; scheduler log:\n{d.tail('scheduler')}\n"
                                 f"worker us-west-2:\n{d.tail('worker-us-west-2')}")
        time.sleep(interval)


def test_backup_dag_runs_on_the_primary_regions_celery_worker(celery):
    d = celery
    dag_id = "lifeboat_backup_postgres"
    _wait(d, f"{dag_id} to be parsed", lambda: _sql(d, "SELECT 1 FROM dag WHERE dag_id = %s", (dag_id,)), 240)
    _wait(d, "both workers to be up", lambda: all("ready." in d.tail(f"worker-{r}", 400)
                                                  for r in ("us-west-2", "us-east-1")), 120)
    _wait(d, "the API server", lambda: "Application startup complete" in d.tail("api-server", 400), 180)
    # unpaused, the scheduler starts the run of the newest cron tick: a real scheduled backup run
    d.airflow("dags", "unpause", dag_id)
    run_id = _wait(d, f"a scheduled run of {dag_id}", lambda: (_sql(
        d, "SELECT run_id FROM dag_run WHERE dag_id = %s ORDER BY id LIMIT 1", (dag_id,)) or [[None]])[0][0], 180)

    def finished():
        rows = _sql(d, "SELECT state FROM dag_run WHERE dag_id = %s AND run_id = %s", (dag_id, run_id))
        return rows and rows[0][0] in ("success", "failed") and rows[0][0]

    t0 = time.monotonic()
    state = _wait(d, f"run {run_id} to finish", finished, 1200)
    print(f"celery run {run_id}: {state} in {time.monotonic() - t0:.0f}s")
    tis = _sql(d, "SELECT task_id, map_index, state, queue, hostname, pool FROM task_instance "
                  "WHERE dag_id = %s AND run_id = %s ORDER BY task_id, map_index", (dag_id, run_id))
    assert state == "success", tis
    ran = [t for t in tis if t[2] == "success"]
    assert {t[0] for t in ran} >= {"plan", "backup", "mirror", "retention"}, tis
    assert len([t for t in ran if t[0] == "backup"]) >= 1, tis
    # every task on the primary region's queue, run by that region's worker, none by the standby's
    assert {t[3] for t in tis} == {"lifeboat-us-west-2"}, tis
    # the gate (an EmptyOperator) is finished by the scheduler itself, never sent to a worker
    on_workers = [t for t in ran if not t[0].startswith("all_")]
    assert {t[4] for t in on_workers} == {"worker-us-west-2"}, tis
    assert {t[4] for t in ran if t[0].startswith("all_")} <= {""}, tis
    assert {t[5] for t in tis if t[0] == "backup"} == {POOL}, tis
    print("celery run:", run_id, tis)

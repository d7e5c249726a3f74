"""A real Airflow for integration tests: `airflow db migrate`, then api-server, scheduler and
dag-processor from the project's venv on a free loopback port (SimpleAuthManager, a passwords file),
driven through the REST API (trigger, approve/reject the human-in-the-loop task, read XComs).

Used by every integration module that drives DAG runs through a real Airflow (test_failover.py,
test_recover.py, ...).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from lifeboat.net import free_port

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
_HTTP = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class Airflow:
    def __init__(self, base: str, log: Path, user: str, password: str):
        self.base, self.log, self.user, self.password = base, log, user, password
        self.token = ""

    def login(self) -> None:
        self.token = self.call("POST", "/auth/token", {"username": self.user, "password": self.password},
                               auth=False)[1]["access_token"]

    def call(self, method: str, path: str, body=None, auth: bool = True) -> tuple[int, dict]:
        headers = {"Content-Type": "application/json"}
        if auth:
            headers["Authorization"] = f"Bearer {self.token}"
        req = urllib.request.Request(self.base + path, method=method, headers=headers,
                                     data=None if body is None else json.dumps(body).encode())
        try:
            with _HTTP.open(req, timeout=90) as r:
                raw = r.read()
                return r.status, json.loads(raw) if raw else {}
        except TimeoutError:
            if method != "GET":
                raise
            time.sleep(2)  # a loaded machine: the API server (SQLite) answers late; reads are safe to repeat
            return self.call(method, path, body, auth)
        except urllib.error.HTTPError as e:
            raw = e.read()
            try:
                return e.code, json.loads(raw)
            except ValueError:
                return e.code, {"detail": raw.decode(errors="replace")}

    def ok(self, method: str, path: str, body=None) -> dict:
        code, data = self.call(method, path, body)
        assert code in (200, 201), f"{method} {path}: HTTP {code} {data}"
        return data

    def trigger(self, dag_id: str, conf: dict) -> str:
        return self.ok("POST", f"/api/v2/dags/{dag_id}/dagRuns", {"logical_date": None, "conf": conf})["dag_run_id"]

    def run(self, dag_id: str, run_id: str) -> dict:
        return self.ok("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}")

    def tasks(self, dag_id: str, run_id: str) -> dict[str, str]:
        data = self.ok("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances?limit=100")
        out = {}
        for ti in data["task_instances"]:
            key = ti["task_id"] if ti["map_index"] < 0 else f"{ti['task_id']}[{ti['map_index']}]"
            out[key] = ti["state"]
        return out

    def xcom(self, dag_id: str, run_id: str, task_id: str):
        code, data = self.call("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/xcomEntries/"
                                      "return_value?map_index=-1&deserialize=true")
        if code == 404:
            return None
        assert code == 200, data
        value = data["value"]
        return json.loads(value) if isinstance(value, str) and value[:1] in "{[" else value

    def wait(self, dag_id: str, run_id: str, timeout: float = 600.0, states=("success", "failed")) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            run = self.run(dag_id, run_id)
            if run["state"] in states:
                return run
            if time.monotonic() > deadline:
                pytest.fail(f"{dag_id} {run_id} still {run['state']} after {timeout:.0f}s: "
                            f"{self.tasks(dag_id, run_id)}\n{self.tail()}")
            time.sleep(1)

    def wait_approval(self, dag_id: str, run_id: str, timeout: float = 900.0) -> dict:
        deadline = time.monotonic() + timeout
        path = f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/approval/-1/hitlDetails"
        while True:
            code, data = self.call("GET", path)
            if code == 200 and not data.get("response_received") and \
                    self.tasks(dag_id, run_id).get("approval") == "awaiting_input":
                self._parked_seen(dag_id, run_id)
                return data
            if self.run(dag_id, run_id)["state"] in ("success", "failed"):
                pytest.fail(f"{dag_id} {run_id} ended before asking for approval: {self.tasks(dag_id, run_id)}")
            if time.monotonic() > deadline:
                pytest.fail(f"no approval request in {dag_id} {run_id} after {timeout:.0f}s: "
                            f"{self.tasks(dag_id, run_id)}\n{self.tail()}")
            time.sleep(1)

    def _parked_seen(self, dag_id: str, run_id: str, timeout: float = 30.0) -> None:
        """Airflow 3.3.2 race: an answer that reaches the scheduler before it has processed the parked
        worker's exit fails the approval task ("state changed externally": nothing changes, but the run
        fails). A human is never that fast; the test waits for the scheduler's own log line."""
        ti_id = self.ok("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/approval")["id"]
        log = self.log / "scheduler.log"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any("TaskInstance Finished" in line and f"ti_id={ti_id}" in line and "state=awaiting_input" in line
                   for line in log.read_text(errors="replace").splitlines()):
                break
            time.sleep(0.5)
        time.sleep(1)

    def answer(self, dag_id: str, run_id: str, option: str) -> dict:
        return self.ok("PATCH", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/approval/-1/hitlDetails",
                       {"chosen_options": [option], "params_input": {}})

    def clear(self, dag_id: str, run_id: str) -> None:
        self.ok("POST", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/clear", {"dry_run": False, "only_failed": False})

    def tail(self, n: int = 4000) -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-n:]}" for p in sorted(self.log.glob("*.log")))


@contextlib.contextmanager
def running_airflow(home: Path, lifeboat_env: dict[str, str], dag_ids: list[str],
                    dag_files: list[str] | None = None) -> Iterator[Airflow]:
    """Airflow in `home` with `lifeboat_env` exported to its workers; `dag_ids` unpaused (every other
    DAG stays paused, no schedules run). `dag_files` (names in dags/): only those are parsed (a folder
    of links in `home`) -- on a loaded machine parsing every DAG file delays the start by minutes."""
    home.mkdir(parents=True, exist_ok=True)
    dags_folder = ROOT / "dags"
    if dag_files:
        dags_folder = home / "dags"
        dags_folder.mkdir(exist_ok=True)
        for f in dag_files:
            link = dags_folder / f
            if not link.exists():
                link.symlink_to(ROOT / "dags" / f)
    user, password = "admin", secrets.token_urlsafe(12)
    (home / "passwords.json").write_text(json.dumps({user: password}))
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "LIFEBOAT_")) and k != "PYTHONPATH"}
    env.update(lifeboat_env)
    env.update({
        "PATH": f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}",
        "PYTHONPATH": f"{ROOT / 'plugins'}{os.pathsep}{ROOT}",
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags_folder),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__CORE__PARALLELISM": "4",
        "AIRFLOW__CORE__AUTH_MANAGER": "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{user}:admin",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(home / "passwords.json"),
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__API__WORKERS": "1",
        "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{port}",
        "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(32),
        "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",
    })
    airflow_bin = str(VENV_BIN / "airflow")
    migrate = subprocess.run([airflow_bin, "db", "migrate"], env=env, cwd=home, capture_output=True, text=True,
                             timeout=300, check=False)
    assert migrate.returncode == 0, migrate.stdout[-2000:] + migrate.stderr[-3000:]
    procs = []
    for cmd in (["api-server", "--host", "127.0.0.1", "--port", str(port)], ["scheduler"], ["dag-processor"]):
        with open(home / f"{cmd[0]}.log", "wb") as log:
            procs.append(subprocess.Popen([airflow_bin, *cmd], env=env, cwd=home, stdout=log,
                                          stderr=subprocess.STDOUT, start_new_session=True))
    api = Airflow(f"http://127.0.0.1:{port}", home, user, password)
    try:
        deadline = time.monotonic() + 480  # a loaded 2-core machine: the first DAG parse alone can take minutes
        while True:
            try:
                api.login()
                if all(api.call("GET", f"/api/v2/dags/{d}")[0] == 200 for d in dag_ids):
                    break
            except (OSError, KeyError):
                pass
            dead = [p.args[1] for p in procs if p.poll() is not None]
            if dead or time.monotonic() > deadline:
                pytest.fail(f"Airflow did not come up (dead: {dead}):\n{api.tail()}")
            time.sleep(1)
        for d in dag_ids:
            api.ok("PATCH", f"/api/v2/dags/{d}", {"is_paused": False})
        yield api
    finally:
        stop_procs(procs, signal.SIGTERM)


def stop_procs(procs: list[subprocess.Popen], sig: int) -> None:
    """Send sig to the process group of every Airflow process in procs; SIGKILL a group still there after 20 s."""
    for p in procs:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(p.pid, sig)
    for p in procs:
        try:
            p.wait(timeout=20)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(p.pid, signal.SIGKILL)
            p.wait()

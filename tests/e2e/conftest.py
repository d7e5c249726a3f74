"""Fixtures for the browser tests: a real Airflow API server with the Lifeboat plugin, a seeded
catalog, and Debian's Chromium driven by Playwright.

- `dr_catalog`: a file:// catalog in both regions, written by tests/e2e/catalog.py with the repository
  API, and the inventory that points at it (`LIFEBOAT_INVENTORY` of the server).
- `airflow_server`: `airflow api-server` from the project's virtualenv on a free loopback port, in a
  temporary AIRFLOW_HOME migrated first, SimpleAuthManager with a passwords file. Its log is printed
  when it does not come up.
- `browser`: /usr/bin/chromium in headless mode (never a Playwright-downloaded browser).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from lifeboat.net import free_port

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
CHROMIUM = Path(os.environ.get("LIFEBOAT_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
USER, PASSWORD = "admin", secrets.token_urlsafe(12)
REPORTS = ROOT / "reports"


@pytest.fixture(scope="module")
def dr_catalog(tmp_path_factory):
    from tests.e2e.catalog import seed

    root = tmp_path_factory.mktemp("dr-catalog")
    result = seed(root)
    result["root"] = root
    return result


def _server_env(home: Path, inventory: Path, port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("AIRFLOW", "LIFEBOAT_")) and k not in ("PYTHONPATH",)}
    env.update({
        "PATH": f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}",
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(home / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
        "AIRFLOW__CORE__AUTH_MANAGER": "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{USER}:admin",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(home / "passwords.json"),
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__API__WORKERS": "1",
        "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(32),
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
        "LIFEBOAT_INVENTORY": str(inventory),
        "LIFEBOAT_UI_CACHE_SECONDS": "0",
    })
    return env


def _wait_up(base: str, proc: subprocess.Popen, log: Path, timeout: float = 75.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            break
        try:
            with urllib.request.urlopen(f"{base}/api/v2/version", timeout=2) as r:
                if r.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.2)
    tail = log.read_text(errors="replace")[-4000:] if log.exists() else "(no log)"
    pytest.fail(f"airflow api-server did not answer on {base} within {timeout:.0f}s; log {log}:\n{tail}")


def server_home(tmp_path_factory, name: str, inventory: Path) -> tuple[Path, int, str, dict[str, str]]:
    """A fresh AIRFLOW_HOME (dags folder, passwords file), a free port, its base URL and the server's env."""
    home = tmp_path_factory.mktemp(name)
    (home / "dags").mkdir()
    (home / "passwords.json").write_text(json.dumps({USER: PASSWORD}))
    port = free_port()
    return home, port, f"http://127.0.0.1:{port}", _server_env(home, inventory, port)


@contextlib.contextmanager
def api_server(home: Path, port: int, env: dict[str, str]):
    """`airflow db migrate`, then `airflow api-server` on 127.0.0.1:port in its own session until the block
    ends (yields its log file)."""
    airflow = VENV_BIN / "airflow"
    if not airflow.exists():
        pytest.fail(f"{airflow} not found: run `make bootstrap` (the e2e test runs the project's own Airflow)")
    migrate = subprocess.run([str(airflow), "db", "migrate"], env=env, cwd=home, capture_output=True, text=True,
                             timeout=180, check=False)
    if migrate.returncode != 0:
        pytest.fail(f"airflow db migrate failed ({migrate.returncode}):\n"
                    f"{migrate.stdout[-2000:]}\n{migrate.stderr[-3000:]}")
    log = home / "api-server.log"
    with open(log, "wb") as fh:
        proc = subprocess.Popen([str(airflow), "api-server", "--host", "127.0.0.1", "--port", str(port)], env=env,
                                cwd=home, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        _wait_up(f"http://127.0.0.1:{port}", proc, log)
        yield log
    finally:
        _stop_group(proc)


@pytest.fixture(scope="module")
def airflow_server(dr_catalog, tmp_path_factory):
    home, port, base, env = server_home(tmp_path_factory, "airflow-home", dr_catalog["inventory"])
    with api_server(home, port, env) as log:
        yield {"base": base, "home": home, "log": log, "user": USER, "password": PASSWORD}


def logged_in_tab(browser, server: dict, viewport: dict):
    """(context, tab) of a browser tab logged in through Airflow's own login page; the tab's JavaScript
    errors are collected in `tab.page_errors`."""
    ctx = browser.new_context(viewport=viewport, device_scale_factor=1)
    tab = ctx.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda exc: errors.append(str(exc)))
    tab.goto(server["base"] + "/")
    tab.wait_for_url(re.compile(r"/auth/login"))
    tab.locator("input[name=username]").fill(server["user"])
    tab.locator("input[name=password]").fill(server["password"])
    tab.locator("button[type=submit]").click()
    tab.wait_for_url(server["base"] + "/", timeout=30_000)
    tab.page_errors = errors
    return ctx, tab


def _stop_group(proc: subprocess.Popen) -> None:
    """The server runs in its own session: end exactly that process group (uvicorn may outlive the CLI)."""
    for sig, grace in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            proc.poll()  # reap the leader so that it does not count as alive
            try:
                os.killpg(proc.pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.1)


@pytest.fixture(scope="module")
def browser():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("playwright is not installed in the venv: `make bootstrap` (requirements-dev.txt pins it)")
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} not found: `apt-get install -y chromium` (packages.txt lists it)")
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS, headless=True)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture(scope="module")
def reports_dir() -> Path:
    REPORTS.mkdir(exist_ok=True)
    return REPORTS

"""A real Prometheus server (Debian's `prometheus` package) scraping the stack (stdlib only).

    <state>/prometheus/prometheus.yml        rendered config (scrape + rule files)
    <state>/prometheus/lifeboat-rules.yml    include/prometheus/lifeboat-rules.yml (monitor-equivalent alerts)
    <state>/prometheus/targets/lifeboat.json file_sd targets of the `lifeboat` job: whoever serves the
                                             plugin (an Airflow API server) writes its host:port here
    <state>/prometheus/metrics-token         the bearer token Prometheus sends to /lifeboat/metrics
    <state>/prometheus/data/, port.json, pid, log

Jobs: `lifeboat` (metrics_path /lifeboat/metrics, bearer token; targets from the file above or
$LIFEBOAT_METRICS_TARGET) and `platform_api` (each region's stand-in, /metrics: requests, errors,
latency). Exports LIFEBOAT_PROMETHEUS_URL and AIRFLOW_CONN_LIFEBOAT_METRICS (the token as the
connection's password: an Airflow started with the stack's env accepts Prometheus's scrapes).

`start()` / `stop()` are also what tests use for a Prometheus of their own with second-scale
intervals (`render_config`, `rules_with_for`).
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

try:
    from devstack.components import _common, _daemon
except ImportError:  # run as a script
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from devstack.components import _common, _daemon

NAME = "prometheus"
RULES = Path(__file__).resolve().parents[2] / "include" / "prometheus" / "lifeboat-rules.yml"
METRICS_PATH = "/lifeboat/metrics"
WAIT_S = 30.0
_HTTP = urllib.request.build_opener(urllib.request.ProxyHandler({}))
_CHILDREN: dict[int, subprocess.Popen] = {}


def binary() -> str:
    found = shutil.which("prometheus")
    if not found:
        raise _common.component_error(NAME, "prometheus not on PATH -- `make bootstrap` (packages.txt: prometheus)")
    return found


def rules_with_for(duration: str) -> str:
    """The shipped rules with every `for:` replaced (tests: seconds instead of minutes)."""
    return re.sub(r"(?m)^(\s*)for: \S+$", rf"\g<1>for: {duration}", RULES.read_text())


def render_config(folder: Path, *, scrape_interval: str = "15s", evaluation_interval: str = "15s",
                  scrape_timeout: str = "10s",
                  lifeboat_targets: list[str] | None = None, platform_targets: dict[str, str] | None = None) -> str:
    """prometheus.yml for `folder` (token in folder/metrics-token, targets in folder/targets/)."""
    folder = Path(folder)
    (folder / "targets").mkdir(parents=True, exist_ok=True)
    target_file = folder / "targets" / "lifeboat.json"
    if lifeboat_targets is not None or not target_file.exists():
        target_file.write_text(json.dumps([{"targets": lifeboat_targets or [], "labels": {}}]) + "\n")
    jobs = [{
        "job_name": "lifeboat", "metrics_path": METRICS_PATH,
        "authorization": {"type": "Bearer", "credentials_file": str(folder / "metrics-token")},
        "file_sd_configs": [{"files": [str(folder / "targets" / "*.json")], "refresh_interval": "5s"}],
    }]
    if platform_targets:
        jobs.append({"job_name": "platform_api", "static_configs": [
            {"targets": [t], "labels": {"region": r}} for r, t in sorted(platform_targets.items())]})
    cfg = {"global": {"scrape_interval": scrape_interval, "evaluation_interval": evaluation_interval,
                      "scrape_timeout": scrape_timeout},
           "rule_files": [str(folder / "lifeboat-rules.yml")], "scrape_configs": jobs}
    return json.dumps(cfg, indent=2) + "\n"  # JSON is YAML


def start(folder: Path, port: int, config: str, rules: str | None = None, token: str | None = None) -> subprocess.Popen:
    """Start Prometheus on 127.0.0.1:port with `config` in `folder`; returns once /-/ready answers."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "prometheus.yml").write_text(config)
    (folder / "lifeboat-rules.yml").write_text(rules if rules is not None else RULES.read_text())
    tok = folder / "metrics-token"
    if token is not None or not tok.exists():
        tok.write_text(token or secrets.token_urlsafe(32))
        tok.chmod(0o600)
    log = folder / "prometheus.log"
    argv = [binary(), f"--config.file={folder / 'prometheus.yml'}", f"--storage.tsdb.path={folder / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}", "--web.enable-lifecycle", "--storage.tsdb.retention.time=2d"]
    with open(log, "ab") as out:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True, close_fds=True)
    _CHILDREN[proc.pid] = proc
    (folder / "pid").write_text(f"{proc.pid}\n")
    deadline = time.monotonic() + WAIT_S
    while not ready(port):
        if proc.poll() is not None:
            raise _common.component_error(NAME, f"prometheus exited with rc={proc.returncode}", log, _common.tail(log))
        if time.monotonic() > deadline:
            raise _common.component_error(NAME, f"prometheus not ready on :{port} within {WAIT_S:.0f}s", log,
                                          _common.tail(log))
        time.sleep(0.2)
    return proc


def ready(port: int) -> bool:
    return _daemon.answers(f"http://127.0.0.1:{port}/-/ready")


def stop(folder: Path) -> str:
    pid = _pid(Path(folder))
    if not pid:
        return "not running"
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and _pid(Path(folder)):
        proc = _CHILDREN.get(pid)
        if proc is not None and proc.poll() is not None:
            break
        time.sleep(0.1)
    else:
        if _pid(Path(folder)):
            os.kill(pid, signal.SIGKILL)
    _CHILDREN.pop(pid, None)
    return "stopped"


def _pid(folder: Path) -> int | None:
    try:
        pid = int((folder / "pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    return pid if _common.proc_alive(pid, b"prometheus") else None


# --------------------------------------------------------------------------- the contract

def _root(state_dir: Path) -> Path:
    return Path(state_dir) / NAME


def _port(state_dir: Path, create: bool) -> int | None:
    f = _root(state_dir) / "port.json"
    if f.exists():
        return json.loads(f.read_text())["port"]
    if not create:
        return None
    used: set[int] = set()
    for other in Path(state_dir).glob("*/ports.json"):
        try:
            used |= set(json.loads(other.read_text()).values())
        except (OSError, ValueError, AttributeError, TypeError):
            continue
    port = _common.free_port(used)
    _root(state_dir).mkdir(parents=True, exist_ok=True)
    f.write_text(json.dumps({"port": port}) + "\n")
    return port


def _platform_targets(state_dir: Path) -> dict[str, str]:
    try:
        ports = json.loads((Path(state_dir) / "platform_api" / "ports.json").read_text())
    except (OSError, ValueError):
        return {}
    return {r: f"127.0.0.1:{p}" for r, p in ports.items()}


def up(state_dir: Path, say) -> dict[str, str]:
    root = _root(state_dir)
    port = _port(state_dir, create=True)
    targets = [os.environ["LIFEBOAT_METRICS_TARGET"]] if os.environ.get("LIFEBOAT_METRICS_TARGET") else None
    config = render_config(root, lifeboat_targets=targets, platform_targets=_platform_targets(state_dir))
    rules = RULES.read_text()
    if _pid(root) and ready(port):
        if (root / "prometheus.yml").read_text() != config or (root / "lifeboat-rules.yml").read_text() != rules:
            (root / "prometheus.yml").write_text(config)
            (root / "lifeboat-rules.yml").write_text(rules)
            _HTTP.open(urllib.request.Request(f"http://127.0.0.1:{port}/-/reload", method="POST"), timeout=5).close()
    else:
        stop(root)
        start(root, port, config, rules)
        say(f"  {NAME:<10} 127.0.0.1:{port} (rules: {RULES.name})")
    return env(state_dir)


def env(state_dir: Path) -> dict[str, str]:
    port = _port(state_dir, create=False)
    tok = _root(state_dir) / "metrics-token"
    if not port or not tok.exists():
        return {}
    return {"LIFEBOAT_PROMETHEUS_URL": f"http://127.0.0.1:{port}",
            "AIRFLOW_CONN_LIFEBOAT_METRICS": json.dumps({"conn_type": "generic", "password": tok.read_text().strip()},
                                                        separators=(",", ":"))}


def down(state_dir: Path, say) -> str:
    return stop(_root(state_dir))


def status(state_dir: Path) -> dict:
    port = _port(state_dir, create=False)
    root = _root(state_dir)
    if not port:
        return {"running": False, "error": "not initialised (run `stack.py up`)", "log": str(root)}
    return {"running": bool(_pid(root)) and ready(port), "pid": _pid(root), "port": port,
            "log": str(root / "prometheus.log")}


def query(url: str, promql: str) -> list[dict]:
    """GET /api/v1/query -> the result vector."""
    from urllib.parse import urlencode

    with _HTTP.open(f"{url}/api/v1/query?{urlencode({'query': promql})}", timeout=10) as r:
        body = json.loads(r.read())
    if body.get("status") != "success":
        raise RuntimeError(f"prometheus query {promql!r} failed: {body}")
    return body["data"]["result"]


def alerts(url: str) -> list[dict]:
    with _HTTP.open(f"{url}/api/v1/alerts", timeout=10) as r:
        return json.loads(r.read())["data"]["alerts"]

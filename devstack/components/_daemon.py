"""Pid-file daemons for devstack components (stdlib only): start a server detached from the caller's
process group with its output in a log file, wait until it answers, stop it by pid (never by name),
and keep ports free across every component of a stack.

    pid = start("registry", argv, log=..., pidfile=..., needle=b"docker-registry", ready=lambda: ...)
    stop(pidfile, b"docker-registry")  -> "stopped" | "killed" | "not running"
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

try:
    from devstack.components import _common
except ImportError:  # pragma: no cover - run as a script
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from devstack.components import _common

# Popen objects of the daemons this process started, so they are reaped (no zombies) when they stop.
_CHILDREN: dict[int, subprocess.Popen] = {}


_HTTP = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback: never via a proxy

write_atomic = _common.write_atomic
used_ports = _common.used_ports
conn = _common.conn


def local_conn(port: int, login: str, password: str, **fields) -> str:
    """A generic Airflow connection to a devstack server on 127.0.0.1:port with basic auth."""
    return conn({"conn_type": "generic", "host": "127.0.0.1", "port": port, "login": login, "password": password,
                 **fields})


def ports(state_dir: Path, component: str, names: Sequence[str], create: bool) -> dict[str, int] | None:
    """<state>/<component>/ports.json: {name: port}, picked free once and kept (flat ints, so the
    other components' port pickers see them). Missing names are added."""
    f = Path(state_dir) / component / "ports.json"
    try:
        current = json.loads(f.read_text())
    except (OSError, ValueError):
        current = None
    if current is not None and all(n in current for n in names):
        return current
    if not create:
        return current
    current = dict(current or {})
    used = used_ports(state_dir)
    for n in names:
        if n not in current:
            current[n] = _common.free_port(used)
            used.add(current[n])
    write_atomic(f, json.dumps(current, indent=2) + "\n")
    return current


def pid_of(pidfile: Path, needle: bytes) -> int | None:
    try:
        pid = int(pidfile.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    return pid if _common.proc_alive(pid, needle) else None


def start(component: str, argv: Sequence[str], *, log: Path, pidfile: Path, ready: Callable[[], object],
          env: Mapping[str, str] | None = None, cwd: Path | None = None, timeout: float = 30.0,
          what: str = "") -> int:
    """Start argv in its own session (output appended to `log`), write its pid, wait for ready()."""
    argv = [str(a) for a in argv]
    what = what or Path(argv[0]).name
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        out.write(f"\n=== {time.strftime('%Y-%m-%d %H:%M:%S')} starting: {' '.join(argv)}\n".encode())
        out.flush()
        try:
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                    start_new_session=True, close_fds=True, cwd=cwd,
                                    env=dict(env) if env is not None else None)
        except FileNotFoundError:
            raise _common.component_error(component, f"cannot run {argv[0]}: not installed? (`make bootstrap`)",
                                          log) from None
    _CHILDREN[proc.pid] = proc
    write_atomic(pidfile, f"{proc.pid}\n")
    deadline = time.monotonic() + timeout
    last = ""
    while True:
        if proc.poll() is not None:
            raise _common.component_error(component, f"{what} exited during start-up (rc={proc.returncode})",
                                          log, _common.tail(log))
        try:
            if ready():
                return proc.pid
        except Exception as exc:
            last = f"{type(exc).__name__}: {exc}"
        if time.monotonic() > deadline:
            stop(pidfile, Path(argv[0]).name.encode())
            raise _common.component_error(component, f"{what} did not become ready within {timeout:.0f}s", log,
                                          (last + "\n" + _common.tail(log)).strip())
        time.sleep(0.1)


def stop(pidfile: Path, needle: bytes, timeout: float = 10.0) -> str:
    """SIGTERM the daemon of `pidfile` (its whole session), SIGKILL after `timeout`."""
    pid = pid_of(pidfile, needle)
    result = _common.stop_pid(pid, lambda: _common.proc_alive(pid, needle), _CHILDREN, timeout)
    with contextlib.suppress(FileNotFoundError):
        pidfile.unlink()
    return result


def secrets_file(path: Path, make: Callable[[], dict]) -> dict:
    """A JSON secrets file (0600, its folder 0700), created once with make()."""
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    os.chmod(path.parent, 0o700)
    data = make()
    write_atomic(path, json.dumps(data, indent=2) + "\n", 0o600)
    return data


def ensure(pidfile: Path, needle: bytes, healthy: Callable[[], bool], start_it: Callable[[], object], *,
           restart: bool = False, timeout: float = 10.0) -> bool:
    """Start the daemon of `pidfile` unless it runs and answers (and no `restart` is asked for); a running
    but unhealthy one is stopped first. True when it was (re)started."""
    pid = pid_of(pidfile, needle)
    if pid and not restart and healthy():
        return False
    if pid:
        stop(pidfile, needle, timeout=timeout)
    start_it()
    return True


def announce(say, component: str, notes: Sequence[str]) -> None:
    """The one line `up` prints about a component, when it did something."""
    if notes:
        say(f"  {component:<10} {', '.join(notes)}")


def not_initialised(root: Path) -> dict:
    """status() of a component whose ports were never picked."""
    return {"running": False, "error": "not initialised (run `stack.py up`)", "log": str(root)}


def stop_all(regions: Sequence[str], pidfile: Callable[[str], Path], needle: bytes, timeout: float = 10.0) -> str:
    """down() of a component with one daemon per region: the standby's first."""
    return ", ".join(f"{r} {stop(pidfile(r), needle, timeout)}" for r in reversed(regions))


def regional_status(regions: Sequence[str], pidfile: Callable[[str], Path], needle: bytes,
                    healthy: Callable[[str], bool], log: Callable[[str], Path], port: int) -> dict:
    """status() of a component with one daemon per region: running when every one runs and answers; the
    log named is the first region's that does not."""
    up_ = {r: bool(pid_of(pidfile(r), needle)) and healthy(r) for r in regions}
    down_ = [r for r in regions if not up_[r]]
    return {"running": all(up_.values()), "port": port, "pid": pid_of(pidfile(regions[0]), needle),
            "log": str(log((down_ or list(regions))[0]))}


def answers(url: str, timeout: float = 1.0) -> bool:
    """Whether a GET of `url` (a local daemon's health, ready or version endpoint) answers 200."""
    try:
        with _HTTP.open(url, timeout=timeout) as r:
            return r.status == 200
    except OSError:
        return False


def call_json(url: str, method: str = "GET", body: object = None, timeout: float = 3.0) -> tuple[int, object]:
    """A local daemon's JSON API: (HTTP status, the JSON answer or None); `body` sent as JSON if given."""
    req = urllib.request.Request(url, method=method, headers={"Content-Type": "application/json"},
                                 data=None if body is None else json.dumps(body).encode())
    try:
        resp = _HTTP.open(req, timeout=timeout)
    except urllib.error.HTTPError as e:
        return e.code, None
    with resp:
        text = resp.read()
    return resp.status, json.loads(text) if text.strip() else None

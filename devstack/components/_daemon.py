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
import signal
import subprocess
import time
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


def write_atomic(path: Path, content: str | bytes, mode: int = 0o644) -> bool:
    """Write content atomically with `mode`; True when the file changed."""
    data = content.encode() if isinstance(content, str) else content
    try:
        if path.read_bytes() == data:
            os.chmod(path, mode)
            return False
    except OSError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.chmod(tmp, mode)
    os.replace(tmp, path)
    return True


def used_ports(state_dir: Path) -> set[int]:
    """Every port the stack (stack.json) and its components (<state>/*/ports.json) already use."""
    used: set[int] = set()
    with contextlib.suppress(OSError, ValueError, AttributeError, TypeError):
        used |= set(json.loads((Path(state_dir) / "stack.json").read_text())["ports"].values())
    for other in Path(state_dir).glob("*/ports.json"):
        with contextlib.suppress(OSError, ValueError, AttributeError, TypeError):
            used |= {v for v in json.loads(other.read_text()).values() if isinstance(v, int)}
    return used


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
    result = "not running"
    if pid:
        result = "stopped"
        for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, sig)
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
            deadline = time.monotonic() + wait
            while time.monotonic() < deadline:
                proc = _CHILDREN.get(pid)
                if proc is not None:
                    with contextlib.suppress(subprocess.TimeoutExpired):
                        proc.wait(timeout=0.05)
                if not _common.proc_alive(pid, needle):
                    break
                time.sleep(0.05)
            if not _common.proc_alive(pid, needle):
                break
            result = "killed"
        _CHILDREN.pop(pid, None)
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

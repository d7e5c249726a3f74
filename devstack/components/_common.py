"""Helpers every devstack component uses (stdlib only): errors that name the component and its log,
free loopback ports, process liveness, log tails."""

from __future__ import annotations

import os
import socket
import sys
import time
from collections.abc import Iterable
from pathlib import Path


def component_error(name: str, message: str, log: Path | None = None, detail: str = "") -> Exception:
    """devstack.stack.StackError (whichever copy is loaded: script or package), else RuntimeError."""
    cls = None
    main = sys.modules.get("__main__")
    if main is not None and Path(getattr(main, "__file__", "") or "").name == "stack.py":
        cls = getattr(main, "StackError", None)
    if cls is None:
        try:
            from devstack.stack import StackError as cls
        except Exception:
            cls = None
    if cls is not None:
        return cls(name, message, log, detail)
    text = f"[{name}] {message}" + (f"\n    {detail.strip()}" if detail.strip() else "")
    text += f"\n  log: {log}" if log else ""
    return RuntimeError(text)


def free_port(exclude: Iterable[int] = ()) -> int:
    """A free port on 127.0.0.1 (not in `exclude`)."""
    exclude = set(exclude)
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in exclude:
            return port


def stop_process(proc, timeout: float = 10) -> None:
    """SIGTERM, then SIGKILL after `timeout` seconds; waits for the process either way."""
    import signal
    import subprocess

    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def port_open(port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout):
            return True
    except OSError:
        return False


def proc_alive(pid: int | None, needle: bytes | None = None) -> bool:
    """pid exists, is not a zombie, and (when given) its command line or name contains `needle` (no
    pid-reuse surprises)."""
    if not pid or pid <= 0:
        return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        if stat.rpartition(")")[2].split()[0] in ("Z", "X"):
            return False
        if needle is None:
            return True
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        for _ in range(50):  # a process in the middle of exec shows an empty cmdline for a moment
            if cmdline:
                break
            time.sleep(0.01)
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        return needle in cmdline + Path(f"/proc/{pid}/comm").read_bytes()
    except (OSError, IndexError):
        return False


def write_atomic(path: Path, content: str, mode: int, owner=None) -> bool:
    """Write `content` through a temp file + rename (mode set before it appears); True when it changed.
    `owner(path)` (optional) hands the file to another OS user before it is put in place."""
    try:
        if path.read_text() == content:
            if owner is not None:
                owner(path)
            os.chmod(path, mode)
            return False
    except OSError:
        pass
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w") as fh:
        fh.write(content)
    os.chmod(tmp, mode)
    if owner is not None:
        owner(tmp)
    os.replace(tmp, path)
    return True


def tail(path: Path, n: int = 12) -> str:
    """The last n lines of a (possibly large) log file, '' if unreadable."""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 16384))
            return "\n".join(f.read().decode(errors="replace").splitlines()[-n:])
    except OSError:
        return ""

"""Helpers every devstack component uses (stdlib only): errors that name the component and its log,
free loopback ports, process liveness, log tails."""

from __future__ import annotations

import os
import socket
import sys
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


def port_open(port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout):
            return True
    except OSError:
        return False


def proc_alive(pid: int | None, needle: bytes) -> bool:
    """pid exists, is not a zombie, and its command line contains `needle` (no pid-reuse surprises)."""
    if not pid or pid <= 0:
        return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        if stat.rpartition(")")[2].split()[0] in ("Z", "X"):
            return False
        return needle in Path(f"/proc/{pid}/cmdline").read_bytes()
    except (OSError, IndexError):
        return False


def tail(path: Path, n: int = 12) -> str:
    """The last n lines of a (possibly large) log file, '' if unreadable."""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 16384))
            return "\n".join(f.read().decode(errors="replace").splitlines()[-n:])
    except OSError:
        return ""

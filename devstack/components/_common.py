"""Helpers every devstack component uses (stdlib only): errors that name the component and its log,
free loopback ports (and the ports a stack already uses), process liveness, stopping a daemon by pid,
atomic writes, log tails."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable
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


def env_key(region: str) -> str:
    """us-west-2 -> US_WEST_2, as environment variable names spell a region."""
    return region.upper().replace("-", "_")


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
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def wait_for(what: str, pred: Callable[[], object], *, timeout: float, interval: float,
             fail: Callable[[str, str], Exception], check: Callable[[], None] | None = None):
    """Poll pred() until it returns something truthy (returned). `check()` may raise to give up early (the
    awaited process died); after `timeout` seconds raise fail(message, last error seen)."""
    deadline = time.monotonic() + timeout
    last = ""
    while True:
        try:
            res = pred()
            if res:
                return res
        except Exception as exc:  # reported on timeout
            last = f"{type(exc).__name__}: {exc}"
        if check is not None:
            check()
        if time.monotonic() >= deadline:
            raise fail(f"timed out after {timeout:.0f}s waiting for {what}", last)
        time.sleep(interval)


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


def write_atomic(path: Path, content: str | bytes, mode: int = 0o644, owner=None) -> bool:
    """Write `content` through a temp file + rename (mode set before it appears, folder created); True
    when it changed. `owner(path)` (optional) hands the file to another OS user before it is put in place."""
    data = content.encode() if isinstance(content, str) else content
    try:
        if path.read_bytes() == data:
            if owner is not None:
                owner(path)
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
    if owner is not None:
        owner(tmp)
    os.replace(tmp, path)
    return True


def used_ports(state_dir: Path) -> set[int]:
    """Every port the stack (stack.json) and its components (<state>/*/ports.json) already use."""
    used: set[int] = set()
    with contextlib.suppress(OSError, ValueError, KeyError, AttributeError, TypeError):
        used |= set(json.loads((Path(state_dir) / "stack.json").read_text())["ports"].values())
    for other in Path(state_dir).glob("*/ports.json"):
        with contextlib.suppress(OSError, ValueError, AttributeError, TypeError):
            used |= {v for v in json.loads(other.read_text()).values() if isinstance(v, int)}
    return used


def stop_pid(pid: int | None, alive: Callable[[], bool], children: dict | None = None,
             grace: float = 10.0, kill_grace: float = 5.0) -> str:
    """End the process group of `pid` (a daemon started in its own session): SIGTERM, SIGKILL after `grace`
    seconds. `alive()` says whether it still runs (pid + command line); `children` ({pid: Popen} of the
    daemons this process started) lets it reap its own child. "stopped" | "killed" | "not running"."""
    if not pid or not alive():
        return "not running"
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, kill_grace)):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, sig)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            proc = (children or {}).get(pid)
            if proc is not None:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=0.05)
            else:
                with contextlib.suppress(ChildProcessError, OSError):
                    os.waitpid(pid, os.WNOHANG)
            if not alive():
                (children or {}).pop(pid, None)
                return "stopped" if sig == signal.SIGTERM else "killed"
            time.sleep(0.05)
    return "killed" if not alive() else "still running"


def tail(path: Path, n: int = 12) -> str:
    """The last n lines of a (possibly large) log file, '' if unreadable."""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 16384))
            return "\n".join(f.read().decode(errors="replace").splitlines()[-n:])
    except OSError:
        return ""


# --------------------------------------------------------------------------- the stack's own moto

_LOOPBACK = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never via a proxy


def stack_ports(state_dir: Path) -> dict:
    """The stack's own ports (stack.json): pg_primary, pg_standby, moto, ..."""
    try:
        return json.loads((Path(state_dir) / "stack.json").read_text()).get("ports") or {}
    except (OSError, ValueError, AttributeError):
        return {}


def moto_endpoint(state_dir: Path, region: str | None = None) -> str | None:
    """The stack's moto: `region`'s S3 endpoint, or (None) the one with the global APIs (Route 53,
    CloudFront, SNS), which is us-east-1's (devstack/stack.py MOTO_PORTS)."""
    key = "moto_us_west_2" if region == "us-west-2" else "moto"
    port = stack_ports(state_dir).get(key)
    return f"http://127.0.0.1:{port}" if port else None


def conn(fields: dict) -> str:
    """An AIRFLOW_CONN_* value: the connection as compact JSON."""
    return json.dumps(fields, separators=(",", ":"))


def aws_conn(endpoint: str, region: str = "us-east-1") -> str:
    """An Airflow aws connection to the stack's moto (moto takes any credentials)."""
    return conn({"conn_type": "aws", "login": "testing", "password": "testing",
                 "extra": {"endpoint_url": endpoint, "region_name": region}})


def moto_call(endpoint: str, method: str, path: str, *, service: str | None, region: str = "us-east-1",
              body: bytes | None = None, content_type: str = "application/xml",
              timeout: float = 10) -> tuple[int, str]:
    """(HTTP status, body) of one AWS API call to the stack's moto on loopback. moto routes by the
    credential scope of the Authorization header, which it never checks (S3: `service=None`, no header;
    the Content-Type matters there: with a form type moto drops a CreateBucket body)."""
    headers = {"Content-Type": content_type}
    if service:
        headers["Authorization"] = (f"AWS4-HMAC-SHA256 Credential=testing/20260101/{region}/{service}/aws4_request, "
                                    "SignedHeaders=host, Signature=devstack")
    req = urllib.request.Request(endpoint + path, data=body, method=method, headers=headers)
    try:
        with _LOOPBACK.open(req, timeout=timeout) as r:
            return r.status, r.read().decode(errors="replace")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(errors="replace")


def http_status(url: str, timeout: float = 1.0) -> int | None:
    """The HTTP status of a GET on loopback without credentials; None when nothing answers."""
    try:
        with _LOOPBACK.open(urllib.request.Request(url), timeout=timeout) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code
    except OSError:
        return None


def ensure_bucket(endpoint: str, bucket: str, region: str, log: Path | None = None) -> bool:
    """Create an S3 bucket in `region` on the stack's moto unless it exists; True when it was created."""
    if moto_call(endpoint, "HEAD", f"/{bucket}", service=None, timeout=5)[0] == 200:
        return False
    body = b"" if region == "us-east-1" else (
        '<CreateBucketConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
        f"<LocationConstraint>{region}</LocationConstraint></CreateBucketConfiguration>").encode()
    code, resp = moto_call(endpoint, "PUT", f"/{bucket}", service=None, body=body, timeout=5)
    if code != 200 and "BucketAlreadyOwnedByYou" not in resp:
        raise component_error("moto", f"creating bucket {bucket} on {endpoint} failed: HTTP {code}", log, resp)
    return True


def parse_xml(text: str | bytes) -> ET.Element:
    """An answer of the devstack's own moto server on 127.0.0.1 (never outside input)."""
    return ET.fromstring(text)  # noqa: S314 - trusted: our own moto on loopback, started by this stack

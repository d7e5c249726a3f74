"""Redis 7 primary ("us-west-2") + replica ("us-east-1") for the Lifeboat devstack (stdlib only).

Debian's `redis-server` binary, our own config files; Debian's redis-server service is left alone.

    <state>/redis/ports.json          ports, picked free once and kept
    <state>/redis/secrets.json        the generated password (0600)
    <state>/redis/primary/redis.conf  (0600: it holds requirepass/masterauth)
    <state>/redis/primary/data/       dir: dump.rdb + appendonlydir/ (multi-part AOF)
    <state>/redis/primary/redis.log, redis.pid
    <state>/redis/replica/...         same, `replicaof` the primary, read-only, no AOF

Both bind 127.0.0.1 only with protected-mode on, daemonize with pid files. The primary keeps
Redis' default RDB save points AND appendonly yes (everysec), which is what the backups exercise.
`repl-diskless-sync-delay 0` so `redis-cli --rdb` starts its snapshot at once (Redis' default, 5 s,
would add 5 s to every RDB backup; production servers usually keep the default).
"""

from __future__ import annotations

import json
import os
import secrets as _secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
from pathlib import Path

try:
    from devstack.components import _common
except ImportError:  # run as a script: python devstack/components/<name>.py
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from devstack.components import _common

NAME = "redis"
ROLES = ("primary", "replica")
WAIT_S = 30.0


# --------------------------------------------------------------------------- errors

def _error(message: str, log: Path | None = None, detail: str = "") -> Exception:
    return _common.component_error(NAME, message, log, detail)


# --------------------------------------------------------------------------- tiny RESP client

def _encode(*args: str | bytes | int) -> bytes:
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        b = a if isinstance(a, bytes) else str(a).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(b), b))
    return b"".join(out)


def _read_reply(f):
    line = f.readline()
    if not line:
        raise ConnectionError("connection closed")
    kind, rest = line[:1], line[1:-2]
    if kind == b"+":
        return rest.decode()
    if kind == b"-":
        raise RuntimeError(rest.decode())
    if kind == b":":
        return int(rest)
    if kind == b"$":
        n = int(rest)
        if n < 0:
            return None
        data = f.read(n + 2)
        return data[:-2].decode(errors="replace")
    if kind == b"*":
        n = int(rest)
        return None if n < 0 else [_read_reply(f) for _ in range(n)]
    raise ConnectionError(f"unexpected reply {line[:40]!r}")


def _command(port: int, password: str, *args, timeout: float = 3.0):
    """AUTH + one command on 127.0.0.1:port; returns the reply (raises on -ERR)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        f = s.makefile("rb")
        s.sendall(_encode("AUTH", password) + _encode(*args))
        _read_reply(f)
        return _read_reply(f)


def _info(port: int, password: str, section: str) -> dict[str, str]:
    text = _command(port, password, "INFO", section) or ""
    return dict(ln.split(":", 1) for ln in text.splitlines() if ":" in ln and not ln.startswith("#"))


# --------------------------------------------------------------------------- helpers

def _dirs(state_dir: Path) -> dict[str, Path]:
    root = Path(state_dir) / NAME
    return {"root": root, **{r: root / r for r in ROLES}}


_write = _common.write_atomic
_free_port = _common.free_port


def _used_ports(state_dir: Path) -> set[int]:
    try:
        return set(json.loads((Path(state_dir) / "stack.json").read_text())["ports"].values())
    except (OSError, ValueError, KeyError, AttributeError):
        return set()


def _load(state_dir: Path, create: bool) -> tuple[dict, str] | None:
    d = _dirs(state_dir)
    ports_file, secrets_file = d["root"] / "ports.json", d["root"] / "secrets.json"
    if not (ports_file.exists() and secrets_file.exists()):
        if not create:
            return None
        d["root"].mkdir(parents=True, exist_ok=True)
        os.chmod(d["root"], 0o700)
        if not ports_file.exists():
            used = _used_ports(state_dir)
            ports = {}
            for r in ROLES:
                ports[r] = _free_port(used)
                used.add(ports[r])
            _write(ports_file, json.dumps(ports, indent=2) + "\n", 0o644)
        if not secrets_file.exists():
            _write(secrets_file, json.dumps({"password": _secrets.token_urlsafe(24)}, indent=2) + "\n", 0o600)
    return json.loads(ports_file.read_text()), json.loads(secrets_file.read_text())["password"]


def _conf(role: str, d: Path, ports: dict, password: str) -> str:
    common = f"""\
# Managed by devstack/components/redis.py -- rewritten on every `up`.
bind 127.0.0.1
protected-mode yes
port {ports[role]}
daemonize yes
pidfile {_q(d / 'redis.pid')}
logfile {_q(d / 'redis.log')}
dir {_q(d / 'data')}
dbfilename dump.rdb
databases 16
requirepass {password}
masterauth {password}
repl-diskless-sync yes
repl-diskless-sync-delay 0
"""
    if role == "primary":
        return common + """\
save 3600 1 300 100 60 10000
appendonly yes
appenddirname appendonlydir
appendfilename appendonly.aof
appendfsync everysec
aof-use-rdb-preamble yes
"""
    return common + f"""\
replicaof 127.0.0.1 {ports['primary']}
replica-read-only yes
save ""
appendonly no
"""


def _q(path: Path) -> str:
    return '"' + str(path).replace("\\", "\\\\").replace('"', '\\"') + '"'


def _pid(d: Path) -> int | None:
    try:
        pid = int((d / "redis.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        if stat.rpartition(")")[2].split()[0] in ("Z", "X"):
            return None
        if b"redis" not in Path(f"/proc/{pid}/cmdline").read_bytes() + Path(f"/proc/{pid}/comm").read_bytes():
            return None
    except (OSError, IndexError):
        return None
    return pid


def _tail(path: Path, n: int = 10) -> str:
    return _common.tail(path, n)


def _ping(port: int, password: str) -> bool:
    try:
        return _command(port, password, "PING", timeout=1.0) == "PONG"
    except (OSError, RuntimeError, ConnectionError):
        return False


def _wait(what: str, pred, log: Path, timeout: float = WAIT_S) -> None:
    deadline = time.monotonic() + timeout
    last = ""
    while True:
        try:
            if pred():
                return
        except RuntimeError as exc:
            if getattr(exc, "component", None) == NAME or str(exc).startswith(f"[{NAME}]"):
                raise  # our own error: no point waiting
            last = f"{type(exc).__name__}: {exc}"
        except Exception as exc:
            last = f"{type(exc).__name__}: {exc}"
        if time.monotonic() >= deadline:
            raise _error(f"timed out after {timeout:.0f}s waiting for {what}", log, (last + "\n" + _tail(log)).strip())
        time.sleep(0.1)


def _stop(d: Path, timeout: float = 20.0) -> str:
    pid = _pid(d)
    if not pid:
        return "not running"
    os.kill(pid, signal.SIGTERM)  # redis saves (if save points are set) and exits
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _pid(d):
            return "stopped"
        time.sleep(0.1)
    os.kill(pid, signal.SIGKILL)
    return "killed"


def _start(role: str, d: Path, port: int, password: str) -> None:
    exe = shutil.which("redis-server")
    if not exe:
        raise _error("redis-server not on PATH -- install redis-server (`make bootstrap`)")
    log = d / "redis.log"
    r = subprocess.run([exe, str(d / "redis.conf")], capture_output=True, text=True, timeout=30, check=False)
    if r.returncode != 0:
        raise _error(f"redis-server ({role}) failed to start (rc={r.returncode})", log,
                     r.stderr + r.stdout + _tail(log))
    t0 = time.monotonic()

    def ready() -> bool:
        if _pid(d) is not None:
            return _ping(port, password)
        if time.monotonic() - t0 > 2.0:  # no live pid: it exited during start-up (port taken, bad config ...)
            raise _error(f"redis-server ({role}) exited during start-up on 127.0.0.1:{port}", log, _tail(log))
        return False

    _wait(f"redis {role} to answer PING on 127.0.0.1:{port}", ready, log)


# --------------------------------------------------------------------------- the contract

def up(state_dir: Path, say) -> dict[str, str]:
    ports, password = _load(state_dir, create=True)
    d = _dirs(state_dir)
    notes = []
    for role in ROLES:
        rd = d[role]
        (rd / "data").mkdir(parents=True, exist_ok=True)
        os.chmod(rd, 0o700)
        changed = _write(rd / "redis.conf", _conf(role, rd, ports, password), 0o600)
        running = _pid(rd) is not None and _ping(ports[role], password)
        if running and not changed:
            continue
        if running and changed:
            _stop(rd)
            notes.append(f"{role} restarted (config changed)")
        else:
            if _pid(rd):  # alive but not answering: stale, restart it
                _stop(rd)
            notes.append(f"{role} started")
        _start(role, rd, ports[role], password)
    _wait("the redis replica's link to the primary (master_link_status:up)",
          lambda: _info(ports["replica"], password, "replication").get("master_link_status") == "up",
          d["replica"] / "redis.log")
    if notes:
        say(f"  {NAME:<10} {', '.join(notes)}: primary 127.0.0.1:{ports['primary']}, replica :{ports['replica']}")
    return env(state_dir, ports, password)


def env(state_dir: Path, ports: dict | None = None, password: str | None = None) -> dict[str, str]:
    if ports is None or password is None:
        loaded = _load(state_dir, create=False)
        if loaded is None:
            return {}
        ports, password = loaded
    pw = urllib.parse.quote(password, safe="")
    return {
        "AIRFLOW_CONN_LIFEBOAT_REDIS_US_WEST_2": f"redis://:{pw}@127.0.0.1:{ports['primary']}/0",
        "AIRFLOW_CONN_LIFEBOAT_REDIS_US_EAST_1": f"redis://:{pw}@127.0.0.1:{ports['replica']}/0",
        "LIFEBOAT_REDIS_PRIMARY_DIR": str(_dirs(state_dir)["primary"] / "data"),
        "LIFEBOAT_REDIS_REPLICA_DIR": str(_dirs(state_dir)["replica"] / "data"),  # us-east-1's `dir`
        "LIFEBOAT_REDIS_PRIMARY_PORT": str(ports["primary"]),
        "LIFEBOAT_REDIS_REPLICA_PORT": str(ports["replica"]),
    }


def down(state_dir: Path, say) -> str:
    d = _dirs(state_dir)
    res = [f"{role} {_stop(d[role])}" for role in reversed(ROLES)]
    return ", ".join(res)


def status(state_dir: Path) -> dict:
    d = _dirs(state_dir)
    loaded = _load(state_dir, create=False)
    if loaded is None:
        return {"running": False, "error": "not initialised (run `stack.py up`)",
                "log": str(d["primary"] / "redis.log")}
    ports, password = loaded
    up_ = {r: bool(_pid(d[r])) and _ping(ports[r], password) for r in ROLES}
    res = {"running": all(up_.values()), "pid": _pid(d["primary"]), "port": ports["primary"],
           "replica_port": ports["replica"],
           "log": str(d["replica" if up_["primary"] and not up_["replica"] else "primary"] / "redis.log")}
    if up_["replica"]:
        try:
            res["replication"] = _info(ports["replica"], password, "replication").get("master_link_status", "?")
        except (OSError, RuntimeError, ConnectionError) as exc:
            res["replication"] = f"unknown ({exc})"
    if up_["primary"]:
        try:
            p = _info(ports["primary"], password, "persistence")
            res["status"] = f"aof_enabled={p.get('aof_enabled')}"
        except (OSError, RuntimeError, ConnectionError):
            pass
    return res

#!/usr/bin/env python3
"""Lifeboat local devstack (stdlib only, Python >= 3.11).

Runs, all on 127.0.0.1:
  * PostgreSQL 15 primary ("us-west-2") with WAL archiving to pgBackRest,
  * a streaming hot standby ("us-east-1") fed through slot standby_us_east_1,
  * one moto S3 endpoint per region, so either region's object storage can be lost on its own:
      moto            us-east-1: bucket lifeboat-us-east-1, and the global APIs the components use
                      (Route 53, CloudFront, SNS -- AWS runs their control planes in us-east-1)
      moto_us_west_2  us-west-2: bucket lifeboat-us-west-2

Usage:
    python devstack/stack.py up            # idempotent; fast no-op when already running
    python devstack/stack.py down [--wipe] # stop everything (keep data unless --wipe)
    python devstack/stack.py status [--json]
    python devstack/stack.py env           # print the path of the env file

State lives in $LIFEBOAT_STACK_DIR (default: <repo>/.stack).  Ports are picked once
and kept in <state>/stack.json; passwords live in <state>/secrets.json (0600).

Library use (e.g. from pytest):
    from devstack import stack   # or importlib on devstack/stack.py
    env = stack.up(state_dir)     # -> dict of the variables written to <state>/env
    stack.down(state_dir, wipe=True)
"""
from __future__ import annotations

import argparse
import base64
import contextlib
import fcntl
import grp
import hashlib
import hmac
import json
import os
import pwd
import secrets as _secrets
import shlex
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

try:
    from devstack.components import _common
except ImportError:  # run as a script: python devstack/stack.py
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from devstack.components import _common

__all__ = ["StackError", "down", "env_path", "moto", "parse_env_file", "read_env", "status", "up"]

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_PG_BIN = "/usr/lib/postgresql/15/bin"
STANZA = "community"
DB_NAME = "community"
SLOT = "standby_us_east_1"
BUCKETS = {"lifeboat-us-west-2": "us-west-2", "lifeboat-us-east-1": "us-east-1"}
# region -> the stack.json port key of its moto (us-east-1's also serves the global APIs)
MOTO_PORTS = {"us-east-1": "moto", "us-west-2": "moto_us_west_2"}
PORT_KEYS = ("pg_primary", "pg_standby", *MOTO_PORTS.values())
WAIT_S = 60.0
LAYOUT_VERSION = 1
INCLUDE_LINE = "include 'lifeboat.conf'  # devstack/stack.py settings"

PG_HBA = """\
# Managed by devstack/stack.py -- rewritten on every full `up`.
# TYPE  DATABASE     USER        ADDRESS        METHOD
local   all          all                        peer
host    all          all         127.0.0.1/32   scram-sha-256
host    replication  replicator  127.0.0.1/32   scram-sha-256
"""


class StackError(RuntimeError):
    """A component failed; message names the component and its log file."""

    def __init__(self, component: str, message: str, log: Path | str | None = None,
                 detail: str = ""):
        self.component = component
        self.log = str(log) if log else None
        self.detail = detail
        text = f"[{component}] {message}"
        if detail.strip():
            text += "\n" + "\n".join("    " + ln for ln in detail.strip().splitlines()[-12:])
        if log:
            text += f"\n  log: {log}"
        super().__init__(text)


# --------------------------------------------------------------------------- helpers

_HTTP = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never via a proxy


def _http(method: str, url: str, body: bytes | None = None,
          headers: dict | None = None, timeout: float = 3.0) -> tuple[int, dict, bytes]:
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with _HTTP.open(req, timeout=timeout) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers or {}), e.read()


_port_open = _common.port_open


_free_port = _common.free_port
_proc_alive = _common.proc_alive


def _tail(path: Path, n: int = 8) -> str:
    return _common.tail(path, n)


def _wait_for(what: str, pred: Callable[[], object], *, component: str,
              log: Path | None = None, timeout: float = WAIT_S, interval: float = 0.2):
    return _common.wait_for(what, pred, timeout=timeout, interval=interval,
                            fail=lambda message, last: StackError(component, message, log, last))


def _sh_quote(value: str) -> str:
    return "'" + value.replace("'", "'\"'\"'") + "'"


def _pg_quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def parse_env_file(path: Path | str) -> dict[str, str]:
    """Parse the `export K='V'` lines written by this script."""
    out: dict[str, str] = {}
    for raw_line in Path(path).read_text().splitlines():
        line = raw_line.strip()
        if not line or line.startswith("#"):
            continue
        line = line.removeprefix("export ")
        key, sep, raw = line.partition("=")
        if not sep:
            continue
        parts = shlex.split(raw)
        out[key.strip()] = parts[0] if parts else ""
    return out


def _scram_verifier(password: str, salt: bytes | None = None, iterations: int = 4096) -> str:
    salt = salt if salt is not None else os.urandom(16)
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", "sha256").digest()
    server_key = hmac.new(salted, b"Server Key", "sha256").digest()
    b64 = lambda b: base64.b64encode(b).decode()  # noqa: E731
    return (f"SCRAM-SHA-256${iterations}:{b64(salt)}$"
            f"{b64(hashlib.sha256(client_key).digest())}:{b64(server_key)}")


def _scram_matches(verifier: str | None, password: str) -> bool:
    try:
        head, _keys = verifier.split("$", 1)[1].split("$")  # type: ignore[union-attr]
        iters, salt = head.split(":")
        return hmac.compare_digest(
            _scram_verifier(password, base64.b64decode(salt), int(iters)), verifier)  # type: ignore[arg-type]
    except (AttributeError, ValueError, IndexError):
        return False


# --------------------------------------------------------------------------- the stack

class _Stack:
    def __init__(self, state_dir: Path | str | None = None, quiet: bool = False):
        raw = state_dir or os.environ.get("LIFEBOAT_STACK_DIR") or (REPO_ROOT / ".stack")
        self.dir = Path(os.path.abspath(os.path.expanduser(str(raw))))
        self.quiet = quiet
        self.is_root = os.geteuid() == 0
        self.pg_user = "postgres" if self.is_root else pwd.getpwuid(os.geteuid()).pw_name
        self.pg_bin = Path(os.environ.get("LIFEBOAT_PG_BIN") or DEFAULT_PG_BIN)
        d = self.dir
        self.run_dir = d / "run"
        self.pg_dir = d / "pg"
        self.primary = self.pg_dir / "primary"
        self.standby = self.pg_dir / "standby"
        self.pgbr_dir = d / "pgbackrest"
        self.pgbr_conf = self.pgbr_dir / "pgbackrest.conf"
        self.repo_dir = d / "repo"
        self.repo_w2 = self.repo_dir / "us-west-2"
        self.repo_e1 = self.repo_dir / "us-east-1"
        self.pgbr_repo = self.repo_w2 / "postgres" / "pgbackrest"
        # us-east-1's pgBackRest: the standby as pg1, the us-east-1 copy of the repository (the mirror
        # keeps it current); the promoted standby archives into it (archive_mode=on does nothing before)
        self.pgbr_dir_e1 = self.pgbr_dir / "us-east-1"
        self.pgbr_conf_e1 = self.pgbr_dir / "pgbackrest-us-east-1.conf"
        self.pgbr_repo_e1 = self.repo_e1 / "postgres" / "pgbackrest"
        self.motos = {region: _Moto(d, region) for region in MOTO_PORTS}
        self.stack_json = d / "stack.json"
        self.secrets_json = d / "secrets.json"
        self.env_file = d / "env"
        self.ready_file = d / ".ready"
        self.cfg: dict = {}
        self.secrets: dict = {}
        self.component_env: dict[str, str] = {}  # env vars of the optional components (components_up)

    # ---- small utilities
    def say(self, msg: str) -> None:
        if not self.quiet:
            print(msg, flush=True)

    @property
    def ports(self) -> dict[str, int]:
        return self.cfg["ports"]

    @property
    def s3_endpoint(self) -> str:
        """The primary region's (us-west-2) S3 endpoint; `endpoint_of(region)` for either."""
        return self.endpoint_of("us-west-2")

    def endpoint_of(self, region: str) -> str:
        return f"http://127.0.0.1:{self.ports[MOTO_PORTS[region]]}"

    def pg_ids(self) -> tuple[int, int]:
        try:
            pw = pwd.getpwnam(self.pg_user)
        except KeyError:
            raise StackError("primary", f"OS user {self.pg_user!r} does not exist "
                             "(install postgresql-15: `make bootstrap`)") from None
        return pw.pw_uid, pw.pw_gid

    def chown_pg(self, path: Path) -> None:
        if self.is_root:
            uid, gid = self.pg_ids()
            os.chown(path, uid, gid)

    def as_pg(self, cmd: list) -> list[str]:
        cmd = [str(c) for c in cmd]
        return ["runuser", "-u", self.pg_user, "--", *cmd] if self.is_root else cmd

    def pg_env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        path = env.get("PATH", "")
        for p in ("/usr/local/bin", "/usr/bin", "/bin"):
            if p not in path.split(":"):
                path = f"{path}:{p}" if path else p
        env["PATH"] = path
        return env

    def run(self, cmd: list, *, component: str, log: Path | None = None, as_pg: bool = False,
            input: str | None = None, env: dict | None = None, timeout: float = 180,
            check: bool = True) -> subprocess.CompletedProcess:
        full = self.as_pg(cmd) if as_pg else [str(c) for c in cmd]
        try:
            p = subprocess.run(full, input=input, capture_output=True, text=True,
                               env=env if env is not None else self.pg_env(),
                               cwd=self.dir if self.dir.is_dir() else "/", timeout=timeout, check=False)
        except subprocess.TimeoutExpired:
            raise StackError(component, f"`{Path(str(cmd[0])).name} {' '.join(map(str, cmd[1:3]))} ...` "
                             f"timed out after {timeout:.0f}s", log) from None
        except FileNotFoundError as e:
            raise StackError(component, f"cannot run {e.filename}: not installed? (`make bootstrap`)") from None
        if check and p.returncode != 0:
            name = Path(str(cmd[0])).name
            sub = next((str(c) for c in cmd[1:] if not str(c).startswith("-")), "")
            raise StackError(component, f"`{name} {sub}` failed (rc={p.returncode})", log,
                             (p.stderr or "") + (p.stdout or ""))
        return p

    def write_file(self, path: Path, content: str, mode: int = 0o600, pg_owned: bool = False) -> bool:
        """Atomically write content; return True when it changed."""
        return _common.write_atomic(path, content, mode, self.chown_pg if pg_owned else None)

    def mkdir_pg(self, path: Path, mode: int = 0o750) -> None:
        path.mkdir(parents=True, exist_ok=True)
        self.chown_pg(path)
        os.chmod(path, mode)

    def fix_owner_tree(self, root: Path) -> None:
        """Make a tree owned by the postgres OS user (repairs files created by root)."""
        if not self.is_root or not root.exists():
            return
        uid, gid = self.pg_ids()
        for dirpath, dirnames, filenames in os.walk(root):
            for name in [dirpath, *(os.path.join(dirpath, n) for n in dirnames + filenames)]:
                st = os.lstat(name)
                if st.st_uid != uid or st.st_gid != gid:
                    os.lchown(name, uid, gid)

    def ensure_traversable(self) -> None:
        """postgres must be able to reach <state>/run and the data dirs."""
        if not self.is_root:
            return
        uid, gid = self.pg_ids()
        groups = {gid} | {g.gr_gid for g in grp.getgrall() if self.pg_user in g.gr_mem}
        for p in reversed([self.dir, *self.dir.parents]):
            st = os.stat(p)
            ok = (st.st_uid == uid and st.st_mode & 0o100) or \
                 (st.st_gid in groups and st.st_mode & 0o010) or (st.st_mode & 0o001)
            if not ok:
                os.chmod(p, st.st_mode | 0o001)
                self.say(f"  note: chmod o+x {p} (so {self.pg_user} can reach the socket dir)")

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        self.dir.mkdir(parents=True, exist_ok=True)
        with open(self.dir / ".lock", "w") as fh:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                self.say(f"waiting for another stack.py holding {self.dir / '.lock'} ...")
                fcntl.flock(fh, fcntl.LOCK_EX)
            yield

    # ---- configuration / secrets
    def load_config(self, create: bool) -> bool:
        if self.stack_json.exists():
            self.cfg = json.loads(self.stack_json.read_text())
            missing = [k for k in PORT_KEYS if k not in self.cfg["ports"]]
            if missing and create:  # a stack from before a port was added: pick it once, keep the others
                used = set(self.cfg["ports"].values())
                for name in missing:
                    self.cfg["ports"][name] = _free_port(used)
                    used.add(self.cfg["ports"][name])
                self.write_file(self.stack_json, json.dumps(self.cfg, indent=2) + "\n", 0o644)
            elif missing:
                return False
        elif create:
            used: set[int] = set()
            ports = {}
            for name in PORT_KEYS:
                ports[name] = _free_port(used)
                used.add(ports[name])
            self.cfg = {"layout": LAYOUT_VERSION, "ports": ports,
                        "compress_type": self.detect_compress_type()}
            self.write_file(self.stack_json, json.dumps(self.cfg, indent=2) + "\n", 0o644)
        else:
            return False
        for m in self.motos.values():
            m.port = self.cfg["ports"][MOTO_PORTS[m.region]]
        if self.secrets_json.exists():
            self.secrets = json.loads(self.secrets_json.read_text())
        elif create:
            self.secrets = {"lifeboat": _secrets.token_urlsafe(24),
                            "replicator": _secrets.token_urlsafe(24)}
            self.write_file(self.secrets_json, json.dumps(self.secrets, indent=2) + "\n", 0o600)
        else:
            return False
        return True

    def detect_compress_type(self) -> str:
        exe = shutil.which("pgbackrest")
        if exe:
            try:
                out = subprocess.run(["ldd", exe], capture_output=True, text=True, timeout=10, check=False).stdout
                if "liblz4" in out:
                    return "lz4"
            except (OSError, subprocess.SubprocessError):
                pass
        return "gz"

    @staticmethod
    def cluster_name(role: str) -> str:
        return "lifeboat_us_west_2" if role == "primary" else "lifeboat_us_east_1"

    def render_pg_conf(self, role: str) -> str:
        port = self.ports["pg_primary" if role == "primary" else "pg_standby"]
        lines = [
            "# Managed by devstack/stack.py -- rewritten on every full `up`.",
            "listen_addresses = '127.0.0.1'",
            f"port = {port}",
            f"unix_socket_directories = {_pg_quote(str(self.run_dir))}",
            f"cluster_name = '{self.cluster_name(role)}'",
            "wal_level = replica",
            "max_wal_senders = 10",
            "max_replication_slots = 10",
            "hot_standby = on",
            "shared_buffers = 128MB",
        ]
        # The standby archives only once promoted (archive_mode=on is inert in recovery): into its own
        # region's copy of the pgBackRest repository.
        conf = self.pgbr_conf if role == "primary" else self.pgbr_conf_e1
        cmd = f"pgbackrest --config={shlex.quote(str(conf))} --stanza={STANZA} archive-push %p"
        lines += ["archive_mode = on", f"archive_command = {_pg_quote(cmd)}", "archive_timeout = 30"]
        lines += [
            "logging_collector = on",
            "log_directory = 'log'",
            "log_filename = 'postgresql.log'",
            "log_rotation_age = 0",
            "log_rotation_size = 0",
            "log_line_prefix = '%m [%p] %q%u@%d '",
        ]
        return "\n".join(lines) + "\n"

    def render_pgbr_conf(self, region: str = "us-west-2") -> str:
        primary = region == "us-west-2"
        b = self.pgbr_dir if primary else self.pgbr_dir_e1
        conf = self.pgbr_conf if primary else self.pgbr_conf_e1
        repo = self.pgbr_repo if primary else self.pgbr_repo_e1
        data, port = (self.primary, self.ports["pg_primary"]) if primary else (self.standby, self.ports["pg_standby"])
        return f"""\
# Managed by devstack/stack.py -- rewritten on every full `up`.
# Run pgbackrest as the '{self.pg_user}' OS user, e.g.
# {region}: runuser -u {self.pg_user} -- pgbackrest --config={conf} --stanza={STANZA} info
[global]
repo1-path={repo}
repo1-retention-full-type=count
repo1-retention-full=9999999
start-fast=y
process-max=2
compress-type={self.cfg.get('compress_type', 'gz')}
log-path={b / 'log'}
lock-path={b / 'lock'}
spool-path={b / 'spool'}
log-level-console=info
log-level-file=detail
archive-async=n

[{STANZA}]
pg1-path={data}
pg1-port={port}
pg1-socket-path={self.run_dir}
pg1-user={self.pg_user}
"""

    def env_mapping(self) -> dict[str, str]:
        p, s = self.ports["pg_primary"], self.ports["pg_standby"]
        pw = urllib.parse.quote(self.secrets["lifeboat"], safe="")
        def s3_conn(region: str) -> str:
            return json.dumps({"conn_type": "aws", "login": "testing", "password": "testing",
                               "extra": {"endpoint_url": self.endpoint_of(region), "region_name": region}},
                              separators=(",", ":"))
        rpw = urllib.parse.quote(self.secrets["replicator"], safe="")
        return {
            "LIFEBOAT_STACK_DIR": str(self.dir),
            "LIFEBOAT_PG_BIN": str(self.pg_bin),
            "LIFEBOAT_PG_OS_USER": self.pg_user,
            "LIFEBOAT_PG_PRIMARY_PORT": str(p),
            "LIFEBOAT_PG_STANDBY_PORT": str(s),
            "LIFEBOAT_PG_PRIMARY_DATA": str(self.primary),
            "LIFEBOAT_PG_STANDBY_DATA": str(self.standby),
            "LIFEBOAT_PG_SOCKET_DIR": str(self.run_dir),
            "LIFEBOAT_PGBACKREST_CONF": str(self.pgbr_conf),
            "LIFEBOAT_PGBACKREST_CONF_US_EAST_1": str(self.pgbr_conf_e1),
            "LIFEBOAT_PGBACKREST_STANZA": STANZA,
            "LIFEBOAT_REPO_PRIMARY": f"file://{self.repo_w2}",
            "LIFEBOAT_REPO_STANDBY": f"file://{self.repo_e1}",
            "LIFEBOAT_S3_ENDPOINT": self.s3_endpoint,  # the primary region's
            "LIFEBOAT_S3_ENDPOINT_US_WEST_2": self.endpoint_of("us-west-2"),
            "LIFEBOAT_S3_ENDPOINT_US_EAST_1": self.endpoint_of("us-east-1"),
            "LIFEBOAT_AWS_GLOBAL_ENDPOINT": self.endpoint_of("us-east-1"),  # Route 53, CloudFront, SNS
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-west-2",
            "AIRFLOW_CONN_LIFEBOAT_PG_US_WEST_2": f"postgresql://lifeboat:{pw}@127.0.0.1:{p}/{DB_NAME}",
            "AIRFLOW_CONN_LIFEBOAT_PG_US_EAST_1": f"postgresql://lifeboat:{pw}@127.0.0.1:{s}/{DB_NAME}",
            # the REPLICATION role (pg_receivewal, options.wal_stream)
            "AIRFLOW_CONN_LIFEBOAT_PG_REPL_US_WEST_2": f"postgresql://replicator:{rpw}@127.0.0.1:{p}/{DB_NAME}",
            "LIFEBOAT_PG_WALSTREAM_DIR": str(self.repo_w2 / "postgres" / "walstream"),
            "AIRFLOW_CONN_LIFEBOAT_S3": s3_conn("us-west-2"),
            "AIRFLOW_CONN_LIFEBOAT_S3_US_WEST_2": s3_conn("us-west-2"),  # the inventory's repository connections
            "AIRFLOW_CONN_LIFEBOAT_S3_US_EAST_1": s3_conn("us-east-1"),
            **self.component_env,
        }

    def render_env(self) -> str:
        lines = ["# Lifeboat devstack environment -- generated by devstack/stack.py up.",
                 "# bash: source this file.  python: devstack.stack.parse_env_file(path)."]
        lines += [f"export {k}={_sh_quote(v)}" for k, v in self.env_mapping().items()]
        return "\n".join(lines) + "\n"

    def fingerprint(self) -> str:
        h = hashlib.sha256()
        for part in (str(LAYOUT_VERSION), self.render_pg_conf("primary"), self.render_pg_conf("standby"),
                     PG_HBA, self.render_pgbr_conf(), self.render_pgbr_conf("us-east-1"), self.render_env()):
            h.update(part.encode() + b"\0")
        return h.hexdigest()

    # ---- postgres primitives
    def pg_complete(self, data: Path) -> bool:
        try:
            return ((data / "PG_VERSION").is_file() and (data / "global" / "pg_control").is_file()
                    and INCLUDE_LINE in (data / "postgresql.conf").read_text())
        except OSError:
            return False

    def postmaster_pid(self, data: Path) -> int | None:
        """pid of a live postmaster for data dir (reads postmaster.pid, checks /proc)."""
        try:
            pid = int((data / "postmaster.pid").read_text().splitlines()[0])
        except (OSError, ValueError, IndexError):
            return None
        return pid if _proc_alive(pid, b"postgres") else None

    def pg_log(self, data: Path) -> Path:
        return data / "log" / "postgresql.log"

    def pg_ctl(self, component: str, data: Path, *args: str, timeout: float = WAIT_S + 15) -> None:
        startup = data / "log" / "startup.log"
        try:
            self.run([self.pg_bin / "pg_ctl", "-D", data, "-l", startup, "-w", "-t", str(int(WAIT_S)), *args],
                     component=component, log=self.pg_log(data), as_pg=True, timeout=timeout)
        except StackError as e:
            extra = "\n".join(t for t in (_tail(startup, 4), _tail(self.pg_log(data), 6)) if t)
            raise StackError(component, f"pg_ctl {args[-1]} failed", self.pg_log(data),
                             e.detail.strip() + "\n" + extra) from None

    def start_pg(self, component: str, data: Path, port: int, restart: bool) -> str:
        (data / "log").mkdir(exist_ok=True)
        self.chown_pg(data / "log")
        pid = self.postmaster_pid(data)
        if pid and restart:
            self.pg_ctl(component, data, "-m", "fast", "restart")
            return "restarted (config changed)"
        if pid:
            _wait_for(f"{component} to listen on 127.0.0.1:{port}", lambda: _port_open(port),
                      component=component, log=self.pg_log(data))
            return f"already running (pid {pid})"
        orphans = self.reap_orphans(component, data)
        if _port_open(port):
            raise StackError(component, f"port {port} is in use by another process; free it or "
                             f"edit ports in {self.stack_json}", self.pg_log(data))
        self.pg_ctl(component, data, "start")
        return "started" + (f" (cleaned up {orphans} orphans of a crashed postmaster)" if orphans else "")

    def reap_orphans(self, component: str, data: Path) -> int:
        """After a postmaster crash (kill -9) its children keep the shared memory attached and
        the new postmaster refuses to start; wait for them to exit, then kill them."""
        if not (data / "postmaster.pid").exists():
            return 0
        prefix = f"postgres: {self.cluster_name(component)}:".encode()

        def orphans() -> list[int]:
            out = []
            for d in Path("/proc").iterdir():
                if d.name.isdigit():
                    with contextlib.suppress(OSError):
                        # Every stack names its clusters alike: only children of *this* data
                        # directory (a postgres process's cwd is its PGDATA) are ours to kill.
                        if ((d / "cmdline").read_bytes().startswith(prefix)
                                and os.readlink(d / "cwd") == str(data.resolve())
                                and _proc_alive(int(d.name))):
                            out.append(int(d.name))
            return out

        found = orphans()
        deadline = time.monotonic() + 15
        while orphans() and time.monotonic() < deadline:
            time.sleep(0.2)
        for sig in (signal.SIGQUIT, signal.SIGKILL):
            left = orphans()
            for pid in left:
                with contextlib.suppress(OSError):
                    os.kill(pid, sig)
            if left:
                time.sleep(2)
        # The dead postmaster may linger as a zombie when PID 1 does not reap (containers,
        # firecracker init); postgres then treats the pid in postmaster.pid as alive.
        if not self.postmaster_pid(data):
            port = self.ports["pg_primary" if component == "primary" else "pg_standby"]
            for lock in (data / "postmaster.pid", self.run_dir / f".s.PGSQL.{port}.lock"):
                with contextlib.suppress(OSError, ValueError, IndexError):
                    if not _proc_alive(int(lock.read_text().splitlines()[0])):
                        lock.unlink()
        return len(found)

    def stop_pg(self, component: str, data: Path) -> str:
        if not self.postmaster_pid(data):
            return "not running"
        try:
            self.pg_ctl(component, data, "-m", "fast", "stop")
        except StackError:
            self.pg_ctl(component, data, "-m", "immediate", "stop")
            return "stopped (immediate)"
        return "stopped"

    def psql(self, sql: str, *, port: int | None = None, db: str = "postgres",
             component: str = "primary", log: Path | None = None) -> str:
        port = port or self.ports["pg_primary"]
        p = self.run([self.pg_bin / "psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
                      "-h", self.run_dir, "-p", str(port), "-U", self.pg_user, "-d", db, "-f", "-"],
                     component=component, log=log or self.pg_log(self.primary), as_pg=True,
                     input=sql, timeout=60)
        return p.stdout.strip()

    def controldata(self, data: Path) -> dict[str, str]:
        p = self.run([self.pg_bin / "pg_controldata", "-D", data], component="standby",
                     as_pg=True, check=False, timeout=30)
        out = {}
        for line in p.stdout.splitlines():
            k, _, v = line.partition(":")
            out[k.strip()] = v.strip()
        return out

    def repo_has_stanza(self) -> bool:
        return any((self.pgbr_repo / sub / STANZA / f"{sub}.info").exists() for sub in ("archive", "backup"))

    # ---- components
    def prepare_dirs(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.dir, 0o755)
        self.ensure_traversable()
        self.mkdir_pg(self.run_dir, 0o755)
        self.mkdir_pg(self.pg_dir, 0o750)
        self.mkdir_pg(self.pgbr_dir, 0o750)
        for sub in ("log", "lock", "spool"):
            self.mkdir_pg(self.pgbr_dir / sub, 0o750)
            self.mkdir_pg(self.pgbr_dir_e1 / sub, 0o750)
        self.mkdir_pg(self.repo_dir, 0o755)
        for p in (self.repo_w2, self.repo_e1, self.repo_w2 / "postgres", self.pgbr_repo, self.repo_e1 / "postgres",
                  self.pgbr_repo_e1):
            self.mkdir_pg(p, 0o750)
        # anything created as root by a careless `pgbackrest` run would break archive-push
        self.fix_owner_tree(self.pgbr_dir)
        self.fix_owner_tree(self.pgbr_repo)
        self.fix_owner_tree(self.pgbr_repo_e1)
        self.write_file(self.pgbr_conf, self.render_pgbr_conf(), 0o640, pg_owned=True)
        self.write_file(self.pgbr_conf_e1, self.render_pgbr_conf("us-east-1"), 0o640, pg_owned=True)

    def ensure_primary(self) -> str:
        data = self.primary
        note = ""
        if not self.pg_complete(data):
            if self.repo_has_stanza():
                raise StackError("primary", f"data dir {data} is missing/incomplete but the pgBackRest repo "
                                 f"{self.pgbr_repo} already holds stanza '{STANZA}'. Restore it "
                                 "(runuser -u postgres -- pgbackrest ... restore) or start over with "
                                 "`stack.py down --wipe`.")
            if data.exists():
                self.say(f"  primary: discarding incomplete data dir {data}")
                shutil.rmtree(data)
            if self.standby.exists():  # belongs to an older cluster
                self.stop_pg("standby", self.standby)
                shutil.rmtree(self.standby)
            self.run([self.pg_bin / "initdb", "-D", data, "--data-checksums", "--auth-local=peer",
                      "--auth-host=scram-sha-256", "--encoding=UTF8", "--locale=C", "-U", self.pg_user,
                      "--no-instructions"],
                     component="primary", as_pg=True, timeout=120, log=None)
            with open(data / "postgresql.conf", "a") as f:
                f.write(f"\n{INCLUDE_LINE}\n")
            note = "initdb + "
        changed = self.write_file(data / "lifeboat.conf", self.render_pg_conf("primary"), 0o600, pg_owned=True)
        changed |= self.write_file(data / "pg_hba.conf", PG_HBA, 0o600, pg_owned=True)
        return note + self.start_pg("primary", data, self.ports["pg_primary"], restart=changed)

    def ensure_roles(self) -> None:
        rows = self.psql("SELECT rolname || ' ' || coalesce(rolpassword, '') FROM pg_authid "
                         "WHERE rolname IN ('lifeboat', 'replicator');")
        current = dict(([*ln.split(" ", 1), ""])[:2] for ln in rows.splitlines() if ln.strip())
        sql = []
        for role, attrs in (("lifeboat", "LOGIN SUPERUSER"), ("replicator", "LOGIN REPLICATION")):
            if role not in current:
                sql.append(f"CREATE ROLE {role} {attrs};")
            sql.append(f"ALTER ROLE {role} {attrs};")
            if not _scram_matches(current.get(role), self.secrets[role]):
                sql.append(f"ALTER ROLE {role} PASSWORD '{_scram_verifier(self.secrets[role])}';")
        sql.append(f"SELECT 'CREATE DATABASE {DB_NAME} OWNER lifeboat' WHERE NOT EXISTS "
                   f"(SELECT 1 FROM pg_database WHERE datname = '{DB_NAME}')\\gexec")
        self.psql("\n".join(sql) + "\n")

    def pgbackrest(self, command: str, timeout: float = 180) -> subprocess.CompletedProcess:
        # pgBackRest 2.45 writes no log file for `check`/`archive-push`; archive-push output
        # (and failures) land in the primary's server log.
        log = self.pg_log(self.primary) if command == "check" else self.pgbr_dir / "log" / f"{STANZA}-{command}.log"
        return self.run(["pgbackrest", f"--config={self.pgbr_conf}", f"--stanza={STANZA}", command],
                        component="pgbackrest", as_pg=True, timeout=timeout, log=log)

    def ensure_stanza(self) -> None:
        self.pgbackrest("stanza-create")
        self.pgbackrest("check")

    def replication_state(self) -> str:
        return self.psql(
            "SELECT r.state FROM pg_stat_replication r JOIN pg_replication_slots s "
            f"ON s.active_pid = r.pid WHERE s.slot_name = '{SLOT}';")

    def base_backup(self) -> None:
        self.stop_pg("standby", self.standby)
        if self.standby.exists():
            shutil.rmtree(self.standby)
        self.psql(f"SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots "
                  f"WHERE slot_name = '{SLOT}' AND NOT active;")
        env = self.pg_env()
        env["PGPASSWORD"] = self.secrets["replicator"]  # never on argv
        self.run([self.pg_bin / "pg_basebackup", "-h", "127.0.0.1", "-p", str(self.ports["pg_primary"]),
                  "-U", "replicator", "-w", "-D", self.standby, "-R", "-X", "stream", "-C", "-S", SLOT,
                  "--checkpoint=fast"],
                 component="standby", as_pg=True, env=env, timeout=600, log=self.pg_log(self.primary))
        # do not inherit the primary's log files
        for f in (self.standby / "log").glob("*"):
            f.unlink()

    def ensure_standby(self) -> str:
        data = self.standby
        if self.pg_complete(data) and not (data / "standby.signal").exists():
            # promoted (failover drill?) -- never destroy it automatically
            st = self.start_pg("standby", data, self.ports["pg_standby"], restart=False)
            return f"{st}; PROMOTED (no standby.signal) -- left alone, `down --wipe` to reset"
        rebuild_reason = ""
        if not self.pg_complete(data):
            rebuild_reason = "no standby yet" if not data.exists() else "incomplete data dir"
        else:
            sys_p = self.controldata(self.primary).get("Database system identifier")
            sys_s = self.controldata(data).get("Database system identifier")
            if sys_p != sys_s:
                rebuild_reason = "system identifier differs from primary"
        for attempt in (1, 2):
            notes = []
            if rebuild_reason:
                if data.exists():
                    self.say(f"  standby: rebuilding ({rebuild_reason})")
                self.base_backup()
                notes.append("pg_basebackup")
            else:
                exists = self.psql(f"SELECT count(*) FROM pg_replication_slots WHERE slot_name = '{SLOT}';")
                if exists == "0":
                    self.psql(f"SELECT pg_create_physical_replication_slot('{SLOT}', true);")
            changed = self.write_file(data / "lifeboat.conf", self.render_pg_conf("standby"), 0o600, pg_owned=True)
            changed |= self.write_file(data / "pg_hba.conf", PG_HBA, 0o600, pg_owned=True)
            notes.append(self.start_pg("standby", data, self.ports["pg_standby"], restart=changed))
            try:
                _wait_for(f"pg_stat_replication on the primary to show slot {SLOT} streaming",
                          lambda: self.replication_state() == "streaming", component="standby",
                          log=self.pg_log(data), timeout=WAIT_S if attempt == 2 else 20)
                return ", ".join(notes) + ", streaming"
            except StackError:
                if attempt == 2:
                    raise
                rebuild_reason = "it did not start streaming"
        raise AssertionError("unreachable")

    def moto_start(self) -> str:
        """Start every region's moto (non-blocking) unless healthy; moto_finish() waits."""
        return ", ".join(f"{m.name} {m.start(self.say)}" for m in self.motos.values())

    def moto_finish(self) -> None:
        for m in self.motos.values():
            m.finish()

    def buckets_ok(self) -> bool:
        return all(m.buckets_ok() for m in self.motos.values())

    def stop_moto(self) -> str:
        return ", ".join(f"{m.name} {m.stop()}" for m in self.motos.values())

    # ---- top level
    def fast_ok(self) -> bool:
        try:
            if self.ready_file.read_text().strip() != self.fingerprint() or not self.env_file.exists():
                return False
        except (OSError, KeyError):
            return False
        for data, port in ((self.primary, self.ports["pg_primary"]), (self.standby, self.ports["pg_standby"])):
            if not self.postmaster_pid(data) or not _port_open(port):
                return False
        return all(m.running_pid() for m in self.motos.values()) and self.buckets_ok()

    def up(self) -> dict[str, str]:
        t0 = time.monotonic()
        self.components()  # refuses an unknown LIFEBOAT_STACK_COMPONENTS before anything starts
        if self.load_config(create=False) and self.fast_ok():
            self.components_up(quiet_when_ok=True)
            self.write_file(self.env_file, self.render_env(), 0o600)
            p = self.ports
            self.say(f"lifeboat stack already up ({time.monotonic() - t0:.2f}s): primary :{p['pg_primary']}, "
                     f"standby :{p['pg_standby']}, s3 :{p['moto_us_west_2']} / :{p['moto']}  -- source "
                     f"{self.env_file}")
            return self.env_mapping()
        self.say(f"lifeboat stack up: {self.dir}")
        self.load_config(create=True)
        with contextlib.suppress(FileNotFoundError):
            self.ready_file.unlink()
        if not (self.pg_bin / "initdb").exists():
            raise StackError("primary", f"{self.pg_bin}/initdb not found -- install postgresql-15 "
                             "(`make bootstrap`) or set LIFEBOAT_PG_BIN")
        if not shutil.which("pgbackrest"):
            raise StackError("pgbackrest", "pgbackrest not on PATH -- `make bootstrap`")
        self.prepare_dirs()
        moto_note = self.moto_start()  # boots in the background while postgres comes up

        def step(name: str, fn: Callable[[], object], where: str = "") -> None:
            t = time.monotonic()
            res = fn()
            self.say(f"  {name:<10} {(res or 'ok')!s:<46} {where} [{time.monotonic() - t:.1f}s]")

        p = self.ports
        step("primary", self.ensure_primary, f"127.0.0.1:{p['pg_primary']}")
        step("roles", lambda: (self.ensure_roles(), f"lifeboat, replicator, db {DB_NAME}")[1])
        step("pgbackrest", lambda: (self.ensure_stanza(), f"stanza {STANZA}: stanza-create + check ok")[1])
        step("standby", self.ensure_standby, f"127.0.0.1:{p['pg_standby']}")
        step("moto", lambda: (self.moto_finish(), f"{moto_note}, buckets ok")[1],
             " ".join(self.endpoint_of(r) for r in MOTO_PORTS))
        self.components_up(quiet_when_ok=False)
        self.write_file(self.env_file, self.render_env(), 0o600)
        self.write_file(self.ready_file, self.fingerprint() + "\n", 0o644)
        self.say(f"ready in {time.monotonic() - t0:.1f}s -- source {self.env_file}")
        return self.env_mapping()

    # ---- optional components: devstack/components/<name>.py (one module per datastore server)
    def components(self) -> list:
        import importlib

        folder = Path(__file__).resolve().parent / "components"
        if str(REPO_ROOT) not in sys.path:
            sys.path.insert(0, str(REPO_ROOT))
        # LIFEBOAT_STACK_COMPONENTS=redis,platform_api limits a stack to some components (default: all)
        wanted = {c.strip() for c in os.environ.get("LIFEBOAT_STACK_COMPONENTS", "").split(",") if c.strip()}
        known = [f.stem for f in sorted(folder.glob("*.py")) if not f.name.startswith("_")] if folder.is_dir() else []
        unknown = sorted(wanted - set(known))
        if unknown:  # a typo must not silently start a stack without the component
            raise StackError("components", f"LIFEBOAT_STACK_COMPONENTS: unknown component(s) {', '.join(unknown)} "
                             f"(known: {', '.join(known)})")
        return [importlib.import_module(f"devstack.components.{n}") for n in known if not wanted or n in wanted]

    def components_up(self, quiet_when_ok: bool) -> None:
        """Each component module offers up(state_dir, say) -> env dict (idempotent, fast when already
        running), down(state_dir, say) -> str and status(state_dir) -> dict with a 'running' key."""
        self.component_env = {}
        for mod in self.components():
            t = time.monotonic()
            env = mod.up(self.dir, (lambda m: None) if quiet_when_ok else self.say)
            self.component_env.update(env or {})
            if not quiet_when_ok:
                self.say(f"  {mod.NAME:<10} {'ok':<46} [{time.monotonic() - t:.1f}s]")

    def down(self, wipe: bool) -> None:
        mods = self.components()  # an unknown LIFEBOAT_STACK_COMPONENTS is refused before anything stops
        with contextlib.suppress(FileNotFoundError):
            self.ready_file.unlink()
        self.say(f"lifeboat stack down: {self.dir}")
        for mod in reversed(mods):
            self.say(f"  {mod.NAME:<10} {mod.down(self.dir, self.say)}")
        self.say(f"  moto       {self.stop_moto()}")
        for name, data in (("standby", self.standby), ("primary", self.primary)):
            if (data / "PG_VERSION").exists():
                self.say(f"  {name:<10} {self.stop_pg(name, data)}")
        if wipe:
            self.wipe()

    def wipe(self) -> None:
        d = self.dir
        forbidden = {Path("/"), Path.home(), REPO_ROOT, *REPO_ROOT.parents}
        if d in forbidden or not (self.stack_json.exists() or not any(
                x.name != ".lock" for x in d.iterdir())):
            raise StackError("state", f"refusing to wipe {d}: it does not look like a stack dir (no stack.json)")
        for data in (self.standby, self.primary):
            if self.postmaster_pid(data):
                raise StackError("state", f"refusing to wipe {d}: postgres still running in {data}",
                                 self.pg_log(data))
        shutil.rmtree(d)
        self.say(f"  wiped      {d}")

    def status(self) -> dict:
        res: dict = {"state_dir": str(self.dir), "env_file": str(self.env_file), "components": {}}
        comps = res["components"]
        if not self.load_config(create=False):
            res["ok"] = False
            res["error"] = "not initialised (run `stack.py up`)"
            return res
        p = self.ports
        for name, data, port in (("primary", self.primary, p["pg_primary"]),
                                 ("standby", self.standby, p["pg_standby"])):
            pid = self.postmaster_pid(data)
            comps[name] = {"running": bool(pid and _port_open(port)), "pid": pid, "port": port,
                           "data": str(data), "log": str(self.pg_log(data))}
        if comps["primary"]["running"]:
            try:
                comps["standby"]["replication"] = self.replication_state() or "not connected"
            except StackError as e:
                comps["standby"]["replication"] = f"unknown ({e.component} query failed)"
            promoted = self.pg_complete(self.standby) and not (self.standby / "standby.signal").exists()
            if promoted:
                comps["standby"]["replication"] = "PROMOTED"
            try:
                info = json.loads(self.run(["pgbackrest", f"--config={self.pgbr_conf}", f"--stanza={STANZA}",
                                            "--output=json", "info"], component="pgbackrest",
                                           as_pg=True, timeout=60).stdout)[0]
                # code 2 = "no valid backups" is fine: the project takes the backups
                comps["pgbackrest"] = {"running": info["status"]["code"] in (0, 2),
                                       "status": info["status"]["message"],
                                       "backups": len(info.get("backup", [])),
                                       "log": str(self.pgbr_dir / "log")}
            except (StackError, ValueError, LookupError) as e:
                comps["pgbackrest"] = {"running": False, "status": str(e).splitlines()[0],
                                       "log": str(self.pgbr_dir / "log")}
        for m in self.motos.values():
            comps[m.name] = m.status()
        for mod in self.components():
            try:
                comps[mod.NAME] = mod.status(self.dir)
            except Exception as e:  # a broken component must not hide the others' status
                comps[mod.NAME] = {"running": False, "error": str(e)}
        res["ok"] = (all(c["running"] for c in comps.values())
                     and comps["standby"].get("replication") in ("streaming", "PROMOTED")
                     and all(comps[m.name].get("buckets") == "ok" for m in self.motos.values()))
        return res


_MOTO_CHILDREN: dict[int, subprocess.Popen] = {}


class _Moto:
    """One region's moto server: <state>/moto.pid + moto.log (us-east-1, with the global APIs) or
    <state>/moto-<region>.pid + .log; its port from stack.json (MOTO_PORTS)."""

    def __init__(self, state: Path, region: str):
        self.region = region
        self.name = MOTO_PORTS[region]
        stem = "moto" if self.name == "moto" else f"moto-{region}"
        self.state = state
        self.log = state / f"{stem}.log"
        self.pidfile = state / f"{stem}.pid"
        self.port = 0
        self.proc: subprocess.Popen | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def buckets(self) -> dict[str, str]:
        return {b: r for b, r in BUCKETS.items() if r == self.region}

    @staticmethod
    def binary() -> Path:
        cand = Path(sys.executable).parent / "moto_server"
        if cand.is_file() and os.access(cand, os.X_OK):
            return cand
        found = shutil.which("moto_server")
        if found:
            return Path(found)
        raise StackError("moto", f"moto_server not found next to {sys.executable} nor on PATH -- run "
                         "`make bootstrap` and use the venv python (`.venv/bin/python devstack/stack.py up`)")

    def running_pid(self) -> int | None:
        try:
            pid = int(self.pidfile.read_text().strip())
        except (OSError, ValueError):
            return None
        return pid if _proc_alive(pid, b"moto_server") else None

    def http_ok(self) -> bool:
        try:
            return _http("GET", self.endpoint + "/", timeout=2)[0] == 200
        except OSError:
            return False

    def start(self, say) -> str:
        pid = self.running_pid()
        if pid and self.http_ok():
            return f"already running (pid {pid})"
        if pid:
            say(f"  {self.name}: pid {pid} not answering on :{self.port}, restarting")
            self.stop()
        if _port_open(self.port):
            raise StackError(self.name, f"port {self.port} is in use by another process; free it or edit ports "
                             "in stack.json", self.log)
        exe = self.binary()
        with open(self.log, "ab") as log:
            log.write(f"\n=== {time.strftime('%Y-%m-%d %H:%M:%S')} stack.py starting {exe} on :{self.port} "
                      f"({self.region})\n".encode())
            log.flush()
            self.proc = subprocess.Popen(
                [str(exe), "-H", "127.0.0.1", "-p", str(self.port)], stdin=subprocess.DEVNULL,
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True, cwd=self.state, close_fds=True)
        _MOTO_CHILDREN[self.proc.pid] = self.proc
        _common.write_atomic(self.pidfile, f"{self.proc.pid}\n", 0o644)
        return "started"

    def finish(self) -> None:
        def ready() -> bool:
            if self.proc is not None and self.proc.poll() is not None:
                raise StackError(self.name, f"moto_server exited with rc={self.proc.returncode}", self.log,
                                 _tail(self.log))
            return self.http_ok()
        _wait_for(f"{self.name} to answer HTTP on {self.endpoint}", ready, component=self.name, log=self.log)
        self.ensure_buckets()

    def buckets_ok(self) -> bool:
        try:
            return all(_http("HEAD", f"{self.endpoint}/{b}", timeout=2)[0] == 200 for b in self.buckets)
        except OSError:
            return False

    def ensure_buckets(self) -> None:
        for bucket, region in self.buckets.items():
            if not _common.ensure_bucket(self.endpoint, bucket, region, self.log):
                continue
            loc = _http("GET", f"{self.endpoint}/{bucket}?location")[2].decode(errors="replace")
            if region != "us-east-1" and region not in loc:
                raise StackError(self.name, f"bucket {bucket} was created outside {region}: {loc}", self.log)

    def stop(self) -> str:
        pid = self.running_pid()
        result = _common.stop_pid(pid, lambda: _proc_alive(pid), _MOTO_CHILDREN, 10.0)
        if result == "still running":
            raise StackError(self.name, f"could not stop moto pid {pid}", self.log)
        with contextlib.suppress(FileNotFoundError):
            self.pidfile.unlink()
        return result

    def status(self) -> dict:
        pid = self.running_pid()
        res = {"running": bool(pid) and self.http_ok(), "pid": pid, "port": self.port, "region": self.region,
               "endpoint": self.endpoint, "log": str(self.log)}
        if res["running"]:
            res["buckets"] = "ok" if self.buckets_ok() else "MISSING (run up)"
        return res


# --------------------------------------------------------------------------- public API

def up(state_dir: Path | str | None = None, *, quiet: bool = False) -> dict[str, str]:
    """Bring the stack up (idempotent). Returns the env mapping also written to <state>/env."""
    st = _Stack(state_dir, quiet)
    with st.locked():
        return st.up()


def down(state_dir: Path | str | None = None, *, wipe: bool = False, quiet: bool = False) -> None:
    """Stop moto, the standby and the primary; with wipe=True delete the state dir too."""
    st = _Stack(state_dir, quiet)
    if not st.dir.exists():
        return
    with st.locked():
        st.down(wipe)


def status(state_dir: Path | str | None = None) -> dict:
    """Component status dict; result['ok'] is True when everything is up and streaming."""
    return _Stack(state_dir, quiet=True).status()


def moto(state_dir: Path | str | None, region: str) -> _Moto:
    """A region's moto server of a stack (its port read from stack.json): start()/finish()/stop()/status()
    -- the region-loss test stops us-west-2's alone and starts it again."""
    st = _Stack(state_dir, quiet=True)
    if not st.load_config(create=False):
        raise StackError(MOTO_PORTS[region], f"no stack in {st.dir} (run `stack.py up`)")
    return st.motos[region]


def env_path(state_dir: Path | str | None = None) -> Path:
    """Path of the env file (exists after a successful up)."""
    return _Stack(state_dir, quiet=True).env_file


def read_env(state_dir: Path | str | None = None) -> dict[str, str]:
    """Parse <state>/env into a dict (raises FileNotFoundError before the first up)."""
    return parse_env_file(env_path(state_dir))


# --------------------------------------------------------------------------- CLI

def _print_status(res: dict) -> None:
    print(f"lifeboat stack: {res['state_dir']}")
    if "error" in res:
        print(f"  {res['error']}")
        return
    for name, c in res["components"].items():
        state = "up  " if c["running"] else "DOWN"
        where = f"127.0.0.1:{c['port']}" if "port" in c else ""
        extra = ", ".join(f"{k}={c[k]}" for k in ("pid", "replication", "status", "backups", "buckets")
                          if c.get(k) is not None)
        print(f"  {name:<10} {state} {where:<16} {extra}" + ("" if c["running"] else f"  (log: {c['log']})"))
    print(f"  env: {res['env_file']}" if Path(res["env_file"]).exists() else "  env: not written yet")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="stack.py", description="Lifeboat local devstack")
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("up", help="start everything (idempotent)")
    d = sub.add_parser("down", help="stop everything (keeps data)")
    d.add_argument("--wipe", action="store_true", help="also delete the state dir")
    s = sub.add_parser("status", help="show component status (exit 1 unless all ok)")
    s.add_argument("--json", action="store_true")
    sub.add_parser("env", help="print the env file path")
    args = ap.parse_args(argv)
    try:
        if args.cmd == "up":
            up()
        elif args.cmd == "down":
            down(wipe=args.wipe)
        elif args.cmd == "status":
            res = status()
            print(json.dumps(res, indent=2)) if args.json else _print_status(res)
            return 0 if res["ok"] else 1
        elif args.cmd == "env":
            path = env_path()
            print(path)
            if not path.exists():
                print("(not written yet -- run `stack.py up`)", file=sys.stderr)
                return 1
    except StackError as e:
        print(f"ERROR {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""MongoDB-wire server for the local stack: FerretDB v1.24 on SQLite, with its basic OpLog.

No MongoDB server package is reachable from these machines, so the stack runs FerretDB built from
the Go module proxy by devstack/binaries.py: the wrapper module devstack/go/ferretdb/ (go.mod + go.sum)
and `go build github.com/FerretDB/FerretDB/cmd/ferretdb`, the module's zip checked against its pin in
devstack/pins.toml first. The binary is cached outside the repository ($LIFEBOAT_CACHE_DIR, default
~/.cache/lifeboat/bin/ferretdb-<version>), so only the first `up` on a machine pays for the build
(about 3-4 minutes on 2 cores; bootstrap builds it with the other Go programs).

FerretDB's build/version package needs a version.txt its own Taskfile generates (the module zip has
none; `go install ...@v1.24.2` panics at start without it): binaries.py supplies it at build time
with `go build -overlay`, without copying or changing the module (docs/datastores/mongodb.md).

What runs (all on 127.0.0.1, state under <state>/mongodb/):
  * ferretdb --handler=sqlite --sqlite-url=file:<state>/mongodb/data/ on a port picked once;
  * --repl-set-name=lifeboat: `hello` reports setName (what the engine checks for "replica set");
  * the capped collection local.oplog.rs, created here: FerretDB v1 writes its OpLog (i/u/d
    entries with ts, wall, ns, o, o2) only when that collection exists;
  * authentication: FerretDB's SCRAM authentication (--test-enable-new-auth) with one user
    `lifeboat` in `admin` made at first start (--setup-*). FerretDB v1 has no roles: every
    authenticated user may do everything, unauthenticated commands are refused.

A second FerretDB is the standby region's server (<state>/mongodb/us-east-1/: its own port, SQLite
folder, oplog, replica-set name lifeboat-us-east-1, the same user). FerretDB cannot replicate, so it is
not a replica-set member: it stays empty until a failover restores the newest full dump plus the oplog
slices into it (Lifeboat's MongoDB failover); on a real replica set the standby region's members are
elected instead (docs/failover.md).

Env (merged into <state>/env):
  AIRFLOW_CONN_LIFEBOAT_MONGO_US_WEST_2  mongodb://lifeboat:...@127.0.0.1:<port>/?authSource=admin&directConnection=true
  AIRFLOW_CONN_LIFEBOAT_MONGO_US_EAST_1  the standby region's FerretDB
  LIFEBOAT_MONGO_PORT, LIFEBOAT_MONGO_REPLSET, LIFEBOAT_FERRETDB_BIN (for tests that start extra instances)
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.parse
from pathlib import Path

try:
    from devstack import binaries, pins
    from devstack.components import _common
except ImportError:  # run as a script: python devstack/components/<name>.py
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from devstack import binaries, pins
    from devstack.components import _common

NAME = "mongodb"
FERRETDB_VERSION = binaries.TOOLS["ferretdb"].version
REPLSET = "lifeboat"
PRIMARY_REGION, STANDBY_REGION = "us-west-2", "us-east-1"
REGIONS = (PRIMARY_REGION, STANDBY_REGION)
USER = "lifeboat"
# Small on purpose: FerretDB v1 answers an oplog range or newest-entry query by reading the whole
# oplog (no pushdown for Timestamp filters or sorted limits), so its size is the cost of every
# backup. 2 MiB holds a day of heartbeats; test traffic rolls it in minutes. Override with
# LIFEBOAT_MONGO_OPLOG_MB (the collection is recreated when the size differs).
OPLOG_BYTES = int(float(os.environ.get("LIFEBOAT_MONGO_OPLOG_MB") or 2) * 1024 * 1024)
WAIT_S = 60.0


def _error(message: str, log: Path | None = None, detail: str = "") -> Exception:
    """devstack.stack.StackError naming this component and its log (_common.component_error)."""
    return _common.component_error(NAME, message, log, detail)


# ----------------------------------------------------------------------------------------- paths

def _dir(state_dir: Path, region: str = PRIMARY_REGION) -> Path:
    """A region's server folder: the primary's is <state>/mongodb/ itself, the standby's a folder in it."""
    root = Path(state_dir) / NAME
    return root if region == PRIMARY_REGION else root / region


def replset_of(region: str) -> str:
    return REPLSET if region == PRIMARY_REGION else f"{REPLSET}-{region}"


def binary_path() -> Path:
    return binaries.path("ferretdb")


# ----------------------------------------------------------------------------------------- build

def ensure_binary(say) -> Path:
    """Build FerretDB once per machine (devstack/binaries.py; cached outside the repo); instant when built."""
    try:
        return binaries.ensure("ferretdb", lambda m: say(f"  {NAME:<10} {m}"))
    except (binaries.BuildError, pins.PinError) as exc:
        raise _error(f"building FerretDB {FERRETDB_VERSION} failed: {exc}") from None


# ----------------------------------------------------------------------------------------- state

def _free_port() -> int:
    return _common.free_port()


def _port_open(port: int) -> bool:
    return _common.port_open(port)


def _alive(pid: int | None) -> bool:
    return _common.proc_alive(pid, b"ferretdb")


def _load(state_dir: Path, region: str = PRIMARY_REGION) -> dict:
    d = _dir(state_dir, region)
    d.mkdir(parents=True, exist_ok=True)
    cfg_file, sec_file = d / "mongodb.json", _dir(state_dir) / "secrets.json"  # one user for both servers
    if cfg_file.exists():
        cfg = json.loads(cfg_file.read_text())
    else:
        cfg = {"port": _free_port(), "version": FERRETDB_VERSION, "replset": replset_of(region)}
        cfg_file.write_text(json.dumps(cfg, indent=2) + "\n")
    if sec_file.exists():
        sec = json.loads(sec_file.read_text())
    else:
        sec = {"lifeboat": secrets.token_urlsafe(24)}
        fd = os.open(sec_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump(sec, fh)
    return {**cfg, "password": sec["lifeboat"]}


def _pid(state_dir: Path, region: str = PRIMARY_REGION) -> int | None:
    try:
        pid = int((_dir(state_dir, region) / "ferretdb.pid").read_text().strip())
    except (OSError, ValueError):
        return None
    return pid if _alive(pid) else None


def uri(port: int, password: str) -> str:
    pw = urllib.parse.quote(password, safe="")
    return f"mongodb://{USER}:{pw}@127.0.0.1:{port}/?authSource=admin&directConnection=true"


def env_for(state_dir: Path, cfg: dict, standby: dict | None = None) -> dict[str, str]:
    u = uri(cfg["port"], cfg["password"])
    return {
        "AIRFLOW_CONN_LIFEBOAT_MONGO_US_WEST_2": u,
        # the standby region's own FerretDB (without one, the primary's stands in for it)
        "AIRFLOW_CONN_LIFEBOAT_MONGO_US_EAST_1": uri(standby["port"], standby["password"]) if standby else u,
        **({"LIFEBOAT_MONGO_STANDBY_PORT": str(standby["port"])} if standby else {}),
        "LIFEBOAT_MONGO_PORT": str(cfg["port"]),
        "LIFEBOAT_MONGO_REPLSET": cfg.get("replset", REPLSET),
        "LIFEBOAT_FERRETDB_BIN": str(binary_path()),
    }


def ferretdb_argv(exe: Path, data: Path, port: int, *, state: Path, replset: str | None = REPLSET,
                  auth: bool = False, setup: tuple[str, str] | None = None) -> list[str]:
    """The command line (also used by tests to start throw-away instances). `setup` (user, password)
    creates the user on the first start only; later starts do not carry the password."""
    argv = [str(exe), "--handler=sqlite", f"--sqlite-url=file:{data}/", f"--listen-addr=127.0.0.1:{port}",
            f"--state-dir={state}", "--debug-addr=-", "--telemetry=disable", "--log-level=info",
            "--test-capped-cleanup-interval=10s"]  # trim capped collections (the oplog) every 10 s
    if replset:
        argv.append(f"--repl-set-name={replset}")
    if auth:
        argv.append("--test-enable-new-auth")
    if setup:
        argv += ["--setup-database=admin", f"--setup-username={setup[0]}", f"--setup-password={setup[1]}"]
    return argv


def _tail(path: Path, n: int = 12) -> str:
    return _common.tail(path, n)


def _ensure_oplog(port: int, password: str, log: Path, replset: str = REPLSET) -> str:
    try:
        import pymongo
    except ImportError:
        raise _error("pymongo is needed to create local.oplog.rs: run the stack with the project's "
                     "virtualenv (`make stack-up`)") from None
    deadline = time.monotonic() + WAIT_S
    last = ""
    while True:
        try:
            with pymongo.MongoClient(uri(port, password), serverSelectionTimeoutMS=2000) as c:
                hello = c.admin.command("hello")
                if hello.get("setName") != replset:
                    raise _error(f"server on :{port} does not report setName={replset!r}", log)
                note = ""
                if "oplog.rs" in c.local.list_collection_names():
                    have = int(c.local.command("collStats", "oplog.rs").get("maxSize") or 0)
                    if have == OPLOG_BYTES:
                        return "oplog present"
                    # Recreating it cuts every oplog chain of this stack: the next oplog backup
                    # reports "oplog window too short" until a full backup starts a new chain.
                    c.local.drop_collection("oplog.rs")
                    note = f" (was {have // 2**20} MiB: dropped and recreated)"
                c.local.create_collection("oplog.rs", capped=True, size=OPLOG_BYTES)
                return f"created capped local.oplog.rs ({OPLOG_BYTES / 2**20:g} MiB){note}"
        except RuntimeError:  # ours (a StackError): a wrong server, not one still starting
            raise
        except Exception as exc:  # still starting, or auth not set up yet
            last = f"{type(exc).__name__}: {exc}"
        if time.monotonic() > deadline:
            raise _error(f"FerretDB on 127.0.0.1:{port} did not answer within {WAIT_S:.0f}s", log,
                         last + "\n" + _tail(log))
        time.sleep(0.2)


# ----------------------------------------------------------------------------------------- contract

def up(state_dir: Path, say) -> dict[str, str]:
    """Both regions' FerretDB servers (each idempotent: a running one with the same command line stays)."""
    state_dir = Path(state_dir)
    cfg = _up(state_dir, PRIMARY_REGION, say)
    standby = _up(state_dir, STANDBY_REGION, say)
    return env_for(state_dir, cfg, standby)


def _up(state_dir: Path, region: str, say) -> dict:
    d = _dir(state_dir, region)
    cfg = _load(state_dir, region)
    replset = cfg.get("replset", replset_of(region))
    log = d / "ferretdb.log"
    pid = _pid(state_dir, region)
    exe = binary_path()
    first_start = not (d / "data" / "admin.sqlite").exists()
    argv = ferretdb_argv(exe, d / "data", cfg["port"], state=d / "state", auth=True, replset=replset,
                         setup=(USER, cfg["password"]) if first_start else None)
    # The running server's identity: its command line without the first-start-only --setup-* flags.
    steady = ferretdb_argv(exe, d / "data", cfg["port"], state=d / "state", auth=True, replset=replset)
    fingerprint = hashlib.sha256("\0".join(steady).encode()).hexdigest()
    started_with = (d / "ferretdb.argv.sha256").read_text().strip() if (d / "ferretdb.argv.sha256").exists() else ""
    if pid and _port_open(cfg["port"]):
        if started_with == fingerprint:
            _ensure_oplog(cfg["port"], cfg["password"], log, replset)
            return cfg
        say(f"  {NAME:<10} {_stop(state_dir, region)} FerretDB {region} pid {pid}: its command line changed, "
            "restarting")
    exe = ensure_binary(say)
    if _port_open(cfg["port"]):
        raise _error(f"port {cfg['port']} is in use by another process; free it or edit "
                     f"{d / 'mongodb.json'}", log)
    data = d / "data"
    data.mkdir(parents=True, exist_ok=True)
    (d / "state").mkdir(exist_ok=True)
    with open(log, "ab") as out:
        # On the first start only, the password reaches FerretDB as --setup-password (to create the
        # user); later starts carry no secret on the command line.
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True, cwd=d)
    (d / "ferretdb.pid").write_text(f"{proc.pid}\n")
    (d / "ferretdb.argv.sha256").write_text(fingerprint + "\n")
    deadline = time.monotonic() + WAIT_S
    while not _port_open(cfg["port"]):
        if proc.poll() is not None:
            raise _error(f"ferretdb exited with rc={proc.returncode} at start", log, _tail(log))
        if time.monotonic() > deadline:
            raise _error(f"ferretdb did not listen on 127.0.0.1:{cfg['port']} within {WAIT_S:.0f}s", log,
                         _tail(log))
        time.sleep(0.1)
    note = _ensure_oplog(cfg["port"], cfg["password"], log, replset)
    say(f"  {NAME:<10} FerretDB {FERRETDB_VERSION} {region} (SQLite, replSet {replset}) on 127.0.0.1:{cfg['port']}, "
        f"{note}")
    return cfg


def down(state_dir: Path, say) -> str:
    return ", ".join(f"{r} {_stop(Path(state_dir), r)}" for r in reversed(REGIONS))


def stop_region(state_dir: Path, region: str, kill: bool = False) -> str:
    """Stop (or SIGKILL, a region loss) one region's FerretDB; `up` starts it again."""
    if kill:
        pid = _pid(Path(state_dir), region)
        if pid:
            os.kill(pid, signal.SIGKILL)
        return f"killed pid {pid}" if pid else "not running"
    return _stop(Path(state_dir), region)


def _stop(state_dir: Path, region: str) -> str:
    pid = _pid(state_dir, region)
    if not pid:
        return "not running"
    result = _common.stop_pid(pid, lambda: _alive(pid), grace=15.0, kill_grace=5.0)
    if result == "still running":
        raise _error(f"could not stop ferretdb pid {pid}", _dir(state_dir, region) / "ferretdb.log")
    with contextlib.suppress(FileNotFoundError):
        (_dir(state_dir, region) / "ferretdb.pid").unlink()
    return result


def status(state_dir: Path) -> dict:
    out = _status(Path(state_dir), PRIMARY_REGION)
    out["standby"] = _status(Path(state_dir), STANDBY_REGION)
    out["running"] = out["running"] and out["standby"]["running"]
    return out


def _status(state_dir: Path, region: str) -> dict:
    d = _dir(state_dir, region)
    port = None
    with contextlib.suppress(OSError, ValueError):
        port = json.loads((d / "mongodb.json").read_text())["port"]
    pid = _pid(state_dir, region)
    return {"running": bool(pid and port and _port_open(port)), "pid": pid, "port": port, "region": region,
            "version": FERRETDB_VERSION, "binary": str(binary_path()), "log": str(d / "ferretdb.log")}

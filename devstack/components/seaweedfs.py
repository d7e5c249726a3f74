"""The platform's upload buckets on two SeaweedFS clusters that really replicate (stdlib + `weed`).

One `weed server -filer -s3` per region on loopback ports (master, volume, filer, S3 and their gRPC
ports, all 127.0.0.1; telemetry and the Iceberg/Lance side servers off), S3 credentials in SeaweedFS's
identities file, and `weed filer.sync -isActivePassive` following the us-west-2 bucket's folder into
the us-east-1 bucket's folder (different bucket names on each side: -a.path / -b.path):

    <state>/seaweedfs/ports.json                 <region>.<service> -> port, picked free once and kept
    <state>/seaweedfs/secrets.json               S3 access key + secret (0600)
    <state>/seaweedfs/s3.json                    SeaweedFS identities (0600)
    <state>/seaweedfs/<region>/data/, server.log, server.pid
    <state>/seaweedfs/sync/sync.log, sync.pid    filer.sync (its checkpoint lives in the us-east-1 filer,
                                                 so a restarted sync resumes where it stopped)
    <state>/seaweedfs/sync/paused                present while replication is paused (`up` keeps it paused)
    <state>/seaweedfs/replication.json           the replication configuration, in GetBucketReplication's
                                                 shape (Status Enabled / Disabled while paused)

SeaweedFS answers NotImplemented to PutBucketReplication and "no configuration" to GetBucketReplication:
replication here is filer.sync, outside the S3 API. replication.json stands in for what
GetBucketReplication returns on AWS (see docs/datastores/objects.md); the canary and the inventory diff
check the replication itself either way.

Controls for tests and drills: pause(state_dir) / resume(state_dir) / replication_status(state_dir).

Exports AIRFLOW_CONN_LIFEBOAT_UPLOADS_<REGION> (aws connection: login/password = access key/secret,
extra endpoint_url + region_name), LIFEBOAT_UPLOADS_BUCKET_<REGION>, LIFEBOAT_UPLOADS_S3_<REGION>
(endpoint URL) and LIFEBOAT_UPLOADS_REPLICATION_FILE (replication.json).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets as _secrets
import subprocess
import sys
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

try:
    from devstack.components import _common, _daemon
except ImportError:  # run as a script: python devstack/components/<name>.py
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from devstack.components import _common, _daemon

NAME = "seaweedfs"
REGIONS = ("us-west-2", "us-east-1")  # primary (sync source), standby (sync target)
SERVICES = ("master", "master_grpc", "volume", "volume_grpc", "filer", "filer_grpc", "s3", "s3_grpc")
NEEDLE = b"weed"
WAIT_S = 60.0
_HTTP = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _error(message: str, log: Path | None = None, detail: str = "") -> Exception:
    return _common.component_error(NAME, message, log, detail)


def bucket(region: str) -> str:
    return f"community-uploads-{region}"


def _root(state_dir: Path) -> Path:
    return Path(state_dir) / NAME


# --------------------------------------------------------------------------- the binary

def weed_binary(say=lambda m: None) -> Path:
    """The `weed` binary: $LIFEBOAT_WEED_BIN, else devstack.binaries.ensure("weed") (builds it once into
    ~/.cache/lifeboat/bin, ~10 min), else the newest ~/.cache/lifeboat/bin/weed-<version> already built."""
    override = os.environ.get("LIFEBOAT_WEED_BIN")
    if override:
        if not os.access(override, os.X_OK):
            raise _error(f"LIFEBOAT_WEED_BIN={override} is not an executable file")
        return Path(override)
    try:
        from devstack import binaries  # type: ignore[attr-defined]
    except ImportError:
        binaries = None
    if binaries is not None:
        return Path(binaries.ensure("weed", say))
    cache = Path(os.environ.get("LIFEBOAT_CACHE_DIR") or Path.home() / ".cache" / "lifeboat") / "bin"
    found = sorted((p for p in cache.glob("weed-*") if p.is_file() and not p.name.endswith(".log")
                    and os.access(p, os.X_OK)), key=lambda p: p.stat().st_mtime)
    if not found:
        raise _error(f"the SeaweedFS binary is not built yet: no {cache}/weed-<version>. It is built by "
                     "devstack/binaries.py (`binaries.ensure('weed')`, about 10 minutes on two cores) from the "
                     "wrapper module devstack/go/seaweedfs; or point LIFEBOAT_WEED_BIN at a weed binary")
    return found[-1]


# --------------------------------------------------------------------------- config

def _ports(state_dir: Path, create: bool) -> dict[str, int] | None:
    return _daemon.ports(state_dir, NAME, [f"{r}.{s}" for r in REGIONS for s in SERVICES], create)


def _creds(state_dir: Path) -> dict[str, str]:
    return _daemon.secrets_file(_root(state_dir) / "secrets.json", lambda: {
        "access_key": "LB" + _secrets.token_hex(9).upper(), "secret_key": _secrets.token_urlsafe(30)})


def _identities(state_dir: Path) -> str:
    c = _creds(state_dir)
    return json.dumps({"identities": [{
        "name": "lifeboat", "credentials": [{"accessKey": c["access_key"], "secretKey": c["secret_key"]}],
        "actions": ["Admin", "Read", "List", "Tagging", "Write"]}]}, indent=2) + "\n"


def _addr(ports: dict, region: str, service: str) -> str:
    """SeaweedFS' "host:port.grpcPort" server address."""
    return f"127.0.0.1:{ports[f'{region}.{service}']}.{ports[f'{region}.{service}_grpc']}"


def server_argv(weed: Path, state_dir: Path, region: str, ports: dict) -> list[str]:
    d = _root(state_dir) / region
    p = {s: ports[f"{region}.{s}"] for s in SERVICES}
    return [str(weed), "server", f"-dir={d / 'data'}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
            f"-master.port={p['master']}", f"-master.port.grpc={p['master_grpc']}", "-master.telemetry=false",
            "-master.volumeSizeLimitMB=64", "-master.defaultReplication=000",
            f"-volume.port={p['volume']}", f"-volume.port.grpc={p['volume_grpc']}", "-volume.max=30",
            "-volume.preStopSeconds=0",
            "-filer", f"-filer.port={p['filer']}", f"-filer.port.grpc={p['filer_grpc']}",
            "-s3", f"-s3.port={p['s3']}", f"-s3.port.grpc={p['s3_grpc']}", "-s3.port.iceberg=0", "-s3.port.lance=0",
            f"-s3.config={_root(state_dir) / 's3.json'}", f"-s3.localSocket={d / 's3.sock'}",
            f"-filer.localSocket={d / 'filer.sock'}"]


def sync_argv(weed: Path, ports: dict) -> list[str]:
    src, dst = REGIONS
    return [str(weed), "filer.sync", "-isActivePassive", "-a", _addr(ports, src, "filer"),
            "-b", _addr(ports, dst, "filer"), "-a.path", f"/buckets/{bucket(src)}",
            "-b.path", f"/buckets/{bucket(dst)}"]


# --------------------------------------------------------------------------- processes

def _server_pidfile(state_dir: Path, region: str) -> Path:
    return _root(state_dir) / region / "server.pid"


def _sync_dir(state_dir: Path) -> Path:
    return _root(state_dir) / "sync"


def _s3_answers(port: int) -> bool:
    """The S3 gateway answers (anonymous ListBuckets is refused = up and enforcing credentials)."""
    try:
        with _HTTP.open(urllib.request.Request(f"http://127.0.0.1:{port}/"), timeout=1.0) as r:
            return r.status < 500
    except urllib.error.HTTPError as e:
        return e.code in (403, 400)
    except OSError:
        return False


def _filer_answers(port: int) -> bool:
    try:
        with _HTTP.open(urllib.request.Request(f"http://127.0.0.1:{port}/?pretty=y",
                                               headers={"Accept": "application/json"}), timeout=1.0) as r:
            return r.status == 200
    except (urllib.error.HTTPError, OSError):
        return False


def _server_ok(ports: dict, region: str) -> bool:
    return _s3_answers(ports[f"{region}.s3"]) and _filer_answers(ports[f"{region}.filer"])


def _weed_shell(weed: Path, ports: dict, region: str, command: str, timeout: float = 60) -> str:
    argv = [str(weed), "shell", f"-master={_addr(ports, region, 'master')}", f"-filer={_addr(ports, region, 'filer')}"]
    try:
        p = subprocess.run(argv, input=command + "\nexit\n", capture_output=True, text=True, timeout=timeout,
                           check=False)
    except subprocess.TimeoutExpired:
        raise _error(f"`weed shell` ({region}: {command}) timed out after {timeout:.0f}s") from None
    if p.returncode != 0:
        raise _error(f"`weed shell` ({region}: {command}) failed (rc={p.returncode})", detail=p.stderr + p.stdout)
    return p.stdout + p.stderr


def _ensure_bucket(weed: Path, ports: dict, region: str, log: Path) -> bool:
    """Create the region's bucket with versioning enabled (S3 CRR needs versioning on both sides) unless
    it exists; True when created. A marker in the region's folder spares the `weed shell` round trips
    (about 1 s each) on later `up`s; a deliberate change to the bucket (a test suspending versioning)
    is left alone."""
    marker = log.parent / "bucket.created"
    if marker.exists():
        return False
    name = bucket(region)
    listed = re.compile(rf"(^|\s){re.escape(name)}(\s|$)", re.M)
    deadline = time.monotonic() + WAIT_S
    created, out = False, _weed_shell(weed, ports, region, "s3.bucket.list")
    while not listed.search(out):
        if time.monotonic() > deadline:  # volumes may still be growing right after start-up: retry until then
            raise _error(f"creating bucket {name} ({region}) failed", log, out)
        out = _weed_shell(weed, ports, region, f"s3.bucket.create -name {name}\n"
                          f"s3.bucket.versioning -name {name} -enable\ns3.bucket.list")
        created = True
        if not listed.search(out):
            time.sleep(0.5)
    _daemon.write_atomic(marker, datetime.now(UTC).isoformat() + "\n")
    return created


def _start_server(weed: Path, state_dir: Path, region: str, ports: dict) -> None:
    d = _root(state_dir) / region
    (d / "data").mkdir(parents=True, exist_ok=True)
    busy = [f"{s}={ports[f'{region}.{s}']}" for s in SERVICES if _common.port_open(ports[f"{region}.{s}"])]
    if busy:
        raise _error(f"ports in use by another process ({region}): {', '.join(busy)}; free them or edit "
                     f"{_root(state_dir) / 'ports.json'}", d / "server.log")
    _daemon.start(NAME, server_argv(weed, state_dir, region, ports), log=d / "server.log",
                  pidfile=_server_pidfile(state_dir, region), ready=lambda: _server_ok(ports, region),
                  timeout=WAIT_S, what=f"weed server ({region}) on 127.0.0.1:{ports[f'{region}.s3']}")


def _sync_pid(state_dir: Path) -> int | None:
    return _daemon.pid_of(_sync_dir(state_dir) / "sync.pid", NEEDLE)


def _start_sync(weed: Path, state_dir: Path, ports: dict) -> int:
    d = _sync_dir(state_dir)
    d.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    return _daemon.start(NAME, sync_argv(weed, ports), log=d / "sync.log", pidfile=d / "sync.pid",
                         ready=lambda: time.monotonic() - t0 > 1.0, timeout=WAIT_S, what="weed filer.sync")


def _write_replication(state_dir: Path, ports: dict) -> None:
    src, dst = REGIONS
    paused = (_sync_dir(state_dir) / "paused").exists()
    doc = {
        "ReplicationConfiguration": {
            "Role": "devstack:seaweedfs-filer.sync",
            "Rules": [{
                "ID": f"{bucket(src)}-to-{dst}", "Priority": 1, "Filter": {"Prefix": ""},
                "Status": "Disabled" if paused else "Enabled",
                "Destination": {"Bucket": f"arn:aws:s3:::{bucket(dst)}"},
                "DeleteMarkerReplication": {"Status": "Enabled"},  # filer.sync replicates deletes
            }],
        },
        "source": {"region": src, "bucket": bucket(src), "endpoint": f"http://127.0.0.1:{ports[f'{src}.s3']}"},
        "destination": {"region": dst, "bucket": bucket(dst), "endpoint": f"http://127.0.0.1:{ports[f'{dst}.s3']}"},
        "mechanism": "weed filer.sync -isActivePassive " + " ".join(sync_argv(Path("weed"), ports)[3:]),
        "paused": paused,
        "updated_at": datetime.now(UTC).isoformat(),
    }
    _daemon.write_atomic(_root(state_dir) / "replication.json", json.dumps(doc, indent=2) + "\n")


# --------------------------------------------------------------------------- controls

def pause(state_dir: Path) -> str:
    """Stop filer.sync (SIGTERM: it saves its checkpoint) and keep it stopped across `up` until resume()."""
    ports = _ports(state_dir, create=False)
    if not ports:
        raise _error("not initialised (run `stack.py up`)")
    d = _sync_dir(state_dir)
    d.mkdir(parents=True, exist_ok=True)
    _daemon.write_atomic(d / "paused", datetime.now(UTC).isoformat() + "\n")
    result = _daemon.stop(d / "sync.pid", NEEDLE, timeout=15)
    _write_replication(state_dir, ports)
    return result


def resume(state_dir: Path) -> int:
    """Start filer.sync again; it continues from its checkpoint and catches up. Returns its pid."""
    ports = _ports(state_dir, create=False)
    if not ports:
        raise _error("not initialised (run `stack.py up`)")
    with contextlib.suppress(FileNotFoundError):
        (_sync_dir(state_dir) / "paused").unlink()
    pid = _sync_pid(state_dir) or _start_sync(weed_binary(), state_dir, ports)
    _write_replication(state_dir, ports)
    return pid


def replication_status(state_dir: Path) -> dict:
    d = _sync_dir(state_dir)
    pid = _sync_pid(state_dir)
    paused = (d / "paused").exists()
    return {"running": bool(pid), "pid": pid, "paused": paused,
            "state": "running" if pid else ("paused" if paused else "STOPPED"), "log": str(d / "sync.log")}


# --------------------------------------------------------------------------- the contract

def up(state_dir: Path, say) -> dict[str, str]:
    ports = _ports(state_dir, create=True)
    root = _root(state_dir)
    _creds(state_dir)
    changed = _daemon.write_atomic(root / "s3.json", _identities(state_dir), 0o600)
    weed = weed_binary(say)
    notes = []
    for region in REGIONS:
        pid = _daemon.pid_of(_server_pidfile(state_dir, region), NEEDLE)
        if pid and not changed and _server_ok(ports, region):
            continue
        t = time.monotonic()
        if pid:
            _daemon.stop(_server_pidfile(state_dir, region), NEEDLE, timeout=20)
        _start_server(weed, state_dir, region, ports)
        notes.append(f"{region} :{ports[f'{region}.s3']} [{time.monotonic() - t:.1f}s]")
    for region in REGIONS:
        if _ensure_bucket(weed, ports, region, root / region / "server.log"):
            notes.append(f"bucket {bucket(region)} created")
    if not (_sync_dir(state_dir) / "paused").exists() and not _sync_pid(state_dir):
        _start_sync(weed, state_dir, ports)
        notes.append("filer.sync started")
    _write_replication(state_dir, ports)
    _daemon.announce(say, NAME, notes)
    return env(state_dir, ports)


def env(state_dir: Path, ports: dict[str, int] | None = None) -> dict[str, str]:
    if not (ports := ports or _ports(state_dir, create=False)):
        return {}
    out = {"LIFEBOAT_UPLOADS_REPLICATION_FILE": str(_root(state_dir) / "replication.json")}
    c = _creds(state_dir)
    for region in REGIONS:
        k = _common.env_key(region)
        endpoint = f"http://127.0.0.1:{ports[f'{region}.s3']}"
        out[f"AIRFLOW_CONN_LIFEBOAT_UPLOADS_{k}"] = json.dumps(
            {"conn_type": "aws", "login": c["access_key"], "password": c["secret_key"],
             "extra": {"endpoint_url": endpoint, "region_name": region}}, separators=(",", ":"))
        out[f"LIFEBOAT_UPLOADS_BUCKET_{k}"] = bucket(region)
        out[f"LIFEBOAT_UPLOADS_S3_{k}"] = endpoint
    return out


def down(state_dir: Path, say) -> str:
    res = [f"filer.sync {_daemon.stop(_sync_dir(state_dir) / 'sync.pid', NEEDLE, timeout=15)}"]
    res += [f"{r} {_daemon.stop(_server_pidfile(state_dir, r), NEEDLE, timeout=20)}" for r in reversed(REGIONS)]
    return ", ".join(res)


def status(state_dir: Path) -> dict:
    root = _root(state_dir)
    ports = _ports(state_dir, create=False)
    if not ports:
        return _daemon.not_initialised(root)
    up_ = {r: bool(_daemon.pid_of(_server_pidfile(state_dir, r), NEEDLE)) and _server_ok(ports, r) for r in REGIONS}
    rep = replication_status(state_dir)
    down_ = [r for r in REGIONS if not up_[r]]
    log = root / down_[0] / "server.log" if down_ else Path(rep["log"])
    return {"running": all(up_.values()) and (rep["running"] or rep["paused"]), "port": ports[f"{REGIONS[0]}.s3"],
            "pid": _daemon.pid_of(_server_pidfile(state_dir, REGIONS[0]), NEEDLE), "log": str(log),
            "replication": f"filer.sync {rep['state']}",
            "status": ", ".join(f"{r}: s3 :{ports[f'{r}.s3']}" for r in REGIONS)}

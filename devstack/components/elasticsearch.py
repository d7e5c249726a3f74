"""Elasticsearch 9 for the Lifeboat devstack: one single-node cluster per region (stdlib only).

The distribution is Maven Central's `org.elasticsearch.distribution.integ-test-zip:elasticsearch`
(a real, minimal Elasticsearch: core + x-pack-core/security + transport-netty4), downloaded over
HTTPS into the cache (~/.cache/lifeboat/downloads/) and checked against its SHA-256 pin in
devstack/pins.toml (Maven Central has no checksum files for it), so a second machine-wide `up`
never downloads it again. It runs on an installed JDK >= 21 (Temurin or OpenJDK,
found under $LIFEBOAT_ES_JAVA_HOME, $ES_JAVA_HOME, $JAVA_HOME or /usr/lib/jvm/*).

    <state>/elasticsearch/es.json               version and ports, picked free once and kept
    <state>/elasticsearch/elasticsearch-<v>/    the unzipped distribution
    <state>/elasticsearch/config/               ES_PATH_CONF: elasticsearch.yml, jvm.options.d/
    <state>/elasticsearch/data/ logs/ tmp/ run/es.pid
    <state>/elasticsearch/snapshots/            path.repo #1: the "us-west-2" fs snapshot repositories
    <state>/elasticsearch/snapshots-us-east-1/  path.repo #2: a "standby region" location
    <state>/elasticsearch/console.log           stdout/stderr of the launcher (first place to look)
    <state>/elasticsearch/us-east-1/            the standby region's cluster: its own es.json, config/,
                                                data/, logs/, tmp/, run/, console.log; path.repo is
                                                snapshots-us-east-1/ only (the replicated copy, which it
                                                registers read-only until a failover makes it the writer)

The standby cluster is empty until a failover restores the newest verified snapshot into it (Lifeboat's
Elasticsearch failover); the sample indices are seeded on the primary only. Each node: single node
(discovery.type=single-node), 127.0.0.1 only, 512 MiB heap (LIFEBOAT_ES_STANDBY=0 leaves the standby
cluster out where memory is short), security off (local stack
only: nothing but loopback can reach it), disk watermarks off (a nearly full dev disk must not turn
indices read-only mid-test), C1-only JIT (`-XX:TieredStopAtLevel=1`: halves the first start on two
shared cores; throughput matters little here). Elasticsearch refuses to run as root: as root the node
runs as the unprivileged OS user `lifeboat-es` (created with useradd when missing).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import pwd
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

try:
    from devstack import pins
    from devstack.components import _common
except ImportError:  # run as a script: python devstack/components/<name>.py
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from devstack import pins
    from devstack.components import _common

NAME = "elasticsearch"
ES_VERSION = os.environ.get("LIFEBOAT_ES_VERSION") or "9.5.4"  # newest 9.x Maven Central serves (checked 2026-11)
GROUP = "org.elasticsearch.distribution.integ-test-zip"
ARTIFACT = "elasticsearch"
OS_USER = "lifeboat-es"
MIN_JAVA = 21
HEAP = os.environ.get("LIFEBOAT_ES_HEAP") or "512m"
WAIT_S = float(os.environ.get("LIFEBOAT_ES_WAIT") or 180)  # first start ~15 s idle, ~30-60 s on busy cores
STANDBY_REGION = "us-east-1"

_HTTP = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback: never via a proxy


# --------------------------------------------------------------------------- errors

def _error(message: str, log: Path | None = None, detail: str = "") -> Exception:
    return _common.component_error(NAME, message, log, detail)


# --------------------------------------------------------------------------- small helpers

PRIMARY_REGION = "us-west-2"
REGIONS = (PRIMARY_REGION, STANDBY_REGION)


def standby_enabled() -> bool:
    return (os.environ.get("LIFEBOAT_ES_STANDBY") or "1").strip() not in ("0", "false", "no")


class _Paths:
    """One region's node: the primary's files directly under <state>/elasticsearch/ (as before the
    standby existed), the standby's under <state>/elasticsearch/us-east-1/."""

    def __init__(self, state_dir: Path, region: str = PRIMARY_REGION):
        self.region = region
        self.root = Path(state_dir).resolve() / NAME
        node = self.root if region == PRIMARY_REGION else self.root / region
        self.node = node
        self.cfg = node / "es.json"
        self.conf = node / "config"
        self.data = node / "data"
        self.logs = node / "logs"
        self.tmp = node / "tmp"
        self.run = node / "run"
        self.pid = self.run / "es.pid"
        self.launcher_pid = self.run / "launcher.pid"
        self.console = node / "console.log"
        self.repo = self.root / "snapshots"
        self.repo_standby = self.root / f"snapshots-{STANDBY_REGION}"
        self.fingerprint = self.run / "fingerprint"

    @property
    def repos(self) -> list[Path]:
        """path.repo: the primary may read both locations; the standby only its own (replicated) copy."""
        return [self.repo, self.repo_standby] if self.region == PRIMARY_REGION else [self.repo_standby]

    def home(self, version: str) -> Path:
        return self.root / f"elasticsearch-{version}"


def _free_port(exclude: set[int]) -> int:
    return _common.free_port(exclude)


def _alive(pid: int | None) -> bool:
    """pid exists, is not a zombie, and is an Elasticsearch JVM."""
    return _common.proc_alive(pid, b"org.elasticsearch")


def _read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _tail(path: Path, n: int = 12) -> str:
    return _common.tail(path, n)


def _health(port: int, timeout: float = 2.0) -> dict | None:
    try:
        with _HTTP.open(f"http://127.0.0.1:{port}/_cluster/health", timeout=timeout) as r:
            return json.loads(r.read())
    except (OSError, ValueError, urllib.error.URLError):
        return None


def _write(path: Path, content: str, mode: int = 0o644) -> None:
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(content)
    os.chmod(tmp, mode)
    os.replace(tmp, path)


# --------------------------------------------------------------------------- prerequisites

def _java_major(home: Path) -> int | None:
    """Major version from <home>/release (no JVM start); None when it is not a JDK/JRE."""
    if not (home / "bin" / "java").is_file():
        return None
    try:
        text = (home / "release").read_text(errors="replace")
    except OSError:
        return None
    m = re.search(r'^JAVA_VERSION="(\d+)(?:\.(\d+))?', text, re.M)
    if not m:
        return None
    major = int(m.group(1))
    return int(m.group(2) or 0) if major == 1 else major


def find_java() -> tuple[Path, int]:
    """The JDK to run Elasticsearch on: the first >= 21 of the explicit variables, else the newest
    >= 21 under /usr/lib/jvm. Raises naming every candidate and what to install."""
    seen: list[str] = []
    for var in ("LIFEBOAT_ES_JAVA_HOME", "ES_JAVA_HOME", "JAVA_HOME"):
        value = os.environ.get(var)
        if value:
            major = _java_major(Path(value))
            seen.append(f"${var}={value} (Java {major or 'not found'})")
            if major and major >= MIN_JAVA:
                return Path(value), major
    best: tuple[Path, int] | None = None
    jvm = Path("/usr/lib/jvm")
    for home in sorted(jvm.iterdir()) if jvm.is_dir() else []:
        if home.is_symlink() or not home.is_dir():
            continue
        major = _java_major(home)
        seen.append(f"{home} (Java {major or '?'})")
        if major and major >= MIN_JAVA and (best is None or major > best[1]):
            best = (home, major)
    if best:
        return best
    raise _error(
        f"no JDK >= {MIN_JAVA} found for Elasticsearch {ES_VERSION}; looked at: {'; '.join(seen) or 'nothing'}. "
        "Install one and/or point LIFEBOAT_ES_JAVA_HOME at it: Debian 12 ships only OpenJDK 17, so use "
        "Eclipse Temurin (apt package `temurin-21-jdk` or `temurin-25-jdk` from packages.adoptium.net, "
        "installed under /usr/lib/jvm/temurin-*) or Debian 13's `openjdk-21-jdk-headless`."
    )


def fetch_distribution(version: str, say) -> Path:
    """The integ-test-zip, downloaded once into the cache and checked against its pin (devstack/pins.toml).

    Maven Central serves this zip without .sha1/.md5 files, so Maven's own --strict-checksums refuses
    it; the pinned SHA-256 is the check instead."""
    pin = pins.pin("elasticsearch")
    if pin.version != version:
        raise _error(f"Elasticsearch {version} requested (LIFEBOAT_ES_VERSION) but {pins.pin_file()} pins "
                     f"artifacts.elasticsearch at {pin.version}: pin the version you want first")
    try:
        return pins.fetch("elasticsearch", say)
    except pins.PinError as exc:
        raise _error(str(exc)) from None


def _unzip(zip_path: Path, dest: Path, version: str) -> Path:
    """Unzip keeping the executable bits (zipfile drops them); atomic via a temp folder."""
    home = dest / f"elasticsearch-{version}"
    if (home / "bin" / "elasticsearch").is_file() and (home / "lib").is_dir():
        return home
    tmp = dest / f".unzip-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    with zipfile.ZipFile(zip_path) as zf:
        for info in zf.infolist():
            target = tmp / info.filename
            if not target.resolve().is_relative_to(tmp.resolve()):
                raise _error(f"{zip_path}: refusing unsafe path {info.filename!r}")
            zf.extract(info, tmp)
            mode = (info.external_attr >> 16) & 0o777
            if mode and not info.is_dir():
                os.chmod(target, mode)
    inner = tmp / f"elasticsearch-{version}"
    if not (inner / "bin" / "elasticsearch").is_file():
        raise _error(f"{zip_path}: no elasticsearch-{version}/bin/elasticsearch inside (corrupt download? delete it)")
    shutil.rmtree(home, ignore_errors=True)
    os.replace(inner, home)
    shutil.rmtree(tmp, ignore_errors=True)
    return home


def _ensure_user() -> tuple[int, int] | None:
    """(uid, gid) of the OS user the node runs as; None when not root (runs as the current user)."""
    if os.geteuid() != 0:
        return None
    try:
        pw = pwd.getpwnam(OS_USER)
    except KeyError:
        r = subprocess.run(["useradd", "--system", "--user-group", "--no-create-home", "--home-dir", "/nonexistent",
                            "--shell", "/usr/sbin/nologin", OS_USER], capture_output=True, text=True, check=False)
        if r.returncode != 0 and "already exists" not in r.stderr:
            raise _error(f"cannot create OS user {OS_USER!r} (Elasticsearch refuses to run as root)",
                         detail=r.stderr) from None
        pw = pwd.getpwnam(OS_USER)
    return pw.pw_uid, pw.pw_gid


def _chown_tree(root: Path, ids: tuple[int, int] | None) -> None:
    if ids is None or not root.exists():
        return
    uid, gid = ids
    for dirpath, dirnames, filenames in os.walk(root):
        for name in [dirpath, *(os.path.join(dirpath, n) for n in dirnames + filenames)]:
            st = os.lstat(name)
            if st.st_uid != uid or st.st_gid != gid:
                os.lchown(name, uid, gid)


def _ensure_traversable(path: Path, say) -> None:
    """The node's user must be able to reach its folders under the state dir."""
    if os.geteuid() != 0:
        return
    for p in reversed([path, *path.parents]):
        st = os.stat(p)
        if not st.st_mode & 0o001:
            os.chmod(p, st.st_mode | 0o001)
            say(f"  note: chmod o+x {p} (so {OS_USER} can reach {path})")


# --------------------------------------------------------------------------- config

def _load_cfg(paths: _Paths) -> dict:
    try:
        cfg = json.loads(paths.cfg.read_text())
    except (OSError, ValueError):
        cfg = {}
    if not cfg.get("http_port") or not cfg.get("transport_port"):
        http = _free_port(set())
        cfg = {"version": ES_VERSION, "http_port": http, "transport_port": _free_port({http})}
    cfg["version"] = ES_VERSION
    paths.node.mkdir(parents=True, exist_ok=True)
    _write(paths.cfg, json.dumps(cfg, indent=2) + "\n")
    return cfg


def _render_yml(paths: _Paths, cfg: dict, home: Path) -> str:
    has_security = (home / "modules" / "x-pack-security").is_dir()
    repos = json.dumps([str(p) for p in paths.repos])
    suffix = "" if paths.region == PRIMARY_REGION else f"-{paths.region}"
    return f"""# Managed by devstack/components/elasticsearch.py -- rewritten on every `up`.
cluster.name: lifeboat-devstack{suffix}
node.name: lifeboat-es{suffix}
network.host: 127.0.0.1
http.port: {cfg['http_port']}
transport.port: {cfg['transport_port']}
discovery.type: single-node
path.data: {paths.data}
path.logs: {paths.logs}
# fs snapshot repositories may only live under these folders (the "path.repo whitelist")
path.repo: {repos}
# a nearly full dev disk must not flip indices to read-only in the middle of a test
cluster.routing.allocation.disk.threshold_enabled: false
action.destructive_requires_name: true
""" + ("# local stack only: loopback, no TLS/auth\nxpack.security.enabled: false\n" if has_security else "")


def _render_jvm() -> str:
    return f"""# Managed by devstack/components/elasticsearch.py
-Xms{HEAP}
-Xmx{HEAP}
-XX:-AlwaysPreTouch
-XX:TieredStopAtLevel=1
"""


def _write_config(paths: _Paths, cfg: dict, home: Path) -> str:
    paths.conf.mkdir(parents=True, exist_ok=True)
    for name in ("jvm.options", "log4j2.properties"):
        src = home / "config" / name
        if src.is_file():
            shutil.copyfile(src, paths.conf / name)
    (paths.conf / "jvm.options.d").mkdir(exist_ok=True)
    yml, jvm = _render_yml(paths, cfg, home), _render_jvm()
    _write(paths.conf / "elasticsearch.yml", yml, 0o640)
    _write(paths.conf / "jvm.options.d" / "lifeboat.options", jvm, 0o640)
    return hashlib.sha256(f"{cfg['version']}\0{yml}\0{jvm}".encode()).hexdigest()


# --------------------------------------------------------------------------- process

def _running_pid(paths: _Paths) -> int | None:
    pid = _read_pid(paths.pid)
    return pid if _alive(pid) else None


def _start(paths: _Paths, home: Path, java_home: Path, ids) -> subprocess.Popen:
    env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin",
        "LANG": "C.UTF-8",
        "ES_JAVA_HOME": str(java_home),
        "ES_PATH_CONF": str(paths.conf),
        "ES_TMPDIR": str(paths.tmp),
        "CLI_JAVA_OPTS": "-XX:TieredStopAtLevel=1",  # the launcher JVM: start fast, it only spawns the node
    }
    argv = [str(home / "bin" / "elasticsearch"), "-p", str(paths.pid)]
    if ids is not None:
        runuser = shutil.which("runuser") or shutil.which("runuser", path="/usr/sbin:/sbin") or "/usr/sbin/runuser"
        argv = [runuser, "-u", OS_USER, "--", *argv]
    with contextlib.suppress(FileNotFoundError):
        paths.pid.unlink()
    with open(paths.console, "ab") as out:  # closed in the parent once the child holds its own copy
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                env=env, cwd=str(paths.node), start_new_session=True)
    _write(paths.launcher_pid, f"{proc.pid}\n")
    return proc


def _wait_ready(paths: _Paths, port: int, proc: subprocess.Popen | None) -> dict:
    deadline = time.monotonic() + WAIT_S
    last = None
    red_since = None
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise _error(f"Elasticsearch exited during start-up (rc={proc.returncode})", paths.console,
                         _tail(paths.console, 20))
        h = _health(port)
        if h is not None:
            last = h
            if h.get("status") in ("green", "yellow"):
                return h
            # An index whose primaries cannot be allocated keeps the cluster red for good: after
            # 20 s with nothing left initializing, report it instead of waiting for the timeout.
            if h.get("initializing_shards", 1) == 0 and h.get("number_of_pending_tasks", 1) == 0:
                red_since = red_since or time.monotonic()
                if time.monotonic() - red_since > 20:
                    return h
            else:
                red_since = None
        time.sleep(0.25)
    raise _error(f"timed out after {WAIT_S:.0f}s waiting for http://127.0.0.1:{port}/_cluster/health to be "
                 f"green/yellow (last: {last.get('status') if last else 'no HTTP answer'})", paths.console,
                 _tail(paths.console, 20))


def _stop_pid(pid: int, timeout: float = 30.0) -> str:
    result = _common.stop_pid(pid, lambda: _alive(pid), grace=timeout, kill_grace=10.0)
    if result == "still running":
        raise _error(f"could not stop Elasticsearch pid {pid}")
    return result


def _stop(paths: _Paths) -> str:
    result = "not running"
    pid = _running_pid(paths)
    if pid:
        result = _stop_pid(pid)
    launcher = _read_pid(paths.launcher_pid)
    if launcher:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(launcher, signal.SIGTERM)
        with contextlib.suppress(ChildProcessError, OSError):
            os.waitpid(launcher, os.WNOHANG)
    for p in (paths.pid, paths.launcher_pid, paths.fingerprint):
        with contextlib.suppress(FileNotFoundError):
            p.unlink()
    return result


@contextlib.contextmanager
def _locked(paths: _Paths, say):
    """One up/down at a time per state dir (stack.py holds its own lock, the CLI below does not)."""
    paths.root.mkdir(parents=True, exist_ok=True)
    with open(paths.root / ".lock", "w") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            say(f"  {NAME:<10} waiting for another up/down holding {paths.root / '.lock'} ...")
            fcntl.flock(fh, fcntl.LOCK_EX)
        yield


# --------------------------------------------------------------------------- contract

def _env(paths: _Paths, cfg: dict, home: Path, standby_url: str | None) -> dict[str, str]:
    url = f"http://127.0.0.1:{cfg['http_port']}"
    return {
        "LIFEBOAT_ES_PORT": str(cfg["http_port"]),
        "LIFEBOAT_ES_URL": url,
        "LIFEBOAT_ES_VERSION": cfg["version"],
        "LIFEBOAT_ES_HOME": str(home),
        "LIFEBOAT_ES_LOG": str(paths.console),
        "LIFEBOAT_ES_REPO_TYPE": "fs",
        "LIFEBOAT_ES_REPO_PATH": str(paths.repo),
        "LIFEBOAT_ES_STANDBY_REPO_PATH": str(paths.repo_standby),
        # Airflow connections (URI form): http[s]://[user:password@]host:port
        "AIRFLOW_CONN_LIFEBOAT_ES_US_WEST_2": url,
        # The standby region's own cluster (LIFEBOAT_ES_STANDBY=0: the primary's node stands in for it).
        "AIRFLOW_CONN_LIFEBOAT_ES_US_EAST_1": standby_url or url,
        **({"LIFEBOAT_ES_STANDBY_URL": standby_url} if standby_url else {}),
    }


def up(state_dir: Path, say) -> dict[str, str]:
    """Both regions' nodes: the primary's started first (it holds the sample data), then the standby's;
    on a cold start the second waits for the first (two JVMs starting at once on two cores double both)."""
    primary = _Paths(state_dir)
    with _locked(primary, say):
        cfg, home = _up(primary, say, seed=True)
        standby_url = None
        if standby_enabled():
            scfg, _ = _up(_Paths(state_dir, STANDBY_REGION), say, seed=False)
            standby_url = f"http://127.0.0.1:{scfg['http_port']}"
        return _env(primary, cfg, home, standby_url)


def _up(paths: _Paths, say, seed: bool) -> tuple[dict, Path]:
    cfg = _load_cfg(paths)
    home = paths.home(cfg["version"])
    pid = _running_pid(paths)
    where = f"{NAME} {paths.region}"
    if pid and home.is_dir():
        rendered = f"{cfg['version']}\0{_render_yml(paths, cfg, home)}\0{_render_jvm()}"
        want = hashlib.sha256(rendered.encode()).hexdigest()
        have = paths.fingerprint.read_text().strip() if paths.fingerprint.exists() else ""
        # Any answer will do (a red index left by someone is no reason to restart the node).
        if want == have and _health(cfg["http_port"], timeout=5.0) is not None:
            if seed:
                _ensure_sample(cfg, say)
            return cfg, home
        say(f"  {where:<10} configuration changed or node not answering HTTP: restarting pid {pid}")
        _stop(paths)
    t = time.monotonic()
    java_home, major = find_java()
    ids = _ensure_user()
    zip_path = fetch_distribution(cfg["version"], say)
    home = _unzip(zip_path, paths.root, cfg["version"])
    for d in (paths.data, paths.logs, paths.tmp, paths.run, paths.repo, paths.repo_standby):
        d.mkdir(parents=True, exist_ok=True)
    fingerprint = _write_config(paths, cfg, home)
    _ensure_traversable(paths.root, say)
    os.chmod(paths.root, 0o755)
    _chown_tree(paths.node if paths.region != PRIMARY_REGION else paths.root, ids)
    # the standby region's copy of the repository (the inventory's `lifeboat` folder): the mirror fills it
    (paths.repo_standby / "lifeboat").mkdir(parents=True, exist_ok=True)
    _chown_tree(paths.repo_standby, ids)
    proc = _start(paths, home, java_home, ids)
    h = _wait_ready(paths, cfg["http_port"], proc)
    _write(paths.fingerprint, fingerprint + "\n")
    if seed:
        _ensure_sample(cfg, say)
    say(f"  {where:<10} {cfg['version']} on Java {major} ({java_home.name}), 127.0.0.1:{cfg['http_port']}, "
        f"health {h['status']} [{time.monotonic() - t:.1f}s]  log: {paths.console}")
    return cfg, home


def down(state_dir: Path, say) -> str:
    primary = _Paths(state_dir)
    if not primary.root.exists():
        return "not installed"
    with _locked(primary, say):
        standby = _Paths(state_dir, STANDBY_REGION)
        out = [f"{r} {_stop(p)}" for r, p in ((STANDBY_REGION, standby), (PRIMARY_REGION, primary))
               if p.node.exists()]
        return ", ".join(out)


def stop_region(state_dir: Path, region: str, kill: bool = False) -> str:
    """Stop (or SIGKILL, a region loss) one region's node; `up` starts it again."""
    paths = _Paths(state_dir, region)
    if kill:
        pid = _running_pid(paths)
        if pid:
            os.kill(pid, signal.SIGKILL)
        return f"killed pid {pid}" if pid else "not running"
    return _stop(paths)


def status(state_dir: Path) -> dict:
    out = _status(_Paths(state_dir))
    if standby_enabled():
        out["standby"] = _status(_Paths(state_dir, STANDBY_REGION))
        out["running"] = out["running"] and out["standby"]["running"]
    return out


def _status(paths: _Paths) -> dict:
    try:
        cfg = json.loads(paths.cfg.read_text())
    except (OSError, ValueError):
        return {"running": False, "error": "not initialised (run `stack.py up`)", "log": str(paths.console)}
    pid = _running_pid(paths)
    h = _health(cfg["http_port"]) if pid else None
    return {"running": bool(pid and h and h.get("status") in ("green", "yellow")), "pid": pid,
            "port": cfg["http_port"], "version": cfg.get("version"), "status": (h or {}).get("status", "down"),
            "region": paths.region, "log": str(paths.console)}


# --------------------------------------------------------------------------- sample data

SAMPLE_INDICES = {"community-posts": 600, "community-users": 200}  # the inventory's covered indices


def _request(method: str, url: str, body: bytes | None = None, ctype: str = "application/json") -> dict:
    req = urllib.request.Request(url, data=body, method=method, headers={"Content-Type": ctype})
    try:
        with _HTTP.open(req, timeout=120) as r:
            return json.loads(r.read() or b"{}")
    except urllib.error.HTTPError as e:
        if method == "DELETE" and e.code == 404:
            return {}
        raise _error(f"{method} {url} failed: HTTP {e.code}", detail=e.read().decode(errors="replace")[:2000]) from None


def _exists(url: str, index: str) -> bool:
    try:
        with _HTTP.open(urllib.request.Request(f"{url}/{index}", method="HEAD"), timeout=30) as r:
            return r.status == 200
    except urllib.error.HTTPError as e:
        if e.code == 404:
            return False
        raise


def seed_indices(url: str, docs: dict[str, int] | None = None) -> dict[str, int]:
    """(Re)create the Community Platform sample indices with deterministic documents."""
    for index, n in (docs or SAMPLE_INDICES).items():
        _request("DELETE", f"{url}/{index}")
        _request("PUT", f"{url}/{index}", json.dumps({"settings": {
            "number_of_shards": 2 if "posts" in index else 1, "number_of_replicas": 0}}).encode())
        for start in range(0, n, 1000):
            lines = []
            for i in range(start, min(n, start + 1000)):
                lines.append(json.dumps({"index": {"_index": index, "_id": f"{index}-{i}"}}))
                lines.append(json.dumps({"n": i, "title": f"{index} #{i}", "body": "lorem ipsum " * (i % 7 + 1),
                                         "tags": [f"t{i % 5}", f"g{i % 3}"]}))
            r = _request("POST", f"{url}/_bulk?refresh=wait_for", ("\n".join(lines) + "\n").encode(),
                         "application/x-ndjson")
            if r.get("errors"):
                raise _error(f"bulk load of {index} reported errors",
                             detail=json.dumps([i for i in r["items"] if "error" in next(iter(i.values()))][:3]))
    return dict(docs or SAMPLE_INDICES)


def _ensure_sample(cfg: dict, say) -> None:
    """The node always has the Community Platform's sample indices (the inventory's covered ones):
    created with deterministic documents when missing, never touched when present."""
    url = f"http://127.0.0.1:{cfg['http_port']}"
    missing = {i: n for i, n in SAMPLE_INDICES.items() if not _exists(url, i)}
    if missing:
        seed_indices(url, missing)
        say(f"  {NAME:<10} seeded sample indices {', '.join(f'{i} ({n} docs)' for i, n in missing.items())}")


def seed(state_dir: Path) -> dict[str, int]:
    cfg = json.loads(_Paths(state_dir).cfg.read_text())
    return seed_indices(f"http://127.0.0.1:{cfg['http_port']}")


def check() -> dict[str, str]:
    """What a fresh machine needs (for bootstrap): a JDK >= 21 and a pin for the distribution."""
    java_home, major = find_java()
    pin = pins.pin("elasticsearch")
    return {"java_home": str(java_home), "java": str(major), "version": ES_VERSION, "sha256": pin.sha256}


if __name__ == "__main__":
    # python devstack/components/elasticsearch.py up|down|status|seed [state_dir]   |   check|fetch
    cmd = sys.argv[1] if len(sys.argv) > 1 else "status"
    state = Path(sys.argv[2] if len(sys.argv) > 2 else Path(__file__).resolve().parents[2] / ".stack")
    fn = {"up": lambda: up(state, print), "down": lambda: down(state, print), "status": lambda: status(state),
          "seed": lambda: seed(state), "check": check,
          "fetch": lambda: str(fetch_distribution(ES_VERSION, print))}[cmd]
    try:
        res = fn()
    except Exception as exc:
        print(f"ERROR {exc}", file=sys.stderr)
        sys.exit(1)
    print(json.dumps(res, indent=2) if isinstance(res, dict) else res)

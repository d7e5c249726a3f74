"""Redis: RDB snapshots over the replication protocol, the multi-part AOF directory, scratch restores.

Two backup kinds, both restorable with nothing but `redis-server` (see docs/datastores/redis.md):

* **rdb** -- `redis-cli --rdb <file>` asks the server for a full resynchronisation (`SYNC`, with
  `REPLCONF rdb-only 1`) and writes the RDB it streams: no shell access to the Redis host needed, the
  password goes in through `REDISCLI_AUTH`, never argv. Before that Lifeboat waits (up to
  `busy_wait`) for a running BGSAVE / BGREWRITEAOF to finish and refuses if it does not: it never
  queues a second fork on a busy server.
* **aof** -- where the runner can read the primary's `dir` (`options.data_dir`), the multi-part AOF
  directory (`appendonlydir/`: manifest, base RDB, incremental AOFs). Taken only while no rewrite is
  in progress; the AOF manifest and `aof_rewrites` are read before and after the copy and the copy
  is retried if a rewrite slipped in. The last incremental file is copied up to its size at that
  moment and cut back to the last complete command (`redis-check-aof` reports where), so the copy
  is a consistent prefix of the server's history.

Nothing is written to the live server by a backup: it only reads INFO and takes the snapshot.

Each snapshot is then loaded once into a private, throw-away `redis-server` (127.0.0.1, free port,
random password, `save ""`, never `replicaof`) to record *exact* facts of the snapshot in the
manifest -- key counts per database (persistent / volatile), the newest heartbeat, and a digest of
a deterministic sample of keys: the `sample_size` keys with the smallest sha256("<db>:" + key),
each reduced to a canonical, DUMP-independent encoding of its type and value plus its absolute
expiry (PEXPIRETIME, ms). Key names are stored hashed only (sample.json), never in clear.

Verification: `redis-check-rdb` / `redis-check-aof` on the stored files, sha256 and size of every
artifact. Restore test: copy the backup into a scratch folder (free space and memory checked
first), start a scratch `redis-server` on it, wait until loading is done, compare key counts and
the sampled digests with the manifest, read the heartbeat key for the RPO, shut it down, delete it.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import heapq
import json
import logging
import os
import re
import secrets
import shutil
import socket
import struct
import subprocess
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import Field, field_validator

from lifeboat.datastores.base import Datastore, EngineOptions
from lifeboat.drills import DrillRecorder
from lifeboat.errors import CommandFailed, ConnectionConfigError, LifeboatError, Refused, RestoreFailed
from lifeboat.inventory import DurationStr, parse_duration
from lifeboat.records import Check, Manifest, Verification, utcnow

log = logging.getLogger("lifeboat.redis")

SAMPLE_FORMAT = "lifeboat.redis-sample/v1"
SAMPLE_FILE = "sample.json"
RDB_FILE = "dump.rdb"
_FORK_FIELDS = ("rdb_bgsave_in_progress", "aof_rewrite_in_progress", "module_fork_in_progress")
_AOF_FIELDS = ("aof_rewrite_in_progress", "aof_rewrite_scheduled")
_DISK_HEADROOM = 16 * 1024 * 1024


class RedisOptions(EngineOptions):
    data_dir: str | None = Field(
        default=None,
        description="the primary's `dir` as the runner sees it (host access); required by the aof kind",
    )
    aof_dirname: str = "appendonlydir"
    sample_size: int = Field(default=1000, ge=0, le=100_000)
    heartbeat_key: str = "lifeboat:heartbeat"
    heartbeat_db: int = Field(default=0, ge=0)
    databases: int = Field(default=16, ge=1, description="minimum `databases` for scratch servers")
    busy_wait: DurationStr = "2m"
    backup_timeout: DurationStr = "2h"
    restore_timeout: DurationStr = "1h"
    memory_check: bool = True
    cli_bin: str = "redis-cli"
    server_bin: str = "redis-server"
    check_rdb_bin: str = "redis-check-rdb"
    check_aof_bin: str = "redis-check-aof"

    @field_validator("aof_dirname")
    @classmethod
    def _plain(cls, v: str) -> str:
        if not v or "/" in v or v in (".", ".."):
            raise ValueError(f"{v!r}: a plain directory name like 'appendonlydir'")
        return v


# =========================================================================== pure helpers

def read_rdb_aux(path: Path | str) -> dict[str, str]:
    """The AUX fields at the head of an RDB file (redis-ver, ctime, used-mem, repl-id, repl-offset ...)
    plus 'rdb-version'. Raises ValueError if the file does not start like an RDB."""
    with open(path, "rb") as f:
        magic = f.read(9)
        if len(magic) != 9 or magic[:5] != b"REDIS" or not magic[5:].isdigit():
            raise ValueError(f"{path}: not an RDB file (starts with {magic[:9]!r})")
        aux = {"rdb-version": str(int(magic[5:]))}
        while True:
            op = f.read(1)
            if op != b"\xfa":
                return aux
            key = _rdb_string(f)
            aux[key.decode(errors="replace")] = _rdb_string(f).decode(errors="replace")


def _rdb_len(f) -> tuple[int, bool]:
    b = f.read(1)
    if not b:
        raise ValueError("unexpected end of file in RDB header")
    b = b[0]
    kind = b >> 6
    if kind == 0:
        return b & 0x3F, False
    if kind == 1:
        return ((b & 0x3F) << 8) | f.read(1)[0], False
    if kind == 3:
        return b & 0x3F, True
    if b == 0x80:
        return struct.unpack(">I", f.read(4))[0], False
    if b == 0x81:
        return struct.unpack(">Q", f.read(8))[0], False
    raise ValueError(f"bad RDB length byte 0x{b:02x}")


def _rdb_string(f) -> bytes:
    n, special = _rdb_len(f)
    if not special:
        return f.read(n)
    if n == 0:
        return str(struct.unpack("<b", f.read(1))[0]).encode()
    if n == 1:
        return str(struct.unpack("<h", f.read(2))[0]).encode()
    if n == 2:
        return str(struct.unpack("<i", f.read(4))[0]).encode()
    if n == 3:
        clen, _ = _rdb_len(f)
        ulen, _ = _rdb_len(f)
        return lzf_decompress(f.read(clen), ulen)
    raise ValueError(f"unknown RDB string encoding {n}")


def lzf_decompress(data: bytes, expected: int) -> bytes:
    out = bytearray()
    i = 0
    while i < len(data):
        ctrl = data[i]
        i += 1
        if ctrl < 32:
            out += data[i:i + ctrl + 1]
            i += ctrl + 1
        else:
            length = ctrl >> 5
            if length == 7:
                length += data[i]
                i += 1
            ref = len(out) - ((ctrl & 0x1F) << 8) - data[i] - 1
            i += 1
            for _ in range(length + 2):
                out.append(out[ref])
                ref += 1
    if len(out) != expected:
        raise ValueError(f"LZF: expected {expected} bytes, got {len(out)}")
    return bytes(out)


def key_hash(db: int, key: bytes) -> str:
    """Stable, order-free identity of a key (the name itself never leaves the scratch server)."""
    return hashlib.sha256(b"%d:" % db + key).hexdigest()[:32]


def _b(v: Any) -> bytes:
    if isinstance(v, bytes):
        return v
    if isinstance(v, float):
        return repr(v).encode()
    return str(v).encode()


def value_digest(parts: Iterable[Any]) -> str:
    h = hashlib.sha256()
    for p in parts:
        p = _b(p)
        h.update(len(p).to_bytes(8, "big"))
        h.update(p)
    return h.hexdigest()[:32]


def canonical_parts(type_: str, value: Any) -> list[Any]:
    """A DUMP-independent canonical form of one value: same data -> same parts, whatever the server's
    internal encoding (listpack, hashtable, quicklist ...) or RDB version."""
    if type_ == "string":
        return ["string", value]
    if type_ == "hash":
        out: list[Any] = ["hash"]
        for f, v in sorted(value.items()):
            out += [f, v]
        return out
    if type_ == "list":
        return ["list", *value]
    if type_ == "set":
        return ["set", *sorted(value)]
    if type_ == "zset":  # (member, score) pairs; sort by member for a canonical order
        out = ["zset"]
        for m, s in sorted(value, key=lambda ms: ms[0]):
            out += [m, float(s)]
        return out
    if type_ == "stream":
        out = ["stream", "last-generated-id", value["last_id"]]
        for eid, fields in value["entries"]:
            out += ["entry", eid, len(fields)]
            for f, v in fields.items():
                out += [f, v]
        for g in sorted(value["groups"], key=lambda g: g["name"]):
            out += ["group", g["name"], g["last-delivered-id"], g["pending"]]
            for c in sorted(g["consumers"], key=lambda c: c[0]):
                out += ["consumer", c[0], c[1]]
        return out
    return [f"dump:{type_}", value]


def sample_digest(entries: list[dict]) -> str:
    h = hashlib.sha256()
    for e in sorted(entries, key=lambda e: e["k"]):
        h.update(f"{e['k']} {e['t']} {e['x']} {e['v']}\n".encode())
    return h.hexdigest()


def bottom_k(items: Iterable[tuple[str, Any]], k: int) -> list[tuple[str, Any]]:
    """The k items with the smallest hash (hex string), whatever order they arrive in."""
    heap: list[tuple[int, str, Any]] = []
    for h, payload in items:
        v = int(h, 16)
        if len(heap) < k:
            heapq.heappush(heap, (-v, h, payload))
        elif -heap[0][0] > v:
            heapq.heapreplace(heap, (-v, h, payload))
    return sorted(((h, p) for _, h, p in heap), key=lambda t: t[0])


def compare_counts(expected: dict[str, int], got: dict[str, int]) -> tuple[list[str], list[str]]:
    """(problems, notes). Persistent keys must match exactly; volatile keys may only be fewer
    (expired since the backup), never more."""
    problems, notes = [], []
    dbs = sorted({k.split(".")[0] for k in (*expected, *got)}, key=lambda d: int(d[2:]))
    for db in dbs:
        ek, ee = expected.get(f"{db}.keys", 0), expected.get(f"{db}.expires", 0)
        gk, ge = got.get(f"{db}.keys", 0), got.get(f"{db}.expires", 0)
        if ek - ee != gk - ge:
            problems.append(f"{db}: {gk - ge} keys without TTL restored, backup has {ek - ee}")
        if ge > ee:
            problems.append(f"{db}: {ge} keys with TTL restored, backup has only {ee}")
        elif ge < ee:
            notes.append(f"{db}: {ee - ge} of {ee} keys with TTL expired since the backup")
    return problems, notes


def compare_samples(expected: list[dict], got: dict[str, dict], now_ms: int) -> tuple[list[str], int]:
    """(problems, n_expired). A sampled key may be missing only if its expiry has passed."""
    problems: list[str] = []
    expired = 0
    for e in expected:
        g = got.get(e["k"])
        if g is None:
            if e["x"] >= 0 and e["x"] <= now_ms:
                expired += 1
                continue
            problems.append(f"key #{e['k'][:12]} ({e['t']}{', no TTL' if e['x'] < 0 else ''}) is missing")
        elif g["t"] != e["t"]:
            problems.append(f"key #{e['k'][:12]}: type {g['t']}, backup has {e['t']}")
        elif g["v"] != e["v"]:
            problems.append(f"key #{e['k'][:12]} ({e['t']}): value differs from the backup")
        elif g["x"] != e["x"]:
            problems.append(f"key #{e['k'][:12]} ({e['t']}): expires at {g['x']} ms, backup says {e['x']} ms")
    return problems, expired


def parse_aof_manifest(text: str) -> list[dict[str, str]]:
    """Lines like `file appendonly.aof.1.base.rdb seq 1 type b` -> [{'file':..., 'seq':..., 'type':...}]."""
    out = []
    for line in text.splitlines():
        parts = line.split()
        if not parts or line.startswith("#"):
            continue
        if len(parts) % 2:
            raise ValueError(f"unreadable AOF manifest line: {line!r}")
        out.append(dict(zip(parts[0::2], parts[1::2], strict=False)))
    return out


def _free_bytes(path: Path) -> int:
    p = path
    while not p.exists():
        p = p.parent
    return shutil.disk_usage(p).free


def _mem_available() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def _mb(n: int | float) -> str:
    return f"{n / 1048576:.1f} MiB"


# =========================================================================== scratch server

class ScratchRedis:
    """A throw-away redis-server on 127.0.0.1 (free port, random password in a 0600 config file,
    protected-mode on, `save ""`, never `replicaof`), loading an RDB or AOF copy in its own folder."""

    def __init__(self, ds: RedisDatastore, root: Path, databases: int = 16):
        self.ds = ds
        self.root = root.absolute()  # redis chdirs into `dir` before opening the log file
        self.port = ds.free_port()
        self.password = secrets.token_urlsafe(18)
        self.conf = self.root / "scratch.conf"
        self.logfile = self.root / "redis.log"
        self.databases = max(databases, ds.options.databases)
        self.proc: subprocess.Popen | None = None
        self._clients: dict[int, Any] = {}
        self.timeout = parse_duration(ds.options.restore_timeout).total_seconds()

    @property
    def area(self) -> Path:
        return (self.ds.ctx.workdir / "scratch").absolute().resolve()

    def guard(self) -> None:
        """Only a private folder under <workdir>/scratch/, never overlapping the live server's `dir`
        (as the inventory says AND, for a server on this host, as the server itself says)."""
        me = self.root.resolve()
        if self.area not in me.parents:
            raise Refused(f"scratch folder {self.root} is not inside {self.area}: scratch servers run only there")
        live_dirs: list[tuple[Path, str]] = []
        if self.ds.options.data_dir:
            live_dirs.append((Path(self.ds.options.data_dir), f"datastores.{self.ds.name}.options.data_dir"))
        try:
            ep = self.ds.endpoint()
        except LifeboatError:  # DR: the live server's connection may be gone; nothing to collide with
            ep = None
        if ep is not None and ep.host in ("127.0.0.1", "localhost", "::1", socket.gethostname()):
            if (ep.port or 6379) == self.port:
                raise Refused(f"scratch port {self.port} is the live server's port")
            try:
                import redis

                d = self.ds._client().config_get("dir").get("dir")
                if d:
                    live_dirs.append((Path(d.decode() if isinstance(d, bytes) else d),
                                      f"`CONFIG GET dir` of {ep.conn_id!r}"))
            except (LifeboatError, redis.RedisError) as exc:  # CONFIG may be renamed or not allowed
                log.debug("cannot ask the live server for its dir: %s", exc)
        for live, what in live_dirs:
            live = live.resolve()
            if me == live or live in me.parents or me in live.parents:
                raise Refused(f"scratch folder {self.root} overlaps the live Redis data directory {live} ({what})")

    def start(self, mode: str, aof_filename: str = "appendonly.aof", aof_dirname: str | None = None) -> float:
        """Start and wait until the dataset is loaded; returns the load time in seconds."""
        self.guard()
        lines = [
            "# Lifeboat scratch server -- deleted after use",
            "bind 127.0.0.1", "protected-mode yes", f"port {self.port}", "daemonize no",
            f"dir {_q(self.root)}", f"pidfile {_q(self.root / 'redis.pid')}", f"logfile {_q(self.logfile)}",
            'save ""', f"databases {self.databases}", f"requirepass {self.password}",
            "rdbchecksum yes",
        ]
        if mode == "rdb":
            lines += [f"dbfilename {RDB_FILE}", "appendonly no"]
        else:
            lines += ["dbfilename scratch-unused.rdb", "appendonly yes",
                      f"appenddirname {_q(aof_dirname or self.ds.options.aof_dirname)}",
                      f"appendfilename {_q(aof_filename)}", "aof-load-truncated no", "auto-aof-rewrite-percentage 0",
                      "appendfsync no"]
        fd = os.open(self.conf, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write("\n".join(lines) + "\n")
        t0 = time.monotonic()
        self.proc = self.ds.ctx.runner.start([self.ds.options.server_bin, str(self.conf)],
                                             log_path=str(self.root / "stdout.log"))
        self._wait_loaded()
        return time.monotonic() - t0

    def log_tail(self, n: int = 12) -> str:
        out = []
        for p in (self.logfile, self.root / "stdout.log"):
            with contextlib.suppress(OSError):
                out += p.read_text(errors="replace").splitlines()[-n:]
        return "\n".join(out[-n:])

    def client(self, db: int = 0):
        import redis

        if db not in self._clients:
            from redis.backoff import NoBackoff
            from redis.retry import Retry

            self._clients[db] = redis.Redis(host="127.0.0.1", port=self.port, password=self.password, db=db,
                                            socket_timeout=300, socket_connect_timeout=5, retry=Retry(NoBackoff(), 0))
        return self._clients[db]

    def _wait_loaded(self) -> None:
        import redis

        deadline = time.monotonic() + self.timeout
        last = ""
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise RestoreFailed(f"scratch redis-server exited with code {self.proc.returncode} while loading "
                                    f"(log {self.logfile}):\n{self.log_tail()}")
            try:
                if self.client().info("persistence").get("loading") == 0 and self.client().ping():
                    return
            except (redis.ConnectionError, redis.BusyLoadingError, redis.TimeoutError) as exc:
                last = str(exc)
            time.sleep(0.05)
        raise RestoreFailed(f"scratch redis-server did not finish loading within {self.timeout:.0f}s "
                            f"({last}; log {self.logfile}):\n{self.log_tail()}")

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()  # SIGTERM: redis shuts down at once (save "" -> writes nothing)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def destroy(self) -> None:
        try:
            self.stop()
        finally:
            for c in self._clients.values():
                with contextlib.suppress(Exception):
                    c.close()
            self._clients.clear()
            if os.environ.get("LIFEBOAT_KEEP_SCRATCH") != "1" and self.area in self.root.resolve().parents:
                shutil.rmtree(self.root, ignore_errors=True)

    # -- what the manifest records and the restore test compares ------------------------------------
    def keyspace(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for db, v in sorted(self.client().info("keyspace").items(), key=lambda kv: int(kv[0][2:])):
            if isinstance(v, dict):
                counts[f"{db}.keys"] = int(v.get("keys", 0))
                counts[f"{db}.expires"] = int(v.get("expires", 0))
        return counts

    def survey(self, k: int, want: set[str] | None = None) -> dict[str, dict]:
        """Sampled keys {keyhash: {k, t, x, v}}: the bottom-k by key hash, or exactly the hashes in `want`."""
        dbs = [int(k_[2:].split(".")[0]) for k_ in self.keyspace() if k_.endswith(".keys")]

        def scan() -> Iterable[tuple[str, tuple[int, bytes]]]:
            for db in dbs:
                for key in self.client(db).scan_iter(count=2000):
                    yield key_hash(db, key), (db, key)

        if want is None:
            picked = bottom_k(scan(), k) if k > 0 else []
        else:
            picked = [(h, p) for h, p in scan() if h in want]
        by_db: dict[int, list[tuple[str, bytes]]] = {}
        for h, (db, key) in picked:
            by_db.setdefault(db, []).append((h, key))
        out: dict[str, dict] = {}
        for db, keys in by_db.items():
            out.update(self._entries(db, keys))
        return out

    def _entries(self, db: int, keys: list[tuple[str, bytes]]) -> dict[str, dict]:
        c = self.client(db)
        out: dict[str, dict] = {}
        for i in range(0, len(keys), 500):
            chunk = keys[i:i + 500]
            p = c.pipeline(transaction=False)
            for _, key in chunk:
                p.type(key)
                p.execute_command("PEXPIRETIME", key)
            meta = p.execute()
            p = c.pipeline(transaction=False)
            reads = []
            for j, (h, key) in enumerate(chunk):
                t = meta[2 * j].decode() if isinstance(meta[2 * j], bytes) else str(meta[2 * j])
                x = int(meta[2 * j + 1])
                if t == "none" or x == -2:
                    continue  # expired or gone between SCAN and now
                reads.append((h, key, t, x))
                if t == "string":
                    p.get(key)
                elif t == "hash":
                    p.hgetall(key)
                elif t == "list":
                    p.lrange(key, 0, -1)
                elif t == "set":
                    p.smembers(key)
                elif t == "zset":
                    p.zrange(key, 0, -1, withscores=True)
                elif t == "stream":
                    p.xrange(key)
                else:
                    p.dump(key)
            values = p.execute()
            for (h, key, t, x), v in zip(reads, values, strict=False):
                if v is None:
                    continue
                if t == "stream":
                    v = self._stream(c, key, v)
                out[h] = {"k": h, "t": t, "x": x, "v": value_digest(canonical_parts(t, v))}
        return out

    @staticmethod
    def _stream(c, key: bytes, entries) -> dict:
        info = c.xinfo_stream(key)
        groups = []
        for g in c.xinfo_groups(key):
            consumers = [(x["name"], x["pending"]) for x in c.xinfo_consumers(key, g["name"])]
            groups.append({"name": g["name"], "last-delivered-id": g["last-delivered-id"], "pending": g["pending"],
                           "consumers": consumers})
        return {"last_id": info["last-generated-id"], "entries": entries, "groups": groups}

    def heartbeat(self) -> datetime | None:
        raw = self.client(self.ds.options.heartbeat_db).get(self.ds.options.heartbeat_key)
        if raw is None:
            return None
        try:
            return datetime.fromisoformat(raw.decode())
        except ValueError:
            log.warning("heartbeat key %s holds %r, not an ISO timestamp", self.ds.options.heartbeat_key, raw[:40])
            return None


# =========================================================================== the engine

class RedisDatastore(Datastore):
    engine = "redis"
    Options = RedisOptions
    kinds = ("rdb", "aof")
    restore_series = "rdb"

    # -- plumbing --------------------------------------------------------------------------------
    def _ssl(self, ep) -> bool:
        return ep.conn_type == "rediss" or str(ep.extra.get("ssl", "")).lower() in ("1", "true", "yes")

    def _where(self, ep) -> str:
        return f"{ep.host}:{ep.port or 6379}"

    def _client(self, db: int = 0, region: str | None = None):
        """A checked redis.Redis for the live server; auth and network errors name the connection."""
        import redis
        from redis.backoff import ExponentialBackoff
        from redis.retry import Retry

        ep = self.endpoint(region).require("host")
        kw: dict[str, Any] = {"host": ep.host, "port": ep.port or 6379, "db": db, "username": ep.login or None,
                                  "password": ep.password or None, "socket_timeout": 60, "socket_connect_timeout": 10,
                                  "retry": Retry(ExponentialBackoff(cap=2, base=0.2), 2)}
        if self._ssl(ep):
            kw.update(ssl=True, ssl_ca_certs=ep.extra.get("ssl_ca_certs"), ssl_certfile=ep.extra.get("ssl_certfile"),
                      ssl_keyfile=ep.extra.get("ssl_keyfile"))
        c = redis.Redis(**kw)
        try:
            c.ping()
        except (redis.AuthenticationError, redis.ConnectionError, redis.TimeoutError, redis.ResponseError) as exc:
            raise self._conn_error(ep, exc) from None
        return c

    def _conn_error(self, ep, exc: BaseException) -> ConnectionConfigError:
        text = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        if ep.password:
            text = text.replace(ep.password, "***")
        auth = any(s in text.upper() for s in ("WRONGPASS", "NOAUTH", "AUTHENTICATION", "PASSWORD", "NOPERM"))
        hint = " -- check the password/user of that connection" if auth else ""
        return ConnectionConfigError(
            f"cannot use Redis through Airflow connection {ep.conn_id!r} ({self._where(ep)}): {text}{hint}")

    def _cli(self, *args: str, timeout: float | None = None, capture: bool = False, check: bool = True):
        ep = self.endpoint().require("host")
        argv = [self.options.cli_bin, "-h", ep.host, "-p", str(ep.port or 6379)]
        if ep.login:
            argv += ["--user", ep.login]
        if self._ssl(ep):
            argv.append("--tls")
            for opt, key in (("--cacert", "ssl_ca_certs"), ("--cert", "ssl_certfile"), ("--key", "ssl_keyfile")):
                if ep.extra.get(key):
                    argv += [opt, ep.extra[key]]
        env = {"REDISCLI_AUTH": ep.password} if ep.password else {}
        return self.ctx.runner.run([*argv, *args], env=env, timeout=timeout, capture=capture, check=check)

    def _tool_version(self, tool: str) -> str:
        try:
            return self.ctx.runner.run([tool, "--version"], capture=True, quiet=True, check=False).stdout.strip()
        except OSError:
            return "unknown"

    def _wait_not_busy(self, client, fields: tuple[str, ...], what: str) -> dict:
        """INFO persistence once no fork of `fields` runs; Refused after busy_wait (nothing was changed)."""
        wait = parse_duration(self.options.busy_wait).total_seconds()
        deadline = time.monotonic() + wait
        while True:
            info = client.info("persistence")
            busy = [f for f in fields if int(info.get(f, 0) or 0)]
            if not busy:
                return info
            if time.monotonic() >= deadline:
                ep = self.endpoint()
                raise Refused(
                    f"Redis behind Airflow connection {ep.conn_id!r} ({self._where(ep)}) is busy: "
                    f"{', '.join(f'{b}:1' for b in busy)} (INFO persistence) -- a BGSAVE/BGREWRITEAOF is already "
                    f"running; not starting {what} on top of it (waited {self.options.busy_wait}, options.busy_wait). "
                    "Nothing was changed on the server; the next run will try again")
            log.info("waiting for %s to finish before %s ...", ", ".join(busy), what)
            time.sleep(0.5)

    def _staging(self, backup_id: str) -> Path:
        staging = self.ctx.workdir / "staging" / backup_id
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        return staging

    def _live_facts(self, client) -> dict[str, Any]:
        server, memory, repl = client.info("server"), client.info("memory"), client.info("replication")
        ks = client.info("keyspace")
        max_db = max((int(k[2:]) for k in ks if k.startswith("db")), default=0)
        return {"redis_version": str(server.get("redis_version", "")), "used_memory": int(memory.get("used_memory", 0)),
                "role": repl.get("role"), "master_repl_offset": int(repl.get("master_repl_offset", 0) or 0),
                "master_replid": repl.get("master_replid"), "databases": max(max_db + 1, self.options.databases)}

    # -- backup ----------------------------------------------------------------------------------
    def backup(self, kind: str, backup_id: str) -> Manifest:
        self.check_kind(kind)
        done = self.ctx.repo.manifest(self.name, backup_id)
        if done is not None:
            log.info("backup %s is already complete (retried task): nothing to do", backup_id)
            return done
        return self._backup_rdb(backup_id) if kind == "rdb" else self._backup_aof(backup_id)

    def _backup_rdb(self, backup_id: str) -> Manifest:
        started = utcnow()
        client = self._client()
        self._wait_not_busy(client, _FORK_FIELDS, "an RDB snapshot")
        live = self._live_facts(client)
        staging = self._staging(backup_id)
        try:
            rdb = staging / RDB_FILE
            try:
                self._cli("--rdb", str(rdb), timeout=parse_duration(self.options.backup_timeout).total_seconds())
            except CommandFailed as exc:
                raise self._explain_cli_failure(exc, staging) from None
            try:
                aux = read_rdb_aux(rdb)
            except (OSError, ValueError) as exc:
                raise CommandFailed([self.options.cli_bin, "--rdb", str(rdb)], 0,
                                    f"the file redis-cli wrote is not a usable RDB: {exc}") from None
            self._memory_check(int(aux.get("used-mem", 0) or 0), f"loading backup {backup_id} for its manifest")
            # Upload (sha256 + copy) and inspection only read the file: run them side by side.
            with ThreadPoolExecutor(1, thread_name_prefix="lifeboat-upload") as pool:
                upload = pool.submit(self.ctx.repo.put_artifact, self.name, backup_id, RDB_FILE, rdb)
                snap = self._inspect(staging, "rdb", live["databases"], backup_id)
                artifacts = [upload.result(),
                             self.ctx.repo.put_artifact(self.name, backup_id, SAMPLE_FILE, staging / SAMPLE_FILE)]
            ctime = aux.get("ctime")
            position = {
                "snapshot_at": datetime.fromtimestamp(int(ctime), UTC).isoformat() if ctime else None,
                "repl_id": aux.get("repl-id"),
                "repl_offset": int(aux["repl-offset"]) if aux.get("repl-offset", "").lstrip("-").isdigit() else None,
                "live_master_repl_offset_before": live["master_repl_offset"],
                "heartbeat_at": snap["heartbeat_at"],
            }
            m = Manifest(
                id=backup_id, datastore=self.name, engine=self.engine, kind="rdb", series="rdb", region=self.region,
                started_at=started, finished_at=utcnow(), position=position, artifacts=artifacts,
                counts=snap["counts"],
                tools={"redis-cli": self._tool_version(self.options.cli_bin), "redis": live["redis_version"],
                       "scratch redis-server": self._tool_version(self.options.server_bin)},
                native={
                    "tool": "redis-cli --rdb", "file": RDB_FILE, "rdb_version": aux.get("rdb-version"),
                    "rdb_redis_ver": aux.get("redis-ver"), "used_mem": int(aux.get("used-mem", 0) or 0),
                    "live_used_memory": live["used_memory"], "databases": live["databases"],
                    "load_seconds": snap["load_seconds"], "sample": snap["sample"],
                },
                source=self.endpoint().describe(), run=self.ctx.run,
                restore_hint=(f"copy {RDB_FILE} into an empty folder D; redis-server --dir D --dbfilename {RDB_FILE} "
                              "--appendonly no --port <free port> (docs/datastores/redis.md)"),
            )
            return self.ctx.repo.commit(m)
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    def _explain_cli_failure(self, exc: CommandFailed, staging: Path) -> LifeboatError:
        tail = exc.output_tail or ""
        ep = self.endpoint()
        if re.search(r"NOAUTH|WRONGPASS|AUTH failed|NOPERM", tail, re.I):
            return self._conn_error(ep, RuntimeError(tail.strip().splitlines()[-1]))
        if re.search(r"No space left|Error writing", tail, re.I) or _free_bytes(staging) < 1024 * 1024:
            return CommandFailed(exc.argv, exc.returncode,
                                 f"staging folder {staging} ran out of space while writing the RDB "
                                 f"({_mb(_free_bytes(staging))} free): {tail[-500:]}", exc.timed_out)
        return exc

    def _inspect(self, staging: Path, mode: str, databases: int, backup_id: str,
                 aof_filename: str = "appendonly.aof") -> dict[str, Any]:
        """Load the snapshot once in a private scratch server: exact counts, heartbeat, key sample."""
        root = self.ctx.workdir / "scratch" / f"{backup_id}-inspect"
        scratch = ScratchRedis(self, root, databases)
        scratch.guard()
        shutil.rmtree(root, ignore_errors=True)
        root.mkdir(parents=True)
        try:
            if mode == "rdb" and _same_fs(staging, root):
                os.link(staging / RDB_FILE, root / RDB_FILE)  # read-only use; save "" never writes
            elif mode == "rdb":
                shutil.copyfile(staging / RDB_FILE, root / RDB_FILE)
            else:
                shutil.copytree(staging / self.options.aof_dirname, root / self.options.aof_dirname)
            load_seconds = scratch.start(mode, aof_filename)
            counts = scratch.keyspace()
            entries = sorted(scratch.survey(self.options.sample_size).values(), key=lambda e: e["k"])
            hb = scratch.heartbeat()
        finally:
            scratch.destroy()
        digest = sample_digest(entries)
        (staging / SAMPLE_FILE).write_text(json.dumps({
            "format": SAMPLE_FORMAT,
            "method": "bottom-k of sha256('<db>:' + key); v = sha256 of the canonical value; x = PEXPIRETIME ms",
            "k": self.options.sample_size, "digest": digest, "entries": entries}, indent=0))
        return {"counts": counts, "heartbeat_at": hb.isoformat() if hb else None,
                "load_seconds": round(load_seconds, 3),
                "sample": {"size": len(entries), "digest": digest, "artifact": SAMPLE_FILE}}

    def _backup_aof(self, backup_id: str) -> Manifest:
        started = utcnow()
        if not self.options.data_dir:
            raise Refused(f"datastores.{self.name}.options.data_dir: not set -- the aof kind copies the primary's "
                          "appendonlydir and needs its data directory as this runner sees it (host access)")
        aofdir = Path(self.options.data_dir) / self.options.aof_dirname
        client = self._client()
        ep = self.endpoint()
        info = client.info("persistence")
        if not int(info.get("aof_enabled", 0)):
            raise Refused(f"Redis behind Airflow connection {ep.conn_id!r} ({self._where(ep)}) has appendonly off "
                          "(INFO persistence aof_enabled:0): there is no AOF to back up")
        manifests = sorted(aofdir.glob("*.manifest")) if aofdir.is_dir() else []
        if len(manifests) != 1:
            raise Refused(f"datastores.{self.name}.options.data_dir: {aofdir} has "
                          f"{'no' if not manifests else len(manifests)} AOF manifest file(s) (*.manifest); is it "
                          f"the primary's `dir` + `{self.options.aof_dirname}` of {ep.conn_id!r} as this runner "
                          "sees it?")
        manifest_path = manifests[0]
        aof_filename = manifest_path.name[: -len(".manifest")]
        live = self._live_facts(client)
        staging = self._staging(backup_id)
        try:
            dest = staging / self.options.aof_dirname
            files, trimmed, copied = self._copy_aof(client, manifest_path, dest)
            self._memory_check(live["used_memory"], f"loading backup {backup_id} for its manifest")
            snap = self._inspect(staging, "aof", live["databases"], backup_id, aof_filename)
            artifacts = [self.ctx.repo.put_artifact(self.name, backup_id, f"{self.options.aof_dirname}/{p.name}", p)
                         for p in sorted(dest.iterdir())]
            artifacts.append(self.ctx.repo.put_artifact(self.name, backup_id, SAMPLE_FILE, staging / SAMPLE_FILE))
            m = Manifest(
                id=backup_id, datastore=self.name, engine=self.engine, kind="aof", series="aof", region=self.region,
                started_at=started, finished_at=utcnow(),
                position={"copied_at": copied.isoformat(), "aof_files": [f["file"] for f in files],
                          "last_incr_bytes": files[-1]["bytes"], "trimmed_partial_tail_bytes": trimmed,
                          "live_master_repl_offset": live["master_repl_offset"], "heartbeat_at": snap["heartbeat_at"]},
                artifacts=artifacts, counts=snap["counts"],
                tools={"redis": live["redis_version"],
                       "redis-check-aof": self._tool_version(self.options.check_aof_bin)},
                native={"tool": "copy of appendonlydir", "aof_dirname": self.options.aof_dirname,
                        "aof_filename": aof_filename, "manifest_file": manifest_path.name,
                        "live_used_memory": live["used_memory"], "used_mem": live["used_memory"],
                        "databases": live["databases"], "load_seconds": snap["load_seconds"], "sample": snap["sample"]},
                source=self.endpoint().describe() + f" dir={self.options.data_dir}", run=self.ctx.run,
                restore_hint=(f"copy {self.options.aof_dirname}/ into an empty folder D; redis-server --dir D "
                              f"--appendonly yes --appenddirname {self.options.aof_dirname} --appendfilename "
                              f"{aof_filename} --port <free port> (docs/datastores/redis.md)"),
            )
            return self.ctx.repo.commit(m)
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    def _copy_aof(self, client, manifest_path: Path, dest: Path, attempts: int = 3):
        """Copy base + incr files listed in the AOF manifest while no rewrite runs; retry if one slipped in."""
        for attempt in range(1, attempts + 1):
            before = self._wait_not_busy(client, _AOF_FIELDS, "copying the AOF")
            text = manifest_path.read_text()
            entries = [e for e in parse_aof_manifest(text) if e.get("type") in ("b", "i")]
            if not entries or not any(e["type"] == "b" for e in entries):
                raise Refused(f"{manifest_path}: no base file listed; is this a Redis 7 multi-part AOF manifest?")
            shutil.rmtree(dest, ignore_errors=True)
            dest.mkdir(parents=True)
            files = []
            try:
                for i, e in enumerate(entries):
                    src = manifest_path.parent / e["file"]
                    limit = src.stat().st_size  # the last incr file grows while we copy: take a prefix
                    n = _copy_prefix(src, dest / e["file"], limit)
                    files.append({"file": e["file"], "type": e["type"], "bytes": n, "last": i == len(entries) - 1})
            except FileNotFoundError as exc:
                log.warning("AOF file vanished during the copy (%s); a rewrite finished meanwhile", exc.filename)
                continue
            copied = utcnow()
            after = client.info("persistence")
            stable = (manifest_path.read_text() == text
                      and after.get("aof_rewrites") == before.get("aof_rewrites")
                      and not int(after.get("aof_rewrite_in_progress", 0)))
            if not stable:
                log.warning("BGREWRITEAOF started during the AOF copy (attempt %d/%d): copying again",
                            attempt, attempts)
                continue
            (dest / manifest_path.name).write_text("".join(
                f"file {e['file']} seq {e.get('seq', '1')} type {e['type']}\n" for e in entries))
            trimmed = self._trim_partial_tail(dest / manifest_path.name, dest / files[-1]["file"]) \
                if files[-1]["type"] == "i" else 0
            files[-1]["bytes"] -= trimmed
            return files, trimmed, copied
        raise Refused(f"{manifest_path}: an AOF rewrite (BGREWRITEAOF) started during each of {attempts} copy "
                      "attempts; "
                      "not taking an inconsistent copy. Nothing was changed on the server; try again later")

    def _trim_partial_tail(self, manifest: Path, last: Path) -> int:
        """Cut the copied last incr file back to its last complete command (a write may have been in
        flight at the copy's end). Only an incomplete *tail* is cut; damage elsewhere is an error."""
        r = self.ctx.runner.run([self.options.check_aof_bin, str(manifest)], capture=True, check=False, quiet=True)
        if r.returncode == 0:
            return 0
        out = r.stdout + "\n" + r.tail
        m = re.search(rf"filename={re.escape(last.name)}, size=(\d+), ok_up_to=(\d+),", out)
        partial = False
        if m and re.search(rf"AOF {re.escape(last.name)} is not valid", out):
            size, ok = int(m.group(1)), int(m.group(2))
            with open(last, "rb") as fh:
                fh.seek(ok)
                partial = resp_tail_is_partial(fh.read(size - ok))
        if not partial:
            raise CommandFailed([self.options.check_aof_bin, str(manifest)], r.returncode,
                                f"the live AOF in {self.options.data_dir}/{self.options.aof_dirname} does not check "
                                f"clean (damaged, not just an in-flight write at the end):\n{out[-1500:]}")
        with open(last, "r+b") as fh:
            fh.truncate(ok)
        log.info("trimmed %d bytes of an in-flight write from the copy of %s", size - ok, last.name)
        r = self.ctx.runner.run([self.options.check_aof_bin, str(manifest)], capture=True, check=False, quiet=True)
        if r.returncode != 0:
            raise CommandFailed([self.options.check_aof_bin, str(manifest)], r.returncode, (r.stdout + r.tail)[-1500:])
        return size - ok

    # -- verification ----------------------------------------------------------------------------
    def verify(self, manifests: list[Manifest]) -> list[Verification]:
        out = []
        for m in manifests:
            checks = [self._check_artifacts(m)]
            local, tmp = self._local_copy(m)
            try:
                if m.kind == "rdb":
                    checks.append(self._check_rdb(m, local))
                else:
                    checks.append(self._check_aof(m, local))
                checks.append(self._check_sample_file(m, local))
            finally:
                if tmp is not None:
                    shutil.rmtree(tmp, ignore_errors=True)
            out.append(self.record_verification(m, checks))
        return out

    def _repo_name(self, m: Manifest, rel: str) -> str:
        return f"{self.ctx.repo.primary.url}/{self.ctx.repo.backup_prefix(self.name, m.id)}{rel}"

    def _local_copy(self, m: Manifest) -> tuple[Path, Path | None]:
        repo = self.ctx.repo.primary
        prefix = self.ctx.repo.backup_prefix(self.name, m.id)
        local = repo.local_path(prefix)
        if local is not None:
            return local, None
        tmp = self.ctx.workdir / "verify" / m.id
        shutil.rmtree(tmp, ignore_errors=True)
        for a in m.artifacts:
            repo.get_file(prefix + a.path, tmp / a.path)
        return tmp, tmp

    def _check_artifacts(self, m: Manifest) -> Check:
        return self.ctx.repo.check_artifacts(m)

    def _check_rdb(self, m: Manifest, local: Path) -> Check:
        path = local / RDB_FILE
        name = self._repo_name(m, RDB_FILE)
        if not path.is_file():
            return Check(name="redis-check-rdb", ok=False, detail=f"{name}: missing")
        r = self.ctx.runner.run([self.options.check_rdb_bin, str(path)], capture=True, check=False, quiet=True,
                                timeout=parse_duration(self.options.backup_timeout).total_seconds())
        out = r.stdout + "\n" + r.tail
        if r.returncode != 0 or "RDB looks OK" not in out:
            err = [ln for ln in out.splitlines()
                   if re.search(r"ERROR|Unexpected|Wrong|Invalid|failed|mismatch", ln, re.I)
                   and "additional info" not in ln]
            return Check(name="redis-check-rdb", ok=False,
                         detail=f"{name}: {'; '.join(err[:3]) or out.strip()[-600:]} "
                                f"(redis-check-rdb exit {r.returncode})")
        read = re.search(r"\[info\] (\d+) keys read", out)
        keys_read = int(read.group(1)) if read else None
        counted = sum(v for k, v in m.counts.items() if k.endswith(".keys"))
        if keys_read is not None and keys_read < counted:
            return Check(name="redis-check-rdb", ok=False,
                         detail=f"{name}: holds {keys_read} keys but the manifest counted {counted} at backup time")
        return Check(name="redis-check-rdb", ok=True,
                     detail=f"{name}: RDB looks OK (checksum verified), {keys_read} keys read "
                            f"({counted} live at backup time)")

    def _check_aof(self, m: Manifest, local: Path) -> Check:
        d = local / m.native.get("aof_dirname", self.options.aof_dirname)
        manifest = d / m.native.get("manifest_file", "appendonly.aof.manifest")
        base = self._repo_name(m, d.name)
        if not manifest.is_file():
            return Check(name="redis-check-aof", ok=False, detail=f"{base}/{manifest.name}: missing")
        r = self.ctx.runner.run([self.options.check_aof_bin, str(manifest)], capture=True, check=False, quiet=True,
                                timeout=parse_duration(self.options.backup_timeout).total_seconds())
        out = r.stdout + "\n" + r.tail
        if r.returncode == 0 and "are valid" in out:
            n = len(re.findall(r"AOF analyzed", out))
            return Check(name="redis-check-aof", ok=True, detail=f"{base}/{manifest.name}: all {n} AOF files valid")
        bad = re.search(r"AOF (\S+) is not valid", out)
        if bad:
            culprit = bad.group(1)
        else:  # e.g. a damaged base RDB: the last file redis-check-aof started to read
            names = re.findall(r"Checking RDB file (\S+)|filename=([^,\s]+)", out)
            culprit = next((a or b for a, b in reversed(names)), manifest.name)
        reasons = [ln.strip() for ln in out.splitlines()
                   if re.search(r"Expected|Unexpected|ERROR|not sane|Bad|invalid|ok_up_to", ln, re.I)]
        return Check(name="redis-check-aof", ok=False,
                     detail=f"{base}/{Path(culprit).name}: {'; '.join(reasons[:3]) or out.strip()[-600:]} "
                            f"(redis-check-aof exit {r.returncode})")

    def _check_sample_file(self, m: Manifest, local: Path) -> Check:
        try:
            doc = json.loads((local / SAMPLE_FILE).read_text())
            ok = sample_digest(doc["entries"]) == m.native["sample"]["digest"] == doc["digest"]
        except (OSError, ValueError, KeyError) as exc:
            return Check(name="sample digest", ok=False,
                         detail=f"{self._repo_name(m, SAMPLE_FILE)}: unreadable ({exc})")
        return Check(name="sample digest", ok=ok,
                     detail=f"{self._repo_name(m, SAMPLE_FILE)}: {len(doc['entries'])} sampled keys, digest "
                            f"{'matches' if ok else 'DIFFERS from'} the manifest")

    # -- restore test ----------------------------------------------------------------------------
    def restore_test(self, manifest: Manifest, target: str, drill: DrillRecorder) -> None:
        if target not in ("latest", "", None):
            raise Refused(f"restore target {target!r}: Redis backups are snapshots; restore tests take the chosen "
                          "backup as it is ('latest'). Pick an older snapshot by backup id instead")
        root = self.ctx.workdir / "scratch" / drill.drill.id
        scratch = ScratchRedis(self, root, int(manifest.native.get("databases", self.options.databases)))
        with drill.step("safety: scratch target is not the live server") as s:
            scratch.guard()
            s.detail = f"{root} (under {scratch.area}), port {scratch.port}"
        try:
            drill.restore_started()
            with drill.step("pre-checks: scratch disk space and memory") as s:
                s.detail = self._prechecks(manifest, root)
            with drill.step(f"fetch {manifest.kind} from repository") as s:
                shutil.rmtree(root, ignore_errors=True)
                root.mkdir(parents=True)
                s.detail = self._fetch(manifest, root)
            with drill.step("start scratch redis-server and load") as s:
                secs = scratch.start(manifest.kind, manifest.native.get("aof_filename", "appendonly.aof"),
                                     manifest.native.get("aof_dirname"))
                s.detail = f"127.0.0.1:{scratch.port}, loaded in {secs:.2f}s from {root}"
            with drill.step("key counts") as s:
                got = scratch.keyspace()
                problems, notes = compare_counts(manifest.counts, got)
                if problems:
                    raise RestoreFailed("key counts differ from the backup's manifest: " + "; ".join(problems))
                s.detail = ", ".join(f"{k}={v}" for k, v in got.items()) + ("; " + "; ".join(notes) if notes else "")
            with drill.step("sampled keys digest") as s:
                s.detail = self._compare_sample(manifest, root, scratch)
            drill.ready()
            with drill.step("newest heartbeat") as s:
                hb = scratch.heartbeat()
                drill.heartbeat_found(hb)
                s.detail = hb.isoformat() if hb else f"no {self.options.heartbeat_key} key in the restored data"
        finally:
            with drill.step("tear down scratch redis-server"):
                scratch.destroy()

    def _prechecks(self, m: Manifest, root: Path) -> str:
        need = sum(a.size for a in m.artifacts) + _DISK_HEADROOM
        if m.kind == "aof":
            need += sum(a.size for a in m.artifacts)  # redis may rewrite the copied AOF once loaded
        free = _free_bytes(root.parent)
        if free < need:
            raise Refused(f"scratch folder {root}: {_mb(free)} free on its filesystem, the {m.kind} backup {m.id} "
                          f"needs {_mb(need)} (artifacts + headroom). Nothing was started; free space or move the "
                          "inventory's workdir")
        detail = f"disk: {_mb(need)} needed, {_mb(free)} free"
        mem_need = int(m.native.get("used_mem") or 0)
        avail = self._memory_check(mem_need, f"restoring {m.id}")
        if avail is not None:
            detail += f"; memory: ~{_mb(mem_need)} needed, {_mb(avail)} available"
        return detail

    def _memory_check(self, need: int, what: str) -> int | None:
        """Refuse before a scratch server would push this worker into the OOM killer."""
        avail = _mem_available()
        if self.options.memory_check and avail is not None and need > 0.9 * avail:
            raise Refused(f"{what}: a scratch redis-server needs about {_mb(need)} of memory (the dataset's used "
                          f"memory when the snapshot was taken), this worker has {_mb(avail)} available. Run it on a "
                          f"bigger worker (or set datastores.{self.name}.options.memory_check: false)")
        return avail

    def _fetch(self, m: Manifest, root: Path) -> str:
        """Stream each artifact from the repository into the scratch folder, checking its sha256."""
        repo = self.ctx.repo.primary
        prefix = self.ctx.repo.backup_prefix(self.name, m.id)
        total = 0
        for a in m.artifacts:
            dest = root / a.path
            dest.parent.mkdir(parents=True, exist_ok=True)
            h = hashlib.sha256()
            try:
                with repo.open_read(prefix + a.path) as src, open(dest, "wb") as out:
                    while chunk := src.read(4 * 1024 * 1024):
                        h.update(chunk)
                        out.write(chunk)
            except OSError as exc:
                if exc.errno == errno.ENOSPC:
                    raise RestoreFailed(f"scratch folder {root}: no space left on device while copying "
                                        f"{self._repo_name(m, a.path)} ({_mb(a.size)})") from None
                raise
            if h.hexdigest() != a.sha256:
                raise RestoreFailed(f"{self._repo_name(m, a.path)}: sha256 differs from the manifest; the stored "
                                    "backup is damaged (run the verification)")
            total += a.size
        return f"{len(m.artifacts)} files, {_mb(total)}, sha256 checked"

    def _compare_sample(self, m: Manifest, root: Path, scratch: ScratchRedis) -> str:
        sample = m.native.get("sample") or {}
        if not sample.get("size"):
            return "no keys were sampled at backup time"
        doc = json.loads((root / sample.get("artifact", SAMPLE_FILE)).read_text())
        expected = doc["entries"]
        got = scratch.survey(len(expected), want={e["k"] for e in expected})
        problems, expired = compare_samples(expected, got, int(time.time() * 1000))
        if problems:
            more = f" (+{len(problems) - 5} more)" if len(problems) > 5 else ""
            raise RestoreFailed(f"{len(problems)} of {len(expected)} sampled keys differ from the backup: "
                                + "; ".join(problems[:5]) + more)
        return (f"{len(expected) - expired} sampled keys identical (type, canonical value, expiry)"
                + (f", {expired} expired since the backup" if expired else "")
                + f"; digest {sample['digest'][:16]}…")

    # -- heartbeat -------------------------------------------------------------------------------
    def heartbeat(self) -> datetime:
        now = utcnow()
        self._client(self.options.heartbeat_db).set(self.options.heartbeat_key, now.isoformat())
        return now


def _q(path: Path | str) -> str:
    """A value for redis.conf (double-quoted; redis parses C-style escapes)."""
    return '"' + str(path).replace("\\", "\\\\").replace('"', '\\"') + '"'


def resp_tail_is_partial(tail: bytes) -> bool:
    """True if `tail` is well-formed AOF content (RESP arrays of bulk strings, `#` annotations) that
    merely stops early -- what a copy taken while Redis was appending looks like. False if malformed."""
    pos, n = 0, len(tail)

    def number(prefix: bytes) -> int | None:
        nonlocal pos
        if tail[pos:pos + 1] != prefix:
            raise ValueError(f"expected {prefix!r} at {pos}")
        end = tail.find(b"\r\n", pos)
        digits = tail[pos + 1:end if end >= 0 else n]
        if end < 0:
            d = digits[:-1] if digits.endswith(b"\r") else digits
            if d and not d.isdigit():
                raise ValueError("bad number")
            return None
        if not digits.isdigit():
            raise ValueError("bad number")
        pos = end + 2
        return int(digits)

    if not tail:
        return False
    try:
        while pos < n:
            if tail[pos:pos + 1] == b"#":
                end = tail.find(b"\r\n", pos)
                if end < 0:
                    return True
                pos = end + 2
                continue
            argc = number(b"*")
            if argc is None:
                return True
            for _ in range(argc):
                if pos >= n:
                    return True
                size = number(b"$")
                if size is None:
                    return True
                if pos + size + 2 > n:
                    rest = tail[pos + size:n] if pos + size <= n else b""
                    return b"\r\n".startswith(rest)
                if tail[pos + size:pos + size + 2] != b"\r\n":
                    raise ValueError("missing CRLF")
                pos += size + 2
        return True  # complete commands only (e.g. a MULTI block cut before its EXEC)
    except ValueError:
        return False


def _same_fs(a: Path, b: Path) -> bool:
    try:
        return os.stat(a).st_dev == os.stat(b).st_dev
    except OSError:
        return False


def _copy_prefix(src: Path, dest: Path, limit: int) -> int:
    """Copy the first `limit` bytes of src (a file that may keep growing)."""
    n = 0
    with open(src, "rb") as fi, open(dest, "wb") as fo:
        while n < limit:
            chunk = fi.read(min(4 * 1024 * 1024, limit - n))
            if not chunk:
                break
            fo.write(chunk)
            n += len(chunk)
        fo.flush()
        os.fsync(fo.fileno())
    return n

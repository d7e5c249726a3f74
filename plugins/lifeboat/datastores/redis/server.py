"""The scratch redis-server: a throw-away server on 127.0.0.1 loading an RDB or AOF copy.

Used at backup time (the snapshot is loaded once -- an RDB fed while it streams in, feed.py -- to
record exact counts, the heartbeat and the key sample in the manifest) and by
restore tests (RedisScratch, tests/contract).
"""

from __future__ import annotations

import base64
import contextlib
import logging
import os
import secrets
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lifeboat.clients import redis as redisclient
from lifeboat.datastores.redis.feed import SyncFeed
from lifeboat.datastores.redis.sample import (
    SCAN_ALL_UP_TO,
    bottom_k,
    canonical_parts,
    db_quotas,
    key_hash,
    value_digest,
)
from lifeboat.durations import seconds
from lifeboat.errors import LifeboatError, Refused, RestoreFailed
from lifeboat.waiting import WaitTimeout, wait_until

if TYPE_CHECKING:  # the engine passes itself in; no import at run time
    from lifeboat.datastores.redis.engine import RedisDatastore

log = logging.getLogger(__name__)
RDB_FILE = "dump.rdb"


# Type, absolute expiry and value of each key in KEYS, in one reply (read-only commands only, so it
# runs on the fed replica too). Streams are read separately (XRANGE + XINFO), other types as DUMP.
_READ_KEYS = """
local out = {}
for i, k in ipairs(KEYS) do
  local t = redis.call('TYPE', k)['ok']
  local v = ''
  if t == 'string' then v = redis.call('GET', k)
  elseif t == 'hash' then v = redis.call('HGETALL', k)
  elseif t == 'list' then v = redis.call('LRANGE', k, 0, -1)
  elseif t == 'set' then v = redis.call('SMEMBERS', k)
  elseif t == 'zset' then v = redis.call('ZRANGE', k, 0, -1, 'WITHSCORES')
  elseif t ~= 'none' and t ~= 'stream' then v = redis.call('DUMP', k) end
  out[i] = {t, redis.call('PEXPIRETIME', k), v}
end
return out
"""


def _q(path: Path | str) -> str:
    """A value for redis.conf (double-quoted; redis parses C-style escapes)."""
    return '"' + str(path).replace("\\", "\\\\").replace('"', '\\"') + '"'


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
        self.timeout = seconds(ds.options.restore_timeout)
        self.fed_since = 0.0

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

                d = self.ds.client().config_get("dir").get("dir")
                if d:
                    live_dirs.append((Path(d.decode() if isinstance(d, bytes) else d),
                                      f"`CONFIG GET dir` of {ep.conn_id!r}"))
            except (LifeboatError, redis.RedisError) as exc:  # CONFIG may be renamed or not allowed
                log.debug("cannot ask the live server for its dir: %s", exc)
        for given, what in live_dirs:
            live = given.resolve()
            if me == live or live in me.parents or me in live.parents:
                raise Refused(f"scratch folder {self.root} overlaps the live Redis data directory {live} ({what})")

    def start(self, mode: str, aof_filename: str = "appendonly.aof", aof_dirname: str | None = None) -> float:
        """Start and wait until the dataset is loaded; returns the load time in seconds."""
        t0 = self._launch(self.config_lines(mode, aof_filename, aof_dirname))
        self._wait_loaded()
        return time.monotonic() - t0

    def _launch(self, lines: list[str]) -> float:
        self.guard()
        fd = os.open(self.conf, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write("\n".join(lines) + "\n")
        t0 = time.monotonic()
        self.proc = self.ds.ctx.runner.start([self.ds.options.server_bin, str(self.conf)],
                                             log_path=str(self.root / "stdout.log"))
        return t0

    def start_fed(self, feed: SyncFeed) -> None:
        """Start loading from our own SyncFeed (feed.py) while the snapshot streams in; returns at once.
        Its only replication source is that feed on 127.0.0.1 in this process -- never the live server."""
        self.fed_since = self._launch([
            *self.config_lines("rdb", "", None), f"replicaof 127.0.0.1 {feed.port}",
            "repl-diskless-load on-empty-db", "repl-timeout 3600", "replica-read-only yes"])

    def wait_fed(self, feed: SyncFeed) -> float:
        """Wait until the fed snapshot is loaded (the link is up); seconds since start_fed."""

        def loaded() -> bool:
            if self.proc is not None and self.proc.poll() is not None:
                raise RestoreFailed(f"scratch redis-server exited with code {self.proc.returncode} while loading "
                                    f"the snapshot (log {self.logfile}):\n{self.log_tail()}")
            if feed.error is not None or feed.closed_by_peer():
                why = feed.error or "it dropped the link"
                raise RestoreFailed(f"scratch redis-server did not load the snapshot ({why}; log {self.logfile}):"
                                    f"\n{self.log_tail()}")
            repl = self.client().info("replication")
            return (repl.get("master_link_status") == "up" and not int(repl.get("master_sync_in_progress", 0))
                    and self.client().info("persistence").get("loading") == 0)

        self._wait("the snapshot", loaded, 0.02)
        return time.monotonic() - self.fed_since

    def config_lines(self, mode: str, aof_filename: str, aof_dirname: str | None) -> list[str]:
        """The redis.conf of a throw-away server (a 0600 file: it holds the password)."""
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
        return lines

    def log_tail(self, n: int = 12) -> str:
        out = []
        for p in (self.logfile, self.root / "stdout.log"):
            with contextlib.suppress(OSError):
                out += p.read_text(errors="replace").splitlines()[-n:]
        return "\n".join(out[-n:])

    def client(self, db: int = 0):
        if db not in self._clients:
            self._clients[db] = redisclient.make("127.0.0.1", self.port, password=self.password, db=db,
                                                 socket_timeout=300, connect_timeout=5, retries=0)
        return self._clients[db]

    def _wait_loaded(self) -> None:

        def loaded() -> bool:
            if self.proc is not None and self.proc.poll() is not None:
                raise RestoreFailed(f"scratch redis-server exited with code {self.proc.returncode} while loading "
                                    f"(log {self.logfile}):\n{self.log_tail()}")
            return self.client().info("persistence").get("loading") == 0 and bool(self.client().ping())

        self._wait("its dataset", loaded, 0.01)  # a probe every 10 ms: an INFO on 127.0.0.1

    def _wait(self, what: str, loaded, interval: float) -> None:
        """Poll `loaded` until the scratch server has loaded `what` (busy-loading answers are retried)."""
        import redis

        try:
            wait_until(f"the scratch redis-server to load {what}", loaded, self.timeout, interval,
                       retry_on=(redis.ConnectionError, redis.BusyLoadingError, redis.TimeoutError))
        except WaitTimeout as exc:
            raise RestoreFailed(f"scratch redis-server did not finish loading within {self.timeout:.0f}s "
                                f"({exc.last}; log {self.logfile}):\n{self.log_tail()}") from None

    def stop(self, *, discard: bool = False) -> None:
        """SIGTERM: redis shuts down at once (save "" -> writes nothing). `discard`: the data goes with the
        folder, so SIGKILL to the server's process group (it and any fork child): no shutdown work to
        wait for (0.02 s instead of 0.13 s with 150 MiB loaded, measured)."""
        if self.proc is None or self.proc.poll() is not None:
            return
        if discard:  # started in its own session (runner.start): its group is its pid
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
        else:
            self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def destroy(self) -> None:
        """Stop (killed: a scratch server's data is thrown away) and remove the scratch folder."""
        try:
            self.stop(discard=True)
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

    def sample(self, k: int) -> list[dict]:
        """The backup's key sample (sample.py, v2): entries {k, t, x, v, db, n}, sorted by k."""
        sizes = {int(key[2:].split(".")[0]): n for key, n in self.keyspace().items() if key.endswith(".keys")}
        if k <= 0 or not sizes:
            return []
        if sum(sizes.values()) <= SCAN_ALL_UP_TO * k:  # small: every key, or the deterministic bottom-k
            picked = bottom_k(self._scan(list(sizes)), k)
        else:
            picked = [p for db, quota in db_quotas(sizes, k).items() for p in self._random_keys(db, quota)]
        by_db: dict[int, list[tuple[str, bytes]]] = {}
        for h, (db, key) in picked:
            by_db.setdefault(db, []).append((h, key))
        out: list[dict] = []
        for db, keys in by_db.items():
            names = dict(keys)
            out += [{**e, "db": db, "n": base64.b64encode(names[h]).decode()}
                    for h, e in self._entries(db, keys).items()]
        return sorted(out, key=lambda e: e["k"])

    def _random_keys(self, db: int, quota: int) -> list[tuple[str, tuple[int, bytes]]]:
        """`quota` distinct keys of `db` by RANDOMKEY (pipelined draws; a few rounds for the repeats)."""
        c = self.client(db)
        seen: dict[str, tuple[int, bytes]] = {}
        for _ in range(8):
            want = quota - len(seen)
            if want <= 0:
                break
            p = c.pipeline(transaction=False)
            for _ in range(want + want // 4 + 8):
                p.randomkey()
            for key in p.execute():
                if key is not None and len(seen) < quota:
                    seen.setdefault(key_hash(db, key), (db, key))
        return list(seen.items())

    def lookup(self, entries: list[dict]) -> dict[str, dict]:
        """The sampled keys of a v2 sample read by name: {keyhash: {k, t, x, v}} of those that exist."""
        by_db: dict[int, list[tuple[str, bytes]]] = {}
        for e in entries:  # the hash of the stored name, so a name that is not the sampled key's is "missing"
            db, key = int(e["db"]), base64.b64decode(e["n"])
            by_db.setdefault(db, []).append((key_hash(db, key), key))
        out: dict[str, dict] = {}
        for db, keys in by_db.items():
            out.update(self._entries(db, keys))
        return out

    def survey(self, want: set[str]) -> dict[str, dict]:
        """The keys of a v1 sample (names stored hashed only): a full SCAN for the hashes in `want`."""
        dbs = [int(k_[2:].split(".")[0]) for k_ in self.keyspace() if k_.endswith(".keys")]
        by_db: dict[int, list[tuple[str, bytes]]] = {}
        for h, (db, key) in self._scan(dbs):
            if h in want:
                by_db.setdefault(db, []).append((h, key))
        out: dict[str, dict] = {}
        for db, keys in by_db.items():
            out.update(self._entries(db, keys))
        return out

    def _scan(self, dbs: list[int]) -> Iterable[tuple[str, tuple[int, bytes]]]:
        for db in dbs:
            for key in self.client(db).scan_iter(count=2000):
                yield key_hash(db, key), (db, key)

    def _entries(self, db: int, keys: list[tuple[str, bytes]]) -> dict[str, dict]:
        """{keyhash: {k, t, x, v}} of the keys that exist: type, PEXPIRETIME and the canonical value's
        digest, read by one script call per 500 keys (one reply each, instead of three commands a key)."""
        c = self.client(db)
        out: dict[str, dict] = {}
        for i in range(0, len(keys), 500):
            chunk = keys[i:i + 500]
            rows = c.eval(_READ_KEYS, len(chunk), *(key for _, key in chunk))
            for (h, key), (t_raw, x, raw) in zip(chunk, rows, strict=True):
                t = t_raw.decode() if isinstance(t_raw, bytes) else str(t_raw)
                if t == "none" or x == -2 or raw is None:
                    continue  # expired or gone since it was picked
                if t == "hash":
                    v: Any = dict(zip(raw[::2], raw[1::2], strict=True))
                elif t == "zset":
                    v = [(m, float(sc)) for m, sc in zip(raw[::2], raw[1::2], strict=True)]
                elif t == "stream":
                    v = self._stream(c, key, c.xrange(key))
                else:  # string: the bytes; list and set: the members; other types: DUMP
                    v = raw
                out[h] = {"k": h, "t": t, "x": int(x), "v": value_digest(canonical_parts(t, v))}
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

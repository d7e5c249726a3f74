"""The Redis recovery target (lifeboat_recover): a NEW redis-server, kept, loading the chosen RDB or AOF.

`<recovery dir>/<tag>-<datastore>/` holds the copied backup, a 0600 `redis.conf` (127.0.0.1, a free
port, the live connection's password so the services keep their credentials, RDB snapshots with
Redis's default `save` rules), its pidfile and log. Checked like a restore test (key counts, the
sampled keys' digest) and, for heartbeat continuity, the heartbeat key must hold exactly what the
manifest recorded at backup time (a snapshot holds one heartbeat, not a series). There is no live
variant: restarting the live server on a copied file is a manual step (docs/datastores/redis.md).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lifeboat.datastores.base import RecoveryTarget
from lifeboat.datastores.redis.sample import compare_counts
from lifeboat.datastores.redis.scratch import compare_sample, prechecks
from lifeboat.datastores.redis.server import RDB_FILE, ScratchRedis, _q
from lifeboat.errors import Refused, RestoreFailed
from lifeboat.records import Manifest

if TYPE_CHECKING:
    from lifeboat.datastores.redis.engine import RedisDatastore


class RecoveredRedis(ScratchRedis):
    """A redis-server meant to stay: persistent settings, the live credentials, stopped by its pidfile."""

    def __init__(self, ds: RedisDatastore, root: Path, databases: int = 16):
        super().__init__(ds, root, databases)
        try:
            ep = ds.endpoint()
            self.password, self.username = ep.password or "", ep.login or ""
        except Exception:  # the live connection may be gone: the recovered server gets its own password
            self.username = ""

    @property
    def area(self) -> Path:
        return Path(self.ds.ctx.inventory.recovery_dir()).absolute().resolve()

    def config_lines(self, mode: str, aof_filename: str, aof_dirname: str | None) -> list[str]:
        """Persistent settings and the live credentials (the server is kept)."""
        lines = ["# Lifeboat recovery target (lifeboat_recover) -- kept after the recovery",
                 "bind 127.0.0.1", "protected-mode yes", f"port {self.port}", "daemonize no",
                 f"dir {_q(self.root)}", f"pidfile {_q(self.root / 'redis.pid')}", f"logfile {_q(self.logfile)}",
                 f"databases {self.databases}", "save 3600 1 300 100 60 10000", "rdbchecksum yes"]
        if self.password and self.username and self.username != "default":
            lines += ["user default off", f"user {self.username} on >{self.password} ~* &* +@all"]
        elif self.password:
            lines.append(f"requirepass {self.password}")
        if mode == "rdb":
            lines += [f"dbfilename {RDB_FILE}", "appendonly no"]
        else:
            lines += ["dbfilename dump.rdb", "appendonly yes",
                      f"appenddirname {_q(aof_dirname or self.ds.options.aof_dirname)}",
                      f"appendfilename {_q(aof_filename)}", "aof-load-truncated no"]
        return lines

    def client(self, db: int = 0):
        if db not in self._clients:
            from lifeboat.clients import redis as redisclient

            self._clients[db] = redisclient.make("127.0.0.1", self.port, password=self.password or None,
                                                 username=self.username or None, db=db, socket_timeout=300,
                                                 connect_timeout=5, retries=0)
        return self._clients[db]

    def kill(self) -> None:
        """Stop the server through its pidfile (the process that started it may be gone)."""
        if self.proc is not None and self.proc.poll() is None:
            self.stop()
            return
        with contextlib.suppress(OSError, ValueError):
            pid = int((self.root / "redis.pid").read_text().split()[0])
            os.kill(pid, signal.SIGTERM)


class RedisRecovery(RecoveryTarget):
    def __init__(self, ds: RedisDatastore, m: Manifest, tag: str):
        self.ds, self.m = ds, m
        self.root = Path(ds.ctx.inventory.recovery_dir()) / f"{tag}-{ds.name}"
        self.server = RecoveredRedis(ds, self.root, int(m.native.get("databases", ds.options.databases)))

    def precheck(self, steps: Any) -> None:
        with steps.step(f"pre-checks {self.ds.name}") as s:
            self.root.parent.mkdir(parents=True, exist_ok=True)
            self.server.guard()
            if self.root.exists() and any(self.root.iterdir()):
                raise Refused(f"{self.root} exists and is not empty: not restoring over it")
            s.detail = (f"new redis-server in {self.root} on 127.0.0.1:{self.server.port}; "
                        + prechecks(self.ds, self.m, self.root))

    def restore(self, steps: Any) -> None:
        m = self.m
        with steps.step(f"fetch {self.ds.name} {m.kind} {m.id}") as s:
            self.root.mkdir(parents=True, exist_ok=True)
            s.detail = self.ds.ctx.repo.fetch(m, self.root)
        with steps.step(f"start the new {self.ds.name} redis-server and load") as s:
            secs = self.server.start(m.kind, m.native.get("aof_filename", "appendonly.aof"),
                                     m.native.get("aof_dirname"))
            s.detail = f"127.0.0.1:{self.server.port}, loaded in {secs:.2f}s from {self.root}"

    def verify(self, steps: Any) -> None:
        with steps.step(f"validate {self.ds.name}: key counts") as s:
            got = self.server.keyspace()
            problems, notes = compare_counts(self.m.counts, got)
            if problems:
                raise RestoreFailed("key counts differ from the backup's manifest: " + "; ".join(problems))
            s.detail = ", ".join(f"{k}={v}" for k, v in got.items()) + ("; " + "; ".join(notes) if notes else "")
        with steps.step(f"validate {self.ds.name}: sampled keys digest") as s:
            s.detail = compare_sample(self.m, self.root, self.server)

    def newest_heartbeat(self) -> datetime | None:
        return self.server.heartbeat()

    def heartbeats(self, since: datetime) -> list[datetime]:
        hb = self.server.heartbeat()
        return [hb] if hb is not None and hb >= since else []

    def continuity(self, window: float, max_gap: float) -> tuple[datetime | None, str]:
        """A snapshot holds ONE heartbeat: it must be exactly the one the manifest recorded."""
        hb = self.server.heartbeat()
        want = self.m.position.get("heartbeat_at")
        if want is None:
            raise RestoreFailed(f"heartbeat continuity: backup {self.m.id} recorded no heartbeat")
        if hb is None or hb != datetime.fromisoformat(want):
            raise RestoreFailed(f"heartbeat continuity: the recovered {self.ds.options.heartbeat_key} is "
                                f"{hb.isoformat() if hb else 'missing'}, the backup recorded {want}")
        return hb, f"heartbeat {hb.isoformat()} equals the one {self.m.id} recorded"

    def locator(self) -> dict[str, Any]:
        return {"engine": "redis", "into": "new", "host": "127.0.0.1", "port": self.server.port,
                "root": str(self.root), "pidfile": str(self.root / "redis.pid"), "backup": self.m.id}

    def abandon(self) -> str:
        self.server.kill()
        shutil.rmtree(self.root, ignore_errors=True)
        return f"stopped 127.0.0.1:{self.server.port}, removed {self.root}"

"""PostgreSQL recovery targets (lifeboat_recover): kept, unlike the scratch instances of restore tests.

* `into="new"` -- a NEW instance in `<recovery dir>/<tag>-<datastore>/`: `pgbackrest restore` of the
  chosen backup, paused at its restore point for the exact row counts of the manifest, rolled forward
  to the target time (or the end of the archived WAL), promoted, `pg_amcheck`. It listens on
  127.0.0.1:<free port> with the backup's own roles and pg_hba rules (the services keep their
  credentials; only host and port change), plus trust on its private socket folder for Lifeboat's own
  checks. Its settings live in its `postgresql.auto.conf`, so it survives a restart; `archive_mode` is
  off (it must not push WAL into the old primary's archive: point pgBackRest's stanza at it and turn
  archiving on once it is the primary -- docs/recovery.md).
* `into="live"` -- the live cluster's data directory (`pg1-path`), only after the fence stopped it:
  `pgbackrest restore --delta` there with archiving left on (the promoted timeline continues the
  stanza), started with its own configuration.
"""

from __future__ import annotations

import os
import shutil
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lifeboat.clients import postgres as pgclient
from lifeboat.datastores.base import RecoveryTarget
from lifeboat.datastores.postgres.scratch import ScratchInstance
from lifeboat.errors import Refused, RestoreFailed
from lifeboat.records import Manifest
from lifeboat.runners import chown_for

if TYPE_CHECKING:
    from lifeboat.datastores.postgres.engine import PostgresDatastore


HEARTBEATS_SINCE = ("SELECT coalesce(array_agg(written_at ORDER BY written_at), '{}') FROM lifeboat_heartbeat "
                    "WHERE written_at >= %s")



def _pg_ctl_start(inst: ScratchInstance, what: str) -> None:
    """`pg_ctl start -w` of a recovered or restored-live data directory, as its owner."""
    r = inst.ds.ctx.runner.run([inst.ds.options.tool("pg_ctl"), "-D", inst.data, "-l", inst.logfile, "-w", "-t",
                                str(int(inst.timeout)), "start"], as_user=inst.user, check=False)
    if r.returncode != 0:
        raise RestoreFailed(f"{what} did not start (see {inst.logfile}):\n{inst.log_tail()}")

class RecoveryInstance(ScratchInstance):
    """A new instance restored for keeps: TCP on 127.0.0.1, settings persisted in postgresql.auto.conf."""

    def __init__(self, ds: PostgresDatastore, root: Path, host: str = "127.0.0.1"):
        super().__init__(ds, root.name)
        self.root = root
        self.data, self.sock, self.logfile = root / "data", root / "run", root / "postgres.log"
        self.host = host

    def settings(self) -> list[str]:
        return [f"port = {self.port}", f"listen_addresses = '{self.host}'",
                f"unix_socket_directories = '{self.sock}'", "archive_mode = off",
                f"hba_file = '{self.data / 'lifeboat_hba.conf'}'", "cluster_name = 'lifeboat-recovered'",
                "logging_collector = off"]

    def restore(self, manifest: Manifest, target_args: list[str]) -> None:
        super().restore(manifest, target_args)
        # trust on the private socket (0700, the postgres user's) for Lifeboat's checks; the backup's
        # own rules for TCP, so the services' credentials work unchanged
        restored = (self.data / "pg_hba.conf").read_text() if (self.data / "pg_hba.conf").exists() else ""
        rules = [ln for ln in restored.splitlines() if ln.strip() and not ln.lstrip().startswith(("#", "local"))]
        hba = self.data / "lifeboat_hba.conf"
        hba.write_text("# Lifeboat recovery target: trust on its private socket, the backup's rules for TCP\n"
                       "local all all trust\n" + "\n".join(rules) + "\n")
        os.chmod(hba, 0o600)
        auto = self.data / "postgresql.auto.conf"
        auto.write_text(auto.read_text() + "\n# lifeboat recovery target\n" + "\n".join(self.settings()) + "\n")
        chown_for(str(self.root), self.user)
        os.chmod(self.sock, 0o700)

    def start(self) -> None:
        _pg_ctl_start(self, "recovered PostgreSQL")


class LiveInstance(ScratchInstance):
    """The live cluster's own data directory, restored after the fence stopped it."""

    def __init__(self, ds: PostgresDatastore, data: Path):
        super().__init__(ds, "live")
        self.data, self.root = data, data
        self.logfile = data / "lifeboat-restore.log"
        ep = ds.endpoint()
        self.port = ep.port or pgclient.DEFAULT_PORT

    def restore(self, manifest: Manifest, target_args: list[str]) -> None:
        if self._running():
            raise Refused(f"the live PostgreSQL in {self.data} is running: the fence step stops it first")
        self.data.mkdir(parents=True, exist_ok=True, mode=0o700)
        chown_for(str(self.data), self.user)
        self.ds.pgbackrest.restore(self.data, manifest.native["label"], ["--delta", *target_args], self.timeout,
                                   archive_off=False)

    def start(self) -> None:
        _pg_ctl_start(self, "the restored live PostgreSQL")

    def connect(self):
        if self._conn is None or self._conn.closed:
            self._conn = pgclient.connect(self.ds.endpoint(), None, default_db=self.ds.options.databases[0],
                                          autocommit=True)
        return self._conn

    def query_one(self, sql: str, params=None, dbname: str | None = None):
        if dbname and dbname != self.ds.options.databases[0]:
            with pgclient.connect(self.ds.endpoint(), dbname, autocommit=True) as c:
                return c.execute(sql, params).fetchone()[0]
        return self.connect().execute(sql, params).fetchone()[0]

    def amcheck(self) -> str:
        ep = self.ds.endpoint()
        r = self.ds.ctx.runner.run([self.ds.options.tool("pg_amcheck"), "--all", "--install-missing", "--no-password"],
                                   env=pgclient.libpq_env(ep), check=False, quiet=True, timeout=self.timeout)
        if r.returncode != 0:
            raise RestoreFailed(f"pg_amcheck found corruption or failed (exit {r.returncode}):\n{r.tail[-2000:]}")
        return "no corruption found in heap or btree indexes of any database"


class PostgresRecovery(RecoveryTarget):
    """Pause at the backup's restore point (exact counts), roll forward to the target, promote, check."""

    def __init__(self, ds: PostgresDatastore, m: Manifest, target_time: datetime | None, into: str, tag: str):
        self.ds, self.m, self.target_time, self.into = ds, m, target_time, into
        self.label = "the end of the archived WAL" if target_time is None else target_time.isoformat()
        if into == "live":
            live = ds.pgbackrest.repo_conf().get("pg1-path")
            if not live:
                raise Refused(f"datastores.{ds.name}.options.pgbackrest_config: no pg1-path: the live data directory "
                              "is unknown, a live recovery needs host access to it")
            self.inst: ScratchInstance = LiveInstance(ds, Path(live))
        else:
            self.inst = RecoveryInstance(ds, Path(ds.ctx.inventory.recovery_dir()) / f"{tag}-{ds.name}")

    def precheck(self, steps: Any) -> None:
        with steps.step(f"pre-checks {self.ds.name}") as s:
            if self.into == "new":
                self.inst.guard()
                if self.inst.root.exists() and any(self.inst.root.iterdir()):
                    raise Refused(f"{self.inst.root} exists and is not empty: not restoring over it")
                self.inst.root.parent.mkdir(parents=True, exist_ok=True)
                free = shutil.disk_usage(self.inst.root.parent).free
                need = int(self.m.native.get("database_size") or 0)
                if free < need:
                    raise Refused(f"{self.inst.root.parent}: {free >> 20} MiB free, the backup {self.m.id} restores "
                                  f"{need >> 20} MiB")
                s.detail = f"new instance in {self.inst.root} on 127.0.0.1:{self.inst.port}; {free >> 20} MiB free"
            else:
                s.detail = f"live data directory {self.inst.data} (stopped by the fence)"

    def restore(self, steps: Any) -> None:
        m, inst = self.m, self.inst
        with steps.step(f"pgbackrest restore {self.ds.name} ({m.id}) into {self.into} target") as s:
            inst.restore(m, ["--type=name", f"--target={m.position['restore_point']}", "--target-action=pause"])
            s.detail = f"set {m.native['label']} into {inst.data}"
        with steps.step(f"replay {self.ds.name} to the backup's restore point") as s:
            inst.start()
            inst.wait_paused()
            s.detail = m.position["restore_point"]

    def verify(self, steps: Any) -> None:
        m, inst = self.m, self.inst
        with steps.step(f"validate {self.ds.name}: row counts at the restore point") as s:
            got = inst.counts(m.counts)
            diff = {k: (v, got.get(k)) for k, v in m.counts.items() if got.get(k) != v}
            if diff:
                raise RestoreFailed("row counts differ from the backup's manifest: "
                                    + ", ".join(f"{k}: expected {a}, restored {b}" for k, (a, b) in diff.items()))
            s.detail = ", ".join(f"{k}={v}" for k, v in got.items()) or "no counted tables"
        with steps.step(f"roll {self.ds.name} forward to {self.label}") as s:
            inst.stop()
            inst.set_final_target(self.target_time)
            inst.start()
            inst.wait_promoted()
            lsn = inst.query_one("SELECT pg_current_wal_lsn()::text")
            tli = inst.query_one("SELECT timeline_id FROM pg_control_checkpoint()")
            s.detail = f"promoted at {lsn} on timeline {tli}"
        with steps.step(f"validate {self.ds.name}: pg_amcheck") as s:
            s.detail = inst.amcheck()

    def newest_heartbeat(self) -> datetime | None:
        return self.inst.newest_heartbeat()

    def heartbeats(self, since: datetime) -> list[datetime]:
        db = self.ds.options.heartbeat_db
        if not self.inst.query_one("SELECT to_regclass('lifeboat_heartbeat') IS NOT NULL", dbname=db):
            return []
        return list(self.inst.query_one(HEARTBEATS_SINCE, (since,), dbname=db))

    def locator(self) -> dict[str, Any]:
        inst = self.inst
        if self.into == "live":
            return {"engine": "postgres", "into": "live", "data_dir": str(inst.data),
                    "connection": self.ds.conn_id()}
        return {"engine": "postgres", "into": "new", "host": getattr(inst, "host", "127.0.0.1"), "port": inst.port,
                "data_dir": str(inst.data), "root": str(inst.root), "socket_dir": str(inst.sock),
                "databases": list(self.ds.options.databases), "restored_to": self.label}

    def abandon(self) -> str:
        if self.into != "new":
            return "live target: nothing removed"
        self.inst.destroy()
        return f"stopped and removed {self.inst.root}"

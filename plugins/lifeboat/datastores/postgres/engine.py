"""The PostgreSQL engine: pgBackRest physical backups, pg_dump logical dumps, heartbeat, exposure."""

from __future__ import annotations

import logging
import shutil
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any

from lifeboat.clients import postgres as pgclient
from lifeboat.datastores.base import RecoveryRange, Taken
from lifeboat.datastores.postgres import verify as pgverify
from lifeboat.datastores.postgres.options import PHYSICAL, PostgresOptions, quote_ident
from lifeboat.datastores.postgres.pgbackrest import PgBackRest
from lifeboat.datastores.postgres.recovery import PostgresRecovery
from lifeboat.datastores.postgres.scratch import PostgresScratch
from lifeboat.datastores.postgres.wal import last_commit_time, parse_target, prev_segment, seg_name
from lifeboat.datastores.regional import RegionalDatastore
from lifeboat.drills import DrillRecorder
from lifeboat.durations import seconds
from lifeboat.errors import CommandFailed, Refused
from lifeboat.records import Check, Manifest, utcnow
from lifeboat.runners import chown_for
from lifeboat.waiting import WaitTimeout, wait_until

log = logging.getLogger(__name__)

HEARTBEAT_DDL = """
CREATE TABLE IF NOT EXISTS lifeboat_heartbeat (
    id          bigserial PRIMARY KEY,
    region      text        NOT NULL,
    written_at  timestamptz NOT NULL,
    server_time timestamptz NOT NULL DEFAULT now(),
    source      text        NOT NULL DEFAULT 'lifeboat'
)"""


class PostgresDatastore(RegionalDatastore[PostgresOptions]):
    engine = "postgres"
    restore_series = "physical"

    def __init__(self, ctx):
        super().__init__(ctx)
        # the region's pgbackrest.conf: its own server as pg1 and its own copy of the repository
        self.pgbackrest = PgBackRest(ctx.runner, self.options, self.name,
                                     self.options.pgbackrest_config_for(self.region))

    @classmethod
    def series_of(cls, kind: str) -> str:
        return "physical" if kind in PHYSICAL else "logical"

    def _info(self) -> dict[str, Any]:
        return self.pgbackrest.info()

    def _connect(self, dbname: str | None = None, autocommit: bool = False):
        return pgclient.connect(self.endpoint(), dbname, default_db=self.options.databases[0], autocommit=autocommit)

    def _server_version(self) -> str:
        with self._connect() as conn:
            return conn.execute("SHOW server_version").fetchone()[0]

    # -- backup ----------------------------------------------------------------------------------
    def _take(self, kind: str, backup_id: str, staging: Path) -> Taken:
        return self._take_logical(backup_id, staging) if kind == "logical" else self._take_physical(kind, backup_id)

    def _take_physical(self, kind: str, backup_id: str) -> Taken:
        """`pgbackrest backup`, then -- overlapped, as they are independent -- the new set's `pgbackrest
        info` and the sha256 of its backup.manifest (a helper thread) and the exact counts at a named
        restore point with that point's WAL segment archived (this thread); the tool versions are read
        while the backup runs. Every one of them finishes before the manifest is built."""
        with ThreadPoolExecutor(2, thread_name_prefix="pg-backup") as pool:
            versions = pool.submit(self._versions)
            existing = self.pgbackrest.take(kind, backup_id)
            facts = pool.submit(self._set_facts, backup_id, existing)
            counts, rp = self._counts_and_restore_point(backup_id)
            b, manifest_sha256 = facts.result()
            tools = versions.result()
        label = b["label"]
        parent = None
        if b.get("prior"):
            parent = next((m.id for m in self.ctx.repo.manifests(self.name) if m.native.get("label") == b["prior"]),
                          None)
        repo_info = b["info"]["repository"]
        return Taken(
            parent=parent,
            position={
                "start_lsn": b["lsn"]["start"], "stop_lsn": b["lsn"]["stop"],
                "wal_start": b["archive"]["start"], "wal_stop": b["archive"]["stop"],
                "backup_started_at": datetime.fromtimestamp(b["timestamp"]["start"]).astimezone().isoformat(),
                "backup_stopped_at": datetime.fromtimestamp(b["timestamp"]["stop"]).astimezone().isoformat(),
                **rp,
            },
            counts=counts,
            tools=tools,
            native={
                "tool": "pgbackrest", "stanza": self.options.stanza, "label": label, "prior": b.get("prior"),
                "database_size": b["info"]["size"], "repo_size": repo_info.get("delta", repo_info.get("size", 0)),
                "backup_manifest_sha256": manifest_sha256,
            },
            restore_hint=(
                f"pgbackrest --stanza={self.options.stanza} --set={label} --type=name "
                f"--target={rp['restore_point']} --target-action=promote --pg1-path=<empty dir> restore"
            ),
        )

    def _versions(self) -> dict[str, str]:
        return {"pgbackrest": self.pgbackrest.version(), "postgres": self._server_version()}

    def _set_facts(self, backup_id: str, existing: dict[str, Any] | None) -> tuple[dict[str, Any], str]:
        """The pgBackRest set of `backup_id` (`existing`, else read from `pgbackrest info`) and the
        sha256 of its backup.manifest."""
        b = existing or self.pgbackrest.annotated(backup_id)
        return b, self.pgbackrest.manifest_sha256(b["label"])

    def _counts_and_restore_point(self, backup_id: str) -> tuple[dict[str, int], dict[str, str]]:
        """Exact counts at a named restore point.

        Counted tables are locked IN SHARE MODE (writers wait, readers do not) across every database
        at once; counts are read, the restore point is written, then the locks go. No commit to a
        counted table can fall between the counts and the restore point.
        """
        lock_timeout = int(seconds(self.options.lock_timeout) * 1000)
        tables = self.options.tables_by_db()
        conns: dict[str, Any] = {}
        counts: dict[str, int] = {}
        try:
            for db in tables or {self.options.databases[0]: []}:
                conns[db] = self._connect(db)
            for db, names in tables.items():
                c = conns[db]
                c.execute(f"SET lock_timeout = {lock_timeout}")
                if names:
                    c.execute("LOCK TABLE " + ", ".join(quote_ident(t) for t in names) + " IN SHARE MODE")
            for db, names in tables.items():
                for t in names:
                    counts[f"{db}.{t}"] = conns[db].execute(f"SELECT count(*) FROM {quote_ident(t)}").fetchone()[0]  # noqa: S608
            first = next(iter(conns.values()))
            name = f"lifeboat-{backup_id}"
            lsn = first.execute("SELECT pg_create_restore_point(%s)::text", (name,)).fetchone()[0]
            walfile = first.execute("SELECT pg_walfile_name(%s::pg_lsn)", (lsn,)).fetchone()[0]
            created_at = utcnow()
            for c in conns.values():
                c.commit()
            first.execute("SELECT pg_switch_wal()")
            first.commit()
        finally:
            for c in conns.values():
                c.close()
        self._wait_archived(walfile)
        return counts, {"restore_point": name, "restore_point_lsn": lsn, "restore_point_wal": walfile,
                        "restore_point_at": created_at.isoformat()}

    def _wait_archived(self, walfile: str) -> None:
        # autocommit: statistics views are cached for the length of a transaction
        with self._connect(autocommit=True) as conn:
            def archiver() -> tuple[str | None, str | None]:
                return conn.execute("SELECT last_archived_wal, last_failed_wal FROM pg_stat_archiver").fetchone()

            try:
                wait_until(f"WAL segment {walfile} to be archived", archiver, seconds(self.options.archive_wait),
                           0.02, done=lambda s: s[0] is not None and s[0][:24] >= walfile, max_interval=0.25)
            except WaitTimeout as exc:
                last, failed = exc.last or (None, None)
                raise CommandFailed(["archive_command"], None,
                                    f"WAL segment {walfile} not archived within {self.options.archive_wait} "
                                    f"(last archived {last}, last failed {failed}); check archive_command",
                                    True) from None

    def _take_logical(self, backup_id: str, staging: Path) -> Taken:
        counts: dict[str, int] = {}
        position: dict[str, str] = {}
        tables = self.options.tables_by_db()
        pg_dump = self.options.tool("pg_dump")
        for db in self.options.databases:
            with self._connect(db) as conn:
                conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
                snapshot = conn.execute("SELECT pg_export_snapshot()").fetchone()[0]
                for t in tables.get(db, []):
                    counts[f"{db}.{t}"] = conn.execute(f"SELECT count(*) FROM {quote_ident(t)}").fetchone()[0]  # noqa: S608
                position[f"{db}.snapshot_lsn"] = conn.execute("SELECT pg_current_wal_lsn()::text").fetchone()[0]
                position[f"{db}.snapshot_at"] = utcnow().isoformat()
                self.ctx.runner.run(
                    [pg_dump, "--format=directory", f"--jobs={self.options.dump_jobs}", f"--snapshot={snapshot}",
                     "--no-password", f"--file={staging / f'{db}.dir'}", "--dbname", db],
                    env=self._pg_env(db), timeout=seconds(self.options.backup_timeout))
                conn.rollback()
        self.ctx.runner.run([self.options.tool("pg_dumpall"), "--globals-only", "--no-role-passwords",
                             "--no-password", f"--file={staging / 'globals.sql'}"], env=self._pg_env())
        version = self.ctx.runner.run([pg_dump, "--version"], capture=True, quiet=True).stdout.strip()
        return Taken(
            position=position, counts=counts, tools={"pg_dump": version, "postgres": self._server_version()},
            native={"tool": "pg_dump", "format": "directory", "databases": self.options.databases},
            restore_hint="psql -f globals.sql postgres; createdb <db>; pg_restore --jobs=4 --dbname=<db> <db>.dir",
        )

    def _pg_env(self, dbname: str | None = None) -> dict[str, str]:
        return pgclient.libpq_env(self.endpoint(), dbname, default_db=self.options.databases[0])

    # -- verification ----------------------------------------------------------------------------
    def verification_batch(self, manifests: list[Manifest], deep: bool) -> pgverify.Batch:
        # `pgbackrest check` tests the primary's WAL archiving: meaningful only where the primary is
        return pgverify.read_batch(self.pgbackrest, manifests, deep, archiving_here=self.in_active_region())

    def checks(self, m: Manifest, batch: pgverify.Batch, deep: bool) -> list[Check]:
        if m.series == "physical":
            out = pgverify.physical_checks(self.pgbackrest, self.ctx.repo, self.name, m, batch, deep)
        else:
            out = pgverify.logical_checks(self.ctx.runner, self.options.tool("pg_restore"), self.ctx.repo, m,
                                        self.ctx.workdir / "verify" / m.id)
        return [*out, pgverify.chain_check(self.ctx.repo, m)]

    # -- restore test ----------------------------------------------------------------------------
    def scratch_target(self, manifest: Manifest, target: str, drill: DrillRecorder) -> PostgresScratch:
        if manifest.series != "physical":
            raise Refused(f"{manifest.id}: restore tests start from a physical backup; logical dumps are "
                          "restored into the scratch instance as an extra step")
        return PostgresScratch(self, manifest, parse_target(target), target, drill)

    # -- recovery --------------------------------------------------------------------------------
    def ping(self) -> str:
        with self._connect(autocommit=True) as conn:
            return "in recovery" if conn.execute("SELECT pg_is_in_recovery()").fetchone()[0] else "primary, answers"

    def backup_time(self, m: Manifest) -> datetime:
        if m.position.get("restore_point_at"):
            return datetime.fromisoformat(m.position["restore_point_at"])
        return m.finished_at

    def recovery_target(self, manifest: Manifest, target: str, *, into: str, tag: str) -> PostgresRecovery:
        if manifest.series != "physical":
            raise Refused(f"{manifest.id}: a recovery starts from a physical backup (pgBackRest), not a logical dump")
        return PostgresRecovery(self, manifest, parse_target(target), into, tag)

    def stop_live(self) -> str:
        """The fence of a live recovery: stop the live cluster (`pg_ctl stop -m fast`, host access to
        pgBackRest's pg1-path); nothing to do when it is not running (a destroyed data directory)."""
        from pathlib import Path

        data = self.pgbackrest.repo_conf().get("pg1-path")
        if not data:
            raise Refused(f"datastores.{self.name}.options.pgbackrest_config: no pg1-path: cannot fence the live "
                          "cluster")
        pidfile = Path(data) / "postmaster.pid"
        if not pidfile.exists():
            return f"{data}: no postmaster.pid, not running"
        r = self.ctx.runner.run([self.options.tool("pg_ctl"), "-D", data, "-m", "fast", "-w", "stop"],
                                as_user=self.options.os_user, check=False)
        if r.returncode != 0 and pidfile.exists():
            r = self.ctx.runner.run([self.options.tool("pg_ctl"), "-D", data, "-m", "immediate", "-w", "stop"],
                                    as_user=self.options.os_user, check=False)
        return f"{data}: stopped (pg_ctl exit {r.returncode})"

    def wal_end(self, max_segments: int = 8) -> tuple[datetime | None, str]:
        """The newest commit in the archived WAL (the latest instant a PITR can reach): the newest
        segments of the newest timeline fetched with `pgbackrest archive-get`, read with pg_waldump."""
        segs = self.pgbackrest.archived_segments()
        if not segs:
            return None, "no archived WAL"
        tli = max(segs)
        work = self.ctx.workdir / "walend"
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        chown_for(str(work), self.options.os_user)
        try:
            for no in sorted(segs[tli], reverse=True)[:max_segments]:
                name = seg_name(tli, no)
                if not self.pgbackrest.archive_get(name, work / name):
                    continue
                r = self.ctx.runner.run([self.options.tool("pg_waldump"), str(work / name)], env={"TZ": "UTC"},
                                        capture=True, quiet=True, check=False)  # the last record may be cut off
                at = last_commit_time(r.stdout)
                if at is not None:
                    return at, f"last commit in archived segment {name}"
                (work / name).unlink(missing_ok=True)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        return None, f"no commit in the newest {max_segments} archived segments of timeline {tli}"

    def recovery_range(self) -> RecoveryRange:
        physical = [m for m in self.ctx.repo.manifests(self.name) if m.series == "physical"]
        until, detail = self.wal_end() if physical else (None, "no physical backup")
        since = min((self.backup_time(m) for m in physical), default=None)
        return RecoveryRange(self.name, continuous=True, until=until, since=since,
                             detail=f"{len(physical)} physical backups; WAL end: {detail}")

    # -- heartbeat -------------------------------------------------------------------------------
    def heartbeat(self) -> datetime:
        now = utcnow()
        with self._connect(self.options.heartbeat_db) as conn:
            conn.execute(HEARTBEAT_DDL)
            conn.execute("INSERT INTO lifeboat_heartbeat (region, written_at) VALUES (%s, %s)", (self.region, now))
        return now

    # -- monitoring ------------------------------------------------------------------------------
    def exposure(self) -> dict[str, float | None]:
        """WAL archive lag (what a restore from the repository would lose) and the standby's replay
        lag (what a promotion would lose), in seconds."""
        out: dict[str, float | None] = {}
        with self._connect(autocommit=True) as conn:
            last, failed_at, last_at, current = conn.execute(
                "SELECT last_archived_wal, last_failed_time, last_archived_time, "
                "pg_walfile_name(pg_current_wal_lsn()) FROM pg_stat_archiver").fetchone()
        lag: float | None = None
        if last and last[:24] >= prev_segment(current):
            lag = 0.0  # everything but the segment being written is archived
        elif last_at is not None:
            lag = (utcnow() - last_at).total_seconds()
        if failed_at is not None and (last_at is None or failed_at > last_at):
            lag = max(lag or 0.0, (utcnow() - (last_at or failed_at)).total_seconds())
        out["WAL archive lag"] = lag
        if self.options.wal_stream is not None:
            from lifeboat.datastores.postgres import walstream

            with self._connect(autocommit=True) as conn:
                out["WAL stream lag"] = walstream.status(conn, self.options.wal_stream.slot)["lag_seconds"]
        from lifeboat.regions import other

        standby = other(self.ctx.inventory, self.region)
        if self.spec.connections.get(standby):
            try:
                with pgclient.connect(self.endpoint(standby), None, default_db=self.options.databases[0],
                                      autocommit=True) as sc:
                    in_recovery, replay_lag, receive, replay = sc.execute(
                        "SELECT pg_is_in_recovery(), extract(epoch FROM now() - pg_last_xact_replay_timestamp()), "
                        "pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn()").fetchone()
            except Exception as exc:  # the other region may be the one that is gone: not measurable
                log.warning("standby %s not reachable for its replay lag: %s", standby, exc)
                out["standby replay lag"] = None
                return out
            if in_recovery:
                # Nothing to replay means no lag, however long ago the last transaction was.
                out["standby replay lag"] = 0.0 if receive == replay else (
                    float(replay_lag) if replay_lag is not None else None)
        return out

    # -- retention -------------------------------------------------------------------------------
    def delete_backup(self, manifest: Manifest) -> None:
        self.ctx.repo.delete_manifest(self.name, manifest.id)  # first: the catalog no longer lists it
        if manifest.series == "physical" and manifest.native["label"] in self.pgbackrest.labels():
            self.pgbackrest.expire(manifest.native["label"])
        self.ctx.repo.delete_backup(self.name, manifest.id)

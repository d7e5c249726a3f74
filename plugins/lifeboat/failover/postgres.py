"""PostgreSQL failover: streaming replication between the regions' clusters.

* **promote**: `pg_promote()` on the standby (SQL, no host access needed). A server that is not in
  recovery is never promoted again. When the old primary still answers, the standby first replays
  everything the (fenced) old primary wrote, up to `catchup_timeout`.
* **fence**: `ALTER SYSTEM SET default_transaction_read_only = on` + `pg_reload_conf()` + terminate
  every client session on the old primary (a soft fence: a client could still SET it off), or, with
  `fence: stop` and host access (`data_dirs`), `pg_ctl stop -m fast`. Unreachable: recorded.
* **rebuild_as_standby** (failback, needs host access to the region's data directory): stop the old
  primary if it runs, `pg_rewind` it onto the new primary's timeline (the clusters run with data
  checksums, which pg_rewind needs) or, if that fails or `rebuild: basebackup`, take a fresh
  `pg_basebackup` through a replication slot; keep the cluster's own configuration files, write
  `standby.signal` + `primary_conninfo` (the replication connection of the new primary) +
  `primary_slot_name`, start it and wait until it streams.
* **caught_up**: `pg_stat_replication` on the primary for the standby's slot: streaming, and replay
  lag under `max_lag_bytes`.

Heartbeats are the rows the heartbeat DAG writes into `lifeboat_heartbeat` (datastores.postgres).
"""

from __future__ import annotations

import logging
import os
import re
import secrets
import shutil
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from lifeboat.clients import postgres as pgclient
from lifeboat.durations import DurationStr, seconds
from lifeboat.errors import CommandFailed, Refused, RestoreFailed
from lifeboat.failover.base import FailoverDatastore, FailoverOptions
from lifeboat.failover.facts import CaughtUp, EngineFacts, Replication, Role
from lifeboat.runners import chown_for
from lifeboat.waiting import WaitTimeout, wait_until

log = logging.getLogger(__name__)

PROBE_DDL = ("CREATE TABLE IF NOT EXISTS lifeboat_failover_probe (id bigserial PRIMARY KEY, region text NOT NULL, "
             "token text NOT NULL, written_at timestamptz NOT NULL DEFAULT now())")
_AUTO_CONF_MANAGED = re.compile(r"^\s*(primary_conninfo|primary_slot_name|default_transaction_read_only)\s*=")


class PostgresFailoverOptions(FailoverOptions):
    replication_connections: dict[str, str] = Field(
        default={}, description="region -> Airflow connection (replication role) a rebuilt standby streams through")
    data_dirs: dict[str, str] = Field(
        default={}, description="region -> the cluster's data directory as the runner sees it (host access)")
    slot_prefix: str = "standby_"
    fence: Literal["read_only", "stop"] = "read_only"
    rebuild: Literal["auto", "rewind", "basebackup"] = "auto"
    connect_timeout: int = Field(default=5, ge=1, le=120)
    catchup_timeout: DurationStr = "60s"
    promote_timeout: DurationStr = "60s"
    start_timeout: DurationStr = "120s"
    max_lag_bytes: int = Field(default=16 * 1024 * 1024, ge=0)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"[:400]


def _pid_alive(pid: int) -> bool:
    """A live (not zombie) PostgreSQL process with this pid."""
    try:
        if Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0] in ("Z", "X"):
            return False
        return b"postgres" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except (OSError, IndexError):
        return False


class PostgresFailover(FailoverDatastore):
    engine = "postgres"
    Options = PostgresFailoverOptions
    options: PostgresFailoverOptions
    describe_fence = "default_transaction_read_only=on + reload + terminate client sessions (or pg_ctl stop)"
    describe_promote = "pg_promote() on the standby (after replaying all WAL the old primary still has)"
    describe_rebuild = "pg_rewind (or pg_basebackup) onto the new primary, standby.signal + primary_conninfo"

    # -- connections -----------------------------------------------------------------------------
    @property
    def database(self) -> str:
        return self.engine_options.heartbeat_database or self.engine_options.databases[0]

    def _connect(self, region: str, dbname: str | None = None):
        return pgclient.connect(self.endpoint(region), dbname, default_db=self.database, autocommit=True,
                                connect_timeout=self.options.connect_timeout, application_name="lifeboat-failover",
                                label=self.where(region))

    def slot_name(self, standby_region: str) -> str:
        return self.options.slot_prefix + re.sub(r"[^a-z0-9_]", "_", standby_region.lower())

    def _seconds(self, opt: str) -> float:
        return seconds(getattr(self.options, opt))

    # -- state -----------------------------------------------------------------------------------
    def role(self, region: str) -> Role:
        try:
            with self._connect(region) as c:
                rec, ro, version = c.execute(
                    "SELECT pg_is_in_recovery(), current_setting('default_transaction_read_only'), "
                    "current_setting('server_version')").fetchone()
                facts = Role(reachable=True, role="standby" if rec else "primary", read_only=ro == "on",
                             server_version=version)
                if rec:
                    w = c.execute("SELECT status, sender_host, sender_port, received_tli, slot_name "
                                  "FROM pg_stat_wal_receiver").fetchone()
                    if w:
                        facts.replication = Replication(status=w[0], host=w[1], port=w[2], timeline=w[3], slot=w[4])
                    facts.timeline = c.execute("SELECT timeline_id FROM pg_control_checkpoint()").fetchone()[0]
                    facts.replay_lsn = c.execute("SELECT pg_last_wal_replay_lsn()::text").fetchone()[0]
                else:
                    wal = c.execute("SELECT pg_walfile_name(pg_current_wal_lsn()), "
                                    "pg_current_wal_lsn()::text").fetchone()
                    facts.timeline, facts.lsn = int(wal[0][:8], 16), wal[1]
                return facts
        except Exception as exc:  # unreachable is a fact to report, not an error here
            return Role(reachable=False, error=_first_line(exc))

    def newest_heartbeat(self, region: str) -> datetime | None:
        with self._connect(region, self.database) as c:
            if not c.execute("SELECT to_regclass('lifeboat_heartbeat') IS NOT NULL").fetchone()[0]:
                return None
            return c.execute("SELECT max(written_at) FROM lifeboat_heartbeat").fetchone()[0]

    def engine_preflight(self, target_region: str, source_region: str, target: Role, source: Role) -> EngineFacts:
        out = EngineFacts()
        with self._connect(target_region) as c:
            size, max_conn = c.execute("SELECT pg_database_size(current_database()), "
                                       "current_setting('max_connections')::int").fetchone()
            capacity: dict[str, Any] = {"max_connections": max_conn, "database_size_bytes": size}
            if target.role == "standby":
                receive, replay, last_ts, now = c.execute(
                    "SELECT pg_last_wal_receive_lsn()::text, pg_last_wal_replay_lsn()::text, "
                    "pg_last_xact_replay_timestamp(), now()").fetchone()
                out.receive_lsn, out.replay_lsn = receive, replay
                out.last_replayed_transaction_at = last_ts.isoformat() if last_ts else None
                if source.live_primary and source.lsn:
                    lag = c.execute("SELECT pg_wal_lsn_diff(%s::pg_lsn, pg_last_wal_replay_lsn())::bigint",
                                    (source.lsn,)).fetchone()[0]
                    out.replication_lag_bytes = max(0, int(lag or 0))
                    out.replication_lag_seconds = (0.0 if not lag or lag <= 0 or last_ts is None
                                                   else round((now - last_ts).total_seconds(), 3))
                else:
                    out.replication_lag_bytes = out.replication_lag_seconds = None
                    out.warnings.append(f"old primary {source_region} unreachable: lag unknown; the standby replayed "
                                        f"WAL up to {replay}")
        data_dir = self.options.data_dirs.get(target_region)
        if data_dir and Path(data_dir).exists():
            free = shutil.disk_usage(data_dir).free
            capacity["disk_free_bytes"] = free
            if free < size * 0.2:
                out.warnings.append(f"{target_region}: only {free} bytes free beside a {size}-byte database")
        out.capacity = capacity
        return out

    # -- fence -----------------------------------------------------------------------------------
    def identity(self, facts: Role) -> str:
        return f"timeline {facts.timeline}"

    def fence_primary(self, old_region: str, facts: Role) -> str:
        already = facts.read_only
        with self._connect(old_region) as c:
            c.execute("ALTER SYSTEM SET default_transaction_read_only = on")
            c.execute("SELECT pg_reload_conf()")
        def read_only() -> str:  # the reload is asynchronous: new sessions start read-only once it is done
            with self._connect(old_region) as c:
                return c.execute("SELECT current_setting('default_transaction_read_only')").fetchone()[0]

        try:
            wait_until(f"{self.where(old_region)}: default_transaction_read_only=on after ALTER SYSTEM + "
                       "pg_reload_conf()", read_only, 10, 0.2, done=lambda v: v == "on")
        except WaitTimeout as exc:
            raise RestoreFailed(str(exc)) from None
        with self._connect(old_region) as c:
            killed = c.execute("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                               "WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()").fetchone()[0]
            lsn = c.execute("SELECT pg_current_wal_lsn()::text").fetchone()[0]
        detail = (f"fenced {self.where(old_region)}: default_transaction_read_only=on"
                  f"{' (was already on)' if already else ''}, {killed} client session(s) terminated, WAL at {lsn}")
        if self.options.fence == "stop":
            data = self._data_dir(old_region)
            self._pg_ctl(data, "-m", "fast", "-w", "-t", "60", "stop")
            detail += f"; stopped (pg_ctl stop -m fast on {data})"
        return detail

    # -- promote ---------------------------------------------------------------------------------
    def promote_standby(self, target_region: str) -> str:
        with self._connect(target_region) as c:
            ok = c.execute("SELECT pg_promote(true, %s)", (int(self._seconds("promote_timeout")),)).fetchone()[0]
        if not ok:
            raise RestoreFailed(f"pg_promote() on {self.where(target_region)} did not finish within "
                                f"{self.options.promote_timeout}")
        after = self.role(target_region)
        if after.role != "primary":
            raise RestoreFailed(f"{self.where(target_region)} still in recovery after pg_promote(): {after}")
        return f"promoted {self.where(target_region)} with pg_promote(): now timeline {after.timeline}"

    def catch_up(self, target_region: str, source_region: str, source: Role) -> tuple[bool, str]:
        with self._connect(source_region) as c:
            src_lsn = c.execute("SELECT pg_current_wal_lsn()::text").fetchone()[0]
        with self._connect(target_region) as c:
            def lag() -> int | None:
                return c.execute("SELECT pg_wal_lsn_diff(%s::pg_lsn, pg_last_wal_replay_lsn())::bigint",
                                 (src_lsn,)).fetchone()[0]

            try:
                wait_until(f"{self.where(target_region)} to replay up to {src_lsn}", lag,
                           self._seconds("catchup_timeout"), 0.2, done=lambda n: n is not None and n <= 0)
            except WaitTimeout as exc:
                return False, (f"{self.where(target_region)} had not replayed {exc.last} bytes of WAL (old primary "
                               f"at {src_lsn}) after {self.options.catchup_timeout}")
        return True, f"replayed everything the old primary wrote (up to {src_lsn}) before promoting"

    # -- verify ----------------------------------------------------------------------------------
    def verify(self, region: str) -> str:
        r = self.role(region)
        if r.role != "primary":
            raise RestoreFailed(f"{self.where(region)} is not a writable primary: {r.role or r.error}")
        if r.read_only:
            raise RestoreFailed(f"{self.where(region)} has default_transaction_read_only=on (fenced?)")
        token = secrets.token_hex(8)
        with self._connect(region, self.database) as c:
            c.execute(PROBE_DDL)
            row_id = c.execute("INSERT INTO lifeboat_failover_probe (region, token) VALUES (%s, %s) RETURNING id",
                               (region, token)).fetchone()[0]
        with self._connect(region, self.database) as c:  # a new session reads the committed row
            got = c.execute("SELECT token FROM lifeboat_failover_probe WHERE id = %s", (row_id,)).fetchone()
        if not got or got[0] != token:
            raise RestoreFailed(f"{self.where(region)}: wrote probe {token}, read back {got}")
        return (f"write+read ok on {self.where(region)} (lifeboat_failover_probe id {row_id}, "
                f"timeline {r.timeline})")

    # -- failback --------------------------------------------------------------------------------
    def caught_up(self, standby_region: str, primary_region: str) -> CaughtUp:
        slot = self.slot_name(standby_region)
        s = self.role(standby_region)
        with self._connect(primary_region) as c:
            row = c.execute(
                "SELECT r.state, pg_wal_lsn_diff(pg_current_wal_lsn(), r.replay_lsn)::bigint, s.slot_name "
                "FROM pg_stat_replication r LEFT JOIN pg_replication_slots s ON s.active_pid = r.pid "
                "WHERE s.slot_name = %s OR r.application_name = %s LIMIT 1", (slot, slot)).fetchone()
        state, lag = (row[0], int(row[1] or 0)) if row else (None, None)
        ok = bool(s.role == "standby" and state == "streaming" and lag is not None
                  and lag <= self.options.max_lag_bytes)
        return CaughtUp(ok=ok, datastore=self.name, standby=standby_region, primary=primary_region,
                        state=state, lag_bytes=lag, slot=slot, standby_role=s.role or s.error,
                        detail=(f"{self.name}@{standby_region} streams from {primary_region} via slot {slot}, "
                                f"{lag} bytes behind" if row else f"no replication connection for slot {slot} on "
                                f"{primary_region}"))

    def rebuild_as_standby(self, old_region: str, new_primary_region: str) -> str:
        primary = self.role(new_primary_region)
        if primary.role != "primary":
            raise Refused(f"cannot rebuild {old_region} as a standby of {self.where(new_primary_region)}: "
                          f"it is not a reachable primary ({primary.role or primary.error})")
        repl = self._replication_endpoint(new_primary_region)
        slot = self.slot_name(old_region)
        current = self.role(old_region)
        rep = current.replication or Replication()
        if current.role == "standby" and rep.status == "streaming" and rep.port == (repl.port or 5432):
            return (f"{self.where(old_region)} already streams from {new_primary_region} "
                    f"(slot {rep.slot}): nothing to rebuild")
        data = self._data_dir(old_region)
        if current.role == "primary":  # a switchover: it must not keep a slot for its successor
            with self._connect(old_region) as c:
                c.execute("SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots "
                          "WHERE slot_name = %s AND NOT active", (self.slot_name(new_primary_region),))
        steps = []
        if self._running_pid(data):
            self._pg_ctl(data, "-m", "fast", "-w", "-t", "120", "stop")
            steps.append(f"stopped the running {current.role or 'server'}")
        self._clear_stale_locks(data)
        self._ensure_slot(new_primary_region, slot)
        saved = self._save_config(data)
        method = self.options.rebuild
        how = ""
        if method in ("auto", "rewind"):
            try:
                how = self._rewind(data, new_primary_region)
            except CommandFailed as exc:
                if method == "rewind":
                    raise
                log.warning("pg_rewind failed, taking a fresh base backup instead: %s", exc.output_tail[-500:])
                steps.append("pg_rewind failed: " + exc.output_tail.strip().splitlines()[-1][:200]
                             if exc.output_tail.strip() else "pg_rewind failed")
                method = "basebackup"
        if method == "basebackup":
            how = self._basebackup(data, repl, slot)
        steps.append(how)
        self._restore_config(data, saved, repl, slot, old_region)
        steps.append(self._start(data))
        self._wait_streaming(old_region, new_primary_region)
        shutil.rmtree(data.with_name(f".{data.name}.pre-rebuild"), ignore_errors=True)
        steps.append(f"streaming from {new_primary_region} via slot {slot}")
        return f"rebuilt {self.where(old_region)} as a standby of {new_primary_region}: " + "; ".join(steps)

    # -- host-access helpers ---------------------------------------------------------------------
    def _data_dir(self, region: str) -> Path:
        d = self.options.data_dirs.get(region)
        if not d:
            raise Refused(f"{self.inventory.source}: failover.datastores.{self.name}.data_dirs.{region}: not set -- "
                          f"this step needs host access to the {region} cluster's data directory")
        p = Path(d)
        if not (p / "PG_VERSION").exists():
            raise Refused(f"failover.datastores.{self.name}.data_dirs.{region}: {p} is not a PostgreSQL data directory")
        return p

    def _replication_endpoint(self, region: str):
        from lifeboat.connections import resolve

        conn = self.options.replication_connections.get(region)
        if not conn:
            raise Refused(f"{self.inventory.source}: failover.datastores.{self.name}.replication_connections.{region}: "
                          "not set -- a rebuilt standby needs the replication connection of its primary")
        return resolve(conn).require("host", "login")

    def _bin(self, tool: str) -> str:
        return self.engine_options.tool(tool)

    @property
    def _user(self) -> str:
        return self.engine_options.os_user

    def _pg_ctl(self, data: Path, *args: str) -> None:
        self.ctx.runner.run([self._bin("pg_ctl"), "-D", str(data), *args], as_user=self._user,
                            timeout=self._seconds("start_timeout") + 30)

    @staticmethod
    def _running_pid(data: Path) -> int | None:
        try:
            pid = int((data / "postmaster.pid").read_text().splitlines()[0])
        except (OSError, ValueError, IndexError):
            return None
        return pid if _pid_alive(pid) else None

    @staticmethod
    def _clear_stale_locks(data: Path) -> None:
        """postmaster.pid and the socket lock of a dead (or zombie) postmaster block a restart."""
        pidfile = data / "postmaster.pid"
        try:
            lines = pidfile.read_text().splitlines()
            pid = int(lines[0])
        except (OSError, ValueError, IndexError):
            return
        if _pid_alive(pid):
            return
        port = lines[3].strip() if len(lines) > 3 else ""
        sockdir = lines[4].strip() if len(lines) > 4 else ""
        if port and sockdir:
            lock = Path(sockdir) / f".s.PGSQL.{port}.lock"
            try:
                if not _pid_alive(int(lock.read_text().splitlines()[0])):
                    lock.unlink()
            except (OSError, ValueError, IndexError):
                pass
        pidfile.unlink(missing_ok=True)
        log.info("removed stale postmaster.pid of dead pid %s in %s", pid, data)

    def _ensure_slot(self, primary_region: str, slot: str) -> None:
        with self._connect(primary_region) as c:
            row = c.execute("SELECT active FROM pg_replication_slots WHERE slot_name = %s", (slot,)).fetchone()
            if row and row[0]:
                raise Refused(f"replication slot {slot} on {self.where(primary_region)} is in use by another standby")
            if row:  # stale (from before the failover): its restart point is meaningless now
                c.execute("SELECT pg_drop_replication_slot(%s)", (slot,))
            c.execute("SELECT pg_create_physical_replication_slot(%s, true)", (slot,))

    @staticmethod
    def _save_config(data: Path) -> dict[str, bytes]:
        """The cluster's own configuration (pg_rewind and pg_basebackup bring the source's)."""
        return {p.name: p.read_bytes() for p in data.glob("*.conf") if p.is_file()}

    def _rewind(self, data: Path, source_region: str) -> str:
        # A freshly promoted source still has the old timeline in its control file until its next
        # checkpoint; pg_rewind reads it there and would find "no rewind required".
        with self._connect(source_region) as c:
            c.execute("CHECKPOINT")
        ep = self.endpoint(source_region).require("host", "login")
        source = pgclient.conninfo_string({"host": ep.host, "port": ep.port or 5432, "user": ep.login,
                                           "dbname": "postgres", "connect_timeout": 10,
                                           "application_name": "lifeboat-pg_rewind"})
        r = self.ctx.runner.run([self._bin("pg_rewind"), f"--target-pgdata={data}", f"--source-server={source}",
                                 "--progress"], as_user=self._user, env={"PGPASSWORD": ep.password},
                                timeout=3600)
        last = (r.tail.strip().splitlines() or [""])[-1]
        return f"pg_rewind from {source_region} ({last})"

    def _basebackup(self, data: Path, repl, slot: str) -> str:
        tmp = data.with_name(f".{data.name}.rebuild")
        old = data.with_name(f".{data.name}.pre-rebuild")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(mode=0o700)
        chown_for(str(tmp), self._user)
        self.ctx.runner.run([self._bin("pg_basebackup"), "-h", repl.host, "-p", str(repl.port or 5432), "-U",
                             repl.login, "-w", "-D", str(tmp), "-X", "stream", "-S", slot, "--checkpoint=fast"],
                            as_user=self._user, env={"PGPASSWORD": repl.password}, timeout=6 * 3600)
        shutil.rmtree(old, ignore_errors=True)
        os.rename(data, old)  # kept until the new standby streams
        os.rename(tmp, data)
        return f"fresh pg_basebackup through slot {slot} (previous data kept in {old} until streaming)"

    def _restore_config(self, data: Path, saved: dict[str, bytes], repl, slot: str, region: str) -> None:
        for name, content in saved.items():
            (data / name).write_bytes(content)
        auto = data / "postgresql.auto.conf"
        lines = [ln for ln in (auto.read_text().splitlines() if auto.exists() else [])
                 if not _AUTO_CONF_MANAGED.match(ln)]
        conninfo = pgclient.conninfo_string({"host": repl.host, "port": repl.port or 5432, "user": repl.login,
                                             "password": repl.password, "application_name": slot})
        lines += ["# written by lifeboat failback (standby of the new primary)",
                  "primary_conninfo = '" + conninfo.replace("'", "''") + "'",
                  f"primary_slot_name = '{slot}'"]
        auto.write_text("\n".join(lines) + "\n")
        (data / "standby.signal").touch()
        (data / "recovery.signal").unlink(missing_ok=True)
        (data / "log").mkdir(exist_ok=True)
        for name in {*saved, "postgresql.auto.conf", "standby.signal"}:
            os.chmod(data / name, 0o600)
            chown_for(str(data / name), self._user)
        chown_for(str(data / "log"), self._user)
        log.info("standby configuration written for %s (slot %s)", region, slot)

    def _start(self, data: Path) -> str:
        self._clear_stale_locks(data)
        self._pg_ctl(data, "-l", str(data / "log" / "startup.log"), "-w", "-t",
                     str(int(self._seconds("start_timeout"))), "start")
        return f"started ({data})"

    def _wait_streaming(self, standby_region: str, primary_region: str) -> None:
        def streaming(r: Role) -> bool:
            return r.role == "standby" and r.replication is not None and r.replication.status == "streaming"

        try:
            wait_until(f"{self.where(standby_region)} to stream from {primary_region}",
                       lambda: self.role(standby_region), self._seconds("catchup_timeout"), 0.3, done=streaming)
        except WaitTimeout as exc:
            raise RestoreFailed(f"{self.where(standby_region)} did not start streaming from {primary_region} within "
                                f"{self.options.catchup_timeout}: {exc.last}") from None

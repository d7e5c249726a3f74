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
import re
import secrets
import shutil
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from lifeboat.clients import postgres as pgclient
from lifeboat.durations import DurationStr, seconds
from lifeboat.errors import RestoreFailed
from lifeboat.failover.base import FailoverDatastore, FailoverOptions
from lifeboat.failover.facts import CaughtUp, EngineFacts, Replication, Role, first_line
from lifeboat.failover.pgrebuild import HostAccess
from lifeboat.waiting import WaitTimeout, wait_until

log = logging.getLogger(__name__)

PROBE_DDL = ("CREATE TABLE IF NOT EXISTS lifeboat_failover_probe (id bigserial PRIMARY KEY, region text NOT NULL, "
             "token text NOT NULL, written_at timestamptz NOT NULL DEFAULT now())")


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


class PostgresFailover(FailoverDatastore[PostgresFailoverOptions]):
    engine = "postgres"
    describe_fence = "default_transaction_read_only=on + reload + terminate client sessions (or pg_ctl stop)"
    describe_promote = "pg_promote() on the standby (after replaying all WAL the old primary still has)"
    describe_rebuild = "pg_rewind (or pg_basebackup) onto the new primary, standby.signal + primary_conninfo"

    # -- connections -----------------------------------------------------------------------------
    def __init__(self, ctx):
        super().__init__(ctx)
        self.host = HostAccess(self)

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
            return Role(reachable=False, error=first_line(exc))

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
            data = self.host._data_dir(old_region)
            self.host._pg_ctl(data, "-m", "fast", "-w", "-t", "60", "stop")
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
        return self.host.rebuild_as_standby(old_region, new_primary_region)

"""Continuous WAL streaming: `pg_receivewal` through a physical replication slot (as WAL-G's
`wal-receive` does), so a restore reaches the last seconds before a failure instead of the last
segment `archive_command` pushed (bounded by archive_timeout).

    <wal_stream.folder>/<segment>           complete segments, as PostgreSQL writes them
    <wal_stream.folder>/<segment>.partial   the segment being received (flushed per record)

* The streamer: `pg_receivewal --slot <slot> --synchronous` (every record is flushed and reported at
  once, so the primary's `flush_lsn` for the slot is what the folder holds). The slot keeps WAL on
  the primary while the streamer is down, so it resumes without a gap.
* Supervision: `python -m lifeboat walstream <datastore>` runs it and starts it again when it exits
  (`WalStreamSupervisor`); in production that command is a systemd unit (Restart=always) or a sidecar
  container next to the database (docs/datastores/postgres.md). The replication role's password goes
  to pg_receivewal in PGPASSWORD, never in argv.
* Restore: the scratch instance's `restore_command` tries `pgbackrest archive-get` first and then this
  folder: a complete segment, else the `.partial` one copied under the segment's name (pg_receivewal
  pads it to the full segment size with zeros, so recovery stops at the end of the valid records in
  it: the partial segment is handled).
* Monitoring: `status()` -> the slot's activity and the streaming lag; `PostgresDatastore.exposure()`
  reports it as "WAL stream lag", None (a monitor finding) when the streamer is not connected.

The folder is a path the streamer writes (a volume that is part of the repository); uploading closed
segments to S3 is not built here.
"""

from __future__ import annotations

import logging
import os
import re
import shlex
import subprocess
import time
from pathlib import Path
from typing import TYPE_CHECKING

from lifeboat.clients import postgres as pgclient
from lifeboat.connections import resolve
from lifeboat.datastores.postgres.options import WalStreamOptions
from lifeboat.errors import InventoryError, Refused
from lifeboat.runners import _user_prefix, chown_for

if TYPE_CHECKING:
    from lifeboat.datastores.postgres.engine import PostgresDatastore

log = logging.getLogger(__name__)
_RESTORE_CMD = re.compile(r"^\s*restore_command\s*=\s*'((?:[^']|'')*)'\s*$")


def restore_command(archive_get: str, folder: str | Path) -> str:
    """pgBackRest's archive first, then the streamed folder (a complete segment, else the partial one
    under the segment's name)."""
    d = shlex.quote(str(folder))
    fallback = (f'd={d}; if [ -f "$d/$1" ]; then cp "$d/$1" "$2"; '
                f'elif [ -f "$d/$1.partial" ]; then cp "$d/$1.partial" "$2"; else exit 1; fi')
    return f"{archive_get} || sh -c {shlex.quote(fallback)} walstream %f %p"


def add_to_restore_command(auto_conf: Path, folder: str | Path) -> str:
    """Rewrite the restore_command pgBackRest put into postgresql.auto.conf to fall back to the folder."""
    lines = auto_conf.read_text().splitlines()
    for i, line in enumerate(lines):
        m = _RESTORE_CMD.match(line)
        if m:
            cmd = restore_command(m.group(1).replace("''", "'"), folder)
            lines[i] = "restore_command = '" + cmd.replace("'", "''") + "'"
            auto_conf.write_text("\n".join(lines) + "\n")
            return cmd
    raise Refused(f"{auto_conf}: no restore_command to extend (pgbackrest restore wrote none)")


def argv(pg_receivewal: str, opts: WalStreamOptions) -> list[str]:
    """No host, user or password here: they come from the PG* environment (libpq_env)."""
    return [pg_receivewal, "-D", opts.folder, "--slot", opts.slot, "--synchronous", "--no-loop",
            "--status-interval", str(opts.status_interval), "--no-password"]


def create_slot_argv(pg_receivewal: str, opts: WalStreamOptions) -> list[str]:
    """`--create-slot` creates the slot and exits; run before every start (--if-not-exists)."""
    return [pg_receivewal, "--slot", opts.slot, "--create-slot", "--if-not-exists", "--no-password"]


def status(conn, slot: str) -> dict:
    """The slot on the primary: exists / active, and how far behind the streamer's flush is."""
    row = conn.execute(
        "SELECT s.active, pg_current_wal_lsn() - r.flush_lsn, extract(epoch FROM r.flush_lag), "
        "extract(epoch FROM now() - r.reply_time) "
        "FROM pg_replication_slots s LEFT JOIN pg_stat_replication r ON r.pid = s.active_pid "
        "WHERE s.slot_name = %s", (slot,)).fetchone()
    if row is None:
        return {"slot": slot, "exists": False, "active": False, "lag_bytes": None, "lag_seconds": None}
    active, lag_bytes, flush_lag, since_reply = row
    lag = None
    if active and lag_bytes is not None:
        # nothing unflushed = no lag, however long ago the last write was; else the flush lag the
        # walsender measured (or, while it has none yet, the age of the last reply)
        lag = 0.0 if int(lag_bytes) <= 0 else float(flush_lag if flush_lag is not None else since_reply or 0.0)
    return {"slot": slot, "exists": True, "active": bool(active),
            "lag_bytes": int(lag_bytes) if lag_bytes is not None else None, "lag_seconds": lag}


def options_of(ds: PostgresDatastore) -> WalStreamOptions:
    ws = getattr(ds.options, "wal_stream", None)
    if ws is None:
        raise InventoryError(f"datastores.{ds.name}.options.wal_stream is not set ({ds.engine}): WAL streaming "
                             "is off")
    return ws


class WalStreamSupervisor:
    """Runs pg_receivewal and starts it again when it exits (connection lost, primary restarted), until
    stop() (the CLI wires SIGTERM/SIGINT to it). The supervisor is what systemd or a sidecar keeps running."""

    def __init__(self, ds: PostgresDatastore, backoff: float = 1.0):
        self.opts = options_of(ds)
        region = ds.region
        if region not in self.opts.connections:
            raise InventoryError(f"datastores.{ds.name}.options.wal_stream.connections has no connection for "
                                 f"region {region!r} (has: {', '.join(self.opts.connections) or 'none'})")
        ep = resolve(self.opts.connections[region]).require("host", "login", "password")
        self.env = pgclient.libpq_env(ep, None, default_db="postgres")
        self.argv = argv(ds.options.tool("pg_receivewal"), self.opts)
        self.create_argv = create_slot_argv(ds.options.tool("pg_receivewal"), self.opts)
        self.folder, self.as_user, self.backoff = Path(self.opts.folder), ds.options.os_user, backoff
        self.proc: subprocess.Popen | None = None
        self.starts = 0
        self._stop = False

    def prepare(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        chown_for(str(self.folder), self.as_user)
        if not os.access(self.folder, os.W_OK):
            raise Refused(f"WAL stream folder {self.folder} is not writable")

    def run(self, max_seconds: float | None = None) -> int:
        self.prepare()
        end = time.monotonic() + max_seconds if max_seconds else None

        def more() -> bool:
            return not self._stop and (end is None or time.monotonic() < end)

        while more():
            self.starts += 1
            env = {**os.environ, **self.env}
            made = subprocess.run(_user_prefix(self.as_user) + self.create_argv, env=env, check=False)
            if made.returncode != 0:
                log.warning("pg_receivewal --create-slot %s failed (exit %s); trying again in %.0fs",
                            self.opts.slot, made.returncode, self.backoff)
                time.sleep(self.backoff)
                continue
            log.info("starting pg_receivewal (start %d): %s", self.starts, shlex.join(self.argv))
            self.proc = subprocess.Popen(_user_prefix(self.as_user) + self.argv, env=env, start_new_session=True)
            while self.proc.poll() is None and more():
                time.sleep(0.2)
            if self.proc.poll() is None:
                self.proc.terminate()
                self.proc.wait(timeout=30)
            elif more():
                log.warning("pg_receivewal exited with code %s; starting it again in %.0fs",
                            self.proc.returncode, self.backoff)
                time.sleep(self.backoff)
        return 0

    def stop(self) -> None:
        self._stop = True

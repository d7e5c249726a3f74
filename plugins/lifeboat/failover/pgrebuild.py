"""PostgreSQL failback with host access: rebuild a former primary as a standby of the new one.

Stop the old primary if it runs, `pg_rewind` it onto the new primary's timeline (the clusters run with
data checksums, which pg_rewind needs) or, if that fails or `rebuild: basebackup`, take a fresh
`pg_basebackup` through a replication slot; keep the cluster's own configuration files, write
`standby.signal` + `primary_conninfo` + `primary_slot_name`, start it and wait until it streams.
Also the data-directory helpers the fence uses with `fence: stop`.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from lifeboat.clients import postgres as pgclient
from lifeboat.errors import CommandFailed, Refused, RestoreFailed
from lifeboat.failover.facts import Replication, Role
from lifeboat.runners import chown_for
from lifeboat.waiting import WaitTimeout, wait_until

if TYPE_CHECKING:  # the failover engine passes itself in; no import at run time
    from lifeboat.failover.postgres import PostgresFailover

log = logging.getLogger(__name__)
_AUTO_CONF_MANAGED = re.compile(r"^\s*(primary_conninfo|primary_slot_name|default_transaction_read_only)\s*=")


def pid_alive(pid: int) -> bool:
    """A live (not zombie) PostgreSQL process with this pid."""
    try:
        if Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0] in ("Z", "X"):
            return False
        return b"postgres" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except (OSError, IndexError):
        return False


class HostAccess:
    """What needs the cluster's data directory on the runner's host (failback, `fence: stop`)."""

    def __init__(self, fo: PostgresFailover):
        self.fo = fo

    def rebuild_as_standby(self, old_region: str, new_primary_region: str) -> str:
        primary = self.fo.role(new_primary_region)
        if primary.role != "primary":
            raise Refused(f"cannot rebuild {old_region} as a standby of {self.fo.where(new_primary_region)}: "
                          f"it is not a reachable primary ({primary.role or primary.error})")
        repl = self._replication_endpoint(new_primary_region)
        slot = self.fo.slot_name(old_region)
        current = self.fo.role(old_region)
        rep = current.replication or Replication()
        if current.role == "standby" and rep.status == "streaming" and rep.port == (repl.port or 5432):
            return (f"{self.fo.where(old_region)} already streams from {new_primary_region} "
                    f"(slot {rep.slot}): nothing to rebuild")
        data = self._data_dir(old_region)
        if current.role == "primary":  # a switchover: it must not keep a slot for its successor
            with self.fo._connect(old_region) as c:
                c.execute("SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots "
                          "WHERE slot_name = %s AND NOT active", (self.fo.slot_name(new_primary_region),))
        steps = []
        if self._running_pid(data):
            self._pg_ctl(data, "-m", "fast", "-w", "-t", "120", "stop")
            steps.append(f"stopped the running {current.role or 'server'}")
        self._clear_stale_locks(data)
        self._ensure_slot(new_primary_region, slot)
        saved = self._save_config(data)
        method = self.fo.options.rebuild
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
        return f"rebuilt {self.fo.where(old_region)} as a standby of {new_primary_region}: " + "; ".join(steps)

    # -- host-access helpers ---------------------------------------------------------------------
    def _data_dir(self, region: str) -> Path:
        d = self.fo.options.data_dirs.get(region)
        if not d:
            raise Refused(f"{self.fo.inventory.source}: failover.datastores.{self.fo.name}.data_dirs.{region}: not "
                          f"set -- this step needs host access to the {region} cluster's data directory")
        p = Path(d)
        if not (p / "PG_VERSION").exists():
            raise Refused(f"failover.datastores.{self.fo.name}.data_dirs.{region}: {p} is not a PostgreSQL data "
                          "directory")
        return p

    def _replication_endpoint(self, region: str):
        from lifeboat.connections import resolve

        conn = self.fo.options.replication_connections.get(region)
        if not conn:
            raise Refused(f"{self.fo.inventory.source}: failover.datastores.{self.fo.name}.replication_connections."
                          f"{region}: not set -- a rebuilt standby needs the replication connection of its primary")
        return resolve(conn).require("host", "login")

    def _bin(self, tool: str) -> str:
        return self.fo.engine_options.tool(tool)

    @property
    def _user(self) -> str:
        return self.fo.engine_options.os_user

    def _pg_ctl(self, data: Path, *args: str) -> None:
        self.fo.ctx.runner.run([self._bin("pg_ctl"), "-D", str(data), *args], as_user=self._user,
                            timeout=self.fo._seconds("start_timeout") + 30)

    @staticmethod
    def _running_pid(data: Path) -> int | None:
        try:
            pid = int((data / "postmaster.pid").read_text().splitlines()[0])
        except (OSError, ValueError, IndexError):
            return None
        return pid if pid_alive(pid) else None

    @staticmethod
    def _clear_stale_locks(data: Path) -> None:
        """postmaster.pid and the socket lock of a dead (or zombie) postmaster block a restart."""
        pidfile = data / "postmaster.pid"
        try:
            lines = pidfile.read_text().splitlines()
            pid = int(lines[0])
        except (OSError, ValueError, IndexError):
            return
        if pid_alive(pid):
            return
        port = lines[3].strip() if len(lines) > 3 else ""
        sockdir = lines[4].strip() if len(lines) > 4 else ""
        if port and sockdir:
            lock = Path(sockdir) / f".s.PGSQL.{port}.lock"
            try:
                if not pid_alive(int(lock.read_text().splitlines()[0])):
                    lock.unlink()
            except (OSError, ValueError, IndexError):
                pass
        pidfile.unlink(missing_ok=True)
        log.info("removed stale postmaster.pid of dead pid %s in %s", pid, data)

    def _ensure_slot(self, primary_region: str, slot: str) -> None:
        with self.fo._connect(primary_region) as c:
            row = c.execute("SELECT active FROM pg_replication_slots WHERE slot_name = %s", (slot,)).fetchone()
            if row and row[0]:
                raise Refused(f"replication slot {slot} on {self.fo.where(primary_region)} is in use by another "
                              "standby")
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
        with self.fo._connect(source_region) as c:
            c.execute("CHECKPOINT")
        ep = self.fo.endpoint(source_region).require("host", "login")
        source = pgclient.conninfo_string({"host": ep.host, "port": ep.port or 5432, "user": ep.login,
                                           "dbname": "postgres", "connect_timeout": 10,
                                           "application_name": "lifeboat-pg_rewind"})
        r = self.fo.ctx.runner.run([self._bin("pg_rewind"), f"--target-pgdata={data}", f"--source-server={source}",
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
        self.fo.ctx.runner.run([self._bin("pg_basebackup"), "-h", repl.host, "-p", str(repl.port or 5432), "-U",
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
                     str(int(self.fo._seconds("start_timeout"))), "start")
        return f"started ({data})"

    def _wait_streaming(self, standby_region: str, primary_region: str) -> None:
        def streaming(r: Role) -> bool:
            return r.role == "standby" and r.replication is not None and r.replication.status == "streaming"

        try:
            wait_until(f"{self.fo.where(standby_region)} to stream from {primary_region}",
                       lambda: self.fo.role(standby_region), self.fo._seconds("catchup_timeout"), 0.3, done=streaming)
        except WaitTimeout as exc:
            raise RestoreFailed(f"{self.fo.where(standby_region)} did not start streaming from {primary_region} within "
                                f"{self.fo.options.catchup_timeout}: {exc.last}") from None

"""PostgreSQL scratch targets: a throw-away instance restored from the repository, never the live cluster."""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lifeboat.clients import postgres as pgclient
from lifeboat.datastores.base import ScratchTarget
from lifeboat.datastores.postgres.options import quote_ident
from lifeboat.drills import DrillRecorder
from lifeboat.durations import seconds
from lifeboat.errors import Refused, RestoreFailed
from lifeboat.records import Manifest
from lifeboat.runners import chown_for
from lifeboat.waiting import WaitTimeout, wait_until

if TYPE_CHECKING:  # the engine passes itself in; no import at run time
    from lifeboat.datastores.postgres.engine import PostgresDatastore

PID_FILE_GRACE = 30.0  # seconds for a started postmaster to write postmaster.pid
SUN_PATH_MAX = 107  # bytes of a unix socket's path (sockaddr_un.sun_path without its NUL)


def socket_folder(preferred: Path, port: int) -> Path:
    """`preferred`, or -- when the socket path in it would pass the unix socket limit (a deep work
    folder: PostgreSQL then refuses to start) -- a short private folder under the system temp dir."""
    if len(str(preferred / f".s.PGSQL.{port}").encode()) <= SUN_PATH_MAX:
        return preferred
    return Path(tempfile.gettempdir()) / f"lifeboat-pg-{hashlib.sha256(str(preferred).encode()).hexdigest()[:16]}"


class ScratchInstance:
    """A throw-away PostgreSQL restored from the repository: unix socket only (no TCP listener),
    its own port and socket folder, archive_mode=off (it must never push WAL into the live
    archive), trust authentication on that private socket only."""

    def __init__(self, ds: PostgresDatastore, drill_id: str):
        self.ds = ds
        self.root = ds.scratch_dir(drill_id)
        self.data = self.root / "data"
        self.logfile = self.root / "postgres.log"
        self.port = ds.free_port()
        self.sock = socket_folder(self.root / "run", self.port)
        self.user = ds.options.os_user
        self.timeout = seconds(ds.options.restore_timeout)
        self._conn: Any = None

    def guard(self) -> None:
        live = self.ds.pgbackrest.repo_conf().get("pg1-path")
        if live and Path(live).resolve() == self.data.resolve():
            raise Refused(f"scratch folder {self.data} is the live cluster's data directory")

    def restore(self, manifest: Manifest, target_args: list[str]) -> None:
        self.guard()
        shutil.rmtree(self.root, ignore_errors=True)
        self._remove_outside_socket_folder()
        self.data.mkdir(parents=True, mode=0o700)
        self.sock.mkdir(mode=0o700)
        self.logfile.touch()
        chown_for(str(self.root), self.user)
        chown_for(str(self.sock), self.user)
        os.chmod(self.root, 0o755)
        self.ds.pgbackrest.restore(self.data, manifest.native["label"], target_args, self.timeout)
        if self.ds.options.wal_stream is not None:  # the streamed WAL after pgBackRest's archive: RPO in seconds
            from lifeboat.datastores.postgres import walstream

            walstream.add_to_restore_command(self.data / "postgresql.auto.conf", self.ds.options.wal_stream.folder)
        (self.data / "lifeboat_hba.conf").write_text("local all all trust\n")
        chown_for(str(self.data / "lifeboat_hba.conf"), self.user)

    def start(self) -> None:
        opts = (f"-c port={self.port} -c listen_addresses='' -c unix_socket_directories='{self.sock}' "
                f"-c archive_mode=off -c hot_standby=on -c hba_file='{self.data / 'lifeboat_hba.conf'}' "
                f"-c cluster_name=lifeboat-scratch -c shared_buffers=128MB -c recovery_init_sync_method=syncfs "
                "-c logging_collector=off")
        # -W: pg_ctl's own wait polls every 100 ms; the callers' waits (wait_paused, wait_promoted) poll
        # the socket every 20-50 ms and fail as soon as the postmaster is gone
        r = self.ds.ctx.runner.run([self.ds.options.tool("pg_ctl"), "-D", self.data, "-l", self.logfile, "-o", opts,
                                    "-W", "start"], as_user=self.user, check=False)
        if r.returncode != 0:
            raise RestoreFailed(f"scratch PostgreSQL did not start (see {self.logfile}):\n{self.log_tail()}")
        try:  # the postmaster writes postmaster.pid first thing; a bad option makes it exit before that
            wait_until("the scratch postmaster to write postmaster.pid", self._running, PID_FILE_GRACE, 0.005,
                       max_interval=0.05)
        except WaitTimeout:
            raise RestoreFailed(f"scratch PostgreSQL did not start (no running postmaster after {PID_FILE_GRACE:.0f} s,"
                                f" see {self.logfile}):\n{self.log_tail()}") from None

    def log_tail(self, n: int = 15) -> str:
        try:
            return "\n".join(self.logfile.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""

    def connect(self):
        if self._conn is None or self._conn.closed:
            self._conn = pgclient.local_socket(str(self.sock), self.port, self.ds.options.databases[0])
        return self._conn

    def query_one(self, sql: str, params=None, dbname: str | None = None):
        if dbname and dbname != self.ds.options.databases[0]:
            with pgclient.local_socket(str(self.sock), self.port, dbname) as c:
                return c.execute(sql, params).fetchone()[0]
        return self.connect().execute(sql, params).fetchone()[0]

    def _running(self) -> bool:
        try:
            pid = int((self.data / "postmaster.pid").read_text().split()[0])
            os.kill(pid, 0)
            return True
        except (OSError, ValueError, IndexError):
            return False

    def _wait(self, what: str, sql: str) -> None:
        import psycopg

        def probe() -> Any:
            if not self._running():
                raise RestoreFailed(f"scratch PostgreSQL stopped while waiting for {what}:\n{self.log_tail()}")
            try:
                return self.query_one(sql)
            except psycopg.Error:
                self._conn = None  # server still coming up: reconnect next time
                raise

        try:
            # fast first looks (a small restore is ready in a fraction of a second), backing off to 50 ms (a
            # probe is one SELECT over the private unix socket: cheap, and the RTO is not rounded up by 0.2 s)
            wait_until(what, probe, self.timeout, 0.02, done=lambda v: v is True or v == "paused",
                       retry_on=(psycopg.Error,), max_interval=0.05)
        except WaitTimeout as exc:
            raise RestoreFailed(f"{exc}:\n{self.log_tail()}") from None

    def wait_paused(self) -> None:
        self._wait("recovery to pause at the restore point", "SELECT pg_get_wal_replay_pause_state()")

    def wait_promoted(self) -> None:
        self._wait("recovery to finish and the instance to accept writes", "SELECT NOT pg_is_in_recovery()")

    def set_final_target(self, target_time: datetime | None) -> None:
        """Replace the recovery target pgBackRest wrote with the final one (latest or a time)."""
        auto = self.data / "postgresql.auto.conf"
        lines = [ln for ln in auto.read_text().splitlines() if not ln.strip().startswith("recovery_target")]
        if target_time is not None:
            lines += [f"recovery_target_time = '{target_time.isoformat()}'", "recovery_target_action = 'promote'"]
        auto.write_text("\n".join(lines) + "\n")
        (self.data / "recovery.signal").touch()
        chown_for(str(auto), self.user)
        chown_for(str(self.data / "recovery.signal"), self.user)

    def counts(self, expected: dict[str, int]) -> dict[str, int]:
        out = {}
        for key in expected:
            db, qual = key.split(".", 1)
            out[key] = self.query_one(f"SELECT count(*) FROM {quote_ident(qual)}", dbname=db)  # noqa: S608
        return out

    def amcheck(self) -> str:
        r = self.ds.ctx.runner.run([self.ds.options.tool("pg_amcheck"), "--host", self.sock, "--port", self.port,
                                    "--username", "postgres", "--all", "--install-missing", "--no-password",
                                    f"--jobs={min(4, os.cpu_count() or 1)}",  # relations checked side by side
                                    "--progress"], as_user=self.user, check=False, quiet=True, timeout=self.timeout)
        if r.returncode != 0:
            raise RestoreFailed(f"pg_amcheck found corruption or failed (exit {r.returncode}):\n{r.tail[-2000:]}")
        return "no corruption found in heap or btree indexes of any database"

    def newest_heartbeat(self) -> datetime | None:
        db = self.ds.options.heartbeat_db
        if not self.query_one("SELECT to_regclass('lifeboat_heartbeat') IS NOT NULL", dbname=db):
            return None
        return self.query_one("SELECT max(written_at) FROM lifeboat_heartbeat", dbname=db)

    def restore_logical(self, m: Manifest) -> str:
        details = []
        with self.ds.ctx.repo.local_copy(m, self.root / "logical") as src:
            for db in m.native.get("databases", []):
                scratch_db = f"lifeboat_scratch_{db}"[:63]
                self.connect().execute(f'DROP DATABASE IF EXISTS "{scratch_db}"')
                self.connect().execute(f'CREATE DATABASE "{scratch_db}"')
                r = self.ds.ctx.runner.run([self.ds.options.tool("pg_restore"), "--host", self.sock, "--port",
                                            self.port, "--username", "postgres", "--no-password", "--no-owner",
                                            "--exit-on-error", f"--jobs={self.ds.options.dump_jobs}", "--dbname",
                                            scratch_db, str(src / f"{db}.dir")], check=False, quiet=True,
                                           timeout=self.timeout)
                if r.returncode != 0:
                    raise RestoreFailed(f"pg_restore of {m.id} {db}.dir failed:\n{r.tail[-2000:]}")
                for key, want in m.counts.items():
                    kdb, qual = key.split(".", 1)
                    if kdb != db:
                        continue
                    got = self.query_one(f"SELECT count(*) FROM {quote_ident(qual)}", dbname=scratch_db)  # noqa: S608
                    if got != want:
                        raise RestoreFailed(f"logical dump {m.id}: {key} has {got} rows after pg_restore, "
                                            f"manifest says {want}")
                    details.append(f"{key}={got}")
        return "counts match: " + ", ".join(details)

    def _pg_ctl_stop(self, mode: str) -> None:
        if self._running():
            # -W and a 10 ms look at postmaster.pid instead of pg_ctl's 100 ms wait
            self.ds.ctx.runner.run([self.ds.options.tool("pg_ctl"), "-D", self.data, "-m", mode, "-W", "stop"],
                                   as_user=self.user, check=False)
            try:
                wait_until("the scratch postmaster to stop", lambda: not self._running(), self.timeout, 0.01,
                           max_interval=0.05)
            except WaitTimeout as exc:
                raise RestoreFailed(f"{exc}:\n{self.log_tail()}") from None

    def stop(self, mode: str = "fast") -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        self._pg_ctl_stop(mode)

    def destroy(self) -> None:
        try:
            if self._conn is not None:
                self._conn.close()
            self._pg_ctl_stop("immediate")
        finally:
            self._conn = None
            if os.environ.get("LIFEBOAT_KEEP_SCRATCH") != "1":
                shutil.rmtree(self.root, ignore_errors=True)
                self._remove_outside_socket_folder()

    def _remove_outside_socket_folder(self) -> None:
        if not self.sock.is_relative_to(self.root):
            shutil.rmtree(self.sock, ignore_errors=True)


class PostgresScratch(ScratchTarget):
    """A restore test: pause at the backup's restore point for the exact row counts, roll forward to
    the target (latest WAL or a time) -- the RTO clock stops there; then pg_amcheck and the newest
    logical dump restored beside it."""

    teardown_step = "tear down scratch instance"

    def __init__(self, ds: PostgresDatastore, manifest: Manifest, target_time: datetime | None, target: str,
                 drill: DrillRecorder):
        self.ds, self.m, self.target_time, self.target, self.drill = ds, manifest, target_time, target, drill
        self.instance = ScratchInstance(ds, drill.drill.id)
        rp_at = datetime.fromisoformat(manifest.position["restore_point_at"])
        self.check_counts = bool(manifest.counts) and (target_time is None or target_time >= rp_at)

    def precheck(self, drill: DrillRecorder) -> None:
        self.instance.guard()

    def restore(self, drill: DrillRecorder) -> None:
        m, inst = self.m, self.instance
        with drill.step("pgbackrest restore") as s:
            if self.check_counts:
                inst.restore(m, ["--type=name", f"--target={m.position['restore_point']}", "--target-action=pause"])
            elif self.target_time is not None:
                inst.restore(m, ["--type=time", f"--target={self.target_time.isoformat()}", "--target-action=promote"])
            else:
                inst.restore(m, ["--type=default"])
            s.detail = f"set {m.native['label']} into {inst.data}"
        if self.check_counts:
            with drill.step("replay to restore point") as s:
                inst.start()
                inst.wait_paused()
                s.detail = m.position["restore_point"]
        else:
            with drill.step(f"replay to {self.target}"):
                inst.start()
                inst.wait_promoted()

    def verify(self, drill: DrillRecorder) -> None:
        m, inst = self.m, self.instance
        if self.check_counts:
            with drill.step("row counts at restore point") as s:
                got = inst.counts(m.counts)
                diff = {k: (v, got.get(k)) for k, v in m.counts.items() if got.get(k) != v}
                if diff:
                    raise RestoreFailed("row counts differ from the backup's manifest: "
                                        + ", ".join(f"{k}: expected {a}, restored {b}" for k, (a, b) in diff.items()))
                s.detail = ", ".join(f"{k}={v}" for k, v in got.items())
            with drill.step(f"roll forward to {self.target}") as s:
                # An immediate stop: the paused standby has taken no writes, so it needs no restartpoint
                # (a fast stop flushes and fsyncs every page replayed so far); the restart replays the
                # little WAL from the backup's checkpoint again, which costs less.
                inst.stop("immediate")
                inst.set_final_target(self.target_time)
                inst.start()
                inst.wait_promoted()
                s.detail = f"replayed to {inst.query_one('SELECT pg_last_wal_replay_lsn()::text')}"
        else:  # no counts to compare (a target before the restore point): the structural check is all there is
            self._amcheck(drill)

    def _amcheck(self, drill: DrillRecorder) -> None:
        with drill.step("pg_amcheck") as s:
            s.detail = self.instance.amcheck()

    def newest_heartbeat(self) -> datetime | None:
        return self.instance.newest_heartbeat()

    def heartbeat_detail(self, hb: datetime | None) -> str:
        return hb.isoformat() if hb else "no heartbeat rows in the restored data"

    def after_ready(self, drill: DrillRecorder) -> None:
        # pg_amcheck reads every heap and B-tree page: a structural check that grows with the database and
        # that no recovery waits for before serving, so with exact row counts to verify inside the clock it
        # runs after it. Corruption still fails the drill.
        if self.check_counts:
            self._amcheck(drill)
        logical = [m for m in self.ds.ctx.repo.manifests(self.ds.name)
                   if m.series == "logical" and m.finished_at <= drill.drill.started_at]
        if logical:
            with drill.step(f"pg_restore logical dump {logical[-1].id}") as s:
                s.detail = self.instance.restore_logical(logical[-1])

    def teardown(self) -> str:
        self.instance.destroy()
        return f"stopped and removed {self.instance.root}"

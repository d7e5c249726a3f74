"""PostgreSQL: pgBackRest (WAL archiving + full/diff/incr) and pg_dump logical dumps.

Physical backups are pgBackRest's own, in pgBackRest's own repository (under the datastore's folder
of the Lifeboat repository), so `pgbackrest restore` alone brings them back. Lifeboat adds:

* a named restore point written right after each backup while the counted tables are briefly locked
  in SHARE mode, so the row counts in the manifest are *exact* at that point in the WAL and a restore
  test can pause there and compare;
* verification: `pgbackrest verify` (every file's checksum in the repository), `pgbackrest check`
  (archiving works now), WAL continuity from the backup to the newest archived segment, and the
  sha256 of pgBackRest's backup.manifest against the one recorded at backup time;
* restore tests into a scratch instance (own port, unix socket only, archive_mode=off, never the
  live cluster), paused at the restore point for the count check, then rolled forward to the latest
  WAL (or a target time) for the RPO measurement, then pg_amcheck.

Logical dumps: `pg_dump --format=directory --jobs=N --snapshot=<exported>` per database, the row
counts taken in the very snapshot the dump uses, plus `pg_dumpall --globals-only --no-role-passwords`.
"""

from __future__ import annotations

import configparser
import json
import logging
import os
import re
import shutil
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import Field, field_validator

from lifeboat.datastores.base import Datastore, EngineOptions
from lifeboat.drills import DrillRecorder
from lifeboat.errors import CommandFailed, Refused, RestoreFailed
from lifeboat.inventory import DurationStr, parse_duration
from lifeboat.records import Check, Manifest, Verification, utcnow
from lifeboat.runners import chown_for

log = logging.getLogger("lifeboat.postgres")

PHYSICAL = ("full", "diff", "incr")
HEARTBEAT_DDL = """
CREATE TABLE IF NOT EXISTS lifeboat_heartbeat (
    id          bigserial PRIMARY KEY,
    region      text        NOT NULL,
    written_at  timestamptz NOT NULL,
    server_time timestamptz NOT NULL DEFAULT now(),
    source      text        NOT NULL DEFAULT 'lifeboat'
)"""
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]*$")


class PostgresOptions(EngineOptions):
    stanza: str
    pgbackrest_config: str = "/etc/pgbackrest/pgbackrest.conf"
    os_user: str = Field(default="postgres", description="OS user that owns PGDATA; pgBackRest runs as it")
    bin_dir: str = "/usr/lib/postgresql/15/bin"
    databases: list[str] = Field(min_length=1)
    count_tables: list[str] = Field(default=[], description="'db.schema.table' or 'schema.table' (first database)")
    heartbeat_database: str | None = None
    dump_jobs: int = Field(default=2, ge=1, le=64)
    lock_timeout: DurationStr = "10s"
    backup_timeout: DurationStr = "6h"
    restore_timeout: DurationStr = "4h"
    archive_wait: DurationStr = "120s"

    @field_validator("count_tables")
    @classmethod
    def _tables(cls, v: list[str]) -> list[str]:
        for t in v:
            parts = t.split(".")
            if len(parts) not in (2, 3) or not all(_IDENT.match(p) for p in parts):
                raise ValueError(f"{t!r}: use 'schema.table' or 'database.schema.table'")
        return v


def _seg_no(walname: str) -> tuple[int, int]:
    """(timeline, segment number) of a 24-hex-digit WAL file name (16 MiB segments)."""
    return int(walname[:8], 16), int(walname[8:16], 16) * 0x100 + int(walname[16:24], 16)


def _seg_name(tli: int, segno: int) -> str:
    return f"{tli:08X}{segno // 0x100:08X}{segno % 0x100:08X}"


class PostgresDatastore(Datastore):
    engine = "postgres"
    Options = PostgresOptions
    kinds = (*PHYSICAL, "logical")
    restore_series = "physical"

    # -- plumbing --------------------------------------------------------------------------------
    @classmethod
    def series_of(cls, kind: str) -> str:
        return "physical" if kind in PHYSICAL else "logical"

    def _bin(self, tool: str) -> str:
        p = Path(self.options.bin_dir) / tool
        return str(p) if p.exists() else tool

    def _pgbr(self, *args: str, capture: bool = False, timeout: float | None = None, check: bool = True):
        argv = ["pgbackrest", f"--config={self.options.pgbackrest_config}", f"--stanza={self.options.stanza}", *args]
        return self.ctx.runner.run(argv, as_user=self.options.os_user, capture=capture, timeout=timeout, check=check)

    def _info(self) -> dict[str, Any]:
        out = self._pgbr("info", "--output=json", capture=True, timeout=120).stdout
        data = json.loads(out or "[]")
        for st in data:
            if st.get("name") == self.options.stanza:
                return st
        return {}

    def _conninfo(self, dbname: str | None = None) -> dict[str, Any]:
        ep = self.endpoint().require("host", "login")
        return {
            "host": ep.host,
            "port": ep.port or 5432,
            "user": ep.login,
            "password": ep.password,
            "dbname": dbname or ep.schema or self.options.databases[0],
            "connect_timeout": 10,
            "application_name": "lifeboat",
        }

    def _connect(self, dbname: str | None = None, **kw):
        import psycopg

        ci = self._conninfo(dbname)
        try:
            return psycopg.connect(**ci, **kw)
        except psycopg.OperationalError as exc:
            from lifeboat.errors import ConnectionConfigError

            raise ConnectionConfigError(
                f"cannot connect to PostgreSQL through Airflow connection "
                f"{self.spec.connection_for(self.region)!r} ({ci['host']}:{ci['port']}/{ci['dbname']}): "
                f"{str(exc).strip().splitlines()[0]}"
            ) from None

    def _pg_env(self, dbname: str | None = None) -> dict[str, str]:
        ci = self._conninfo(dbname)
        return {"PGHOST": ci["host"], "PGPORT": str(ci["port"]), "PGUSER": ci["user"], "PGPASSWORD": ci["password"],
                "PGDATABASE": ci["dbname"], "PGCONNECT_TIMEOUT": "10", "PGAPPNAME": "lifeboat"}

    def _tables_by_db(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for t in self.options.count_tables:
            parts = t.split(".")
            db, qual = (parts[0], ".".join(parts[1:])) if len(parts) == 3 else (self.options.databases[0], t)
            out.setdefault(db, []).append(qual)
        return out

    @staticmethod
    def _quote(qual: str) -> str:
        return ".".join(f'"{p}"' for p in qual.split("."))

    def _repo_conf(self) -> dict[str, str]:
        cp = configparser.ConfigParser(interpolation=None, strict=False)
        try:
            with open(self.options.pgbackrest_config) as fh:
                cp.read_file(fh)
        except OSError as exc:
            raise Refused(f"datastores.{self.name}.options.pgbackrest_config: cannot read {exc.filename}: {exc.strerror}") from None
        merged = dict(cp["global"]) if cp.has_section("global") else {}
        if cp.has_section(self.options.stanza):
            merged.update(cp[self.options.stanza])
        return merged

    # -- backup ----------------------------------------------------------------------------------
    def backup(self, kind: str, backup_id: str) -> Manifest:
        self.check_kind(kind)
        done = self.ctx.repo.manifest(self.name, backup_id)
        if done is not None:
            log.info("backup %s is already complete (retried task): nothing to do", backup_id)
            return done
        if kind == "logical":
            return self._backup_logical(backup_id)
        return self._backup_physical(kind, backup_id)

    def _find_annotated(self, info: dict, backup_id: str) -> dict | None:
        for b in info.get("backup", []):
            if (b.get("annotation") or {}).get("lifeboat-id") == backup_id:
                return b
        return None

    def _backup_physical(self, kind: str, backup_id: str) -> Manifest:
        started = utcnow()
        info = self._info()
        if not info or info.get("status", {}).get("code") not in (0, 2):
            # 0 ok, 2 no backups yet; anything else (missing stanza) -> create it (idempotent).
            self._pgbr("stanza-create", timeout=300)
            info = self._info()
        b = self._find_annotated(info, backup_id)
        if b is None:
            self._pgbr(f"--type={kind}", f"--annotation=lifeboat-id={backup_id}", "backup",
                       timeout=parse_duration(self.options.backup_timeout).total_seconds())
            info = self._info()
            b = self._find_annotated(info, backup_id)
            if b is None:
                raise CommandFailed(["pgbackrest", "info"], 0, f"backup annotated lifeboat-id={backup_id} not found after backup")
        else:
            log.info("pgBackRest backup %s for %s already exists (retried task): reusing it", b["label"], backup_id)
        counts, rp = self._counts_and_restore_point(backup_id)
        label = b["label"]
        parent = None
        if b.get("prior"):
            for m in self.ctx.repo.manifests(self.name):
                if m.native.get("label") == b["prior"]:
                    parent = m.id
        manifest_bytes = self._pgbr("repo-get", f"backup/{self.options.stanza}/{label}/backup.manifest",
                                    capture=True, timeout=300).stdout.encode()
        import hashlib

        with self._connect() as conn:
            server_version = conn.execute("SHOW server_version").fetchone()[0]
        m = Manifest(
            id=backup_id,
            datastore=self.name,
            engine=self.engine,
            kind=kind,
            series="physical",
            region=self.region,
            started_at=started,
            finished_at=utcnow(),
            parent=parent,
            position={
                "start_lsn": b["lsn"]["start"],
                "stop_lsn": b["lsn"]["stop"],
                "wal_start": b["archive"]["start"],
                "wal_stop": b["archive"]["stop"],
                "backup_started_at": datetime.fromtimestamp(b["timestamp"]["start"]).astimezone().isoformat(),
                "backup_stopped_at": datetime.fromtimestamp(b["timestamp"]["stop"]).astimezone().isoformat(),
                **rp,
            },
            counts=counts,
            tools={"pgbackrest": self._pgbr_version(), "postgres": server_version},
            native={
                "tool": "pgbackrest",
                "stanza": self.options.stanza,
                "label": label,
                "prior": b.get("prior"),
                "database_size": b["info"]["size"],
                "repo_size": b["info"]["repository"].get("delta", b["info"]["repository"].get("size", 0)),
                "backup_manifest_sha256": hashlib.sha256(manifest_bytes).hexdigest(),
            },
            source=self.endpoint().describe(),
            run=self.ctx.run,
            restore_hint=(
                f"pgbackrest --stanza={self.options.stanza} --set={label} --type=name "
                f"--target={rp['restore_point']} --target-action=promote --pg1-path=<empty dir> restore"
            ),
        )
        return self.ctx.repo.commit(m)

    def _pgbr_version(self) -> str:
        return self.ctx.runner.run(["pgbackrest", "version"], capture=True, quiet=True).stdout.strip()

    def _counts_and_restore_point(self, backup_id: str) -> tuple[dict[str, int], dict[str, str]]:
        """Exact counts at a named restore point.

        Counted tables are locked IN SHARE MODE (writers wait, readers do not) across every database
        at once; counts are read, the restore point is written, then the locks go. No commit to a
        counted table can fall between the counts and the restore point.
        """
        lock_timeout = int(parse_duration(self.options.lock_timeout).total_seconds() * 1000)
        conns = {}
        counts: dict[str, int] = {}
        try:
            for db in self._tables_by_db() or {self.options.databases[0]: []}:
                conns[db] = self._connect(db)
            for db, tables in self._tables_by_db().items():
                c = conns[db]
                c.execute(f"SET lock_timeout = {lock_timeout}")
                if tables:
                    c.execute("LOCK TABLE " + ", ".join(self._quote(t) for t in tables) + " IN SHARE MODE")
            for db, tables in self._tables_by_db().items():
                for t in tables:
                    counts[f"{db}.{t}"] = conns[db].execute(f"SELECT count(*) FROM {self._quote(t)}").fetchone()[0]
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
        deadline = time.monotonic() + parse_duration(self.options.archive_wait).total_seconds()
        # autocommit: statistics views are cached for the length of a transaction
        with self._connect(autocommit=True) as conn:
            while True:
                last, failed = conn.execute(
                    "SELECT last_archived_wal, last_failed_wal FROM pg_stat_archiver").fetchone()
                if last and last[:24] >= walfile:
                    return
                if time.monotonic() > deadline:
                    raise CommandFailed(["archive_command"], None,
                                        f"WAL segment {walfile} not archived within {self.options.archive_wait} "
                                        f"(last archived {last}, last failed {failed}); check archive_command", True)
                time.sleep(0.5)

    def _backup_logical(self, backup_id: str) -> Manifest:
        started = utcnow()
        staging = self.ctx.workdir / "staging" / backup_id
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        artifacts = []
        counts: dict[str, int] = {}
        position: dict[str, str] = {}
        tables = self._tables_by_db()
        try:
            for db in self.options.databases:
                with self._connect(db) as conn:
                    conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
                    snapshot = conn.execute("SELECT pg_export_snapshot()").fetchone()[0]
                    for t in tables.get(db, []):
                        counts[f"{db}.{t}"] = conn.execute(f"SELECT count(*) FROM {self._quote(t)}").fetchone()[0]
                    position[f"{db}.snapshot_lsn"] = conn.execute("SELECT pg_current_wal_lsn()::text").fetchone()[0]
                    position[f"{db}.snapshot_at"] = utcnow().isoformat()
                    out = staging / f"{db}.dir"
                    self.ctx.runner.run(
                        [self._bin("pg_dump"), "--format=directory", f"--jobs={self.options.dump_jobs}",
                         f"--snapshot={snapshot}", "--no-password", f"--file={out}", "--dbname", db],
                        env=self._pg_env(db), timeout=parse_duration(self.options.backup_timeout).total_seconds())
                    conn.rollback()
            globals_sql = staging / "globals.sql"
            self.ctx.runner.run([self._bin("pg_dumpall"), "--globals-only", "--no-role-passwords", "--no-password",
                                 f"--file={globals_sql}"], env=self._pg_env())
            for f in sorted(p for p in staging.rglob("*") if p.is_file()):
                artifacts.append(self.ctx.repo.put_artifact(self.name, backup_id, f.relative_to(staging).as_posix(), f))
            with self._connect() as conn:
                server_version = conn.execute("SHOW server_version").fetchone()[0]
            pg_dump_version = self.ctx.runner.run([self._bin("pg_dump"), "--version"], capture=True, quiet=True).stdout.strip()
            m = Manifest(
                id=backup_id, datastore=self.name, engine=self.engine, kind="logical", series="logical",
                region=self.region, started_at=started, finished_at=utcnow(), position=position,
                artifacts=artifacts, counts=counts,
                tools={"pg_dump": pg_dump_version, "postgres": server_version},
                native={"tool": "pg_dump", "format": "directory", "databases": self.options.databases},
                source=self.endpoint().describe(), run=self.ctx.run,
                restore_hint="psql -f globals.sql postgres; createdb <db>; pg_restore --jobs=4 --dbname=<db> <db>.dir",
            )
            return self.ctx.repo.commit(m)
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    # -- verification ----------------------------------------------------------------------------
    def verify_new(self, manifests: list[Manifest]) -> list[Verification]:
        """Everything but `pgbackrest verify`, which reads every file of the repository: that runs weekly."""
        return self.verify(manifests, deep=False)

    def verify(self, manifests: list[Manifest], deep: bool = True) -> list[Verification]:
        physical = [m for m in manifests if m.series == "physical"]
        repo_checks: list[Check] = []
        archive: dict[int, set[int]] = {}
        info: dict = {}
        verify_result: dict[str, Any] = {}
        if physical:
            if deep:
                verify_result = self._pgbackrest_verify()
            repo_checks.append(self._check_archiving())
            info = self._info()
            archive = self._archived_segments()
        out = []
        for m in manifests:
            checks = list(repo_checks) if m.series == "physical" else []
            if m.series == "physical":
                if deep:
                    checks.append(self._check_pgbackrest_verify(m, verify_result))
                checks += self._verify_physical(m, info, archive)
            else:
                checks += self._verify_logical(m)
            checks.append(self._check_chain(m))
            out.append(self.record_verification(m, checks))
        return out

    def _check_chain(self, m: Manifest) -> Check:
        from lifeboat.catalog import Catalog
        from lifeboat.errors import BackupNotFound

        try:
            chain = Catalog(self.ctx.repo).chain(m)
        except BackupNotFound as exc:
            return Check(name="chain", ok=False, detail=str(exc))
        return Check(name="chain", ok=True, detail=" <- ".join(c.id for c in chain))

    def _pgbackrest_verify(self) -> dict[str, Any]:
        """Run `pgbackrest verify` once (it reads every file of the repository) and parse it."""
        r = self._pgbr("--output=text", "--verbose", "--log-level-console=info", "verify", capture=True, check=False, timeout=24 * 3600)
        text = r.stdout + "\n" + r.tail
        return {
            "returncode": r.returncode,
            "text": text,
            "files": re.findall(r"INFO: ((?:invalid|missing)[^'\n]*) '([^']+)'", text),
            "status": dict(re.findall(r"backup: (\S+), status: (\w+)", text)),
        }

    def _check_pgbackrest_verify(self, m: Manifest, result: dict[str, Any]) -> Check:
        label = m.native["label"]
        repo_dir = f"{self.ctx.repo.primary.url}/{self.name}/pgbackrest"
        mine = [f"{what}: {repo_dir}/backup/{self.options.stanza}/{path}" for what, path in result["files"]
                if path.startswith(label + "/")]
        wal = [f"{what}: {repo_dir}/archive/{self.options.stanza}/{path}" for what, path in result["files"]
               if not re.match(r"^\d{8}-\d{6}F", path)]
        status = result["status"].get(label)
        if result["returncode"] == 0 and status == "valid" and not mine and not wal:
            return Check(name="pgbackrest verify", ok=True, detail=f"backup set {label}: every file's checksum is valid")
        problems = mine + wal
        if status != "valid":
            problems.insert(0, f"backup set {label}: status {status or 'not reported'}")
        if result["returncode"] != 0:
            problems.append(f"pgbackrest verify exited {result['returncode']}: {result['text'][-1500:]}")
        return Check(name="pgbackrest verify", ok=False, detail="; ".join(problems))

    def _check_archiving(self) -> Check:
        r = self._pgbr("check", capture=True, check=False, timeout=300)
        if r.returncode == 0:
            return Check(name="pgbackrest check", ok=True, detail="WAL archiving works now")
        return Check(name="pgbackrest check", ok=False, detail=(r.stdout + r.tail)[-1500:])

    def _archived_segments(self) -> dict[int, set[int]]:
        r = self._pgbr("repo-ls", "--recurse", "--output=json", f"archive/{self.options.stanza}",
                       capture=True, timeout=600)
        segs: dict[int, set[int]] = {}
        for name in json.loads(r.stdout or "{}"):
            base = name.rsplit("/", 1)[-1]
            if re.match(r"^[0-9A-F]{24}-[0-9a-f]{40}", base):
                tli, no = _seg_no(base[:24])
                segs.setdefault(tli, set()).add(no)
        return segs

    def _verify_physical(self, m: Manifest, info: dict, archive: dict[int, set[int]]) -> list[Check]:
        checks = []
        label = m.native["label"]
        if m.native.get("prior") and not m.parent:
            checks.append(Check(name="pgBackRest prior set", ok=False,
                                detail=f"{m.kind} backup {label} depends on pgBackRest set {m.native['prior']}, "
                                       "which no backup in the catalog describes (taken outside Lifeboat?)"))
        listed = {b["label"] for b in info.get("backup", [])}
        checks.append(Check(name="pgbackrest info", ok=label in listed,
                            detail=f"backup set {label} {'is' if label in listed else 'is NOT'} in the repository"))
        try:
            import hashlib

            raw = self._pgbr("repo-get", f"backup/{self.options.stanza}/{label}/backup.manifest",
                             capture=True, timeout=300).stdout.encode()
            digest = hashlib.sha256(raw).hexdigest()
            ok = digest == m.native.get("backup_manifest_sha256")
            checks.append(Check(name="backup.manifest checksum", ok=ok,
                                detail=f"backup/{self.options.stanza}/{label}/backup.manifest sha256 "
                                       f"{'matches' if ok else 'DIFFERS from'} the value recorded at backup time"))
        except CommandFailed as exc:
            checks.append(Check(name="backup.manifest checksum", ok=False, detail=str(exc)[:500]))
        # WAL continuity: every segment from the backup's start to the restore point, and on to the
        # newest archived segment (what a restore to 'latest' replays), must be in the archive.
        tli, first = _seg_no(m.position["wal_start"])
        _, rp = _seg_no(m.position.get("restore_point_wal", m.position["wal_stop"]))
        have = archive.get(tli, set())
        newest = max(have) if have else first
        missing = [n for n in range(first, max(rp, newest) + 1) if n not in have]
        if missing:
            ranges = _ranges(missing)
            critical = [n for n in missing if n <= rp]
            checks.append(Check(name="WAL continuity", ok=False,
                                detail=f"timeline {tli}: missing WAL "
                                       + ", ".join(f"{_seg_name(tli, a)}..{_seg_name(tli, b)}" for a, b in ranges)
                                       + (" (needed to restore this backup at all)" if critical else
                                          " (a restore to 'latest' would stop at the gap)")))
        else:
            checks.append(Check(name="WAL continuity", ok=True,
                                detail=f"timeline {tli}: {_seg_name(tli, first)} .. {_seg_name(tli, newest)} complete"))
        return checks

    def _verify_logical(self, m: Manifest) -> list[Check]:
        checks = [self.ctx.repo.check_artifacts(m)]
        repo = self.ctx.repo.primary
        prefix = self.ctx.repo.backup_prefix(self.name, m.id)
        local = repo.local_path(prefix)
        tmp = None
        if local is None:
            tmp = self.ctx.workdir / "verify" / m.id
            for a in m.artifacts:
                repo.get_file(prefix + a.path, tmp / a.path)
            local = tmp
        try:
            for db in m.native.get("databases", []):
                r = self.ctx.runner.run([self._bin("pg_restore"), "--list", str(local / f"{db}.dir")],
                                        capture=True, check=False, quiet=True)
                entries = sum(1 for line in r.stdout.splitlines() if line and not line.startswith(";"))
                checks.append(Check(name=f"pg_restore --list {db}", ok=r.returncode == 0 and entries > 0,
                                    detail=f"{entries} TOC entries" if r.returncode == 0 else r.tail[-800:]))
        finally:
            if tmp is not None:
                shutil.rmtree(tmp, ignore_errors=True)
        return checks

    # -- restore test ----------------------------------------------------------------------------
    def restore_test(self, manifest: Manifest, target: str, drill: DrillRecorder) -> None:
        if manifest.series != "physical":
            raise Refused(f"{manifest.id}: restore tests start from a physical backup; logical dumps are "
                          "restored into the scratch instance as an extra step")
        scratch = ScratchInstance(self, drill.drill.id)
        try:
            drill.restore_started()
            target_time = None if target in ("latest", "", None) else _parse_target(target)
            rp_at = datetime.fromisoformat(manifest.position["restore_point_at"])
            check_counts = bool(manifest.counts) and (target_time is None or target_time >= rp_at)
            with drill.step("pgbackrest restore") as s:
                if check_counts:
                    scratch.restore(manifest, ["--type=name", f"--target={manifest.position['restore_point']}",
                                               "--target-action=pause"])
                elif target_time is not None:
                    scratch.restore(manifest, ["--type=time", f"--target={target_time.isoformat()}",
                                               "--target-action=promote"])
                else:
                    scratch.restore(manifest, ["--type=default"])
                s.detail = f"set {manifest.native['label']} into {scratch.data}"
            if check_counts:
                with drill.step("replay to restore point") as s:
                    scratch.start()
                    scratch.wait_paused()
                    s.detail = manifest.position["restore_point"]
                with drill.step("row counts at restore point") as s:
                    got = scratch.counts(manifest.counts)
                    diff = {k: (v, got.get(k)) for k, v in manifest.counts.items() if got.get(k) != v}
                    if diff:
                        raise RestoreFailed("row counts differ from the backup's manifest: "
                                            + ", ".join(f"{k}: expected {a}, restored {b}" for k, (a, b) in diff.items()))
                    s.detail = ", ".join(f"{k}={v}" for k, v in got.items())
                with drill.step(f"roll forward to {target or 'latest'}") as s:
                    scratch.stop()
                    scratch.set_final_target(target_time)
                    scratch.start()
                    scratch.wait_promoted()
                    s.detail = f"replayed to {scratch.query_one('SELECT pg_last_wal_replay_lsn()::text')}"
            else:
                with drill.step(f"replay to {target or 'latest'}"):
                    scratch.start()
                    scratch.wait_promoted()
            with drill.step("pg_amcheck") as s:
                s.detail = scratch.amcheck()
            drill.ready()
            with drill.step("newest heartbeat") as s:
                hb = scratch.newest_heartbeat()
                drill.heartbeat_found(hb)
                s.detail = hb.isoformat() if hb else "no heartbeat rows in the restored data"
            logical = self._latest_logical_before(drill.drill.started_at)
            if logical is not None:
                with drill.step(f"pg_restore logical dump {logical.id}") as s:
                    s.detail = scratch.restore_logical(logical)
        finally:
            with drill.step("tear down scratch instance"):
                scratch.destroy()

    def _latest_logical_before(self, when: datetime) -> Manifest | None:
        logical = [m for m in self.ctx.repo.manifests(self.name) if m.series == "logical" and m.finished_at <= when]
        return logical[-1] if logical else None

    # -- heartbeat -------------------------------------------------------------------------------
    def heartbeat(self) -> datetime:
        now = utcnow()
        db = self.options.heartbeat_database or self.options.databases[0]
        with self._connect(db) as conn:
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
            if last and last[:24] >= _prev_segment(current):
                out["WAL archive lag"] = 0.0  # everything but the segment being written is archived
            elif last_at is not None:
                out["WAL archive lag"] = (utcnow() - last_at).total_seconds()
            else:
                out["WAL archive lag"] = None
            if failed_at is not None and (last_at is None or failed_at > last_at):
                out["WAL archive lag"] = max(out["WAL archive lag"] or 0.0, (utcnow() - (last_at or failed_at)).total_seconds())
        standby_conn = self.spec.connections.get(self.ctx.inventory.regions.standby)
        if standby_conn:
            import psycopg

            from lifeboat.connections import resolve

            ep = resolve(standby_conn)
            with psycopg.connect(host=ep.host, port=ep.port or 5432, user=ep.login, password=ep.password,
                                 dbname=ep.schema or self.options.databases[0], connect_timeout=10,
                                 autocommit=True) as sc:
                in_recovery, lag, receive, replay = sc.execute(
                    "SELECT pg_is_in_recovery(), extract(epoch FROM now() - pg_last_xact_replay_timestamp()), "
                    "pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn()").fetchone()
            if in_recovery:
                # Nothing to replay means no lag, however long ago the last transaction was.
                out["standby replay lag"] = 0.0 if receive == replay else (float(lag) if lag is not None else None)
        return out

    # -- retention -------------------------------------------------------------------------------
    def delete_backup(self, manifest: Manifest) -> None:
        # Manifest first: from here on the catalog no longer lists it, whatever happens next.
        self.ctx.repo.primary.delete(self.ctx.repo.backup_prefix(self.name, manifest.id) + "manifest.json")
        if manifest.series == "physical":
            label = manifest.native["label"]
            if label in {b["label"] for b in self._info().get("backup", [])}:
                self._pgbr(f"--set={label}", "expire", timeout=3600)
        self.ctx.repo.delete_backup(self.name, manifest.id)


def _prev_segment(walname: str) -> str:
    tli, no = _seg_no(walname)
    return _seg_name(tli, max(no - 1, 0))


def _ranges(nums: list[int]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for n in sorted(nums):
        if out and n == out[-1][1] + 1:
            out[-1] = (out[-1][0], n)
        else:
            out.append((n, n))
    return out


def _parse_target(target: str) -> datetime:
    try:
        t = datetime.fromisoformat(target.replace("Z", "+00:00"))
    except ValueError:
        raise Refused(f"restore target {target!r} is neither 'latest' nor an ISO-8601 timestamp") from None
    if t.tzinfo is None:
        raise Refused(f"restore target {target!r} has no time zone; write e.g. {target}+00:00")
    return t


class ScratchInstance:
    """A throw-away PostgreSQL restored from the repository: unix socket only (no TCP listener),
    its own port and socket folder, archive_mode=off (it must never push WAL into the live
    archive), trust authentication on that private socket only."""

    def __init__(self, ds: PostgresDatastore, drill_id: str):
        self.ds = ds
        self.root = ds.ctx.workdir / "scratch" / drill_id
        self.data = self.root / "data"
        self.sock = self.root / "run"
        self.logfile = self.root / "postgres.log"
        self.port = ds.free_port()
        self.user = ds.options.os_user
        self.timeout = parse_duration(ds.options.restore_timeout).total_seconds()
        self._conn = None

    def restore(self, manifest: Manifest, target_args: list[str]) -> None:
        live = self.ds._repo_conf().get("pg1-path")
        if live and Path(live).resolve() == self.data.resolve():
            raise Refused(f"scratch folder {self.data} is the live cluster's data directory")
        shutil.rmtree(self.root, ignore_errors=True)
        self.data.mkdir(parents=True, mode=0o700)
        self.sock.mkdir(mode=0o700)
        self.logfile.touch()
        chown_for(str(self.root), self.user)
        os.chmod(self.root, 0o755)
        self.ds._pgbr(f"--pg1-path={self.data}", f"--set={manifest.native['label']}", "--archive-mode=off",
                      *target_args, "restore", timeout=self.timeout)
        (self.data / "lifeboat_hba.conf").write_text("local all all trust\n")
        chown_for(str(self.data / "lifeboat_hba.conf"), self.user)

    def start(self) -> None:
        opts = (f"-c port={self.port} -c listen_addresses='' -c unix_socket_directories='{self.sock}' "
                f"-c archive_mode=off -c hot_standby=on -c hba_file='{self.data / 'lifeboat_hba.conf'}' "
                f"-c cluster_name=lifeboat-scratch -c shared_buffers=128MB "
                "-c logging_collector=off")
        r = self.ds.ctx.runner.run([self.ds._bin("pg_ctl"), "-D", self.data, "-l", self.logfile, "-o", opts,
                                    "-w", "-t", str(int(self.timeout)), "start"], as_user=self.user, check=False)
        if r.returncode != 0:
            raise RestoreFailed(f"scratch PostgreSQL did not start (see {self.logfile}):\n{self.log_tail()}")

    def log_tail(self, n: int = 15) -> str:
        try:
            return "\n".join(self.logfile.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""

    def connect(self):
        import psycopg

        if self._conn is None or self._conn.closed:
            self._conn = psycopg.connect(host=str(self.sock), port=self.port, user="postgres",
                                         dbname=self.ds.options.databases[0], autocommit=True, connect_timeout=10)
        return self._conn

    def query_one(self, sql: str, params=None, dbname: str | None = None):
        if dbname and dbname != self.ds.options.databases[0]:
            import psycopg

            with psycopg.connect(host=str(self.sock), port=self.port, user="postgres", dbname=dbname,
                                 autocommit=True) as c:
                return c.execute(sql, params).fetchone()[0]
        return self.connect().execute(sql, params).fetchone()[0]

    def _wait(self, what: str, predicate) -> None:
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            if not self._running():
                raise RestoreFailed(f"scratch PostgreSQL stopped while waiting for {what}:\n{self.log_tail()}")
            try:
                if predicate():
                    return
            except Exception as exc:  # server still coming up
                log.debug("waiting for %s: %s", what, exc)
                self._conn = None
            time.sleep(0.3)
        raise RestoreFailed(f"timed out after {self.timeout:.0f}s waiting for {what}:\n{self.log_tail()}")

    def _running(self) -> bool:
        pid_file = self.data / "postmaster.pid"
        try:
            pid = int(pid_file.read_text().split()[0])
            os.kill(pid, 0)
            return True
        except (OSError, ValueError, IndexError):
            return False

    def wait_paused(self) -> None:
        self._wait("recovery to pause at the restore point",
                   lambda: self.query_one("SELECT pg_get_wal_replay_pause_state()") == "paused")

    def wait_promoted(self) -> None:
        self._wait("recovery to finish and the instance to accept writes",
                   lambda: self.query_one("SELECT NOT pg_is_in_recovery()"))

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
            out[key] = self.query_one(f"SELECT count(*) FROM {self.ds._quote(qual)}", dbname=db)
        return out

    def amcheck(self) -> str:
        r = self.ds.ctx.runner.run([self.ds._bin("pg_amcheck"), "--host", self.sock, "--port", self.port,
                                    "--username", "postgres", "--all", "--install-missing", "--no-password",
                                    "--progress"], as_user=self.user, check=False, quiet=True, timeout=self.timeout)
        if r.returncode != 0:
            raise RestoreFailed(f"pg_amcheck found corruption or failed (exit {r.returncode}):\n{r.tail[-2000:]}")
        return "no corruption found in heap or btree indexes of any database"

    def newest_heartbeat(self) -> datetime | None:
        db = self.ds.options.heartbeat_database or self.ds.options.databases[0]
        exists = self.query_one("SELECT to_regclass('lifeboat_heartbeat') IS NOT NULL", dbname=db)
        if not exists:
            return None
        return self.query_one("SELECT max(written_at) FROM lifeboat_heartbeat", dbname=db)

    def restore_logical(self, m: Manifest) -> str:
        repo = self.ds.ctx.repo.primary
        prefix = self.ds.ctx.repo.backup_prefix(self.ds.name, m.id)
        src = repo.local_path(prefix)
        if src is None:
            src = self.root / "logical"
            for a in m.artifacts:
                repo.get_file(prefix + a.path, src / a.path)
        details = []
        for db in m.native.get("databases", []):
            scratch_db = f"lifeboat_scratch_{db}"[:63]
            self.connect().execute(f'DROP DATABASE IF EXISTS "{scratch_db}"')
            self.connect().execute(f'CREATE DATABASE "{scratch_db}"')
            r = self.ds.ctx.runner.run([self.ds._bin("pg_restore"), "--host", self.sock, "--port", self.port,
                                        "--username", "postgres", "--no-password", "--no-owner", "--exit-on-error",
                                        f"--jobs={self.ds.options.dump_jobs}", "--dbname", scratch_db,
                                        str(src / f"{db}.dir")], check=False, quiet=True, timeout=self.timeout)
            if r.returncode != 0:
                raise RestoreFailed(f"pg_restore of {m.id} {db}.dir failed:\n{r.tail[-2000:]}")
            for key, want in m.counts.items():
                kdb, qual = key.split(".", 1)
                if kdb != db:
                    continue
                got = self.query_one(f"SELECT count(*) FROM {self.ds._quote(qual)}", dbname=scratch_db)
                if got != want:
                    raise RestoreFailed(f"logical dump {m.id}: {key} has {got} rows after pg_restore, manifest says {want}")
                details.append(f"{key}={got}")
        return "counts match: " + ", ".join(details)

    def stop(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        if self._running():
            self.ds.ctx.runner.run([self.ds._bin("pg_ctl"), "-D", self.data, "-m", "fast", "-w", "stop"],
                                   as_user=self.user, check=False)

    def destroy(self) -> None:
        try:
            if self._conn is not None:
                self._conn.close()
            if self._running():
                self.ds.ctx.runner.run([self.ds._bin("pg_ctl"), "-D", self.data, "-m", "immediate", "-w", "stop"],
                                       as_user=self.user, check=False)
        finally:
            self._conn = None
            if os.environ.get("LIFEBOAT_KEEP_SCRATCH") != "1":
                shutil.rmtree(self.root, ignore_errors=True)

"""PostgreSQL verification: pgBackRest's own verifier, WAL continuity, recorded checksums, pg_restore --list."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lifeboat.catalog import Catalog
from lifeboat.datastores.postgres.pgbackrest import PgBackRest
from lifeboat.datastores.postgres.wal import continuity
from lifeboat.errors import BackupNotFound, CommandFailed
from lifeboat.records import Check, Manifest
from lifeboat.repository import Repository
from lifeboat.runners import Runner


@dataclass
class Batch:
    """What a verification run reads once for all its physical backups."""

    repo_checks: list[Check] = field(default_factory=list)
    verify_result: dict[str, Any] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)
    archive: dict[int, set[int]] = field(default_factory=dict)


def read_batch(pgbr: PgBackRest, manifests: list[Manifest], deep: bool, archiving_here: bool = True) -> Batch:
    """`archiving_here=False` (a region whose server is a standby): no `pgbackrest check`, which tests the
    primary's WAL archiving; the repository checks run on this region's copy all the same."""
    batch = Batch()
    if any(m.series == "physical" for m in manifests):
        if deep:  # `pgbackrest verify` reads every file of the repository: weekly, not after each backup
            batch.verify_result = pgbr.verify()
        if archiving_here:
            r = pgbr.check()
            batch.repo_checks.append(Check(name="pgbackrest check", ok=r.returncode == 0,
                                           detail="WAL archiving works now" if r.returncode == 0 else
                                           (r.stdout + r.tail)[-1500:]))
        batch.info = pgbr.info()
        batch.archive = pgbr.archived_segments()
    return batch


def chain_check(repo: Repository, m: Manifest) -> Check:
    try:
        chain = Catalog(repo).chain(m)
    except BackupNotFound as exc:
        return Check(name="chain", ok=False, detail=str(exc))
    return Check(name="chain", ok=True, detail=" <- ".join(c.id for c in chain))


def pgbackrest_verify_check(pgbr: PgBackRest, repo_dir: str, m: Manifest, result: dict[str, Any]) -> Check:
    label = m.native["label"]
    mine = [f"{what}: {repo_dir}/backup/{pgbr.stanza}/{path}" for what, path in result["files"]
            if path.startswith(label + "/")]
    wal = [f"{what}: {repo_dir}/archive/{pgbr.stanza}/{path}" for what, path in result["files"]
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


def physical_checks(pgbr: PgBackRest, repo: Repository, datastore: str, m: Manifest, batch: Batch,
                    deep: bool) -> list[Check]:
    checks = list(batch.repo_checks)
    if deep:
        checks.append(pgbackrest_verify_check(pgbr, repo.native_url(datastore, "pgbackrest"), m, batch.verify_result))
    label = m.native["label"]
    if m.native.get("prior") and not m.parent:
        checks.append(Check(name="pgBackRest prior set", ok=False,
                            detail=f"{m.kind} backup {label} depends on pgBackRest set {m.native['prior']}, "
                                   "which no backup in the catalog describes (taken outside Lifeboat?)"))
    listed = {b["label"] for b in batch.info.get("backup", [])}
    checks.append(Check(name="pgbackrest info", ok=label in listed,
                        detail=f"backup set {label} {'is' if label in listed else 'is NOT'} in the repository"))
    try:
        ok = pgbr.manifest_sha256(label) == m.native.get("backup_manifest_sha256")
        checks.append(Check(name="backup.manifest checksum", ok=ok,
                            detail=f"backup/{pgbr.stanza}/{label}/backup.manifest sha256 "
                                   f"{'matches' if ok else 'DIFFERS from'} the value recorded at backup time"))
    except CommandFailed as exc:
        checks.append(Check(name="backup.manifest checksum", ok=False, detail=str(exc)[:500]))
    checks.append(continuity(m.position["wal_start"], m.position.get("restore_point_wal", m.position["wal_stop"]),
                             batch.archive))
    return checks


def logical_checks(runner: Runner, pg_restore: str, repo: Repository, m: Manifest, scratch: Path) -> list[Check]:
    """`pg_restore --list` reads each dump's table of contents end to end."""
    checks = []
    with repo.local_copy(m, scratch) as local:
        for db in m.native.get("databases", []):
            r = runner.run([pg_restore, "--list", str(local / f"{db}.dir")], capture=True, check=False, quiet=True)
            entries = sum(1 for line in r.stdout.splitlines() if line and not line.startswith(";"))
            checks.append(Check(name=f"pg_restore --list {db}", ok=r.returncode == 0 and entries > 0,
                                detail=f"{entries} TOC entries" if r.returncode == 0 else r.tail[-800:]))
    return checks

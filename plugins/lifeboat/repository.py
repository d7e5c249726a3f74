"""The backup repository: artifacts, manifests, verifications and drills in object storage.

Every key comes from `lifeboat.layout.Layout` (identical in both regions). The catalog is nothing but
this layout, so the standby region's copy is a complete catalog on its own: DR works when the primary
region and its Airflow are gone.

Engines and jobs use the methods here (artifacts of a backup, local copies, records); only this module
talks to the storage driver of a region.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import logging
import os
import shutil
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, BinaryIO, TypeVar

from pydantic import BaseModel, ValidationError

from lifeboat.catalog_index import IndexedRecords
from lifeboat.errors import RepositoryError, RestoreFailed
from lifeboat.layout import DRILLS, MANIFEST, Layout
from lifeboat.records import Artifact, Check, Drill, Manifest, Verification
from lifeboat.storage import Storage, open_storage

log = logging.getLogger(__name__)

_CHUNK = 4 * 1024 * 1024
R = TypeVar("R", bound=BaseModel)


def sha256_file(path: Path, bufsize: int = 1024 * 1024) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(bufsize):
            h.update(chunk)
    return h.hexdigest()


def mib(n: float) -> str:
    return f"{n / 1048576:.1f} MiB"


def _pause_point_for_tests(backup_id: str) -> None:
    """Test hook: with LIFEBOAT_TEST_PAUSE_BEFORE_COMMIT=<file>, a backup that has written all its
    artifacts creates <file> and waits there, so a test can SIGKILL it at the worst moment."""
    marker = os.environ.get("LIFEBOAT_TEST_PAUSE_BEFORE_COMMIT")
    if marker:
        Path(marker).write_text(backup_id)
        while True:
            time.sleep(1)


class Repository(IndexedRecords):
    layout = Layout

    def __init__(self, primary: Storage, mirror: Storage | None = None, region: str = "", mirror_region: str = ""):
        self.primary = primary  # this region's copy: every read and write goes here
        self.mirror_storage = mirror  # the other region's copy: mirror, put_everywhere, copy_to_mirror only
        self.region = region
        self.mirror_region = mirror_region
        self.written: list[str] = []  # record keys written through this object (see note_pending)
        self._started: set[tuple[str, str]] = set()  # backups whose start this instance put in the index

    @classmethod
    def from_inventory(cls, inv, region: str | None = None) -> Repository:
        """The repository as seen from `region` (default: the primary): reads and writes go to that
        region's copy only; the other region's copy (which may be gone: a missing file:// folder there
        is never created) is used only by the mirror and by records kept in both regions."""
        region = region or inv.regions.primary
        other = inv.regions.standby if region == inv.regions.primary else inv.regions.primary
        here, there = inv.repository[region], inv.repository[other]
        return cls(
            open_storage(here.url, here.connection),
            open_storage(there.url, there.connection, create_root=False),
            region=region,
            mirror_region=other,
        )

    # -- names -----------------------------------------------------------------------------------
    @property
    def url(self) -> str:
        return self.primary.url

    def url_of(self, key: str) -> str:
        return f"{self.primary.url}/{key}"

    def artifact_url(self, m: Manifest, rel: str) -> str:
        """The full URL of one file of a backup: what error messages name."""
        return self.url_of(Layout.artifact(m.datastore, m.id, rel))

    def native_url(self, datastore: str, tool: str) -> str:
        """Where a native tool keeps its own repository for a datastore (pgBackRest's repo1-path)."""
        return self.url_of(Layout.native(datastore, tool).rstrip("/"))

    @staticmethod
    def backup_prefix(datastore: str, backup_id: str) -> str:
        return Layout.backup(datastore, backup_id)

    # -- writing a backup --------------------------------------------------------------------------
    def put_artifact(self, datastore: str, backup_id: str, rel: str, local: Path,
                     sha256: str | None = None, *, move: bool = False) -> Artifact:
        """Upload one file; `sha256`: its digest, when the caller hashed exactly these bytes while writing them;
        `move`: the caller is done with `local` (a staging file), so a local repository may take it over."""
        digest = sha256 or sha256_file(local)
        size = local.stat().st_size
        self._note_started(datastore, backup_id)
        key = Layout.artifact(datastore, backup_id, rel)
        self.primary.move_file(key, local) if move else self.primary.put_file(key, local)
        return Artifact(path=rel, size=size, sha256=digest)

    def _note_started(self, datastore: str, backup_id: str) -> None:
        """Where the catalog trusts its index (S3), the index must know of a backup folder before its
        first artifact lands, so an interrupted backup is listed as incomplete without a full listing."""
        if self.primary.cheap_listing or (datastore, backup_id) in self._started:
            return
        self._started.add((datastore, backup_id))
        folder = Layout.backup(datastore, backup_id)
        area = f"{datastore}.backups"
        self._index(area).add({folder: b'{"started":true}'}, scan=lambda: self._scan(area))

    @staticmethod
    def files_below(root: Path) -> list[Path]:
        """Every file below `root`, sorted: what put_tree uploads."""
        return sorted(p for p in root.rglob("*") if p.is_file())

    def put_tree(self, datastore: str, backup_id: str, root: Path, files: list[Path] | None = None) -> list[Artifact]:
        """Every file below `root` (or `files`, listed earlier with files_below while others are still being
        written), as artifacts named by their path relative to it."""
        files = self.files_below(root) if files is None else files
        return [self.put_artifact(datastore, backup_id, p.relative_to(root).as_posix(), p) for p in files]

    def commit(self, manifest: Manifest) -> Manifest:
        """Write the manifest: the last write of a backup. Refuses if an artifact is missing."""
        prefix = Layout.backup(manifest.datastore, manifest.id)
        present = {o.key[len(prefix):]: o.size for o in self.primary.list(prefix)}
        for a in manifest.artifacts:
            if present.get(a.path) != a.size:
                raise RepositoryError(
                    f"{self.url_of(prefix + a.path)}: missing or wrong size before commit "
                    f"(expected {a.size} bytes, found {present.get(a.path)})"
                )
        _pause_point_for_tests(manifest.id)
        raw = manifest.to_json()
        self.primary.put_bytes(Layout.manifest(manifest.datastore, manifest.id), raw)
        self.index_manifest(manifest, raw)  # after the manifest: the index never runs ahead of it
        return manifest

    def index_manifest(self, manifest: Manifest, raw: bytes | None = None) -> None:
        """The manifest's entry in the catalog index (also for a retried task that found it complete)."""
        ds = manifest.datastore
        area = f"{ds}.backups"
        self._index(area).add({Layout.manifest(ds, manifest.id): raw or manifest.to_json()},
                              removed=[Layout.backup(ds, manifest.id)], scan=lambda: self._scan(area))

    # -- reading a backup ----------------------------------------------------------------------------
    def open_artifact(self, m: Manifest, rel: str) -> BinaryIO:
        return self.primary.open_read(Layout.artifact(m.datastore, m.id, rel))

    def read_artifact(self, m: Manifest, rel: str) -> bytes:
        return self.primary.get_bytes(Layout.artifact(m.datastore, m.id, rel))

    def check_artifacts(self, manifest: Manifest) -> Check:
        """The `artifact checksums` check: every artifact is readable, has the recorded size and sha256.
        Each problem names the object by its full URL."""
        bad = []
        for a in manifest.artifacts:
            name = self.artifact_url(manifest, a.path)
            h = hashlib.sha256()
            size = 0
            try:
                with self.open_artifact(manifest, a.path) as fh:
                    while chunk := fh.read(1024 * 1024):
                        h.update(chunk)
                        size += len(chunk)
            except Exception as exc:  # reported as a failed check, not raised
                bad.append(f"{name}: unreadable ({exc})")
                continue
            if size != a.size or h.hexdigest() != a.sha256:
                bad.append(f"{name}: sha256 {h.hexdigest()[:16]}… size {size} != recorded "
                           f"{a.sha256[:16]}… size {a.size}")
        return Check(name="artifact checksums", ok=not bad,
                     detail="; ".join(bad) if bad else f"{len(manifest.artifacts)} files match their sha256")

    @contextlib.contextmanager
    def local_copy(self, m: Manifest, scratch: Path) -> Iterator[Path]:
        """The backup's folder as a local directory: the folder itself on file://, else a copy of its
        artifacts under `scratch` (deleted afterwards). For tools that read files (pg_restore --list,
        redis-check-rdb)."""
        local = self.primary.local_path(Layout.backup(m.datastore, m.id))
        if local is not None:
            yield local
            return
        shutil.rmtree(scratch, ignore_errors=True)
        try:
            for a in m.artifacts:
                self.primary.get_file(Layout.artifact(m.datastore, m.id, a.path), scratch / a.path)
            yield scratch
        finally:
            shutil.rmtree(scratch, ignore_errors=True)

    def fetch(self, m: Manifest, dest: Path) -> str:
        """Copy every artifact into `dest` and check its sha256 (fetch_then_check, checked at once). A
        damaged artifact or a full disk fails naming the file; returns a one-line summary."""
        return self.fetch_then_check(m, dest)()

    def fetch_then_check(self, m: Manifest, dest: Path) -> Callable[[], str]:
        """Copy every artifact into `dest` (the storage's own copy: the kernel's on file://, a download
        elsewhere) and return `check()`: the sha256 and size of each copy against the manifest, raising
        RestoreFailed naming the damaged file. For a restore that loads the copies while they are
        hashed (the check runs side by side with the load); nothing may trust the loaded data before
        check() returned. A full disk fails naming the file, as fetch does."""
        for a in m.artifacts:
            try:
                self.primary.get_file(Layout.artifact(m.datastore, m.id, a.path), dest / a.path)
            except OSError as exc:
                if exc.errno == errno.ENOSPC:
                    raise RestoreFailed(f"scratch folder {dest}: no space left on device while copying "
                                        f"{self.artifact_url(m, a.path)} ({mib(a.size)})") from None
                raise

        def check() -> str:
            for a in m.artifacts:
                h, size = hashlib.sha256(), 0
                with open(dest / a.path, "rb") as fh:
                    while chunk := fh.read(_CHUNK):
                        h.update(chunk)
                        size += len(chunk)
                if size != a.size or h.hexdigest() != a.sha256:
                    raise RestoreFailed(f"{self.artifact_url(m, a.path)}: sha256 differs from the manifest (the "
                                        "fetched copy); the stored backup is damaged (run the verification)")
            return f"{len(m.artifacts)} files, {mib(sum(a.size for a in m.artifacts))}, sha256 checked"

        return check

    def manifest(self, datastore: str, backup_id: str) -> Manifest | None:
        key = Layout.manifest(datastore, backup_id)
        if not self.primary.exists(key):
            return None
        return self.get_record(key, Manifest)

    def manifests(self, datastore: str) -> list[Manifest]:
        prefix = Layout.backups(datastore)
        # where listing is cheap, what exists is what is there (one stat per backup folder)
        truth = (lambda: self.primary.children_with(prefix, MANIFEST)[0]) if self.primary.cheap_listing else None
        return sorted(self._records(prefix, Manifest, Layout.is_manifest, f"{datastore}.backups", truth),
                      key=lambda m: (m.finished_at, m.id))

    def incomplete(self, datastore: str) -> list[str]:
        """Backup folders with artifacts but no manifest: interrupted backups, never 'complete'."""
        if not self.primary.cheap_listing:
            idx = self._load_index(f"{datastore}.backups")
            if idx is not None:  # folders noted at their first artifact, dropped at their commit
                out = []
                for key in idx:
                    k = Layout.parse_backup_key(key + "x") if key.endswith("/") else None
                    if k is not None and Layout.manifest(datastore, k.backup_id) not in idx:
                        out.append(k.backup_id)
                return sorted(out)
        return self.primary.children_with(Layout.backups(datastore), MANIFEST)[1]

    def delete_manifest(self, datastore: str, backup_id: str) -> None:
        """From here on the catalog no longer lists the backup, whatever happens next."""
        self.primary.delete(Layout.manifest(datastore, backup_id))

    def delete_backup(self, datastore: str, backup_id: str) -> int:
        """Manifest first, so a half-deleted backup is never listed as complete; then its index entry."""
        self.delete_manifest(datastore, backup_id)
        area = f"{datastore}.backups"
        self._index(area).add(removed=[Layout.manifest(datastore, backup_id), Layout.backup(datastore, backup_id)],
                              scan=lambda: self._scan(area))
        return self.primary.delete_prefix(Layout.backup(datastore, backup_id)) + 1

    # -- records -----------------------------------------------------------------------------------
    def get_record(self, key: str, model: type[R]) -> R:
        raw = self.primary.get_bytes(key)
        try:
            return model.model_validate_json(raw)
        except ValidationError as exc:
            raise RepositoryError(f"{self.url_of(key)}: unreadable record: {exc.errors()[0]['msg']}") from None

    def find_record(self, key: str, model: type[R]) -> R | None:
        return self.get_record(key, model) if self.primary.exists(key) else None

    def put_record(self, key: str, data: bytes) -> None:
        self.primary.put_bytes(key, data)
        self.written.append(key)

    def copy_to_mirror(self, key: str, data: bytes) -> str:
        """Best effort: the other region may be the one that is gone -- then the key is recorded as
        pending in this region's catalog and the next mirror that reaches it copies it."""
        if self.mirror_storage is None:
            return "no other region configured"
        try:
            self.mirror_storage.put_bytes(key, data)
            return f"copied to {self.mirror_region}"
        except Exception as exc:  # the other region is gone or unreachable
            log.warning("could not copy %s to %s: %s", key, self.mirror_region, exc)
            self._pending_after_failure([key], exc)
            return f"NOT copied to {self.mirror_region} (pending): {exc}"

    def note_pending(self, keys: list[str] | None = None, error: str = ""):
        """Record that `keys` (default: every record written through this object) have not reached the
        other region: a job in a region that is not active calls this, the next mirror copies them."""
        from lifeboat import mirroring

        todo = list(self.written if keys is None else keys)
        return mirroring.note_pending(self, todo, error=error) if todo else None

    def _pending_after_failure(self, keys: list[str], exc: BaseException) -> None:
        try:
            self.note_pending(keys, f"{type(exc).__name__}: {exc}")
        except Exception as note_exc:  # this region's copy failing too is reported by the write itself
            log.warning("could not record %s as pending: %s", keys, note_exc)

    def find_active(self):
        """This copy's active-region record (lifeboat.regions.ActiveRegion), None when there is none."""
        from lifeboat.regions import ActiveRegion

        return self.find_record(Layout.active_region(), ActiveRegion)

    def save_verification(self, v: Verification) -> None:
        key, raw = Layout.verification(v.datastore, v.backup_id, v.verified_at), v.to_json()
        self.put_record(key, raw)
        self.index_add(f"{v.datastore}.verifications", key, raw)

    def verifications(self, datastore: str, backup_id: str | None = None) -> list[Verification]:
        return sorted(self._records(Layout.verifications(datastore, backup_id), Verification,
                                    area=f"{datastore}.verifications"),
                      key=lambda v: v.verified_at)

    def save_drill(self, d: Drill) -> None:
        key, raw = Layout.drill(d.id), d.to_json()
        self.put_record(key, raw)
        self.index_add(DRILLS, key, raw)

    def drill(self, drill_id: str) -> Drill:
        return self.get_record(Layout.drill(drill_id), Drill)

    def drills(self) -> list[Drill]:
        truth = (lambda: self.primary.list(Layout.drills())) if self.primary.cheap_listing else None  # one folder
        return sorted(self._records(Layout.drills(), Drill, area=DRILLS, truth=truth), key=lambda d: d.started_at)

    def probe(self) -> tuple[str, str] | None:
        """None when this region's copy can be read, else (missing|unreadable, reason)."""
        local = self.primary.local_path("")
        if local is not None:
            if not local.exists():
                return "missing", f"{self.url} does not exist (has a backup or the mirror ever written there?)"
            if not local.is_dir():
                return "unreadable", f"{self.url}: not a directory"
            if not os.access(local, os.R_OK | os.X_OK):
                return "unreadable", f"{self.url}: permission denied for the Airflow API server's user"
            return None
        try:
            self.primary.answers(Layout.drills())
        except Exception as exc:
            text = str(exc)
            kind = "missing" if "NoSuchBucket" in text or "does not exist" in text else "unreadable"
            return kind, text if isinstance(exc, RepositoryError) else f"{self.url}: {type(exc).__name__}: {text}"
        return None

    # -- records kept in both regions (incidents, reports, runbooks) --------------------------------
    def storages(self) -> list[Storage]:
        """This region's copy, then the other region's."""
        return [s for s in (self.primary, self.mirror_storage) if s is not None]

    def put_everywhere(self, key: str, data: bytes) -> list[str]:
        """Write `key` to both regions' copies; the URLs written. Raises only when neither took it: the
        other region must still get what one region cannot store. When only this region's copy took it,
        the key is recorded as pending here (the next mirror copies it over)."""
        done, errors = [], []
        failed_there: BaseException | None = None
        for st in self.storages():
            try:
                st.put_bytes(key, data)
                done.append(st.url)
            except Exception as exc:  # named in the error if no copy took it
                errors.append(f"{st.url}/{key}: {type(exc).__name__}: {exc}")
                log.warning("could not write %s/%s: %s", st.url, key, exc)
                if st is self.mirror_storage:
                    failed_there = exc
        if not done:
            raise RepositoryError("; ".join(errors))
        if failed_there is not None and self.primary.url in done:
            self._pending_after_failure([key], failed_there)
        return done

    def delete_everywhere(self, key: str) -> None:
        for st in self.storages():
            try:
                st.delete(key)
            except Exception as exc:  # best effort; logged
                log.warning("could not delete %s/%s: %s", st.url, key, exc)

    def records_anywhere(self, prefix: str, model: type[R]) -> list[R]:
        """The records under `prefix` from the first copy that can be listed (this region's first)."""
        last: Exception | None = None
        for st in self.storages():
            try:
                keys = [o.key for o in st.list(prefix) if Layout.is_record(o.key)]
            except Exception as exc:  # try the other region's copy
                last = exc
                continue
            out = []
            for key in keys:
                try:
                    out.append(model.model_validate_json(st.get_bytes(key)))
                except (ValidationError, OSError, ValueError) as exc:
                    log.warning("skipping %s", RepositoryError(f"{st.url}/{key}: unreadable record: {exc}"))
            return out
        if last is not None:
            raise RepositoryError(f"no readable copy of {prefix}: {last}")
        return []

    # -- engine state (lifeboat.layout.Layout.state): JSON documents kept in both regions ------------
    def get_state(self, datastore: str, name: str) -> dict[str, Any] | None:
        """An engine's state record from this region's copy, else the other region's; None if neither has it."""
        key = Layout.state(datastore, name)
        for st in self.storages():
            try:
                if st.exists(key):
                    return json.loads(st.get_bytes(key))
            except (OSError, ValueError, RepositoryError) as exc:  # try the other copy
                log.warning("state %s/%s unreadable: %s", st.url, key, exc)
        return None

    def put_state(self, datastore: str, name: str, doc: dict[str, Any]) -> list[str]:
        """Write an engine's state record to both regions' copies (put_everywhere)."""
        return self.put_everywhere(Layout.state(datastore, name),
                                   json.dumps(doc, indent=1, sort_keys=True, default=str).encode())

    def exists(self, key: str) -> bool:
        return self.primary.exists(key)

    def read(self, key: str) -> bytes:
        return self.primary.get_bytes(key)

    def keys(self, prefix: str) -> list[str]:
        return [o.key for o in self.primary.list(prefix)]

    @classmethod
    def open_readable(cls, inv, region: str | None = None) -> tuple[Repository | None, str | None, list[dict]]:
        """The repository seen from the first readable region: `region`'s copy (default the primary),
        else the other region's. (repo, region used, attempts [{region, url, result, reason}]); repo is
        None when neither copy can be read."""
        from lifeboat import regions

        wanted = region or regions.deployment_region(inv) or regions.active_region(inv)
        other = inv.regions.standby if wanted == inv.regions.primary else inv.regions.primary
        attempts = []
        for candidate in (wanted, other):
            repo: Repository | None
            try:
                repo = cls.from_inventory(inv, candidate)
                bad = repo.probe()
            except Exception as exc:  # recorded as the attempt's reason
                bad, repo = ("unreadable", f"repository.{candidate}: {type(exc).__name__}: {exc}"), None
            attempts.append({"region": candidate, "url": inv.repository[candidate].url,
                             "result": bad[0] if bad else "ok", "reason": bad[1] if bad else ""})
            if bad is None:
                return repo, candidate, attempts
        return None, None, attempts

    @classmethod
    def readable(cls, inv, region: str | None = None) -> tuple[Repository, str, str]:
        """(repo, region used, a note when it fell back to the other region); RepositoryError if neither."""
        repo, used, attempts = cls.open_readable(inv, region)
        if repo is None or used is None:
            raise RepositoryError("no readable catalog copy in either region: "
                                  + "; ".join(a["reason"] for a in attempts))
        note = (f"{attempts[0]['region']}'s copy unreadable ({attempts[0]['reason']}); read {used}'s"
                if len(attempts) > 1 else "")
        return repo, used, note

    # -- cross-region mirror ----------------------------------------------------------------------
    def mirror(self, prefixes: Iterable[str] = ("",), scope: str = "full"):
        """Mirror this region's copy to the other region (lifeboat.mirroring: descriptors last, deletions
        only of what the other copy already had, pending instead of failing when it is unreachable)."""
        from lifeboat import mirroring

        return mirroring.mirror(self, scope, tuple(prefixes))  # type: ignore[arg-type]

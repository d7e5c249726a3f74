"""The backup repository: artifacts, manifests, verifications and drills in object storage.

Layout (relative to the region's repository URL; identical in both regions):

    <datastore>/backups/<backup_id>/<artifact files...>
    <datastore>/backups/<backup_id>/manifest.json      <- written last; its presence = complete
    <datastore>/verifications/<backup_id>/<timestamp>.json
    <datastore>/<native>/...                            <- a native tool's own repository (pgBackRest)
    drills/<drill_id>.json

The catalog is nothing but this layout, so the standby region's copy is a complete catalog on its
own: DR works when the primary region and its Airflow are gone.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from lifeboat.errors import RepositoryError
from lifeboat.records import Drill, Manifest, Verification
from lifeboat.storage import Storage, open_storage

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
# Files a native tool rewrites in place to describe what else exists: always re-copied, and last.
_INFO_FILES = ("backup.info", "archive.info", "backup.info.copy", "archive.info.copy")
_LAST_SUFFIXES = (MANIFEST, "backup.manifest", "backup.manifest.copy", *_INFO_FILES)


def sha256_file(path: Path, bufsize: int = 1024 * 1024) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(bufsize):
            h.update(chunk)
    return h.hexdigest()


def _pause_point_for_tests(backup_id: str) -> None:
    """Test hook: with LIFEBOAT_TEST_PAUSE_BEFORE_COMMIT=<file>, a backup that has written all its
    artifacts creates <file> and waits there, so a test can SIGKILL it at the worst moment."""
    marker = os.environ.get("LIFEBOAT_TEST_PAUSE_BEFORE_COMMIT")
    if marker:
        Path(marker).write_text(backup_id)
        while True:
            time.sleep(1)


@dataclass
class MirrorReport:
    copied: int = 0
    bytes: int = 0
    skipped: int = 0

    def as_dict(self) -> dict[str, int]:
        return {"copied": self.copied, "bytes": self.bytes, "skipped": self.skipped}


class Repository:
    def __init__(self, primary: Storage, mirror: Storage | None = None, region: str = "", mirror_region: str = ""):
        self.primary = primary
        self.mirror_storage = mirror
        self.region = region
        self.mirror_region = mirror_region

    @classmethod
    def from_inventory(cls, inv, region: str | None = None) -> Repository:
        """The repository as seen from `region` (default: the primary). From the standby region the
        standby copy is read first -- that is the point of having it."""
        region = region or inv.regions.primary
        other = inv.regions.standby if region == inv.regions.primary else inv.regions.primary
        here, there = inv.repository[region], inv.repository[other]
        return cls(
            open_storage(here.url, here.connection),
            open_storage(there.url, there.connection),
            region=region,
            mirror_region=other,
        )

    # -- keys ------------------------------------------------------------------------------------
    @staticmethod
    def backup_prefix(datastore: str, backup_id: str) -> str:
        return f"{datastore}/backups/{backup_id}/"

    # -- artifacts and manifests -------------------------------------------------------------------
    def put_artifact(self, datastore: str, backup_id: str, rel: str, local: Path):
        from lifeboat.records import Artifact

        digest = sha256_file(local)
        self.primary.put_file(self.backup_prefix(datastore, backup_id) + rel, local)
        return Artifact(path=rel, size=local.stat().st_size, sha256=digest)

    def commit(self, manifest: Manifest) -> Manifest:
        """Write the manifest: the last write of a backup. Refuses if an artifact is missing."""
        prefix = self.backup_prefix(manifest.datastore, manifest.id)
        present = {o.key[len(prefix):]: o.size for o in self.primary.list(prefix)}
        for a in manifest.artifacts:
            if present.get(a.path) != a.size:
                raise RepositoryError(
                    f"{self.primary.url}/{prefix}{a.path}: missing or wrong size before commit "
                    f"(expected {a.size} bytes, found {present.get(a.path)})"
                )
        _pause_point_for_tests(manifest.id)
        self.primary.put_bytes(prefix + MANIFEST, manifest.to_json())
        return manifest

    def check_artifacts(self, manifest: Manifest):
        """The `artifact checksums` check: every artifact is readable, has the recorded size and sha256.
        Each problem names the object by its full URL."""
        from lifeboat.records import Check

        prefix = self.backup_prefix(manifest.datastore, manifest.id)
        bad = []
        for a in manifest.artifacts:
            name = f"{self.primary.url}/{prefix}{a.path}"
            h = hashlib.sha256()
            size = 0
            try:
                with self.primary.open_read(prefix + a.path) as fh:
                    while chunk := fh.read(1024 * 1024):
                        h.update(chunk)
                        size += len(chunk)
            except Exception as exc:  # reported as a failed check, not raised
                bad.append(f"{name}: unreadable ({exc})")
                continue
            if size != a.size or h.hexdigest() != a.sha256:
                bad.append(f"{name}: sha256 {h.hexdigest()[:16]}… size {size} != recorded {a.sha256[:16]}… size {a.size}")
        return Check(name="artifact checksums", ok=not bad,
                     detail="; ".join(bad) if bad else f"{len(manifest.artifacts)} files match their sha256")

    def manifest(self, datastore: str, backup_id: str) -> Manifest | None:
        key = self.backup_prefix(datastore, backup_id) + MANIFEST
        if not self.primary.exists(key):
            return None
        return self._parse(Manifest, key)

    def _parse(self, model, key: str):
        raw = self.primary.get_bytes(key)
        try:
            return model.model_validate_json(raw)
        except ValidationError as exc:
            raise RepositoryError(f"{self.primary.url}/{key}: unreadable record: {exc.errors()[0]['msg']}") from None

    def manifests(self, datastore: str) -> list[Manifest]:
        out = []
        for obj in self.primary.list(f"{datastore}/backups/"):
            if obj.key.endswith("/" + MANIFEST) and obj.key.count("/") == 3:
                try:
                    out.append(self._parse(Manifest, obj.key))
                except RepositoryError as exc:
                    log.warning("skipping %s", exc)
        return sorted(out, key=lambda m: (m.finished_at, m.id))

    def incomplete(self, datastore: str) -> list[str]:
        """Backup folders with artifacts but no manifest: interrupted backups, never 'complete'."""
        folders: dict[str, bool] = {}
        for obj in self.primary.list(f"{datastore}/backups/"):
            parts = obj.key.split("/")
            if len(parts) >= 4:
                folders[parts[2]] = folders.get(parts[2], False) or (parts[-1] == MANIFEST and len(parts) == 4)
        return sorted(k for k, done in folders.items() if not done)

    def delete_backup(self, datastore: str, backup_id: str) -> int:
        """Manifest first, so a half-deleted backup is never listed as complete."""
        prefix = self.backup_prefix(datastore, backup_id)
        self.primary.delete(prefix + MANIFEST)
        return self.primary.delete_prefix(prefix) + 1

    # -- verifications and drills -----------------------------------------------------------------
    def save_verification(self, v: Verification) -> None:
        stamp = v.verified_at.strftime("%Y%m%dT%H%M%S%fZ")
        self.primary.put_bytes(f"{v.datastore}/verifications/{v.backup_id}/{stamp}.json", v.to_json())

    def verifications(self, datastore: str, backup_id: str | None = None) -> list[Verification]:
        prefix = f"{datastore}/verifications/" + (f"{backup_id}/" if backup_id else "")
        out = []
        for o in self.primary.list(prefix):
            if o.key.endswith(".json"):
                try:
                    out.append(self._parse(Verification, o.key))
                except RepositoryError as exc:
                    log.warning("skipping %s", exc)
        return sorted(out, key=lambda v: v.verified_at)

    def save_drill(self, d: Drill) -> None:
        self.primary.put_bytes(f"drills/{d.id}.json", d.to_json())

    def drill(self, drill_id: str) -> Drill:
        return self._parse(Drill, f"drills/{drill_id}.json")

    def drills(self) -> list[Drill]:
        out = []
        for o in self.primary.list("drills/"):
            if o.key.endswith(".json"):
                try:
                    out.append(self._parse(Drill, o.key))
                except RepositoryError as exc:
                    log.warning("skipping %s", exc)
        return sorted(out, key=lambda d: d.started_at)

    # -- cross-region mirror ----------------------------------------------------------------------
    def mirror(self, prefixes: Iterable[str] = ("",)) -> MirrorReport:
        """Copy to the other region every object that is missing there or differs in size.

        Descriptor files (manifests, pgBackRest info files) go last, so the mirror never lists a
        backup whose files have not arrived. Objects deleted by retention in the primary are
        deleted from the mirror too, manifests first. In production an S3 bucket with Cross-Region
        Replication does the copying; this then only finds nothing to do (and proves it).
        """
        if self.mirror_storage is None:
            raise RepositoryError("no mirror region configured in the inventory's repository section")
        report = MirrorReport()
        for prefix in prefixes:
            src = {o.key: o.size for o in self.primary.list(prefix)}
            dst = {o.key: o.size for o in self.mirror_storage.list(prefix)}
            todo = [k for k, size in src.items() if dst.get(k) != size or k.endswith(_INFO_FILES)]
            todo.sort(key=lambda k: (k.endswith(_LAST_SUFFIXES), k))
            for key in todo:
                data_path = self.primary.local_path(key)
                if data_path is not None:
                    self.mirror_storage.put_file(key, data_path)
                else:
                    self.mirror_storage.put_bytes(key, self.primary.get_bytes(key))
                report.copied += 1
                report.bytes += src[key]
            report.skipped += len(src) - len(todo)
            stale = sorted((k for k in dst if k not in src), key=lambda k: (not k.endswith(MANIFEST), k))
            for key in stale:
                self.mirror_storage.delete(key)
        return report

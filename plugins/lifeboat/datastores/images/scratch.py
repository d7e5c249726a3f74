"""The images restore-test target: every image of a backup pulled by digest from the STANDBY registry
into a scratch OCI layout (`skopeo copy --all --preserve-digests docker://<standby>/<repo>@<digest>
oci:<layout>:<name>`), then every manifest and blob of the layout hashed against its digest. The
layout is deleted afterwards. Nothing is written to either registry."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from pathlib import Path
from typing import Any

from lifeboat.datastores.folder import FolderScratch
from lifeboat.drills import DrillRecorder
from lifeboat.durations import format_duration, seconds
from lifeboat.errors import RestoreFailed
from lifeboat.images import heartbeat as hbimage
from lifeboat.images import lag as lagmod
from lifeboat.records import Manifest, utcnow

REF_NAME = "org.opencontainers.image.ref.name"


def layout_index(layout: Path) -> dict[str, str]:
    """{ref name: digest} of an OCI layout's index.json."""
    doc = json.loads((layout / "index.json").read_text())
    return {(m.get("annotations") or {}).get(REF_NAME, ""): m["digest"] for m in doc.get("manifests") or []}


def blob_path(layout: Path, digest: str) -> Path:
    algo, _, hexd = digest.partition(":")
    return layout / "blobs" / algo / hexd


def check_blob(layout: Path, digest: str, size: int | None = None) -> bytes | None:
    """The blob's bytes if it is small JSON-like (a manifest), after checking its sha256 (and size)."""
    p = blob_path(layout, digest)
    if not p.is_file():
        raise RestoreFailed(f"{p}: blob {digest} missing from the scratch layout")
    h = hashlib.sha256()
    n = 0
    with open(p, "rb") as fh:
        while chunk := fh.read(1 << 20):
            h.update(chunk)
            n += len(chunk)
    if f"sha256:{h.hexdigest()}" != digest:
        raise RestoreFailed(f"{p}: hashes to sha256:{h.hexdigest()}, not {digest}")
    if size is not None and size != n:
        raise RestoreFailed(f"{p}: {n} bytes, its descriptor says {size}")
    return p.read_bytes() if n < (4 << 20) else None


class ImagesScratch(FolderScratch):
    teardown_step = "delete scratch OCI layout"

    def __init__(self, eng, m: Manifest, drill: DrillRecorder):
        super().__init__(eng, m, drill)
        self.layout = self.root / "oci"
        self.images: list[dict[str, Any]] = list(m.native.get("images") or [])
        self.restored: dict[str, str] = {}  # image -> layout ref name
        self.blobs = 0
        self.bytes = 0

    def precheck(self, drill: DrillRecorder) -> None:
        with drill.step("pre-checks") as s:
            self.eng.check_scratch_root(self.root, "scratch layout")
            if not self.images:
                raise RestoreFailed(f"backup {self.m.id} lists no images")
            self.eng.standby.ping()
            s.detail = f"{len(self.images)} images from {self.eng.standby.describe()}"

    def restore(self, drill: DrillRecorder) -> None:
        standby = self.eng.standby
        with drill.step("pull images from the standby by digest") as s:
            self.started = True
            self.root.mkdir(parents=True)
            for i, e in enumerate(self.images):
                name = f"img-{i}"
                standby.copy_to_oci(standby.ref(e["repository"], digest=e["digest"]), self.layout, name,
                                    timeout=seconds(self.eng.options.copy_timeout))
                self.restored[e["image"]] = name
            s.detail = f"{len(self.restored)} images into {self.layout}"

    def verify(self, drill: DrillRecorder) -> None:
        with drill.step("blob digests") as s:
            index = layout_index(self.layout)
            seen: set[str] = set()
            for e in self.images:
                name = self.restored[e["image"]]
                if index.get(name) != e["digest"]:
                    raise RestoreFailed(f"{e['image']}: the scratch layout holds {index.get(name)} as {name}, "
                                        f"not {e['digest']}")
                self._walk(e["image"], e["digest"], seen)
            files = [p for p in (self.layout / "blobs" / "sha256").iterdir() if p.is_file()]
            for p in files:  # every file of the layout, also any the manifests do not name
                if p.name not in {d.partition(":")[2] for d in seen}:
                    check_blob(self.layout, f"sha256:{p.name}")
            self.blobs = len(files)
            self.bytes = sum(p.stat().st_size for p in files)
            s.detail = (f"{len(self.images)} images, {len(seen)} manifests and blobs "
                        f"({self.bytes / 1e6:.1f} MB) hash to their digests")

    def _walk(self, image: str, digest: str, seen: set[str], size: int | None = None) -> None:
        if digest in seen:
            return
        raw = check_blob(self.layout, digest, size)
        seen.add(digest)
        doc = json.loads(raw or b"{}")
        for child in doc.get("manifests") or []:  # an index
            self._walk(image, child["digest"], seen, child.get("size"))
        for b in ([doc["config"]] if doc.get("config") else []) + list(doc.get("layers") or []):
            if b["digest"] not in seen:
                check_blob(self.layout, b["digest"], b.get("size"))
                seen.add(b["digest"])

    def newest_heartbeat(self) -> datetime | None:
        """Up to when the standby is complete: the heartbeat image found in the restored layout, or the
        first-seen time of the oldest image in use the standby lacks right now, whichever is older."""
        restored = None
        for e in self.images:
            if self.eng.is_heartbeat(e["repository"]) and e.get("tag") == self.eng.name:
                raw = blob_path(self.layout, e["digest"]).read_bytes()
                restored = hbimage.written_at(json.loads(raw))
        self.note = ""
        try:
            oldest = lagmod.oldest(self.eng.lacking())
        except Exception as exc:  # the primary may be the region that is gone: the layout alone then
            oldest = None
            self.note = f"; what the standby lacks now not measured ({type(exc).__name__}: {exc})"[:300]
        if oldest is not None and oldest.first_seen is not None:
            self.note = (f"; the standby lacks {oldest.image}, first seen {oldest.first_seen.isoformat()} "
                         f"({format_duration((utcnow() - oldest.first_seen).total_seconds())} ago)")
            if restored is None or oldest.first_seen < restored:
                return oldest.first_seen
        return restored

    def heartbeat_detail(self, hb: datetime | None) -> str:
        note = getattr(self, "note", "")
        if hb is None:
            return "no heartbeat image in the backup" + note
        return hb.isoformat() + note

    def deleted_note(self) -> str:
        return f" ({self.blobs} blobs)"

"""The objects restore-test target: the replica bucket's objects read back (every object of the backup's
inventory when it lists at most `restore_sample`, else a deterministic sample: bottom-k by sha256 of the
key) by version id into a scratch folder, each compared with the source inventory -- size, ETag (the MD5
of a single-part upload, recomputed from the bytes) and, where the source still answers, the sha256 of the
source's bytes. The scratch folder is deleted afterwards; nothing is written to either bucket."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from pathlib import Path
from typing import Any

from lifeboat.datastores.folder import FolderScratch
from lifeboat.drills import DrillRecorder
from lifeboat.errors import LifeboatError, RestoreFailed
from lifeboat.objects import canary
from lifeboat.objects.diff import is_multipart, normalize_etag
from lifeboat.records import Manifest


def sample(rows: list[dict[str, Any]], k: int) -> list[dict[str, Any]]:
    """All rows when there are at most k, else the k whose key hashes lowest (the same on every run)."""
    if len(rows) <= k:
        return rows
    return sorted(rows, key=lambda r: hashlib.sha256(r["key"].encode()).hexdigest())[:k]


class ObjectsScratch(FolderScratch):
    teardown_step = "delete scratch folder"

    def __init__(self, eng, m: Manifest, drill: DrillRecorder):
        super().__init__(eng, m, drill)
        self.rows: list[dict[str, Any]] = []
        self.total = 0
        self.restored: dict[str, Path] = {}
        self.verified: list[str] = []
        self.source_compared = 0

    def precheck(self, drill: DrillRecorder) -> None:
        with drill.step("pre-checks") as s:
            self.eng.check_scratch_root(self.root)
            self.root.mkdir(parents=True)
            self.started = True
            inv = self.root / "inventory"
            parts = [a for a in self.m.artifacts if a.path.startswith("inventory/")]
            sub = self.m.model_copy(update={"artifacts": parts})
            fetched = self.eng.ctx.repo.fetch(sub, self.root)  # sha256 of every part checked
            rows = [json.loads(line) for p in sorted(inv.glob("*.jsonl")) for line in p.read_text().splitlines()
                    if line.strip()]
            self.total = len(rows)
            self.rows = sample(rows, self.eng.options.restore_sample)
            s.detail = (f"inventory of {self.total} objects ({fetched}); reading back "
                        f"{'all' if len(self.rows) == self.total else f'a sample of {len(self.rows)}'}")

    def restore(self, drill: DrillRecorder) -> None:
        replica = self.eng.replica
        with drill.step(f"read back from s3://{replica.bucket}") as s:
            data_dir = self.root / "objects"
            total = 0
            for i, r in enumerate(self.rows):
                try:
                    body = replica.get(r["key"], version_id=r.get("version_id"))
                except LifeboatError as exc:
                    raise RestoreFailed(f"{r['key']} (version {r.get('version_id')}): not readable from "
                                        f"s3://{replica.bucket}: {exc}") from None
                p = data_dir / f"{i:06d}"
                p.parent.mkdir(parents=True, exist_ok=True)
                p.write_bytes(body)
                self.restored[r["key"]] = p
                total += len(body)
            s.detail = f"{len(self.restored)} objects, {total / 1e6:.2f} MB"

    def verify(self, drill: DrillRecorder) -> None:
        with drill.step("ETag, size and sha256 compared") as s:
            bad = []
            source_ok = True
            for r in self.rows:
                data = self.restored[r["key"]].read_bytes()
                etag = normalize_etag(r.get("etag", ""))
                if len(data) != r["size"]:
                    bad.append(f"{r['key']}: {len(data)} bytes in the replica, {r['size']} in the source inventory")
                    continue
                if not is_multipart(etag) and hashlib.md5(data, usedforsecurity=False).hexdigest() != etag:
                    bad.append(f"{r['key']}: MD5 of the replica's bytes differs from the source ETag {etag}")
                    continue
                if source_ok:
                    try:
                        src = self.eng.source.get(r["key"], version_id=r.get("version_id"))
                    except LifeboatError:
                        source_ok = False  # the source region may be the one that is gone
                    else:
                        self.source_compared += 1
                        if hashlib.sha256(src).digest() != hashlib.sha256(data).digest():
                            bad.append(f"{r['key']}: sha256 of the replica's bytes differs from the source's")
                            continue
                self.verified.append(r["key"])
            if bad:
                raise RestoreFailed(f"{len(bad)} of {len(self.rows)} objects differ: " + "; ".join(bad[:20]))
            s.detail = (f"{len(self.verified)} objects: size and ETag equal, sha256 equal to the source's for "
                        f"{self.source_compared}")

    def newest_heartbeat(self) -> datetime | None:
        """The newest canary that reached the replica (its write time)."""
        prefix = self.eng.canary_prefix + f"{self.eng.region}/"
        newest, after = None, ""
        while True:
            page, more = self.eng.replica.list_page(after, 1000, prefix=prefix)
            if page:
                newest = page[-1].key
            if not more or not page:
                break
            after = page[-1].key
        return canary.written_at(newest, self.eng.canary_prefix) if newest else None

    def heartbeat_detail(self, hb: datetime | None) -> str:
        if hb is None:
            return f"no canary under {self.eng.canary_prefix} in s3://{self.eng.replica.bucket}"
        return f"{hb.isoformat()} (newest canary in s3://{self.eng.replica.bucket})"

    def deleted_note(self) -> str:
        return f" ({len(self.restored)} objects)"

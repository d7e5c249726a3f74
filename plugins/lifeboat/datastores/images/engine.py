"""The images engine: replicate the images in use to the standby registry (same digests), verify every
manifest and blob there, restore-test into a scratch OCI layout, measure the replication lag."""

from __future__ import annotations

import json
import logging
import subprocess
from datetime import datetime
from pathlib import Path
from typing import Any

from lifeboat.clients.registry import RegistryClient
from lifeboat.datastores.base import MonitorFinding, Taken
from lifeboat.datastores.images.options import ImagesOptions
from lifeboat.datastores.regional import RegionalDatastore, per_region
from lifeboat.drills import DrillRecorder
from lifeboat.durations import format_duration, seconds
from lifeboat.errors import DigestMismatch, LifeboatError, ServiceError
from lifeboat.images import heartbeat as hbimage
from lifeboat.images import lag as lagmod
from lifeboat.images.refs import ImageRef, ImageUse, collect, pin_all
from lifeboat.records import Check, Manifest, utcnow

log = logging.getLogger(__name__)

ARTIFACT = "images.json"
FIRST_SEEN, LACKING = "first-seen", "lacking"
# the workload kinds whose pod templates name images (read-only lists)
WORKLOADS = (("apps/v1", "Deployment", "deployments"), ("apps/v1", "StatefulSet", "statefulsets"),
             ("apps/v1", "DaemonSet", "daemonsets"), ("batch/v1", "CronJob", "cronjobs"))


def _tag_for(ref: ImageRef) -> str:
    """The tag an image is replicated under: its own, or a stable one derived from its digest."""
    return ref.tag or f"lifeboat-{(ref.digest or '')[7:19]}"


class ImagesDatastore(RegionalDatastore[ImagesOptions]):
    engine = "images"
    restore_series = "replicate"

    # -- plumbing --------------------------------------------------------------------------------
    @per_region
    def registry(self, region: str) -> RegistryClient:
        return RegistryClient(self.endpoint(region), timeout=seconds(self.options.request_timeout))

    @property
    def primary(self) -> RegistryClient:
        return self.registry(self.region)

    @property
    def standby(self) -> RegistryClient:
        return self.registry(self.standby_region)

    def heartbeat_ref(self) -> ImageRef:
        return ImageRef(registry=self.primary.host, repository=self.options.heartbeat_repository, tag=self.name)

    def is_heartbeat(self, repository: str) -> bool:
        return repository == self.options.heartbeat_repository

    # -- which images are in use ---------------------------------------------------------------------
    def workloads(self) -> list[dict]:
        """The primary cluster's workloads in the inventory's namespaces (read-only GETs)."""
        conn = self.options.kubernetes.get(self.region)
        if not conn or not self.options.namespaces:
            return []
        from lifeboat.clients.kubernetes import KubernetesClient

        client = KubernetesClient(conn, region=self.region)
        return [w for ns in self.options.namespaces for w in client.list_namespace(ns, WORKLOADS)]

    def in_use(self) -> tuple[list[ImageUse], list[ImageUse]]:
        """(images of the primary registry in use, images in use from other registries -- not protected)."""
        uses = collect(self.workloads(), self.options.images, default_registry=self.primary.host)
        hb = self.heartbeat_ref()
        if not any(u.ref == hb for u in uses):
            uses.append(ImageUse(hb, ["lifeboat heartbeat"]))
        ours = [u for u in uses if u.ref.registry == self.primary.host]
        return ours, [u for u in uses if u.ref.registry != self.primary.host]

    def pinned(self) -> tuple[list[ImageUse], list[ImageUse], list[ImageUse]]:
        """(in use, pinned to the primary's digests; in use but not in the primary registry; external)."""
        ours, external = self.in_use()
        pinned, unresolved = pin_all(ours, lambda r: self.primary.manifest_digest(r.repository, r.reference))
        # no heartbeat image yet (the heartbeat schedule has not run): not an image anyone lacks
        unresolved = [u for u in unresolved if not self.is_heartbeat(u.ref.repository)]
        return pinned, unresolved, external

    # -- the first-seen ledger and what the standby lacks ----------------------------------------------
    def ledger(self) -> dict[str, str]:
        return dict((self.ctx.repo.get_state(self.name, FIRST_SEEN) or {}).get("images") or {})

    def save_ledger(self, ledger: dict[str, str], keep: set[str] | None = None) -> None:
        if keep is not None:  # forget images no longer in use (superseded heartbeats, old releases)
            ledger = {k: v for k, v in ledger.items() if k in keep}
        self.ctx.repo.put_state(self.name, FIRST_SEEN, {"images": ledger, "updated_at": utcnow().isoformat()})

    def lacking(self, pinned: list[ImageUse] | None = None, now: datetime | None = None) -> list[lagmod.Lacking]:
        """Images in use (heartbeat left out) whose digest the standby does not serve, with first-seen times;
        records every image in use in the ledger first (an image is first seen when Lifeboat first sees it)."""
        now = now or utcnow()
        if pinned is None:
            pinned = self.pinned()[0]
        ledger = self.ledger()
        keys = {lagmod.key(u.ref.repository, u.ref.digest or "") for u in pinned}
        updated = lagmod.remember(ledger, keys, now)
        out = []
        for u in pinned:
            r = u.ref
            if self.is_heartbeat(r.repository):
                continue
            if self.standby.manifest_digest(r.repository, r.digest or "") is None:
                out.append(lagmod.Lacking(str(r), r.repository, r.digest or "",
                                          lagmod.first_seen(updated, lagmod.key(r.repository, r.digest or ""))))
        if updated != ledger:
            self.save_ledger(updated)
        return out

    def record_lacking(self, lacking: list[lagmod.Lacking], now: datetime | None = None) -> None:
        """What the standby lacks, in the catalog: the metrics hook (image replication lag) reads it."""
        self.ctx.repo.put_state(self.name, LACKING, {"measured_at": (now or utcnow()).isoformat(),
                                                     "repositories": lagmod.per_repository(lacking),
                                                     "images": [x.image for x in lacking]})

    # -- backup: replicate -------------------------------------------------------------------------------
    def _take(self, kind: str, backup_id: str, staging: Path) -> Taken:
        primary, standby = self.primary, self.standby
        pinned, unresolved, external = self.pinned()
        now = utcnow()
        ledger = lagmod.remember(self.ledger(), {lagmod.key(u.ref.repository, u.ref.digest or "") for u in pinned},
                                 now)
        entries: list[dict[str, Any]] = []
        copied = 0
        heartbeat_at = None
        for u in pinned:
            r = u.ref
            digest = r.digest or ""
            tag = _tag_for(r)
            before = standby.manifest_digest(r.repository, tag)
            lost = self.missing_blobs(r.repository, digest) if before == digest else []
            if before != digest or lost:
                log.info("replicating %s (%s): standby has %s%s", r, digest, before or "nothing",
                         f", without {len(lost)} of its blobs" if lost else "")
                primary.copy(primary.ref(r.repository, digest=digest), standby, standby.ref(r.repository, tag),
                             timeout=seconds(self.options.copy_timeout))
                copied += 1
                after = standby.manifest_digest(r.repository, tag)
                if after != digest:
                    raise ServiceError(f"{r}: after `skopeo copy --all --preserve-digests` {standby.describe()} "
                                       f"serves {after} under {r.repository}:{tag}, not {digest}")
            manifests = standby.walk(r.repository, digest)
            blobs = sorted({(b["digest"], int(b.get("size") or 0)) for mm in manifests for b in mm.blobs()})
            if self.is_heartbeat(r.repository):
                heartbeat_at = hbimage.written_at(manifests[0].doc)
            entries.append({"image": str(r), "repository": r.repository, "tag": tag, "digest": digest,
                            "primary_digest": digest, "standby_digest_before": before, "standby_digest": digest,
                            "copied": before != digest or bool(lost), "blobs_repaired": len(lost),
                            "used_by": u.used_by,
                            "first_seen": ledger.get(lagmod.key(r.repository, digest)),
                            "manifests": [mm.digest for mm in manifests],
                            "blobs": [{"digest": d, "size": s} for d, s in blobs]})
        self.save_ledger(ledger, keep={lagmod.key(e["repository"], e["digest"]) for e in entries})
        self.record_lacking([])  # every image in use is in the standby now
        doc = {"format": "lifeboat.images/v1", "primary": primary.describe(), "standby": standby.describe(),
               "replicated_at": utcnow().isoformat(), "images": entries,
               "unresolved": [u.to_json() for u in unresolved], "external": [u.to_json() for u in external]}
        (staging / ARTIFACT).write_text(json.dumps(doc, indent=1, sort_keys=True))
        n_blobs = len({b["digest"] for e in entries for b in e["blobs"]})
        size = sum(b["size"] for b in {b["digest"]: b for e in entries for b in e["blobs"]}.values())
        return Taken(
            position={"replicated_at": doc["replicated_at"], "heartbeat_at": heartbeat_at.isoformat()
                      if heartbeat_at else None},
            counts={"images": len(entries), "blobs": n_blobs},
            tools={"skopeo": _skopeo_version(primary)},
            native={"tool": "skopeo copy --all --preserve-digests", "file": ARTIFACT, "copied": copied,
                    "images": [{k: e[k] for k in ("image", "repository", "tag", "digest", "copied")} for e in entries],
                    "unresolved": [str(u.ref) for u in unresolved], "external": [str(u.ref) for u in external],
                    "standby_region": self.standby_region, "bytes": size},
            source=f"{self.conn_id()} ({primary.host}) -> {self.conn_id(self.standby_region)} ({standby.host})",
            restore_hint=(f"skopeo copy --all --preserve-digests docker://{standby.host}/<repository>@<digest> "
                          f"docker://<registry>/<repository>:<tag> for each image of {ARTIFACT} "
                          "(docs/datastores/images.md)"),
        )

    def missing_blobs(self, repository: str, digest: str) -> list[str]:
        """Blobs of an image the standby serves the manifest of but not the blob (HEAD each): a copy
        uploads exactly those again (skopeo skips the blobs the destination has)."""
        try:
            manifests = self.standby.walk(repository, digest)
        except ServiceError:
            return ["(manifest)"]
        return [b["digest"] for mm in manifests for b in mm.blobs()
                if not self.standby.blob_exists(repository, b["digest"])]

    # -- verification ----------------------------------------------------------------------------
    def checks(self, m: Manifest, batch: Any, deep: bool) -> list[Check]:
        standby = self.standby
        missing, blob_problems, primary_gone = [], [], []
        n_blobs = 0
        images = m.native.get("images") or []
        for e in images:
            repo, digest, image = e["repository"], e["digest"], e["image"]
            try:
                manifests = standby.walk(repo, digest)
            except DigestMismatch as exc:
                missing.append(f"{image}: different content in the standby ({exc})")
                continue
            except ServiceError as exc:
                missing.append(f"{image} ({digest}): not served by the standby registry "
                               f"({str(exc).rsplit(': ', 1)[-1][:120]})")
                continue
            for mm in manifests:
                for b in mm.blobs():
                    n_blobs += 1
                    try:
                        if deep:
                            standby.read_blob(repo, b["digest"])
                        elif not standby.blob_exists(repo, b["digest"]):
                            raise ServiceError("HTTP 404")
                    except ServiceError as exc:
                        blob_problems.append(f"{image}: blob {b['digest']} ({mm.digest}) "
                                             f"{'corrupt' if isinstance(exc, DigestMismatch) else 'not readable'} "
                                             f"in the standby ({str(exc).rsplit(': ', 1)[-1][:120]})")
            if not self.is_heartbeat(repo):
                try:
                    if self.primary.manifest_digest(repo, digest) is None:
                        primary_gone.append(image)
                except ServiceError as exc:
                    primary_gone.append(f"{image} (primary unreachable: {exc})")
        unresolved = m.native.get("unresolved") or []
        out = [
            Check(name="standby serves every image", ok=not missing,
                  detail="; ".join(missing) if missing else f"{len(images)} images under the same digests"
                  + (f" ({len(primary_gone)} since removed from the primary: {', '.join(primary_gone[:5])})"
                     if primary_gone else "")),
            Check(name="standby blobs " + ("read and digest-checked" if deep else "present"), ok=not blob_problems,
                  detail="; ".join(blob_problems[:20]) if blob_problems else f"{n_blobs} blobs"),
            Check(name="every image in use was in the primary registry", ok=not unresolved,
                  detail=("not in the primary registry (nothing to replicate): " + ", ".join(unresolved))
                  if unresolved else "all resolved to digests"),
        ]
        return out

    # -- restore test ----------------------------------------------------------------------------
    def scratch_target(self, manifest: Manifest, target: str, drill: DrillRecorder):
        from lifeboat.datastores.images.scratch import ImagesScratch

        self.latest_only(target, "an image replication restores the images of one backup "
                         "(pick the backup id) with target 'latest'")
        return ImagesScratch(self, manifest, drill)

    # -- heartbeat, monitoring ---------------------------------------------------------------------
    def heartbeat(self) -> datetime:
        """Push the heartbeat image <heartbeat_repository>:<datastore> (a config, no layers) to the primary."""
        now = utcnow()
        primary, repo = self.primary, self.options.heartbeat_repository
        cfg = hbimage.config(now, self.name)
        cfg_digest = primary.put_blob(repo, cfg)
        digest = primary.put_manifest(repo, self.name, hbimage.manifest(cfg_digest, len(cfg), now))
        ledger = {k: v for k, v in self.ledger().items() if not k.startswith(f"{repo}@")}
        ledger[lagmod.key(repo, digest)] = now.isoformat()
        self.save_ledger(ledger)
        return now

    def exposure(self) -> dict[str, float | None]:
        """The age of the oldest image in use that the standby lacks (0 when it has them all)."""
        self._lacking = self.lacking()
        return {"image replication lag": lagmod.lag_seconds(self._lacking, utcnow())}

    def monitor_findings(self) -> list[MonitorFinding]:
        lacking = getattr(self, "_lacking", None)
        if lacking is None:
            lacking = self.lacking()
        self.record_lacking(lacking)
        if not lacking:
            return [MonitorFinding("images in the standby", "ok", "0 lacking", "0",
                                   f"{self.name}: the standby registry serves every image in use")]
        now = utcnow()
        names = "; ".join(f"{x.image} (first seen {format_duration((now - x.first_seen).total_seconds())} ago)"
                          if x.first_seen else x.image for x in lacking[:10])
        return [MonitorFinding("images in the standby", "medium", f"{len(lacking)} lacking", "0",
                               f"{self.name}: the standby registry lacks {len(lacking)} image(s) in use: {names}")]


def _skopeo_version(client: RegistryClient) -> str:
    try:
        return subprocess.run([client.skopeo, "--version"], capture_output=True, text=True, timeout=30,
                              check=False).stdout.strip() or "unknown"
    except (OSError, LifeboatError, subprocess.TimeoutExpired):
        return "unknown"

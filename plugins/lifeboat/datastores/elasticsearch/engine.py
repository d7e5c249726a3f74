"""The Elasticsearch engine: snapshots with deterministic names, exact counts where they can be exact,
SLM-style retention, heartbeat."""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import re
import time
from datetime import datetime
from pathlib import Path

from lifeboat.catalog import Catalog
from lifeboat.clients.elasticsearch import ElasticsearchApiError
from lifeboat.datastores.base import Taken
from lifeboat.datastores.elasticsearch import verify as esverify
from lifeboat.datastores.elasticsearch.cluster import Cluster
from lifeboat.datastores.elasticsearch.options import ElasticsearchOptions
from lifeboat.datastores.elasticsearch.recovery import ElasticsearchRecovery
from lifeboat.datastores.elasticsearch.restore import ElasticsearchScratch
from lifeboat.datastores.elasticsearch.retention import slm_plan
from lifeboat.datastores.regional import RegionalDatastore
from lifeboat.drills import DrillRecorder
from lifeboat.errors import CommandFailed, Refused
from lifeboat.records import Check, Manifest, utcnow

log = logging.getLogger(__name__)


class ElasticsearchDatastore(RegionalDatastore[ElasticsearchOptions]):
    engine = "elasticsearch"
    restore_series = "snapshot"

    def __init__(self, ctx):
        super().__init__(ctx)
        self.base_repository = self.options.repository
        # this region's copy of the snapshot repository (options.repository.regions)
        self.options = self.options.model_copy(update={"repository": self.base_repository.for_region(self.region)})

    def registered_repository(self, c: Cluster | None = None) -> str:
        """The repository registered on this region's cluster: read-write in the active region (its
        snapshots go there), read-only elsewhere (the replicated copy, written by the other cluster)."""
        return (c or self.cluster()).ensure_repository(readonly=not self.in_active_region())

    def replicate_native(self) -> dict:
        """The mirror step: this region's fs snapshot repository -> the other region's copy (s3: the
        bucket's Cross-Region Replication does it)."""
        from lifeboat.datastores.elasticsearch.replica import replicate
        from lifeboat.regions import other

        here, there = self.options.repository, self.base_repository.for_region(other(self.ctx.inventory, self.region))
        if here.type != "fs":
            return {"skipped": f"{here.type} repository: replicated by the bucket's Cross-Region Replication"}
        if here.location == there.location:
            return {"skipped": "both regions name the same location (options.repository.regions not set)"}
        return replicate(Path(here.location), Path(there.location))

    @functools.cached_property
    def _clusters(self) -> dict[str, Cluster]:
        return {}

    def cluster(self, region: str | None = None) -> Cluster:
        """The region's cluster, through its Airflow connection (client cached)."""
        region = region or self.region
        if region not in self._clusters:
            self._clusters[region] = Cluster(self.endpoint(region), self.options, self.name)
        return self._clusters[region]

    def snapshot_name(self, backup_id: str) -> str:
        """Snapshot names must be lowercase; backup ids are deterministic, so this is too."""
        return re.sub(r"[^a-z0-9_.\-]", "-", backup_id.lower())

    # -- backup ----------------------------------------------------------------------------------
    def _take(self, kind: str, backup_id: str, staging: Path) -> Taken:
        c = self.cluster()
        repo = c.ensure_repository(readonly=False)  # backups run in the active region only
        snap = self.snapshot_name(backup_id)
        indices = c.resolve_indices()
        c.check_not_red(indices)
        prior = c.get_snapshot(repo, snap)
        if prior is not None:
            owner = (prior.get("metadata") or {}).get("lifeboat_backup_id")
            if owner != backup_id:
                raise Refused(f"repository {repo} already has a snapshot named {snap} that Lifeboat did not take "
                              f"for backup {backup_id} (metadata {prior.get('metadata')}); not touching it")
            # An earlier attempt of this very task (no manifest): its counts were never recorded.
            log.info("replacing unfinished attempt %s (state %s) of backup %s", snap, prior.get("state"), backup_id)
            c.delete_snapshot(repo, snap)

        seq_before = c.max_seq_nos(indices)
        counts_before = c.counts(indices)
        seed = int(hashlib.sha256(backup_id.encode()).hexdigest()[:8], 16)
        samples = {i: c.sample(i, seed) for i in indices}
        t0 = time.monotonic()
        info = c.take_snapshot(repo, snap, indices=",".join(indices),
                               include_global_state=self.options.include_global_state, ignore_unavailable=False,
                               partial=False, metadata={"lifeboat_backup_id": backup_id,
                                                        "lifeboat_datastore": self.name, "taken_by": "lifeboat"})
        wall = time.monotonic() - t0
        if info.get("state") != "SUCCESS" or info.get("shards", {}).get("failed"):
            failures = "; ".join(f"{f.get('index')}[{f.get('shard_id')}]: {f.get('reason')}"
                                 for f in info.get("failures") or []) or "no failure details"
            c.delete_snapshot(repo, snap)
            raise CommandFailed([f"PUT _snapshot/{repo}/{snap}"], None,
                                f"snapshot {snap} ended {info.get('state')} with "
                                f"{info.get('shards', {}).get('failed', '?')} failed shards: {failures}; deleted it")

        # Exact counts where nothing was written during the snapshot; [min, max] ranges elsewhere,
        # and only the sampled documents unchanged over the whole window are kept.
        seq_after = c.max_seq_nos(indices)
        changed = sorted(i for i in indices if seq_before.get(i) != seq_after.get(i))
        counts = {i: counts_before[i] for i in indices if i not in changed}
        ranges = {}
        if changed:
            after = c.counts(changed)
            ranges = {i: [min(counts_before[i], after[i]), max(counts_before[i], after[i])] for i in changed}
            for i in changed:
                now = c.fetch_hashes(i, samples[i])
                samples[i] = [d for d in samples[i] if now.get(d["id"]) == d["sha256"]]
            log.info("indices written during the snapshot (counts recorded as ranges): %s", ranges)

        detail = c.get_snapshot(repo, snap, index_details=True) or info
        status = c.status(repo, snap)
        index_shards = {i: d.get("shard_count") for i, d in (detail.get("index_details") or {}).items()}
        record = {"snapshot": detail, "status": {k: status.get(k) for k in ("state", "shards_stats", "stats")}}
        (staging / "snapshot.json").write_text(json.dumps(record, indent=2, sort_keys=True))
        rs = self.options.repository
        where = rs.location if rs.type == "fs" else f"s3://{rs.bucket}/{rs.base_path}"
        covered = sorted(info.get("indices") or [])
        return Taken(
            position={"repository": repo, "snapshot": snap, "uuid": info["uuid"],
                      "snapshot_started_at": info.get("start_time"), "snapshot_finished_at": info.get("end_time")},
            counts=counts,
            tools={"elasticsearch": c.version()},
            native={
                "tool": "elasticsearch snapshot", "repository": repo, "repository_type": rs.type,
                "repository_location": where, "snapshot": snap, "uuid": info["uuid"], "state": info["state"],
                "indices": covered, "index_shards": index_shards, "shards": info.get("shards", {}),
                "duration_in_millis": info.get("duration_in_millis"), "wall_seconds": round(wall, 3),
                "count_ranges": ranges, "changed_during_snapshot": changed,
                "samples": {i: s for i, s in samples.items() if s},
                "heartbeat_index": self.options.heartbeat_index,
                "include_global_state": self.options.include_global_state,
                "repo_size": int(status.get("stats", {}).get("incremental", {}).get("size_in_bytes", 0)),
                "total_size": int(status.get("stats", {}).get("total", {}).get("size_in_bytes", 0)),
            },
            source=f"{self.conn_id()} ({c.url})",
            restore_hint=(f"curl -XPOST '<es>/_snapshot/{repo}/{snap}/_restore' -H 'Content-Type: application/json' "
                          f"-d '{{\"indices\": \"{','.join(covered)}\", "
                          "\"include_global_state\": false, \"rename_pattern\": \"(.+)\", "
                          "\"rename_replacement\": \"restored-$1\"}'  (repository must be registered: "
                          f"PUT _snapshot/{repo} {{\"type\": \"{rs.type}\", "
                          f"\"settings\": {json.dumps(rs.es_settings())}}})"),
        )

    # -- verification ----------------------------------------------------------------------------
    def verification_batch(self, manifests: list[Manifest], deep: bool) -> esverify.Batch:
        return esverify.Batch()

    def checks(self, m: Manifest, batch: esverify.Batch, deep: bool) -> list[Check]:
        """`deep` (weekly) reads every blob of the snapshots' indices; right after a backup only the
        blobs this snapshot wrote."""
        c = self.cluster()
        repo = m.native.get("repository", self.options.repository.name)
        if repo not in batch.repositories:
            try:
                if repo == self.options.repository.name:
                    self.registered_repository(c)
            except Exception as exc:  # reported as the failed check below
                log.warning("repository %s not registered on %s: %s", repo, c.url, exc)
            batch.repositories[repo] = esverify.check_repository(c, repo)
        checks = [batch.repositories[repo]]
        if checks[0].ok:
            checks += esverify.snapshot_checks(c, m, repo, batch, deep)
        return checks

    # -- restore test ----------------------------------------------------------------------------
    def ping(self) -> str:
        c = self.cluster()
        h = c.call("GET _cluster/health", c.es.cluster.health)
        return f"cluster {h.get('status')}"

    def backup_time(self, m: Manifest) -> datetime:
        at = m.position.get("snapshot_started_at")
        if isinstance(at, str) and at:
            return datetime.fromisoformat(at.replace("Z", "+00:00"))
        return m.started_at

    def recovery_target(self, manifest: Manifest, target: str, *, into: str, tag: str) -> ElasticsearchRecovery:
        if into != "new":
            raise Refused(f"{self.name}: an Elasticsearch recovery restores into new indices (recovered-<tag>-*); "
                          "replacing live indices is a manual step (docs/datastores/elasticsearch.md)")
        if target not in ("latest", "", None) and self.target_time(target) is None:
            raise Refused(f"{self.name}: recovery target {target!r}")
        return ElasticsearchRecovery(self.cluster(), manifest, tag, self.name)

    def scratch_target(self, manifest: Manifest, target: str, drill: DrillRecorder) -> ElasticsearchScratch:
        self.latest_only(target, "an Elasticsearch snapshot restores the state it was taken at; pick the "
                                 "snapshot (backup id) instead and use target 'latest'")
        c = self.cluster()
        ours = manifest.native.get("repository", self.options.repository.name) == self.options.repository.name
        # in the pre-checks: registered (in another region: the replicated copy, read-only)
        return ElasticsearchScratch(c, manifest, drill,
                                    prepare=(lambda: self.registered_repository(c)) if ours else None)

    # -- heartbeat -------------------------------------------------------------------------------
    def heartbeat(self) -> datetime:
        c = self.cluster()
        idx = self.options.heartbeat_index
        try:
            c.call(f"PUT {idx}", c.es.indices.create, index=idx,
                   settings={"number_of_shards": 1, "auto_expand_replicas": "0-1"},
                   mappings={"properties": {"region": {"type": "keyword"}, "written_at": {"type": "date"},
                                            "source": {"type": "keyword"}}})
        except ElasticsearchApiError as exc:
            if exc.error_type != "resource_already_exists_exception":
                raise
        now = utcnow()
        c.call(f"POST {idx}/_doc", c.es.index, index=idx,
               document={"region": self.region, "written_at": now.isoformat(), "source": "lifeboat"})
        return now

    # -- retention -------------------------------------------------------------------------------
    def retention_plan(self, now: datetime | None = None):
        """SLM's rules when `options.slm_retention` is set, else the inventory's generic keep rules."""
        cat = Catalog(self.ctx.repo)
        if self.options.slm_retention is None:
            return cat.retention_plan(self.name, self.spec.retention, now)
        return slm_plan(cat, self.name, self.options.slm_retention, now)

    def delete_backup(self, manifest: Manifest) -> None:
        """The snapshot first, then the catalog entry.

        Deleting a snapshot is atomic in Elasticsearch (a new repository generation without it, then
        blob clean-up), so there is no half-deleted snapshot. If the DELETE fails (snapshot in use by a
        restore, repository gone) the manifest stays and the next retention run tries again; the
        other order would leave an invisible snapshot that no catalog lists.
        """
        c = self.cluster()
        repo, snap = manifest.native["repository"], manifest.native["snapshot"]
        if c.get_repository(repo) is None:
            raise Refused(f"cannot delete backup {manifest.id}: repository {repo!r} is not registered on "
                          f"{c.url}; nothing deleted")
        info = c.get_snapshot(repo, snap)
        if info is not None:
            if info.get("uuid") != manifest.native.get("uuid"):
                raise Refused(f"snapshot {repo}/{snap} has uuid {info.get('uuid')}, not the "
                              f"{manifest.native.get('uuid')} of backup {manifest.id}: not deleting someone else's "
                              "snapshot")
            try:
                c.delete_snapshot(repo, snap)
            except ElasticsearchApiError as exc:
                raise Refused(f"cannot delete snapshot {repo}/{snap} of backup {manifest.id}: {exc.error_type}: "
                              f"{exc.reason}; the catalog entry is kept, retention will retry") from None
        else:
            log.warning("snapshot %s/%s of %s was already gone; removing the catalog entry", repo, snap, manifest.id)
        self.ctx.repo.delete_backup(self.name, manifest.id)

"""Elasticsearch failover: restore the newest verified snapshot into the standby region's cluster.

Each region runs its own cluster; the standby region's cluster registers the replicated snapshot
repository (its own region's copy, options.repository.regions) read-only and stays empty until a
failover. The data loss is everything written after the snapshot (the plan says so: up to the
snapshot schedule plus its age); the drill measures it from the restored heartbeat index.

* **role**: reachable; `primary` when every index of `options.indices` exists there, else `standby`.
* **promote**: the newest verified snapshot of the target region's catalog copy, restored with its
  own index names (`include_global_state: false`, no aliases) after deleting partial leftovers of an
  interrupted restore; wait until every primary is active; doc counts compared with the manifest.
  A cluster that already holds the indices is not restored again.
* **fence**: `index.blocks.write: true` on the old cluster's indices where it answers.
* **verify**: a probe document (`lifeboat-failover-probe`) written and read back by id.
* **rebuild_as_standby** (failback): the former primary's indices are deleted (a standby is empty);
  the failback's promote then restores the newest verified snapshot into it -- take and verify a
  snapshot in the active region first, or the writes since the failover are not in it.
"""

from __future__ import annotations

from datetime import datetime

from lifeboat.catalog import Catalog
from lifeboat.errors import RestoreFailed
from lifeboat.failover.facts import Role, first_line
from lifeboat.failover.restoring import RestoringFailover

PROBE_INDEX = "lifeboat-failover-probe"


class ElasticsearchFailover(RestoringFailover):
    engine = "elasticsearch"
    catch_up_kind = "snapshot"  # the backup a catch-up takes of a live primary
    describe_fence = "index.blocks.write on the old cluster's indices"
    describe_promote = ("restore the newest verified snapshot from the replicated repository (read-only) into "
                        "the standby cluster, wait for active primaries, compare doc counts")
    describe_rebuild = "delete the former primary's indices (an empty standby until the next failover)"

    def _indices(self) -> list[str]:
        o = self.engine_options
        return [*o.indices, o.heartbeat_index]

    def role(self, region: str) -> Role:
        try:
            c = self._engine(region).cluster()
            version = c.version()
            have = set(c.existing(",".join(self._indices()), expand="open"))
        except Exception as exc:
            return Role(reachable=False, error=first_line(exc))
        want = set(self.engine_options.indices)
        return Role(reachable=True, role="primary" if want <= have else "standby", server_version=version)

    def identity(self, facts: Role) -> str:
        return f"Elasticsearch {facts.server_version}, {len(self.engine_options.indices)} indices present"

    def newest_heartbeat(self, region: str) -> datetime | None:
        c = self._engine(region).cluster()
        idx = self.engine_options.heartbeat_index
        if not c.existing(idx):
            return None
        c.call(f"POST {idx}/_refresh", c.es.indices.refresh, index=idx)
        r = c.call(f"GET {idx}/_search", c.es.search, index=idx, size=1, sort=[{"written_at": "desc"}],
                   query={"match_all": {}})
        hits = r.get("hits", {}).get("hits") or []
        return datetime.fromisoformat(hits[0]["_source"]["written_at"]) if hits else None

    def fence_primary(self, old_region: str, facts: Role) -> str:
        c = self._engine(old_region).cluster()
        names = c.existing(",".join(self._indices()))
        c.call("PUT _settings index.blocks.write", c.es.indices.put_settings, index=",".join(names),
               settings={"index.blocks.write": True})
        return f"{self.where(old_region)}: index.blocks.write=true on {len(names)} indices"

    def promote_standby(self, target_region: str) -> str:
        eng = self._engine(target_region)
        m = Catalog(eng.ctx.repo).latest(self.name, verified=True)
        c = eng.cluster()
        repo = eng.registered_repository(c)  # the replicated copy; read-only while the other region is active
        if m.native.get("repository") != repo:
            raise RestoreFailed(f"{m.id} is in repository {m.native.get('repository')!r}, the inventory's is {repo!r}")
        snap = m.native["snapshot"]
        info = c.get_snapshot(repo, snap)
        if info is None or info.get("state") != "SUCCESS" or info.get("uuid") != m.native.get("uuid"):
            raise RestoreFailed(f"snapshot {snap} ({m.id}) is not in {repo} on {self.where(target_region)} as the "
                                f"catalog recorded it (found: {info and info.get('state')}); nothing was restored")
        indices = list(m.native.get("indices") or [])
        leftovers = c.existing(",".join(indices))
        if leftovers:  # an interrupted restore (the standby is empty otherwise): start over
            c.call("DELETE leftovers", c.es.indices.delete, index=",".join(leftovers))
        c.call(f"POST _snapshot/{repo}/{snap}/_restore", c.es.snapshot.restore, repository=repo, snapshot=snap,
               indices=",".join(indices), include_global_state=False, include_aliases=False, partial=False,
               wait_for_completion=False,  # a fenced old primary's write block is not carried over
               index_settings={"index.number_of_replicas": c.options.restore_replicas, "index.blocks.write": False})
        waited = self._wait_primaries(c, indices)
        got = c.counts(indices)
        diff = [f"{i}: snapshot {m.counts[i]}, restored {got[i]}" for i in indices if i in m.counts and
                got[i] != m.counts[i]]
        if diff:
            raise RestoreFailed("restored doc counts differ from the manifest: " + "; ".join(diff))
        return (f"restored {snap} ({m.id}, finished {m.finished_at.isoformat()}) from {repo}: {waited}; "
                f"{sum(got.values())} documents, counts match")

    @staticmethod
    def _wait_primaries(c, indices: list[str]) -> str:
        """Until every restored primary shard is active (a red index that cannot allocate fails)."""
        from lifeboat.durations import seconds
        from lifeboat.waiting import WaitTimeout, wait_until

        def health() -> dict:
            return c.call("GET _cluster/health", c.es.cluster.health, index=",".join(indices), level="indices")

        def ready(h: dict) -> bool:
            per = h.get("indices") or {}
            return len(per) == len(indices) and all(
                i.get("active_primary_shards") == i.get("number_of_shards") for i in per.values())

        try:
            h = wait_until("restored primaries active", health, seconds(c.options.restore_timeout), 0.5, done=ready)
        except WaitTimeout as exc:
            raise RestoreFailed(f"restored indices not active after restore_timeout={c.options.restore_timeout}: "
                                f"{exc.last}") from None
        return f"{h.get('status')}: {len(indices)} indices, {h.get('active_primary_shards')} primaries active"

    def verify(self, region: str) -> str:
        """A probe document written (refresh=wait_for) and read back by id; the heartbeat index is left to
        the heartbeats (the data loss is measured from it)."""
        import secrets

        from lifeboat.records import utcnow

        c = self._engine(region).cluster()
        doc_id, at = secrets.token_hex(8), utcnow().isoformat()
        c.call(f"PUT {PROBE_INDEX}/_doc", c.es.index, index=PROBE_INDEX, id=doc_id, refresh="wait_for",
               document={"region": region, "written_at": at, "source": "lifeboat failover verify"})
        got = c.call(f"GET {PROBE_INDEX}/_doc", c.es.get, index=PROBE_INDEX, id=doc_id)
        if (got.get("_source") or {}).get("written_at") != at:
            raise RestoreFailed(f"{self.where(region)}: the probe document {doc_id} was not read back: {got}")
        return f"{self.where(region)}: probe document written and read back ({PROBE_INDEX}/{doc_id})"

    def rebuild_as_standby(self, old_region: str, new_primary_region: str) -> str:
        if not self.role(new_primary_region).live_primary:
            raise RestoreFailed(f"{self.where(new_primary_region)} does not hold the indices: not deleting them "
                                f"on {old_region}")
        c = self._engine(old_region).cluster()
        names = c.existing(",".join(self._indices()))
        if names:
            c.call("DELETE indices", c.es.indices.delete, index=",".join(names))
        return f"{self.where(old_region)}: {len(names)} stale indices deleted (an empty standby)"

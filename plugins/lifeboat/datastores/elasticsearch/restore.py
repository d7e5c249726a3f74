"""The Elasticsearch restore-test target: the snapshot restored into renamed indices
`restored-<drill id>-<index>` (no aliases, no global state, never a live index name), doc counts and
sampled document hashes compared with the manifest, the restored indices always deleted."""

from __future__ import annotations

from datetime import datetime

from lifeboat.clients.elasticsearch import ElasticsearchApiError
from lifeboat.datastores.base import ScratchTarget
from lifeboat.datastores.elasticsearch.cluster import Cluster
from lifeboat.datastores.elasticsearch.options import RESTORE_PREFIX
from lifeboat.drills import DrillRecorder
from lifeboat.durations import seconds
from lifeboat.errors import Refused, RestoreFailed
from lifeboat.records import Manifest
from lifeboat.waiting import WaitTimeout, wait_until


def restored_name(drill_id: str, index: str) -> str:
    return f"{RESTORE_PREFIX}{drill_id.lower()}-{index}"


class ElasticsearchScratch(ScratchTarget):
    teardown_step = "delete restored indices"

    def __init__(self, cluster: Cluster, m: Manifest, drill: DrillRecorder, prepare=None):
        self.cluster, self.m = cluster, m
        self.prepare = prepare  # registers the repository where it may not be yet (another region's cluster)
        self.repo, self.snap = m.native["repository"], m.native["snapshot"]
        self.indices = list(m.native.get("indices", []))
        self.prefix = f"{RESTORE_PREFIX}{drill.drill.id.lower()}-"
        self.targets = {i: restored_name(drill.drill.id, i) for i in self.indices}
        self.restore_called = False

    def precheck(self, drill: DrillRecorder) -> None:
        c, m, repo, snap = self.cluster, self.m, self.repo, self.snap
        with drill.step("pre-checks") as s:
            if self.prepare is not None:
                self.prepare()
            c.require_repository(repo)
            info = c.get_snapshot(repo, snap)
            if info is None:
                raise RestoreFailed(f"snapshot {snap} is not in repository {repo}; nothing was restored")
            if info.get("state") != "SUCCESS":
                raise RestoreFailed(f"snapshot {snap} in repository {repo} is {info.get('state')}, not SUCCESS "
                                    "(still in progress, or failed); nothing was restored")
            if info.get("uuid") != m.native.get("uuid"):
                raise RestoreFailed(f"snapshot {snap} in {repo} has uuid {info.get('uuid')}, the manifest "
                                    f"recorded {m.native.get('uuid')}: it is not the backup {m.id}")
            absent = [i for i in self.indices if i not in set(info.get("indices") or [])]
            if absent:
                raise RestoreFailed(f"missing index: {', '.join(absent)} not in snapshot {snap} "
                                    f"(it has {', '.join(info.get('indices') or [])}); nothing was restored")
            existing = c.existing(self.prefix + "*")
            if existing:
                raise Refused(f"scratch indices already exist: {', '.join(existing)}; not overwriting them")
            if not all(t.startswith(self.prefix) and t not in self.indices for t in self.targets.values()):
                raise Refused(f"restore targets must all start with {self.prefix}: {self.targets}")
            s.detail = f"{repo}/{snap}: SUCCESS, {len(self.indices)} indices"

    def restore(self, drill: DrillRecorder) -> None:
        c = self.cluster
        with drill.step(f"restore into {self.prefix}*") as s:
            self.restore_called = True
            c.call(f"POST _snapshot/{self.repo}/{self.snap}/_restore", c.es.snapshot.restore, repository=self.repo,
                   snapshot=self.snap, indices=",".join(self.indices), rename_pattern="(.+)",
                   rename_replacement=self.prefix + "$1", include_global_state=False, include_aliases=False,
                   partial=False, wait_for_completion=False,
                   index_settings={"index.number_of_replicas": c.options.restore_replicas})
            s.detail = f"{len(self.indices)} indices from {self.repo}/{self.snap}"
        with drill.step("wait for green/yellow") as s:
            s.detail = self._wait_restored(list(self.targets.values()))

    def _wait_restored(self, names: list[str]) -> str:
        c = self.cluster
        poll = seconds(c.options.poll_interval)

        def health() -> dict:
            try:
                h = c.call("GET _cluster/health", c.es.cluster.health, index=",".join(names), level="indices",
                           wait_for_status="yellow", wait_for_no_initializing_shards=True,
                           timeout=f"{max(1, int(poll))}s")
            except ElasticsearchApiError as exc:
                if exc.status != 408:  # 408: the health wait timed out (shards still initializing): poll on
                    raise
                return {"timed_out": True, "status": "initializing"}
            for n, i in (h.get("indices") or {}).items():
                stuck = i.get("active_primary_shards", 0) < i.get("number_of_shards", 0) and i.get("unassigned_shards")
                if (i.get("status") == "red" or stuck) and not i.get("initializing_shards"):
                    why = self._unassigned_reason(n)
                    if why is not None:
                        raise RestoreFailed(f"restored index {n} is red and cannot be allocated: {why}")
            return h

        def ready(h: dict) -> bool:
            # Elasticsearch reports a freshly restored index yellow while its primaries are still
            # recovering from the repository: ready means every primary is active.
            per = h.get("indices") or {}
            return not h.get("timed_out") and len(per) == len(names) and all(
                i.get("status") in ("green", "yellow") and i.get("active_primary_shards") == i.get("number_of_shards")
                for i in per.values())

        try:
            # the health call itself waits (server side, up to `poll`) for the state: a short pause between
            # calls keeps the answer close to the moment the restore ends (no polling granularity)
            h = wait_until("restored indices green/yellow", health, seconds(c.options.restore_timeout),
                           min(0.02, poll / 2), done=ready)
        except WaitTimeout as exc:
            last = exc.last if isinstance(exc.last, dict) else {}
            per = last.get("indices") or {}
            raise RestoreFailed(
                f"restored indices not green/yellow after restore_timeout={c.options.restore_timeout}: "
                + ", ".join(f"{n}={i.get('status')}" for n, i in sorted(per.items()))) from None
        return f"{h.get('status')}: {len(names)} indices, {h.get('active_primary_shards')} primaries active"

    def _unassigned_reason(self, index: str) -> str | None:
        """Allocation explain for a red index's primary; None while it may still be allocated."""
        c = self.cluster
        try:
            r = c.call("GET _cluster/allocation/explain", c.es.cluster.allocation_explain, index=index, shard=0,
                       primary=True)
        except ElasticsearchApiError:
            return None
        if r.get("can_allocate") in ("no", "no_valid_shard_copy", "no_attempt"):
            deciders = [d.get("explanation") for n in r.get("node_allocation_decisions") or []
                        for d in n.get("deciders") or [] if d.get("decision") == "NO"]
            unassigned = r.get("unassigned_info") or {}
            reason = unassigned.get("details") or unassigned.get("reason")
            return "; ".join(x for x in [r.get("allocate_explanation"), reason, *deciders[:3]] if x)
        return None

    def verify(self, drill: DrillRecorder) -> None:
        m, targets = self.m, self.targets
        with drill.step("doc counts") as s:
            got = self.cluster.counts(list(targets.values()))
            diff, notes = [], []
            for i, t in targets.items():
                if i in m.counts and got[t] != m.counts[i]:
                    diff.append(f"{i}: snapshot had {m.counts[i]}, restored {got[t]}")
                # Written to while the snapshot ran: no exact count exists (inserts AND deletes can
                # leave the snapshot outside [before, after]); shown, and its stable documents are
                # compared by hash below.
                rng = (m.native.get("count_ranges") or {}).get(i)
                if rng and not rng[0] <= got[t] <= rng[1]:
                    notes.append(f"{i}: {got[t]} outside {rng} seen while the snapshot ran (not compared)")
            if diff:
                raise RestoreFailed("doc counts differ from the manifest: " + "; ".join(diff))
            s.detail = ", ".join(f"{i}={got[t]}" for i, t in targets.items()) + "".join(f"; {n}" for n in notes)
        with drill.step("sampled document hashes") as s:
            bad, n = [], 0
            for i, docs in (m.native.get("samples") or {}).items():
                if i not in targets:
                    continue
                got_h = self.cluster.fetch_hashes(targets[i], docs)
                for d in docs:
                    n += 1
                    have = got_h.get(d["id"])
                    if have != d["sha256"]:
                        bad.append(f"{i}/{d['id']}: " + ("missing" if have is None else "content differs"))
            if bad:
                raise RestoreFailed(f"{len(bad)} of {n} sampled documents differ from the snapshot: "
                                    + "; ".join(bad[:10]))
            s.detail = f"{n} documents identical (sha256 of _source)"

    @property
    def heartbeat_index(self) -> str:
        return self.m.native.get("heartbeat_index", self.cluster.options.heartbeat_index)

    def newest_heartbeat(self) -> datetime | None:
        index = self.targets.get(self.heartbeat_index)
        if not index:
            return None
        c = self.cluster
        r = c.call(f"GET {index}/_search", c.es.search, index=index, size=1, sort=[{"written_at": {"order": "desc"}}],
                   source=["written_at"])
        hits = r["hits"]["hits"]
        if not hits:
            return None
        return datetime.fromisoformat(hits[0]["_source"]["written_at"].replace("Z", "+00:00"))

    def heartbeat_detail(self, hb: datetime | None) -> str:
        return hb.isoformat() if hb else f"no heartbeat index {self.heartbeat_index} in the snapshot"

    def teardown(self) -> str:
        if not self.restore_called:
            return "nothing was restored"
        prefix, names = self.prefix, list(self.targets.values())
        if not prefix.startswith(RESTORE_PREFIX) or len(prefix) <= len(RESTORE_PREFIX) + 1:
            raise Refused(f"refusing to delete indices by prefix {prefix!r}")
        c = self.cluster
        todo = sorted(set(c.existing(prefix + "*")) | {n for n in names if n in set(c.existing(n))})
        todo = [n for n in todo if n.startswith(prefix)]
        for n in todo:  # one by one: action.destructive_requires_name forbids wildcard deletes
            try:
                c.call(f"DELETE {n}", c.es.indices.delete, index=n)
            except ElasticsearchApiError as exc:
                if exc.status != 404:
                    raise
        left = c.existing(prefix + "*")
        if left:
            raise RestoreFailed(f"restored indices could not be deleted: {', '.join(left)}")
        return f"deleted {len(todo)} indices ({prefix}*)"

"""One Elasticsearch cluster as the engine uses it: the snapshot repository, the covered indices, counts
and document hashes, snapshot primitives. Every call goes through `clients.elasticsearch.call`, so an
error names the API call, the HTTP status and the Airflow connection."""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any

from lifeboat.clients import elasticsearch as esclient
from lifeboat.clients.elasticsearch import ElasticsearchApiError
from lifeboat.connections import Endpoint
from lifeboat.datastores.elasticsearch.options import ElasticsearchOptions
from lifeboat.durations import seconds
from lifeboat.errors import CommandFailed, ConnectionConfigError, InventoryError, Refused, RestoreFailed
from lifeboat.waiting import WaitTimeout, wait_until

log = logging.getLogger(__name__)


def canonical_hash(source: Any) -> str:
    return hashlib.sha256(json.dumps(source, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
                          .encode()).hexdigest()


class Cluster:
    def __init__(self, ep: Endpoint, options: ElasticsearchOptions, datastore: str):
        self.ep = ep
        self.options = options
        self.datastore = datastore
        self.url = esclient.url(ep)
        self.es = esclient.client(ep, seconds(options.request_timeout))

    def call(self, what: str, fn: Callable[..., Any], **kwargs: Any) -> Any:
        return esclient.call(self.ep, what, fn, **kwargs)

    def version(self) -> str:
        info = self.call("GET _nodes/_local", self.es.nodes.info, node_id="_local", filter_path="nodes.*.version")
        versions = sorted({n.get("version", "?") for n in (info.get("nodes") or {}).values()})
        return ",".join(versions) or "?"

    # -- snapshot repository ----------------------------------------------------------------------
    def get_repository(self, name: str) -> dict | None:
        try:
            r = self.call(f"GET _snapshot/{name}", self.es.snapshot.get_repository, name=name)
        except ElasticsearchApiError as exc:
            if exc.status == 404:
                return None
            raise
        return dict(r).get(name)

    def ensure_repository(self, readonly: bool = False) -> str:
        """Register the repository from the inventory if it is not; refuse to repoint a different one.
        `readonly`: a cluster that only reads the replicated copy (a region that is not active) -- the
        registration is switched to what is wanted (the writer after a failover, read-only again before
        another cluster writes to the copy)."""
        spec = self.options.repository
        field = f"datastores.{self.datastore}.options.repository"
        have = self.get_repository(spec.name)
        want = spec.es_settings(readonly=readonly)
        if have is not None:
            key = "location" if spec.type == "fs" else "bucket"
            if have.get("type") != spec.type or str(have.get("settings", {}).get(key)) != str(want[key]):
                raise Refused(
                    f"{field}: the cluster already has a repository {spec.name!r} of type {have.get('type')} at "
                    f"{have.get('settings', {}).get(key)!r}, not {spec.type} {want[key]!r}; Lifeboat will not repoint "
                    "it (snapshots there would vanish from the catalog). Rename the repository in the inventory or "
                    f"remove the old registration with DELETE _snapshot/{spec.name}.")
            if str(have.get("settings", {}).get("readonly", "false")).lower() == str(readonly).lower():
                return spec.name
            log.info("snapshot repository %s on %s: switching to %s", spec.name, self.url,
                     "read-only" if readonly else "read-write")
        try:
            self.call(f"PUT _snapshot/{spec.name}", self.es.snapshot.create_repository, name=spec.name,
                      repository={"type": spec.type, "settings": want}, verify=not readonly)
        except ElasticsearchApiError as exc:
            if "path.repo" in exc.reason:
                raise Refused(
                    f"{field}.location: {spec.location} is not under the nodes' path.repo whitelist, so "
                    f"Elasticsearch refuses the fs repository {spec.name!r}. Add the folder (or a parent) to "
                    f"path.repo in elasticsearch.yml on every node and restart them, or choose a location under "
                    f"path.repo. ({exc.error_type}: {exc.reason})") from None
            if "does not exist" in exc.reason and "type" in exc.reason:
                raise Refused(
                    f"{field}.type: the cluster has no repository type {spec.type!r} ({exc.reason}); s3 needs the "
                    "repository-s3 module of the default distribution") from None
            raise
        log.info("registered snapshot repository %s (%s %s%s)", spec.name, spec.type,
                 spec.location if spec.type == "fs" else f"s3://{spec.bucket}/{spec.base_path}",
                 ", read-only" if readonly else "")
        return spec.name

    def require_repository(self, name: str) -> dict:
        have = self.get_repository(name)
        if have is None:
            raise RestoreFailed(
                f"unknown snapshot repository {name!r}: it is not registered on {self.url} (Airflow connection "
                f"{self.ep.conn_id!r}). Register it first (PUT _snapshot/{name} with the settings from the "
                f"inventory, see docs/datastores/elasticsearch.md); nothing was restored.")
        return have

    # -- indices -------------------------------------------------------------------------------------
    def existing(self, expr: str, expand: str = "all") -> list[str]:
        """Concrete index names matching `expr` (404: none)."""
        try:
            r = self.call(f"GET _resolve/index/{expr}", self.es.indices.resolve_index, name=expr,
                          expand_wildcards=expand)
        except ElasticsearchApiError as exc:
            if exc.status == 404:
                return []
            raise
        found = {i["name"] for i in r.get("indices", [])}
        for a in r.get("aliases", []):
            found |= set(a.get("indices", []))
        return sorted(found)

    def resolve_indices(self) -> list[str]:
        """Concrete index names for the inventory's `indices` (+ the heartbeat index, if it exists).
        Every entry must resolve to at least one open index."""
        names: set[str] = set()
        missing = []
        for expr in self.options.indices:
            found = self.existing(expr, "open")
            if not found:
                missing.append(expr)
            names |= set(found)
        if missing:
            raise InventoryError(
                f"datastores.{self.datastore}.options.indices: no index matches {', '.join(map(repr, missing))} on "
                f"{self.url} (Airflow connection {self.ep.conn_id!r}); create the index or remove it from "
                "the inventory")
        heartbeat = self.existing(self.options.heartbeat_index, "open")
        if not heartbeat:
            log.warning("heartbeat index %s does not exist yet: the snapshot cannot measure RPO",
                        self.options.heartbeat_index)
        return sorted(n for n in names | set(heartbeat) if not n.startswith("."))

    def check_not_red(self, indices: list[str]) -> None:
        h = self.call("GET _cluster/health", self.es.cluster.health, index=",".join(indices), level="indices",
                      timeout="5s")
        red = {n: i for n, i in (h.get("indices") or {}).items() if i.get("status") == "red"}
        if red:
            detail = ", ".join(f"{n} ({i.get('unassigned_shards', '?')} unassigned shards, "
                               f"{i.get('active_primary_shards', '?')}/{i.get('number_of_shards', '?')} "
                               "primaries active)" for n, i in sorted(red.items()))
            raise Refused(
                f"cluster {h.get('cluster_name')!r} is red for covered indices: {detail}; a snapshot would fail "
                f"(partial snapshots are not backups). Fix allocation first: GET _cluster/allocation/explain")

    def max_seq_nos(self, indices: list[str]) -> dict[str, tuple[int, ...]]:
        st = self.call("GET _stats", self.es.indices.stats, index=",".join(indices), level="shards",
                       filter_path="indices.*.shards.*.routing.primary,indices.*.shards.*.seq_no.max_seq_no")
        out: dict[str, tuple[int, ...]] = {}
        for name, data in (st.get("indices") or {}).items():
            seqs = []
            for shard_no in sorted(data.get("shards", {}), key=int):
                for copy in data["shards"][shard_no]:
                    if copy.get("routing", {}).get("primary"):
                        seqs.append(copy.get("seq_no", {}).get("max_seq_no", -2))
            out[name] = tuple(seqs)
        return out

    def counts(self, indices: list[str]) -> dict[str, int]:
        self.call("POST _refresh", self.es.indices.refresh, index=",".join(indices))
        return {i: int(self.call(f"GET {i}/_count", self.es.count, index=i)["count"]) for i in indices}

    def sample(self, index: str, seed: int) -> list[dict[str, str]]:
        n = self.options.sample_docs
        if n <= 0:
            return []
        r = self.call(f"GET {index}/_search", self.es.search, index=index, size=n,
                      query={"function_score": {"query": {"match_all": {}},
                                                "random_score": {"seed": seed, "field": "_seq_no"},
                                                "boost_mode": "replace"}})
        out = []
        for hit in r["hits"]["hits"]:
            if "_source" not in hit:
                return []  # _source disabled: nothing to hash
            doc = {"id": hit["_id"], "sha256": canonical_hash(hit["_source"])}
            if hit.get("_routing"):
                doc["routing"] = hit["_routing"]
            out.append(doc)
        return out

    def fetch_hashes(self, index: str, docs: list[dict[str, str]]) -> dict[str, str | None]:
        if not docs:
            return {}
        spec = [{"_id": d["id"], **({"routing": d["routing"]} if d.get("routing") else {})} for d in docs]
        r = self.call(f"GET {index}/_mget", self.es.mget, index=index, docs=spec)
        return {d["_id"]: (canonical_hash(d["_source"]) if d.get("found") and "_source" in d else None)
                for d in r["docs"]}

    # -- snapshots -----------------------------------------------------------------------------------
    def get_snapshot(self, repo: str, snap: str, index_details: bool = False) -> dict | None:
        try:
            r = self.call(f"GET _snapshot/{repo}/{snap}", self.es.snapshot.get, repository=repo, snapshot=snap,
                          index_details=index_details)
        except ElasticsearchApiError as exc:
            if exc.status == 404 and exc.error_type == "snapshot_missing_exception":
                return None
            raise
        snaps = r.get("snapshots") or []
        return snaps[0] if snaps else None

    def status(self, repo: str, snap: str, request_timeout: float | None = None) -> dict:
        es = self.es.options(request_timeout=request_timeout) if request_timeout else self.es
        return self.call("GET _status", es.snapshot.status, repository=repo, snapshot=snap)["snapshots"][0]

    def delete_snapshot(self, repo: str, snap: str) -> bool:
        try:
            es = self.es.options(request_timeout=max(300.0, seconds(self.options.request_timeout)))
            self.call(f"DELETE _snapshot/{repo}/{snap}", es.snapshot.delete, repository=repo, snapshot=snap)
            return True
        except ElasticsearchApiError as exc:
            if exc.status == 404 and exc.error_type == "snapshot_missing_exception":
                return False
            raise

    def take_snapshot(self, repo: str, snap: str, **body: Any) -> dict:
        """`PUT _snapshot/<repo>/<snap>?wait_for_completion=true`: the snapshot's info the moment it ends
        (no polling granularity on the critical path). The request waits in a helper thread, so this
        one logs progress every 30 s and enforces snapshot_timeout (then the snapshot is aborted: no
        half-finished snapshot is left). If the connection drops while waiting (the snapshot runs on
        in the cluster), polling (`wait_snapshot`) takes over until the same deadline."""
        timeout = seconds(self.options.snapshot_timeout)
        deadline = time.monotonic() + timeout
        what = f"PUT _snapshot/{repo}/{snap}"
        # no client retry: a second PUT of a running snapshot is an error, not a wait
        es = self.es.options(request_timeout=timeout + 60, max_retries=0)
        pool = ThreadPoolExecutor(1, thread_name_prefix=f"snapshot-{snap}"[:40])
        fut = pool.submit(self.call, what, es.snapshot.create, repository=repo, snapshot=snap,
                          wait_for_completion=True, **body)
        progress = {"logged": time.monotonic()}
        try:
            while True:
                try:
                    r = fut.result(timeout=max(0.0, min(30.0, deadline - time.monotonic())))
                except FutureTimeout:
                    if time.monotonic() >= deadline:
                        self._abort_at_timeout(repo, snap)
                    self._log_progress(repo, snap, progress, every=0)
                    continue
                except ConnectionConfigError as exc:
                    if self.get_snapshot(repo, snap) is None:
                        raise
                    log.warning("%s: connection lost while waiting (%s); polling the snapshot instead", what, exc)
                    return self.wait_snapshot(repo, snap, timeout=max(0.0, deadline - time.monotonic()))
                info = (r or {}).get("snapshot")
                if not info:  # not the wait_for_completion answer: read the snapshot's state instead
                    return self.wait_snapshot(repo, snap, timeout=max(0.0, deadline - time.monotonic()))
                return dict(info)
        finally:
            pool.shutdown(wait=False)

    def _abort_at_timeout(self, repo: str, snap: str) -> None:
        self.delete_snapshot(repo, snap)  # aborts it: no half snapshot is left behind
        raise CommandFailed(
            [f"PUT _snapshot/{repo}/{snap}"], None,
            f"snapshot {snap} still IN_PROGRESS after snapshot_timeout={self.options.snapshot_timeout} "
            f"(datastores.{self.datastore}.options.snapshot_timeout); it was aborted "
            f"(DELETE _snapshot/{repo}/{snap}) "
            "so no partial snapshot is left. Raise the timeout or check the repository's throughput "
            "(max_snapshot_bytes_per_sec).", True)

    def wait_snapshot(self, repo: str, snap: str, timeout: float | None = None) -> dict:
        """Poll (backing off up to poll_interval) until the snapshot is no longer IN_PROGRESS; after
        `timeout` (default snapshot_timeout) abort it, so no half-finished snapshot is left."""
        progress = {"logged": time.monotonic()}

        def state() -> dict:
            info = self.get_snapshot(repo, snap)
            if info is None:
                raise CommandFailed([f"PUT _snapshot/{repo}/{snap}"], None,
                                    f"snapshot {snap} vanished from repository {repo} while in progress "
                                    "(deleted by someone else?)")
            if info.get("state") == "IN_PROGRESS":
                self._log_progress(repo, snap, progress)
            return info

        try:
            return wait_until(f"snapshot {snap}", state,
                              seconds(self.options.snapshot_timeout) if timeout is None else timeout,
                              min(0.1, seconds(self.options.poll_interval)),
                              done=lambda i: i.get("state") != "IN_PROGRESS",
                              max_interval=seconds(self.options.poll_interval))
        except WaitTimeout:
            self._abort_at_timeout(repo, snap)
            raise  # not reached: _abort_at_timeout raises

    def _log_progress(self, repo: str, snap: str, progress: dict[str, float], every: float = 30) -> None:
        if time.monotonic() - progress["logged"] < every:
            return
        progress["logged"] = time.monotonic()
        try:
            ss = self.status(repo, snap)["shards_stats"]
            log.info("snapshot %s in progress: %s/%s shards done", snap, ss.get("done"), ss.get("total"))
        except (ElasticsearchApiError, LookupError):
            pass

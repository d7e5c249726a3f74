"""Elasticsearch: snapshots into a snapshot repository (fs locally, s3 in production).

Backups are Elasticsearch's own snapshots in Elasticsearch's own repository format, so
`PUT _snapshot/<repo>` + `POST _snapshot/<repo>/<snapshot>/_restore` alone bring them back (see
docs/datastores/elasticsearch.md). Lifeboat adds:

* **deterministic snapshot names** (`backup id`, lowercased) tagged with `metadata.lifeboat_backup_id`;
  a retried task finds and replaces its predecessor's unfinished attempt instead of taking a second
  snapshot beside it, and never touches a snapshot it did not take;
* **no worker-slot blocking beyond polling**: the snapshot is started with
  `wait_for_completion=false` and polled (bounded by `snapshot_timeout`; on timeout it is aborted
  so no half-finished snapshot is left);
* **exact counts when they can be exact**: each covered index's `max_seq_no` is read before the
  snapshot starts and after it ends; if no operation happened in between, the doc count taken
  between the two (after a refresh) is exactly what the snapshot holds and goes into
  `manifest.counts`. Indices written during the snapshot get a [min, max] range instead
  (`native.count_ranges`), and only documents unchanged over the whole window are kept as
  sampled hashes. No write block, no pause of the writers;
* **verification**: `POST _snapshot/<repo>/_verify`, snapshot state SUCCESS with zero shard
  failures and the same uuid, `_status` (reads every shard's metadata from the repository), every
  covered index present, manifest counts consistent with the snapshot, and -- for fs repositories
  this worker can read -- every blob of the snapshot's indices checked against the CRC32 in its
  Lucene footer (what `pgbackrest verify` is for PostgreSQL: a flipped byte is found and named);
* **restore tests** into renamed indices `restored-<drill id>-<index>` (no aliases, no global
  state, never a live index name), doc counts and sampled document hashes compared with the
  manifest, the newest heartbeat document read for RPO, the restored indices always deleted;
* **SLM-like retention** (`slm_retention`: expire_after / min_count / max_count) computed by the
  project, so it also works where SLM is unavailable (the integ-test distribution, OSS clusters).
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import struct
import time
import zlib
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from lifeboat.datastores.base import Datastore, EngineOptions
from lifeboat.drills import DrillRecorder
from lifeboat.errors import CommandFailed, ConnectionConfigError, InventoryError, Refused, RestoreFailed
from lifeboat.inventory import parse_duration
from lifeboat.records import Check, Manifest, Verification, utcnow

log = logging.getLogger("lifeboat.elasticsearch")

RESTORE_PREFIX = "restored-"
_INDEX_EXPR = re.compile(r'^[a-z0-9*][^\s\\/?"<>|,#:A-Z]*$')
_FOOTER_MAGIC = 0xC02893E8  # ~CodecUtil.CODEC_MAGIC: every Lucene file (and ES metadata blob) ends with it


# -- options ----------------------------------------------------------------------------------------
def _duration(v: str) -> str:
    parse_duration(v)
    return v


class SnapshotRepository(EngineOptions):
    """The snapshot repository as registered in the cluster (`PUT _snapshot/<name>`)."""

    name: str = Field(default="lifeboat", pattern=r"^[a-z0-9][a-z0-9_.\-]*$")
    type: Literal["fs", "s3"] = "fs"
    location: str = Field(default="", description="fs: absolute path, must be under the nodes' path.repo")
    bucket: str = Field(default="", description="s3: bucket (repository-s3 plugin, built into the default distribution)")
    base_path: str = ""
    client: str = "default"
    compress: bool = True
    settings: dict[str, Any] = Field(default={}, description="extra settings, e.g. max_snapshot_bytes_per_sec")

    @model_validator(mode="after")
    def _by_type(self) -> SnapshotRepository:
        if self.type == "fs" and not self.location.startswith("/"):
            raise ValueError(f"location: an fs repository needs an absolute location, got {self.location!r}")
        if self.type == "s3" and not self.bucket:
            raise ValueError("bucket: an s3 repository needs a bucket")
        return self

    def es_settings(self) -> dict[str, Any]:
        if self.type == "fs":
            base: dict[str, Any] = {"location": self.location, "compress": self.compress}
        else:
            base = {"bucket": self.bucket, "client": self.client, "compress": self.compress}
            if self.base_path:
                base["base_path"] = self.base_path
        return {**base, **self.settings}


class SlmRetention(EngineOptions):
    """Snapshot lifecycle retention, with SLM's meaning: never fewer than `min_count` snapshots,
    never more than `max_count`, and between the two, snapshots older than `expire_after` go."""

    expire_after: str | None = "30d"
    min_count: int = Field(default=5, ge=1)
    max_count: int | None = Field(default=None, ge=1)

    @field_validator("expire_after")
    @classmethod
    def _dur(cls, v: str | None) -> str | None:
        return None if v is None else _duration(v)

    @model_validator(mode="after")
    def _counts(self) -> SlmRetention:
        if self.max_count is not None and self.max_count < self.min_count:
            raise ValueError(f"max_count: {self.max_count} is less than min_count {self.min_count}")
        return self


class ElasticsearchOptions(EngineOptions):
    repository: SnapshotRepository
    indices: list[str] = Field(min_length=1, description="indices (names or wildcard patterns) every snapshot must cover")
    heartbeat_index: str = "lifeboat-heartbeat"
    include_global_state: bool = False
    sample_docs: int = Field(default=20, ge=0, le=1000, description="documents per index whose hashes are recorded")
    slm_retention: SlmRetention | None = None
    snapshot_timeout: str = "2h"
    restore_timeout: str = "2h"
    poll_interval: str = "1s"
    request_timeout: str = "60s"
    restore_replicas: int = Field(default=0, ge=0, description="number_of_replicas of the restored scratch copies")

    @field_validator("snapshot_timeout", "restore_timeout", "poll_interval", "request_timeout")
    @classmethod
    def _dur(cls, v: str) -> str:
        return _duration(v)

    @field_validator("indices")
    @classmethod
    def _names(cls, v: list[str]) -> list[str]:
        for expr in v:
            if not _INDEX_EXPR.match(expr) or expr.startswith(RESTORE_PREFIX):
                raise ValueError(f"{expr!r}: not a lowercase index name or pattern (and never {RESTORE_PREFIX}*)")
        return v

    @field_validator("heartbeat_index")
    @classmethod
    def _hb(cls, v: str) -> str:
        if not _INDEX_EXPR.match(v) or "*" in v:
            raise ValueError(f"{v!r}: not a lowercase index name")
        return v


# -- errors -----------------------------------------------------------------------------------------
class ElasticsearchApiError(CommandFailed):
    """An Elasticsearch API call failed: names the call, the HTTP status, the error type and reason."""

    def __init__(self, call: str, status: int | None, error_type: str, reason: str, conn_id: str):
        self.call, self.status, self.error_type, self.reason, self.conn_id = call, status, error_type, reason, conn_id
        Exception.__init__(self, f"Elasticsearch `{call}` failed (HTTP {status}, Airflow connection {conn_id!r}): "
                                 f"{error_type}: {reason}")
        self.argv, self.returncode, self.output_tail, self.timed_out = [call], status, reason, False


def _error_info(exc: Exception) -> tuple[str, str]:
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        err = body.get("error")
        if isinstance(err, dict):
            rc = (err.get("root_cause") or [{}])[0] or {}
            etype = rc.get("type") or err.get("type") or "error"
            reason = rc.get("reason") or err.get("reason") or ""
            caused = (err.get("caused_by") or {}).get("reason")
            if caused and caused not in reason:
                reason = f"{reason} (caused by: {caused})"
            return etype, reason
        if isinstance(err, str):
            return "error", err
    return type(exc).__name__, str(exc)[:500]


def _canonical_hash(source: Any) -> str:
    return hashlib.sha256(json.dumps(source, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
                          .encode()).hexdigest()


def lucene_footer_problem(parts: list[Path]) -> str | None:
    """None if the blob (one file, or its .partN chunks in order) ends with a valid Lucene footer
    whose CRC32 matches the bytes before it; else what is wrong."""
    sizes = [p.stat().st_size for p in parts]
    total = sum(sizes)
    if total < 16:
        return f"{total} bytes: too short for a Lucene footer"
    crc, left = 0, total - 8
    footer_head = b""
    tail = b""
    for p in parts:
        with open(p, "rb") as fh:
            while True:
                chunk = fh.read(1 << 20)
                if not chunk:
                    break
                if left > 0:
                    use = chunk[:left]
                    crc = zlib.crc32(use, crc)
                    footer_head = (footer_head + use)[-8:]
                    left -= len(use)
                    chunk = chunk[len(use):]
                tail += chunk
    magic, algo = struct.unpack(">ii", footer_head)
    if magic & 0xFFFFFFFF != _FOOTER_MAGIC or algo != 0:
        return "no Lucene footer (truncated or overwritten)"
    (expected,) = struct.unpack(">q", tail[-8:])
    if expected != crc:
        return f"CRC32 {crc:08x} does not match the footer's {expected & 0xFFFFFFFF:08x} (corrupt)"
    return None


# -- the engine -------------------------------------------------------------------------------------
class ElasticsearchDatastore(Datastore):
    engine = "elasticsearch"
    Options = ElasticsearchOptions
    kinds = ("snapshot",)
    restore_series = "snapshot"

    _client_cache: dict[str, Any]

    # -- plumbing --------------------------------------------------------------------------------
    @property
    def repo_name(self) -> str:
        return self.options.repository.name

    def _seconds(self, field: str) -> float:
        return parse_duration(getattr(self.options, field)).total_seconds()

    def _url(self, region: str | None = None) -> tuple[str, Any]:
        ep = self.endpoint(region).require("host")
        extra = ep.extra or {}
        scheme = ep.conn_type if ep.conn_type in ("http", "https") else None
        scheme = scheme or extra.get("scheme") or (ep.schema if ep.schema in ("http", "https") else None)
        scheme = scheme or ("https" if str(extra.get("use_ssl", "")).lower() in ("1", "true", "yes") else "http")
        return f"{scheme}://{ep.host}:{ep.port or 9200}", ep

    def es(self, region: str | None = None):
        """An `elasticsearch.Elasticsearch` client for the region's Airflow connection (cached)."""
        region = region or self.region
        cache = self.__dict__.setdefault("_client_cache", {})
        if region not in cache:
            from elasticsearch import Elasticsearch

            url, ep = self._url(region)
            extra = ep.extra or {}
            kw: dict[str, Any] = {"request_timeout": self._seconds("request_timeout"), "max_retries": 2,
                                  "retry_on_timeout": True}
            if extra.get("api_key"):
                kw["api_key"] = extra["api_key"]
            elif ep.login:
                kw["basic_auth"] = (ep.login, ep.password)
            if extra.get("ca_certs"):
                kw["ca_certs"] = extra["ca_certs"]
            if str(extra.get("verify_certs", "")).lower() in ("0", "false", "no"):
                kw["verify_certs"] = False
            cache[region] = Elasticsearch(url, **kw)
        return cache[region]

    def _conn_id(self, region: str | None = None) -> str:
        return self.spec.connection_for(region or self.region)

    def call(self, what: str, fn, *, region: str | None = None, **kwargs):
        """Run one client call; connection problems and API errors become clear Lifeboat errors."""
        from elasticsearch import ApiError, AuthenticationException, AuthorizationException
        from elasticsearch import ConnectionError as EsConnectionError

        try:
            return fn(**kwargs)
        except (AuthenticationException, AuthorizationException) as exc:
            etype, reason = _error_info(exc)
            raise ConnectionConfigError(
                f"Elasticsearch rejected the credentials of Airflow connection {self._conn_id(region)!r} "
                f"for `{what}` (HTTP {exc.meta.status}): {etype}: {reason}") from None
        except EsConnectionError as exc:
            url, _ = self._url(region)
            raise ConnectionConfigError(
                f"cannot reach Elasticsearch at {url} (Airflow connection {self._conn_id(region)!r}) for `{what}`: "
                f"{str(exc).splitlines()[0][:300]}") from None
        except ApiError as exc:
            etype, reason = _error_info(exc)
            raise ElasticsearchApiError(what, exc.meta.status, etype, reason, self._conn_id(region)) from None

    def snapshot_name(self, backup_id: str) -> str:
        """Snapshot names must be lowercase; backup ids are deterministic, so this is too."""
        return re.sub(r"[^a-z0-9_.\-]", "-", backup_id.lower())

    def _version(self) -> str:
        info = self.call("GET _nodes/_local", self.es().nodes.info, node_id="_local", filter_path="nodes.*.version")
        versions = sorted({n.get("version", "?") for n in (info.get("nodes") or {}).values()})
        return ",".join(versions) or "?"

    # -- repository ------------------------------------------------------------------------------
    def _get_repository(self, name: str, region: str | None = None) -> dict | None:
        try:
            r = self.call(f"GET _snapshot/{name}", self.es(region).snapshot.get_repository, name=name, region=region)
        except ElasticsearchApiError as exc:
            if exc.status == 404:
                return None
            raise
        return dict(r).get(name)

    def ensure_repository(self) -> str:
        """Register the repository from the inventory if it is not; refuse to repoint a different one."""
        spec = self.options.repository
        field = f"datastores.{self.name}.options.repository"
        have = self._get_repository(spec.name)
        want = spec.es_settings()
        if have is not None:
            key = "location" if spec.type == "fs" else "bucket"
            if have.get("type") != spec.type or str(have.get("settings", {}).get(key)) != str(want[key]):
                raise Refused(
                    f"{field}: the cluster already has a repository {spec.name!r} of type {have.get('type')} at "
                    f"{have.get('settings', {}).get(key)!r}, not {spec.type} {want[key]!r}; Lifeboat will not repoint "
                    "it (snapshots there would vanish from the catalog). Rename the repository in the inventory or "
                    f"remove the old registration with DELETE _snapshot/{spec.name}.")
            return spec.name
        try:
            self.call(f"PUT _snapshot/{spec.name}", self.es().snapshot.create_repository, name=spec.name,
                      repository={"type": spec.type, "settings": want}, verify=True)
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
        log.info("registered snapshot repository %s (%s %s)", spec.name, spec.type,
                 spec.location if spec.type == "fs" else f"s3://{spec.bucket}/{spec.base_path}")
        return spec.name

    def require_repository(self, name: str, region: str | None = None) -> dict:
        have = self._get_repository(name, region)
        if have is None:
            url, _ = self._url(region)
            raise RestoreFailed(
                f"unknown snapshot repository {name!r}: it is not registered on {url} (Airflow connection "
                f"{self._conn_id(region)!r}). Register it first (PUT _snapshot/{name} with the settings from the "
                f"inventory, see docs/datastores/elasticsearch.md); nothing was restored.")
        return have

    # -- covered indices -------------------------------------------------------------------------
    def resolve_indices(self, exprs: list[str] | None = None) -> list[str]:
        """Concrete index names for the inventory's `indices` (+ the heartbeat index, if it exists).
        Every entry must resolve to at least one open index."""
        es = self.es()
        names: set[str] = set()
        missing = []
        for expr in exprs or self.options.indices:
            try:
                r = self.call(f"GET _resolve/index/{expr}", es.indices.resolve_index, name=expr,
                              expand_wildcards="open")
            except ElasticsearchApiError as exc:
                if exc.status == 404:
                    missing.append(expr)
                    continue
                raise
            found = {i["name"] for i in r.get("indices", [])}
            for a in r.get("aliases", []):
                found |= set(a.get("indices", []))
            if not found:
                missing.append(expr)
            names |= found
        if missing:
            raise InventoryError(
                f"datastores.{self.name}.options.indices: no index matches {', '.join(map(repr, missing))} on "
                f"{self._url()[0]} (Airflow connection {self._conn_id()!r}); create the index or remove it from "
                "the inventory")
        if exprs is None:
            try:
                r = self.call("GET _resolve/index", es.indices.resolve_index, name=self.options.heartbeat_index)
                names |= {i["name"] for i in r.get("indices", [])}
            except ElasticsearchApiError as exc:
                if exc.status != 404:
                    raise
                log.warning("heartbeat index %s does not exist yet: the snapshot cannot measure RPO",
                            self.options.heartbeat_index)
        return sorted(n for n in names if not n.startswith("."))

    def check_not_red(self, indices: list[str]) -> None:
        h = self.call("GET _cluster/health", self.es().cluster.health, index=",".join(indices), level="indices",
                      timeout="5s")
        red = {n: i for n, i in (h.get("indices") or {}).items() if i.get("status") == "red"}
        if red:
            detail = ", ".join(f"{n} ({i.get('unassigned_shards', '?')} unassigned shards, "
                               f"{i.get('active_primary_shards', '?')}/{i.get('number_of_shards', '?')} primaries active)"
                               for n, i in sorted(red.items()))
            raise Refused(
                f"cluster {h.get('cluster_name')!r} is red for covered indices: {detail}; a snapshot would fail "
                f"(partial snapshots are not backups). Fix allocation first: GET _cluster/allocation/explain")

    def _max_seq_nos(self, indices: list[str]) -> dict[str, tuple[int, ...]]:
        st = self.call("GET _stats", self.es().indices.stats, index=",".join(indices), level="shards",
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

    def _counts(self, indices: list[str]) -> dict[str, int]:
        es = self.es()
        self.call("POST _refresh", es.indices.refresh, index=",".join(indices))
        return {i: int(self.call(f"GET {i}/_count", es.count, index=i)["count"]) for i in indices}

    def _sample(self, index: str, seed: int) -> list[dict[str, str]]:
        n = self.options.sample_docs
        if n <= 0:
            return []
        r = self.call(f"GET {index}/_search", self.es().search, index=index, size=n,
                      query={"function_score": {"query": {"match_all": {}},
                                                "random_score": {"seed": seed, "field": "_seq_no"},
                                                "boost_mode": "replace"}})
        out = []
        for hit in r["hits"]["hits"]:
            if "_source" not in hit:
                return []  # _source disabled: nothing to hash
            doc = {"id": hit["_id"], "sha256": _canonical_hash(hit["_source"])}
            if hit.get("_routing"):
                doc["routing"] = hit["_routing"]
            out.append(doc)
        return out

    def fetch_hashes(self, index: str, docs: list[dict[str, str]]) -> dict[str, str | None]:
        if not docs:
            return {}
        spec = [{"_id": d["id"], **({"routing": d["routing"]} if d.get("routing") else {})} for d in docs]
        r = self.call(f"GET {index}/_mget", self.es().mget, index=index, docs=spec)
        return {d["_id"]: (_canonical_hash(d["_source"]) if d.get("found") and "_source" in d else None)
                for d in r["docs"]}

    # -- snapshot primitives ---------------------------------------------------------------------
    def get_snapshot(self, repo: str, snap: str, region: str | None = None, index_details: bool = False) -> dict | None:
        try:
            r = self.call(f"GET _snapshot/{repo}/{snap}", self.es(region).snapshot.get, repository=repo,
                          snapshot=snap, index_details=index_details, region=region)
        except ElasticsearchApiError as exc:
            if exc.status == 404 and exc.error_type == "snapshot_missing_exception":
                return None
            raise
        snaps = r.get("snapshots") or []
        return snaps[0] if snaps else None

    def _delete_snapshot(self, repo: str, snap: str, region: str | None = None) -> bool:
        try:
            self.call(f"DELETE _snapshot/{repo}/{snap}",
                      self.es(region).options(request_timeout=max(300.0, self._seconds("request_timeout"))).snapshot.delete,
                      repository=repo, snapshot=snap, region=region)
            return True
        except ElasticsearchApiError as exc:
            if exc.status == 404 and exc.error_type == "snapshot_missing_exception":
                return False
            raise

    def _wait_snapshot(self, repo: str, snap: str) -> dict:
        timeout = self._seconds("snapshot_timeout")
        poll = self._seconds("poll_interval")
        deadline = time.monotonic() + timeout
        last_log = time.monotonic()
        nap = min(0.1, poll)  # small snapshots finish in well under a second: back off up to poll_interval
        while True:
            info = self.get_snapshot(repo, snap)
            if info is None:
                raise CommandFailed([f"PUT _snapshot/{repo}/{snap}"], None,
                                    f"snapshot {snap} vanished from repository {repo} while in progress "
                                    "(deleted by someone else?)")
            if info.get("state") != "IN_PROGRESS":
                return info
            if time.monotonic() - last_log > 30:
                last_log = time.monotonic()
                try:
                    st = self.call("GET _status", self.es().snapshot.status, repository=repo, snapshot=snap)
                    ss = st["snapshots"][0]["shards_stats"]
                    log.info("snapshot %s in progress: %s/%s shards done", snap, ss.get("done"), ss.get("total"))
                except (ElasticsearchApiError, LookupError):
                    pass
            if time.monotonic() > deadline:
                self._delete_snapshot(repo, snap)  # aborts it: no half snapshot is left behind
                raise CommandFailed(
                    [f"PUT _snapshot/{repo}/{snap}"], None,
                    f"snapshot {snap} still IN_PROGRESS after snapshot_timeout={self.options.snapshot_timeout} "
                    f"(datastores.{self.name}.options.snapshot_timeout); it was aborted (DELETE _snapshot/{repo}/{snap}) "
                    "so no partial snapshot is left. Raise the timeout or check the repository's throughput "
                    "(max_snapshot_bytes_per_sec).", True)
            time.sleep(nap)
            nap = min(poll, nap * 2)

    # -- backup ----------------------------------------------------------------------------------
    def backup(self, kind: str, backup_id: str) -> Manifest:
        self.check_kind(kind)
        done = self.ctx.repo.manifest(self.name, backup_id)
        if done is not None:
            log.info("backup %s is already complete (retried task): nothing to do", backup_id)
            return done
        started = utcnow()
        repo = self.ensure_repository()
        snap = self.snapshot_name(backup_id)
        indices = self.resolve_indices()
        self.check_not_red(indices)

        prior = self.get_snapshot(repo, snap)
        if prior is not None:
            owner = (prior.get("metadata") or {}).get("lifeboat_backup_id")
            if owner != backup_id:
                raise Refused(f"repository {repo} already has a snapshot named {snap} that Lifeboat did not take "
                              f"for backup {backup_id} (metadata {prior.get('metadata')}); not touching it")
            # An earlier attempt of this very task (no manifest): its counts were never recorded.
            log.info("replacing unfinished attempt %s (state %s) of backup %s", snap, prior.get("state"), backup_id)
            self._delete_snapshot(repo, snap)

        seq_before = self._max_seq_nos(indices)
        counts_before = self._counts(indices)
        seed = int(hashlib.sha256(backup_id.encode()).hexdigest()[:8], 16)
        samples = {i: self._sample(i, seed) for i in indices}
        t0 = time.monotonic()
        self.call(f"PUT _snapshot/{repo}/{snap}", self.es().snapshot.create, repository=repo, snapshot=snap,
                  indices=",".join(indices), include_global_state=self.options.include_global_state,
                  ignore_unavailable=False, partial=False, wait_for_completion=False,
                  metadata={"lifeboat_backup_id": backup_id, "lifeboat_datastore": self.name,
                            "taken_by": "lifeboat"})
        info = self._wait_snapshot(repo, snap)
        wall = time.monotonic() - t0
        if info.get("state") != "SUCCESS" or info.get("shards", {}).get("failed"):
            failures = "; ".join(f"{f.get('index')}[{f.get('shard_id')}]: {f.get('reason')}"
                                 for f in info.get("failures") or []) or "no failure details"
            self._delete_snapshot(repo, snap)
            raise CommandFailed([f"PUT _snapshot/{repo}/{snap}"], None,
                                f"snapshot {snap} ended {info.get('state')} with "
                                f"{info.get('shards', {}).get('failed', '?')} failed shards: {failures}; deleted it")

        seq_after = self._max_seq_nos(indices)
        changed = sorted(i for i in indices if seq_before.get(i) != seq_after.get(i))
        counts = {i: counts_before[i] for i in indices if i not in changed}
        ranges = {}
        if changed:
            after = self._counts(changed)
            ranges = {i: [min(counts_before[i], after[i]), max(counts_before[i], after[i])] for i in changed}
            for i in changed:  # keep only sampled documents that did not change during the window
                now = self.fetch_hashes(i, samples[i])
                samples[i] = [d for d in samples[i] if now.get(d["id"]) == d["sha256"]]
            log.info("indices written during the snapshot (counts recorded as ranges): %s", ranges)

        detail = self.get_snapshot(repo, snap, index_details=True) or info
        status = self.call("GET _status", self.es().snapshot.status, repository=repo, snapshot=snap)["snapshots"][0]
        index_shards = {i: d.get("shard_count") for i, d in (detail.get("index_details") or {}).items()}
        record = {"snapshot": detail, "status": {k: status.get(k) for k in ("state", "shards_stats", "stats")}}
        staging = self.ctx.workdir / "staging" / backup_id
        staging.mkdir(parents=True, exist_ok=True)
        try:
            path = staging / "snapshot.json"
            path.write_text(json.dumps(record, indent=2, sort_keys=True))
            artifact = self.ctx.repo.put_artifact(self.name, backup_id, "snapshot.json", path)
        finally:
            for p in staging.glob("*"):
                p.unlink()
            staging.rmdir()
        rs = self.options.repository
        where = rs.location if rs.type == "fs" else f"s3://{rs.bucket}/{rs.base_path}"
        m = Manifest(
            id=backup_id, datastore=self.name, engine=self.engine, kind=kind, series="snapshot",
            region=self.region, started_at=started, finished_at=utcnow(),
            position={"repository": repo, "snapshot": snap, "uuid": info["uuid"],
                      "snapshot_started_at": info.get("start_time"), "snapshot_finished_at": info.get("end_time")},
            artifacts=[artifact],
            counts=counts,
            tools={"elasticsearch": self._version()},
            native={
                "tool": "elasticsearch snapshot",
                "repository": repo,
                "repository_type": rs.type,
                "repository_location": where,
                "snapshot": snap,
                "uuid": info["uuid"],
                "state": info["state"],
                "indices": sorted(info.get("indices") or []),
                "index_shards": index_shards,
                "shards": info.get("shards", {}),
                "duration_in_millis": info.get("duration_in_millis"),
                "wall_seconds": round(wall, 3),
                "count_ranges": ranges,
                "changed_during_snapshot": changed,
                "samples": {i: s for i, s in samples.items() if s},
                "heartbeat_index": self.options.heartbeat_index,
                "include_global_state": self.options.include_global_state,
                "repo_size": int(status.get("stats", {}).get("incremental", {}).get("size_in_bytes", 0)),
                "total_size": int(status.get("stats", {}).get("total", {}).get("size_in_bytes", 0)),
            },
            source=f"{self._conn_id()} ({self._url()[0]})",
            run=self.ctx.run,
            restore_hint=(f"curl -XPOST '<es>/_snapshot/{repo}/{snap}/_restore' -H 'Content-Type: application/json' "
                          f"-d '{{\"indices\": \"{','.join(sorted(info.get('indices') or []))}\", "
                          "\"include_global_state\": false, \"rename_pattern\": \"(.+)\", "
                          "\"rename_replacement\": \"restored-$1\"}'  (repository must be registered: "
                          f"PUT _snapshot/{repo} {{\"type\": \"{rs.type}\", \"settings\": {json.dumps(rs.es_settings())}}})"),
        )
        return self.ctx.repo.commit(m)

    # -- verification ----------------------------------------------------------------------------
    def verify(self, manifests: list[Manifest]) -> list[Verification]:
        """The weekly, deep verification: every blob of the snapshots' indices is read."""
        return self._verify(manifests, deep=True)

    def verify_new(self, manifests: list[Manifest]) -> list[Verification]:
        """Right after a backup: the same checks, but only the blobs this snapshot wrote are read."""
        return self._verify(manifests, deep=False)

    def _verify(self, manifests: list[Manifest], deep: bool) -> list[Verification]:
        repo_checks: dict[str, Check] = {}
        blob_cache: dict[str, str | None] = {}
        out = []
        for m in manifests:
            repo = m.native.get("repository", self.repo_name)
            if repo not in repo_checks:
                repo_checks[repo] = self._check_repository(repo)
            checks = [repo_checks[repo]]
            if repo_checks[repo].ok:
                checks += self._verify_snapshot(m, repo, blob_cache, deep)
            checks.append(self._check_artifacts(m))
            out.append(self.record_verification(m, checks))
        return out

    def _check_repository(self, repo: str) -> Check:
        if self._get_repository(repo) is None:
            return Check(name="repository verify", ok=False,
                         detail=f"unknown repository {repo!r}: not registered on {self._url()[0]}")
        try:
            r = self.call(f"POST _snapshot/{repo}/_verify",
                          self.es().options(request_timeout=300).snapshot.verify_repository, name=repo)
        except ElasticsearchApiError as exc:
            return Check(name="repository verify", ok=False, detail=f"{exc.error_type}: {exc.reason}")
        nodes = sorted(n.get("name", k) for k, n in (r.get("nodes") or {}).items())
        return Check(name="repository verify", ok=True,
                     detail=f"repository {repo}: {len(nodes)} node(s) can read and write it ({', '.join(nodes)})")

    def _verify_snapshot(self, m: Manifest, repo: str, blob_cache: dict[str, str | None], deep: bool) -> list[Check]:
        snap = m.native["snapshot"]
        checks: list[Check] = []
        try:
            info = self.get_snapshot(repo, snap, index_details=True)
        except ElasticsearchApiError as exc:
            return [Check(name="snapshot state", ok=False, detail=str(exc))]
        if info is None:
            return [Check(name="snapshot state", ok=False, detail=f"snapshot {snap} is not in repository {repo}")]
        shards = info.get("shards", {})
        problems = []
        if info.get("state") != "SUCCESS":
            problems.append(f"state {info.get('state')}")
        if shards.get("failed"):
            problems.append(f"{shards['failed']} failed shards: {info.get('failures')}")
        if info.get("uuid") != m.native.get("uuid"):
            problems.append(f"uuid {info.get('uuid')} is not the one recorded ({m.native.get('uuid')}): "
                            "the snapshot was replaced")
        checks.append(Check(name="snapshot state", ok=not problems,
                            detail="; ".join(problems) or f"{snap}: SUCCESS, {shards.get('successful')}/"
                                                          f"{shards.get('total')} shards, 0 failures"))
        # _status reads every shard's snapshot metadata from the repository itself
        try:
            st = self.call("GET _status", self.es().options(request_timeout=600).snapshot.status, repository=repo,
                           snapshot=snap)["snapshots"][0]
            ss = st.get("shards_stats", {})
            ok = ss.get("done") == ss.get("total") and not ss.get("failed")
            checks.append(Check(name="shard metadata", ok=ok,
                                detail=f"{ss.get('done')}/{ss.get('total')} shards readable in the repository, "
                                       f"{st.get('stats', {}).get('total', {}).get('file_count', '?')} files"))
        except ElasticsearchApiError as exc:
            checks.append(Check(name="shard metadata", ok=False, detail=f"{exc.error_type}: {exc.reason}"))
        in_snap = set(info.get("indices") or [])
        missing = []
        import fnmatch

        for expr in self.options.indices:
            if not any(fnmatch.fnmatchcase(i, expr) for i in in_snap):
                missing.append(expr)
        missing += [i for i in m.native.get("indices", []) if i not in in_snap]
        checks.append(Check(name="covered indices", ok=not missing,
                            detail=f"missing from the snapshot: {', '.join(missing)}" if missing else
                            f"{len(in_snap)} indices, covering {', '.join(self.options.indices)}"))
        checks.append(self._check_manifest_counts(m, info))
        if m.native.get("repository_type", "fs") == "fs":
            since = None if deep else (info.get("start_time_in_millis") or 0) / 1000 - 1
            checks.append(self._check_blobs(m, info, blob_cache, since))
        return checks

    def _check_manifest_counts(self, m: Manifest, info: dict) -> Check:
        problems = []
        indices = set(m.native.get("indices", []))
        if indices != set(info.get("indices") or []):
            problems.append(f"manifest lists {sorted(indices)}, snapshot has {sorted(info.get('indices') or [])}")
        details = info.get("index_details") or {}
        for i, n in (m.native.get("index_shards") or {}).items():
            if details.get(i, {}).get("shard_count") != n:
                problems.append(f"{i}: {n} shards in the manifest, {details.get(i, {}).get('shard_count')} in the snapshot")
        total = sum((m.native.get("index_shards") or {}).values())
        if total != info.get("shards", {}).get("total"):
            problems.append(f"shard total {total} != snapshot's {info.get('shards', {}).get('total')}")
        ranges = m.native.get("count_ranges") or {}
        for i in indices:
            if i not in m.counts and i not in ranges:
                problems.append(f"{i}: no doc count recorded")
        for i, c in m.counts.items():
            if i not in indices or c < 0:
                problems.append(f"count for {i} ({c}) does not belong to the snapshot")
        for i, docs in (m.native.get("samples") or {}).items():
            limit = m.counts.get(i, (ranges.get(i) or [0, 0])[1])
            if i not in indices or len(docs) > limit:
                problems.append(f"{len(docs)} sampled documents for {i} (count {limit})")
        return Check(name="manifest counts", ok=not problems,
                     detail="; ".join(problems) or f"{len(indices)} indices, {total} shards, "
                                                   f"{sum(m.counts.values())} docs (exact) consistent with the snapshot")

    def _check_blobs(self, m: Manifest, info: dict, cache: dict[str, str | None], since: float | None = None) -> Check:
        """CRC32 of every blob of the snapshot's indices against its Lucene footer (fs repositories);
        with `since` (epoch seconds) only the blobs written from then on, i.e. by this snapshot."""
        name = "repository blob checksums"
        root = Path(m.native.get("repository_location") or self.options.repository.location)
        try:
            gen = int.from_bytes((root / "index.latest").read_bytes(), "big")
            data = json.loads((root / f"index-{gen}").read_bytes())
        except FileNotFoundError as exc:
            return Check(name=name, ok=False, detail=f"{exc.filename} is missing from the repository")
        except PermissionError:
            return Check(name=name, ok=True, detail=f"skipped: {root} is not readable from this worker")
        except (OSError, ValueError) as exc:
            return Check(name=name, ok=True, detail=f"skipped: cannot read the repository index under {root}: {exc}")
        uuid = info["uuid"]
        folders = {n: v["id"] for n, v in (data.get("indices") or {}).items() if uuid in v.get("snapshots", [])}
        problems = [f"{i}: not in the repository index ({root}/index-{gen})" for i in info.get("indices", [])
                    if i not in folders]
        blobs: dict[str, list[Path]] = {}
        for f in (root / f"snap-{uuid}.dat", root / f"meta-{uuid}.dat"):
            blobs[str(f)] = [f]
        for folder in folders.values():
            base = root / "indices" / folder
            if not base.is_dir():
                problems.append(f"{base}: folder missing")
                continue
            for p in sorted(base.rglob("*")):
                if p.is_file() and (since is None or p.stat().st_mtime >= since):
                    key = re.sub(r"\.part\d+$", "", str(p))
                    blobs.setdefault(key, []).append(p)
        n_bytes = 0
        for key, parts in blobs.items():
            parts.sort(key=lambda p: int(m_.group(1)) if (m_ := re.search(r"\.part(\d+)$", p.name)) else 0)
            if key not in cache:
                try:
                    cache[key] = lucene_footer_problem(parts)
                except FileNotFoundError:
                    cache[key] = "missing"
            n_bytes += sum(p.stat().st_size for p in parts if p.exists())
            if cache[key]:
                problems.append(f"{key}: {cache[key]}")
        return Check(name=name, ok=not problems,
                     detail="; ".join(problems[:20]) + (f" (+{len(problems) - 20} more)" if len(problems) > 20 else "")
                     if problems else f"{len(blobs)} {'' if since is None else 'new '}blobs ({n_bytes / 1e6:.1f} MB) "
                                      "match their Lucene CRC32 footers")

    def _check_artifacts(self, m: Manifest) -> Check:
        repo = self.ctx.repo.primary
        prefix = self.ctx.repo.backup_prefix(self.name, m.id)
        bad = []
        for a in m.artifacts:
            try:
                raw = repo.get_bytes(prefix + a.path)
            except Exception as exc:
                bad.append(f"{prefix}{a.path}: unreadable ({exc})")
                continue
            if len(raw) != a.size or hashlib.sha256(raw).hexdigest() != a.sha256:
                bad.append(f"{prefix}{a.path}: sha256/size differ from the manifest")
        return Check(name="artifact checksums", ok=not bad,
                     detail="; ".join(bad) or f"{len(m.artifacts)} files match their sha256")

    # -- restore test ----------------------------------------------------------------------------
    def restored_name(self, drill_id: str, index: str) -> str:
        return f"{RESTORE_PREFIX}{drill_id.lower()}-{index}"

    def restore_test(self, manifest: Manifest, target: str, drill: DrillRecorder) -> None:
        if target not in ("latest", "", None):
            raise Refused(f"restore target {target!r}: an Elasticsearch snapshot restores the state it was taken "
                          "at; pick the snapshot (backup id) instead and use target 'latest'")
        repo, snap = manifest.native["repository"], manifest.native["snapshot"]
        indices = list(manifest.native.get("indices", []))
        prefix = f"{RESTORE_PREFIX}{drill.drill.id.lower()}-"
        targets = {i: self.restored_name(drill.drill.id, i) for i in indices}
        restore_called = False
        try:
            drill.restore_started()
            with drill.step("pre-checks") as s:
                self.require_repository(repo)
                info = self.get_snapshot(repo, snap)
                if info is None:
                    raise RestoreFailed(f"snapshot {snap} is not in repository {repo}; nothing was restored")
                if info.get("state") != "SUCCESS":
                    raise RestoreFailed(f"snapshot {snap} in repository {repo} is {info.get('state')}, not SUCCESS "
                                        "(still in progress, or failed); nothing was restored")
                if info.get("uuid") != manifest.native.get("uuid"):
                    raise RestoreFailed(f"snapshot {snap} in {repo} has uuid {info.get('uuid')}, the manifest "
                                        f"recorded {manifest.native.get('uuid')}: it is not the backup {manifest.id}")
                absent = [i for i in indices if i not in set(info.get("indices") or [])]
                if absent:
                    raise RestoreFailed(f"missing index: {', '.join(absent)} not in snapshot {snap} "
                                        f"(it has {', '.join(info.get('indices') or [])}); nothing was restored")
                existing = self._existing(prefix + "*")
                if existing:
                    raise Refused(f"scratch indices already exist: {', '.join(existing)}; not overwriting them")
                if not all(t.startswith(prefix) and t not in indices for t in targets.values()):
                    raise Refused(f"restore targets must all start with {prefix}: {targets}")
                s.detail = f"{repo}/{snap}: SUCCESS, {len(indices)} indices"
            with drill.step(f"restore into {prefix}*") as s:
                restore_called = True
                self.call(f"POST _snapshot/{repo}/{snap}/_restore", self.es().snapshot.restore, repository=repo,
                          snapshot=snap, indices=",".join(indices), rename_pattern="(.+)",
                          rename_replacement=prefix + "$1", include_global_state=False, include_aliases=False,
                          partial=False, wait_for_completion=False,
                          index_settings={"index.number_of_replicas": self.options.restore_replicas})
                s.detail = f"{len(indices)} indices from {repo}/{snap}"
            with drill.step("wait for green/yellow") as s:
                s.detail = self._wait_restored(list(targets.values()))
            with drill.step("doc counts") as s:
                got = self._counts(list(targets.values()))
                diff, notes = [], []
                for i, t in targets.items():
                    if i in manifest.counts and got[t] != manifest.counts[i]:
                        diff.append(f"{i}: snapshot had {manifest.counts[i]}, restored {got[t]}")
                    # Written to while the snapshot ran: no exact count exists (inserts AND deletes can
                    # leave the snapshot outside [before, after]); shown, and its stable documents are
                    # compared by hash below.
                    rng = (manifest.native.get("count_ranges") or {}).get(i)
                    if rng and not rng[0] <= got[t] <= rng[1]:
                        notes.append(f"{i}: {got[t]} outside {rng} seen while the snapshot ran (not compared)")
                if diff:
                    raise RestoreFailed("doc counts differ from the manifest: " + "; ".join(diff))
                s.detail = ", ".join(f"{i}={got[t]}" for i, t in targets.items()) + "".join(f"; {n}" for n in notes)
            with drill.step("sampled document hashes") as s:
                bad, n = [], 0
                for i, docs in (manifest.native.get("samples") or {}).items():
                    if i not in targets:
                        continue
                    got_h = self.fetch_hashes(targets[i], docs)
                    for d in docs:
                        n += 1
                        if got_h.get(d["id"]) != d["sha256"]:
                            bad.append(f"{i}/{d['id']}: " + ("missing" if got_h.get(d["id"]) is None else "content differs"))
                if bad:
                    raise RestoreFailed(f"{len(bad)} of {n} sampled documents differ from the snapshot: "
                                        + "; ".join(bad[:10]))
                s.detail = f"{n} documents identical (sha256 of _source)"
            drill.ready()
            with drill.step("newest heartbeat") as s:
                hb_index = manifest.native.get("heartbeat_index", self.options.heartbeat_index)
                hb = self._newest_heartbeat(targets.get(hb_index)) if hb_index in targets else None
                drill.heartbeat_found(hb)
                s.detail = hb.isoformat() if hb else f"no heartbeat index {hb_index} in the snapshot"
        finally:
            if restore_called:
                with drill.step("delete restored indices") as s:
                    s.detail = self._drop_restored(prefix, list(targets.values()))

    def _existing(self, expr: str) -> list[str]:
        try:
            r = self.call(f"GET _resolve/index/{expr}", self.es().indices.resolve_index, name=expr,
                          expand_wildcards="all")
        except ElasticsearchApiError as exc:
            if exc.status == 404:
                return []
            raise
        return sorted(i["name"] for i in r.get("indices", []))

    def _drop_restored(self, prefix: str, names: list[str]) -> str:
        if not prefix.startswith(RESTORE_PREFIX) or len(prefix) <= len(RESTORE_PREFIX) + 1:
            raise Refused(f"refusing to delete indices by prefix {prefix!r}")
        todo = sorted(set(self._existing(prefix + "*")) | {n for n in names if n in set(self._existing(n))})
        todo = [n for n in todo if n.startswith(prefix)]
        for n in todo:  # one by one: action.destructive_requires_name forbids wildcard deletes
            try:
                self.call(f"DELETE {n}", self.es().indices.delete, index=n)
            except ElasticsearchApiError as exc:
                if exc.status != 404:
                    raise
        left = self._existing(prefix + "*")
        if left:
            raise RestoreFailed(f"restored indices could not be deleted: {', '.join(left)}")
        return f"deleted {len(todo)} indices ({prefix}*)"

    def _wait_restored(self, names: list[str]) -> str:
        es = self.es()
        deadline = time.monotonic() + self._seconds("restore_timeout")
        poll = self._seconds("poll_interval")
        while True:
            h = self.call("GET _cluster/health", es.cluster.health, index=",".join(names), level="indices",
                          wait_for_status="yellow", wait_for_no_initializing_shards=True,
                          timeout=f"{max(1, int(poll))}s")
            per = h.get("indices") or {}
            # Elasticsearch reports a freshly restored index yellow while its primaries are still
            # recovering from the repository: ready means every primary is active.
            if not h.get("timed_out") and len(per) == len(names) and all(
                    i.get("status") in ("green", "yellow") and i.get("active_primary_shards") == i.get("number_of_shards")
                    for i in per.values()):
                return (f"{h.get('status')}: {len(names)} indices, {h.get('active_primary_shards')} primaries "
                        "active")
            for n, i in per.items():
                stuck = i.get("active_primary_shards", 0) < i.get("number_of_shards", 0) and i.get("unassigned_shards")
                if (i.get("status") == "red" or stuck) and not i.get("initializing_shards"):
                    why = self._unassigned_reason(n)
                    if why is not None:
                        raise RestoreFailed(f"restored index {n} is red and cannot be allocated: {why}")
            if time.monotonic() > deadline:
                raise RestoreFailed(
                    f"restored indices not green/yellow after restore_timeout={self.options.restore_timeout}: "
                    + ", ".join(f"{n}={i.get('status')}" for n, i in sorted(per.items())))
            time.sleep(poll / 2)

    def _unassigned_reason(self, index: str) -> str | None:
        """Allocation explain for a red index's primary; None while it may still be allocated."""
        try:
            r = self.call("GET _cluster/allocation/explain", self.es().cluster.allocation_explain, index=index,
                          shard=0, primary=True)
        except ElasticsearchApiError:
            return None
        if r.get("can_allocate") in ("no", "no_valid_shard_copy", "no_attempt"):
            deciders = [d.get("explanation") for n in r.get("node_allocation_decisions") or []
                        for d in n.get("deciders") or [] if d.get("decision") == "NO"]
            reason = (r.get("unassigned_info") or {}).get("details") or (r.get("unassigned_info") or {}).get("reason")
            return "; ".join(x for x in [r.get("allocate_explanation"), reason, *deciders[:3]] if x)
        return None

    def _newest_heartbeat(self, index: str | None) -> datetime | None:
        if not index:
            return None
        r = self.call(f"GET {index}/_search", self.es().search, index=index, size=1,
                      sort=[{"written_at": {"order": "desc"}}], source=["written_at"])
        hits = r["hits"]["hits"]
        if not hits:
            return None
        return datetime.fromisoformat(hits[0]["_source"]["written_at"].replace("Z", "+00:00"))

    # -- heartbeat -------------------------------------------------------------------------------
    def heartbeat(self) -> datetime:
        es = self.es()
        idx = self.options.heartbeat_index
        try:
            self.call(f"PUT {idx}", es.indices.create, index=idx,
                      settings={"number_of_shards": 1, "auto_expand_replicas": "0-1"},
                      mappings={"properties": {"region": {"type": "keyword"}, "written_at": {"type": "date"},
                                               "source": {"type": "keyword"}}})
        except ElasticsearchApiError as exc:
            if exc.error_type != "resource_already_exists_exception":
                raise
        now = utcnow()
        self.call(f"POST {idx}/_doc", es.index, index=idx,
                  document={"region": self.region, "written_at": now.isoformat(), "source": "lifeboat"})
        return now

    # -- retention -------------------------------------------------------------------------------
    def retention_plan(self, now: datetime | None = None):
        """SLM's rules when `options.slm_retention` is set, else the inventory's generic keep rules.

        SLM semantics, per series "snapshot", newest first: the newest `min_count` are always kept;
        anything beyond the newest `max_count` goes; in between, snapshots older than `expire_after`
        go. Lifeboat's invariant on top: the newest verified backup is always kept.
        """
        from lifeboat.catalog import Catalog, RetentionPlan

        cat = Catalog(self.ctx.repo)
        r = self.options.slm_retention
        if r is None:
            return cat.retention_plan(self.name, self.spec.retention, now)
        now = now or utcnow()
        plan = RetentionPlan(self.name)
        expire = parse_duration(r.expire_after) if r.expire_after else None
        newest_first = list(reversed(cat.backups(self.name)))
        vmap = cat.verification_map(self.name)
        verified = [m for m in newest_first if vmap.get(m.id) is not None and vmap[m.id].ok]
        delete = []
        for n, m in enumerate(newest_first):
            if n < r.min_count:
                plan.keep.setdefault(m.id, []).append(f"min_count={r.min_count}")
            elif (r.max_count is not None and n >= r.max_count) or (expire is not None and now - m.finished_at > expire):
                delete.append(m)
            else:
                plan.keep.setdefault(m.id, []).append(
                    f"expire_after={r.expire_after}" if expire else "no expire_after")
        if verified:
            plan.keep.setdefault(verified[0].id, []).append("newest verified")
        plan.delete = [m for m in delete if m.id not in plan.keep]
        return plan

    def delete_backup(self, manifest: Manifest) -> None:
        """The snapshot first, then the catalog entry.

        Deleting a snapshot is atomic in Elasticsearch (a new repository generation without it, then
        blob clean-up), so there is no half-deleted snapshot. If the DELETE fails (snapshot in use by a
        restore, repository gone) the manifest stays and the next retention run tries again; the
        other order would leave an invisible snapshot that no catalog lists.
        """
        repo, snap = manifest.native["repository"], manifest.native["snapshot"]
        if self._get_repository(repo) is None:
            raise Refused(f"cannot delete backup {manifest.id}: repository {repo!r} is not registered on "
                          f"{self._url()[0]}; nothing deleted")
        info = self.get_snapshot(repo, snap)
        if info is not None:
            if info.get("uuid") != manifest.native.get("uuid"):
                raise Refused(f"snapshot {repo}/{snap} has uuid {info.get('uuid')}, not the {manifest.native.get('uuid')} "
                              f"of backup {manifest.id}: not deleting someone else's snapshot")
            try:
                self._delete_snapshot(repo, snap)
            except ElasticsearchApiError as exc:
                raise Refused(f"cannot delete snapshot {repo}/{snap} of backup {manifest.id}: {exc.error_type}: "
                              f"{exc.reason}; the catalog entry is kept, retention will retry") from None
        else:
            log.warning("snapshot %s/%s of %s was already gone; removing the catalog entry", repo, snap, manifest.id)
        self.ctx.repo.delete_backup(self.name, manifest.id)


__all__ = ["ElasticsearchApiError", "ElasticsearchDatastore", "ElasticsearchOptions", "lucene_footer_problem"]

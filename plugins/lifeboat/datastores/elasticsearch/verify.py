"""Elasticsearch verification: repository verify, snapshot state, shard metadata, covered indices,
manifest counts, and (fs repositories) every blob's Lucene CRC32."""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field

from lifeboat.clients.elasticsearch import ElasticsearchApiError
from lifeboat.datastores.elasticsearch.cluster import Cluster
from lifeboat.datastores.elasticsearch.lucene import check_blobs
from lifeboat.records import Check, Manifest


@dataclass
class Batch:
    """Read once per verification run: one `_verify` per repository, one CRC per blob."""

    repositories: dict[str, Check] = field(default_factory=dict)
    blobs: dict[str, str | None] = field(default_factory=dict)


def check_repository(cluster: Cluster, repo: str) -> Check:
    if cluster.get_repository(repo) is None:
        return Check(name="repository verify", ok=False, detail=f"unknown repository {repo!r}: not registered on "
                                                                f"{cluster.url}")
    try:
        r = cluster.call(f"POST _snapshot/{repo}/_verify",
                         cluster.es.options(request_timeout=300).snapshot.verify_repository, name=repo)
    except ElasticsearchApiError as exc:
        return Check(name="repository verify", ok=False, detail=f"{exc.error_type}: {exc.reason}")
    nodes = sorted(n.get("name", k) for k, n in (r.get("nodes") or {}).items())
    return Check(name="repository verify", ok=True,
                 detail=f"repository {repo}: {len(nodes)} node(s) can read and write it ({', '.join(nodes)})")


def snapshot_checks(cluster: Cluster, m: Manifest, repo: str, batch: Batch, deep: bool) -> list[Check]:
    snap = m.native["snapshot"]
    try:
        info = cluster.get_snapshot(repo, snap, index_details=True)
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
    checks = [Check(name="snapshot state", ok=not problems,
                    detail="; ".join(problems) or f"{snap}: SUCCESS, {shards.get('successful')}/"
                                                  f"{shards.get('total')} shards, 0 failures")]
    # _status reads every shard's snapshot metadata from the repository itself
    try:
        st = cluster.status(repo, snap, request_timeout=600)
        ss = st.get("shards_stats", {})
        checks.append(Check(name="shard metadata", ok=ss.get("done") == ss.get("total") and not ss.get("failed"),
                            detail=f"{ss.get('done')}/{ss.get('total')} shards readable in the repository, "
                                   f"{st.get('stats', {}).get('total', {}).get('file_count', '?')} files"))
    except ElasticsearchApiError as exc:
        checks.append(Check(name="shard metadata", ok=False, detail=f"{exc.error_type}: {exc.reason}"))
    in_snap = set(info.get("indices") or [])
    exprs = cluster.options.indices
    missing = [e for e in exprs if not any(fnmatch.fnmatchcase(i, e) for i in in_snap)]
    missing += [i for i in m.native.get("indices", []) if i not in in_snap]
    checks.append(Check(name="covered indices", ok=not missing,
                        detail=f"missing from the snapshot: {', '.join(missing)}" if missing else
                        f"{len(in_snap)} indices, covering {', '.join(exprs)}"))
    checks.append(manifest_counts(m, info))
    if m.native.get("repository_type", "fs") == "fs":
        since = None if deep else (info.get("start_time_in_millis") or 0) / 1000 - 1
        checks.append(check_blobs(m, info, batch.blobs, since, cluster.options.repository.location))
    return checks


def manifest_counts(m: Manifest, info: dict) -> Check:
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
    problems += [f"{i}: no doc count recorded" for i in indices if i not in m.counts and i not in ranges]
    problems += [f"count for {i} ({c}) does not belong to the snapshot" for i, c in m.counts.items()
                 if i not in indices or c < 0]
    for i, docs in (m.native.get("samples") or {}).items():
        limit = m.counts.get(i, (ranges.get(i) or [0, 0])[1])
        if i not in indices or len(docs) > limit:
            problems.append(f"{len(docs)} sampled documents for {i} (count {limit})")
    return Check(name="manifest counts", ok=not problems,
                 detail="; ".join(problems) or f"{len(indices)} indices, {total} shards, "
                                               f"{sum(m.counts.values())} docs (exact) consistent with the snapshot")

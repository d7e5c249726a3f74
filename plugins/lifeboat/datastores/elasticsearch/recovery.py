"""The Elasticsearch recovery target (lifeboat_recover): the snapshot restored into NEW indices
`recovered-<tag>-<index>` on the region's cluster, kept; doc counts and sampled document hashes
compared with the manifest as in a restore test. A service reads the recovered indices through its
index names (or aliases you move once they are checked: docs/datastores/elasticsearch.md); the
cluster URL stays the same. No live variant (deleting a live index is a manual decision).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast

from lifeboat.datastores.base import RecoveryTarget
from lifeboat.datastores.elasticsearch.cluster import Cluster
from lifeboat.datastores.elasticsearch.restore import ElasticsearchScratch
from lifeboat.errors import Refused
from lifeboat.records import Manifest

RECOVERED_PREFIX = "recovered-"


class RecoveredIndices(ElasticsearchScratch):
    """ElasticsearchScratch's restore and checks with a kept, `recovered-<tag>-` prefix."""

    def __init__(self, cluster: Cluster, m: Manifest, tag: str):
        self.cluster, self.m = cluster, m
        self.repo, self.snap = m.native["repository"], m.native["snapshot"]
        self.indices = list(m.native.get("indices", []))
        self.prefix = f"{RECOVERED_PREFIX}{tag.lower()}-"
        self.targets = {i: self.prefix + i for i in self.indices}
        self.restore_called = False

    def delete_restored(self) -> str:
        if not self.restore_called:
            return "nothing was restored"
        c, prefix = self.cluster, self.prefix
        if not prefix.startswith(RECOVERED_PREFIX) or len(prefix) <= len(RECOVERED_PREFIX) + 1:
            raise Refused(f"refusing to delete indices by prefix {prefix!r}")
        gone = [n for n in c.existing(prefix + "*") if n.startswith(prefix)]
        for n in gone:
            c.call(f"DELETE {n}", c.es.indices.delete, index=n)
        return f"deleted {len(gone)} indices ({prefix}*)"


class ElasticsearchRecovery(RecoveryTarget):
    def __init__(self, cluster: Cluster, m: Manifest, tag: str, name: str):
        self.name = name
        self.inner = RecoveredIndices(cluster, m, tag)

    def precheck(self, steps: Any) -> None:
        self.inner.precheck(cast(Any, _Prefixed(steps, self.name)))

    def restore(self, steps: Any) -> None:
        self.inner.restore(cast(Any, _Prefixed(steps, self.name)))

    def verify(self, steps: Any) -> None:
        self.inner.verify(cast(Any, _Prefixed(steps, f"validate {self.name}:")))

    def newest_heartbeat(self) -> datetime | None:
        return self.inner.newest_heartbeat()

    def heartbeats(self, since: datetime) -> list[datetime]:
        index = self.inner.targets.get(self.inner.heartbeat_index)
        if not index:
            return []
        c = self.inner.cluster
        r = c.call(f"GET {index}/_search", c.es.search, index=index, size=10000, source=["written_at"],
                   query={"range": {"written_at": {"gte": since.isoformat()}}}, sort=[{"written_at": {"order": "asc"}}])
        return [datetime.fromisoformat(h["_source"]["written_at"].replace("Z", "+00:00")) for h in r["hits"]["hits"]]

    def locator(self) -> dict[str, Any]:
        return {"engine": "elasticsearch", "into": "new", "indices": dict(self.inner.targets),
                "snapshot": self.inner.snap}

    def abandon(self) -> str:
        return self.inner.delete_restored()


class _Prefixed:
    """Steps recorded with the datastore's name in front (the scratch target's names are generic)."""

    def __init__(self, steps: Any, prefix: str):
        self.steps, self.prefix = steps, prefix

    def step(self, name: str):
        return self.steps.step(f"{self.prefix} {name}")

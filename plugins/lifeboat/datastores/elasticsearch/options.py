"""Elasticsearch engine options (`datastores.<name>.options`): pydantic only, cheap at DAG-parse time."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from lifeboat.datastores.options import EngineOptions
from lifeboat.durations import DurationStr

RESTORE_PREFIX = "restored-"
_INDEX_EXPR = re.compile(r'^[a-z0-9*][^\s\\/?"<>|,#:A-Z]*$')


class RegionalRepository(EngineOptions):
    """Where the replicated copy of the snapshot repository is in another region (what differs there)."""

    location: str = Field(default="", description="fs: absolute path under that region's nodes' path.repo")
    bucket: str = Field(default="", description="s3: that region's (CRR-replicated) bucket")
    base_path: str | None = None


class SnapshotRepository(EngineOptions):
    """The snapshot repository as registered in the cluster (`PUT _snapshot/<name>`). `regions` names
    the replicated copy each other region's cluster reads (registered read-only there until a failover
    makes that region the writer)."""

    name: str = Field(default="lifeboat", pattern=r"^[a-z0-9][a-z0-9_.\-]*$")
    type: Literal["fs", "s3"] = "fs"
    location: str = Field(default="", description="fs: absolute path, must be under the nodes' path.repo")
    bucket: str = Field(default="", description="s3: bucket (repository-s3, built into the default distribution)")
    base_path: str = ""
    client: str = "default"
    compress: bool = True
    settings: dict[str, Any] = Field(default={}, description="extra settings, e.g. max_snapshot_bytes_per_sec")
    regions: dict[str, RegionalRepository] = Field(
        default={}, description="region -> its copy of the repository (fs location or s3 bucket); regions not "
                                "listed use location/bucket")

    @model_validator(mode="after")
    def _by_type(self) -> SnapshotRepository:
        if self.type == "fs" and not self.location.startswith("/"):
            raise ValueError(f"location: an fs repository needs an absolute location, got {self.location!r}")
        if self.type == "s3" and not self.bucket:
            raise ValueError("bucket: an s3 repository needs a bucket")
        return self

    def for_region(self, region: str) -> SnapshotRepository:
        """The repository as the region's cluster registers it (its replicated copy)."""
        r = self.regions.get(region)
        if r is None:
            return self
        update = {k: v for k, v in (("location", r.location), ("bucket", r.bucket), ("base_path", r.base_path))
                  if v}
        return self.model_copy(update={**update, "regions": {}})

    def es_settings(self, readonly: bool = False) -> dict[str, Any]:
        if self.type == "fs":
            base: dict[str, Any] = {"location": self.location, "compress": self.compress}
        else:
            base = {"bucket": self.bucket, "client": self.client, "compress": self.compress}
            if self.base_path:
                base["base_path"] = self.base_path
        out = {**base, **self.settings}
        if readonly:
            out["readonly"] = True
        return out


class SlmRetention(EngineOptions):
    """Snapshot lifecycle retention, with SLM's meaning: never fewer than `min_count` snapshots,
    never more than `max_count`, and between the two, snapshots older than `expire_after` go."""

    expire_after: DurationStr | None = "30d"
    min_count: int = Field(default=5, ge=1)
    max_count: int | None = Field(default=None, ge=1)

    @model_validator(mode="after")
    def _counts(self) -> SlmRetention:
        if self.max_count is not None and self.max_count < self.min_count:
            raise ValueError(f"max_count: {self.max_count} is less than min_count {self.min_count}")
        return self


class ElasticsearchOptions(EngineOptions):
    repository: SnapshotRepository
    indices: list[str] = Field(min_length=1, description="indices (names or patterns) every snapshot must cover")
    heartbeat_index: str = "lifeboat-heartbeat"
    include_global_state: bool = False
    sample_docs: int = Field(default=20, ge=0, le=1000, description="documents per index whose hashes are recorded")
    slm_retention: SlmRetention | None = None
    snapshot_timeout: DurationStr = "2h"
    restore_timeout: DurationStr = "2h"
    poll_interval: DurationStr = "1s"
    request_timeout: DurationStr = "60s"
    restore_replicas: int = Field(default=0, ge=0, description="number_of_replicas of the restored scratch copies")

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

"""S3 replication engine options (`datastores.<name>.options`): pydantic only, cheap at DAG-parse time."""

from __future__ import annotations

from pydantic import Field

from lifeboat.datastores.options import EngineOptions
from lifeboat.durations import DurationStr


class ObjectsOptions(EngineOptions):
    buckets: dict[str, str] = Field(min_length=2, description="region -> bucket; the primary's replicates to the "
                                    "standby's")
    prefix: str = Field(default="", description="only keys under this prefix are compared")
    replication_file: str = Field(default="", description="where GetBucketReplication cannot be asked (SeaweedFS): "
                                  "a JSON file in its shape (the devstack's replication.json)")
    canary_prefix: str = ".lifeboat/canary/"
    canary_wait: DurationStr = "10s"
    canary_keep: int = Field(default=120, ge=2, description="canaries kept in the source; older ones are deleted")
    compare_versions: bool = True
    page_size: int = Field(default=1000, ge=1, le=1000)
    checkpoint_keys: int = Field(default=10_000, ge=1, description="the diff's cursor is saved every N keys")
    max_keys_per_run: int = Field(default=2_000_000, ge=1, description="keys one task attempt compares; past "
                                  "it the attempt stops with its cursor saved and a retry continues")
    restore_sample: int = Field(default=200, ge=1, description="objects a restore test reads back (all of them "
                                "when the bucket holds no more)")

"""Container images engine options (`datastores.<name>.options`): pydantic only, cheap at DAG-parse time."""

from __future__ import annotations

from pydantic import Field, field_validator

from lifeboat.datastores.options import EngineOptions
from lifeboat.durations import DurationStr
from lifeboat.names import must_match


class ImagesOptions(EngineOptions):
    kubernetes: dict[str, str] = Field(default={}, description="region -> Airflow kubernetes connection; the "
                                       "primary region's cluster says which images are in use")
    namespaces: list[str] = Field(default=[], description="namespaces whose workloads' images are in use")
    images: list[str] = Field(default=[], description="more images in use (without a registry: the primary's)")
    heartbeat_repository: str = "lifeboat/heartbeat"
    copy_timeout: DurationStr = "30m"
    request_timeout: DurationStr = "30s"

    @field_validator("heartbeat_repository")
    @classmethod
    def _repo(cls, v: str) -> str:
        return must_match(r"[a-z0-9]+(?:[._/-][a-z0-9]+)*", v,
                          "{!r} is not a repository name (lower-case path components)")

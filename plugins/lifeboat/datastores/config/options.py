"""Configuration repository engine options (`datastores.<name>.options`): pydantic only."""

from __future__ import annotations

from pydantic import Field, field_validator

from lifeboat.datastores.options import EngineOptions
from lifeboat.durations import DurationStr


class ConfigOptions(EngineOptions):
    kubernetes: dict[str, str] = Field(default={}, description="region -> Airflow kubernetes connection whose "
                                       "ConfigMaps the drift check compares with the deployed commit")
    namespace: str = "community"
    deployed_tag_prefix: str = "refs/tags/deployed/"  # + region: the commit running there
    config_root: str = ""  # the folder of the repository holding one folder per service
    moving_refs: list[str] = Field(default=["refs/tags/deployed/"], description="ref prefixes allowed to move "
                                   "anywhere (a deploy or rollback moves deployed/<region>); every other tag must "
                                   "never change and every branch only move forward")
    heartbeat_ref_prefix: str = "refs/lifeboat/heartbeat/"
    timeout: DurationStr = "10m"

    @field_validator("deployed_tag_prefix", "heartbeat_ref_prefix")
    @classmethod
    def _ref(cls, v: str) -> str:
        if not v.startswith("refs/") or not v.endswith("/"):
            raise ValueError(f"{v!r}: a ref prefix starts with refs/ and ends with /")
        return v

"""Redis engine options (`datastores.<name>.options`): pydantic only, cheap at DAG-parse time."""

from __future__ import annotations

from pydantic import Field, field_validator

from lifeboat.datastores.options import EngineOptions
from lifeboat.durations import DurationStr


class RedisOptions(EngineOptions):
    data_dir: str | None = Field(
        default=None,
        description="the primary's `dir` as the runner sees it (host access); required by the aof kind",
    )
    data_dirs: dict[str, str] = Field(
        default={}, description="region -> that region's server `dir` (after a failover the aof kind copies the "
                                "new primary's); regions not listed use data_dir")
    aof_dirname: str = "appendonlydir"
    sample_size: int = Field(default=1000, ge=0, le=100_000)
    heartbeat_key: str = "lifeboat:heartbeat"
    heartbeat_db: int = Field(default=0, ge=0)
    databases: int = Field(default=16, ge=1, description="minimum `databases` for scratch servers")
    busy_wait: DurationStr = "2m"
    backup_timeout: DurationStr = "2h"
    restore_timeout: DurationStr = "1h"
    memory_check: bool = True
    cli_bin: str = "redis-cli"
    server_bin: str = "redis-server"
    check_rdb_bin: str = "redis-check-rdb"
    check_aof_bin: str = "redis-check-aof"

    def data_dir_for(self, region: str) -> str | None:
        return self.data_dirs.get(region) or self.data_dir

    @field_validator("aof_dirname")
    @classmethod
    def _plain(cls, v: str) -> str:
        if not v or "/" in v or v in (".", ".."):
            raise ValueError(f"{v!r}: a plain directory name like 'appendonlydir'")
        return v

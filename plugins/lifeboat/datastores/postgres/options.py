"""PostgreSQL engine options (`datastores.<name>.options`): pydantic only, cheap at DAG-parse time."""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator

from lifeboat.datastores.options import EngineOptions
from lifeboat.durations import DurationStr

PHYSICAL = ("full", "diff", "incr")
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]*$")


class WalStreamOptions(BaseModel):
    """`datastores.<pg>.options.wal_stream`: continuous WAL streaming (walstream.py)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    folder: str = Field(description="where pg_receivewal writes segments, as the streamer and the scratch "
                                    "instances see it (a repository volume)")
    slot: str = Field(default="lifeboat_walstream", pattern=r"^[a-z0-9_]{1,63}$")
    connections: dict[str, str] = Field(description="region -> Airflow connection of a REPLICATION role")
    status_interval: int = Field(default=1, ge=1, le=60, description="pg_receivewal --status-interval seconds")


class PostgresOptions(EngineOptions):
    stanza: str
    pgbackrest_config: str = "/etc/pgbackrest/pgbackrest.conf"
    pgbackrest_configs: dict[str, str] = Field(
        default={}, description="region -> pgbackrest.conf for that region (its pg1 host and its copy of the "
                                "repository); regions not listed use pgbackrest_config")
    os_user: str = Field(default="postgres", description="OS user that owns PGDATA; pgBackRest runs as it")
    bin_dir: str = "/usr/lib/postgresql/15/bin"
    databases: list[str] = Field(min_length=1)
    count_tables: list[str] = Field(default=[], description="'db.schema.table' or 'schema.table' (first database)")
    heartbeat_database: str | None = None
    dump_jobs: int = Field(default=2, ge=1, le=64)
    lock_timeout: DurationStr = "10s"
    backup_timeout: DurationStr = "6h"
    restore_timeout: DurationStr = "4h"
    archive_wait: DurationStr = "120s"
    wal_stream: WalStreamOptions | None = Field(
        default=None, description="stream WAL into the repository continuously (walstream.py): RPO in seconds")

    @field_validator("count_tables")
    @classmethod
    def _tables(cls, v: list[str]) -> list[str]:
        for t in v:
            parts = t.split(".")
            if len(parts) not in (2, 3) or not all(_IDENT.match(p) for p in parts):
                raise ValueError(f"{t!r}: use 'schema.table' or 'database.schema.table'")
        return v

    @property
    def heartbeat_db(self) -> str:
        return self.heartbeat_database or self.databases[0]

    def pgbackrest_config_for(self, region: str) -> str:
        return self.pgbackrest_configs.get(region) or self.pgbackrest_config

    def tool(self, name: str) -> str:
        """A PostgreSQL tool from `bin_dir` when it is there, else from PATH."""
        p = Path(self.bin_dir) / name
        return str(p) if p.exists() else name

    def tables_by_db(self) -> dict[str, list[str]]:
        """The counted tables per database ('schema.table' entries belong to the first database)."""
        out: dict[str, list[str]] = {}
        for t in self.count_tables:
            parts = t.split(".")
            db, qual = (parts[0], ".".join(parts[1:])) if len(parts) == 3 else (self.databases[0], t)
            out.setdefault(db, []).append(qual)
        return out


def quote_ident(qual: str) -> str:
    """'schema.table' -> '"schema"."table"' (names were validated as identifiers)."""
    return ".".join(f'"{p}"' for p in qual.split("."))

"""MongoDB engine options (`datastores.<name>.options`) and the names every module agrees on."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Literal

from pydantic import Field, field_validator, model_validator

from lifeboat.datastores.options import EngineOptions
from lifeboat.durations import DurationStr
from lifeboat.names import names_matching

SCRATCH_PREFIX = "lifeboat_scratch_"
SYSTEM_DATABASES = frozenset({"admin", "local", "config"})
HEARTBEAT_COLLECTION = "lifeboat_heartbeat"
OPLOG_FILE = "dump/oplog.bson"
_DB_NAME = re.compile(r"^[A-Za-z0-9_-]{1,63}$")


class MongoOptions(EngineOptions):
    databases: list[str] = Field(default=[], description="databases to back up; empty = every database "
                                 "except admin, local, config and lifeboat_scratch_*")
    heartbeat_database: str | None = Field(default=None, description="where lifeboat_heartbeat lives "
                                           "(default: the first of `databases`, else 'lifeboat')")
    batch_size: int = Field(default=1000, ge=1, le=100_000)
    gzip_level: int = Field(default=1, ge=1, le=9, description="gzip level of the dump files (any level restores "
                            "with mongorestore --gzip); 1 compresses about 4x faster than 6 with nearly the same "
                            "size on mostly incompressible data")
    oplog_alert_margin: DurationStr = Field(default="6h", description="alert when the server's oplog would roll past "
                                    "the last captured point in less than this")
    headroom_min_history: DurationStr = Field(default="1h", description="extrapolate a not-yet-full oplog's "
                                              "window only from at least this much history")
    consistent_point_attempts: int = Field(default=10, ge=1, le=100)
    settle: DurationStr = Field(default="0.25s", description="quiet time that makes a count read exact")
    hash_documents: bool = Field(default=True, description="compare content hashes after a restore")
    restore_content_check: Literal["loaded", "read_back"] = Field(
        default="loaded", description="how a restore proves the documents equal the dump: 'loaded' = the "
        "content hash of the documents as the load sends them (from the dump files) equals the dump's, the "
        "server acknowledged every insert and then holds exactly the dump's count; 'read_back' = every "
        "restored collection read back from the server and hashed (a second full read: about doubles a "
        "restore on servers where reads cost as much as writes)")
    server_timeout: DurationStr = "20s"

    @field_validator("databases")
    @classmethod
    def _dbs(cls, v: list[str]) -> list[str]:
        return names_matching(v, _DB_NAME, "{!r} is not a valid database name",
                              lambda name: f"{name!r}: system and scratch databases are not backed up"
                              if name in SYSTEM_DATABASES or name.startswith(SCRATCH_PREFIX) else None)

    @model_validator(mode="after")
    def _heartbeat_in_scope(self) -> MongoOptions:
        if self.heartbeat_database and self.databases and self.heartbeat_database not in self.databases:
            raise ValueError(f"heartbeat_database: {self.heartbeat_database!r} is not one of databases "
                             f"{self.databases}: its heartbeats would never reach a backup")
        return self

    @property
    def heartbeat_db(self) -> str:
        return self.heartbeat_database or (self.databases[0] if self.databases else "lifeboat")



def in_scope_fn(databases: list[str] | None) -> Callable[[str], bool]:
    """Which databases a backup or a replay covers: the listed ones, else every non-system one."""
    if databases:
        wanted = set(databases)
        return lambda db: db in wanted
    return lambda db: db not in SYSTEM_DATABASES and not db.startswith(SCRATCH_PREFIX)

"""The records Lifeboat writes next to the backups: manifests, verifications, drills.

All are plain JSON documents (a person with `cat` and `jq` can read them when Lifeboat is gone), with
a `format` tag so later versions can read older records. No secret ever goes into a record: endpoints
are recorded by connection id only.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


def utcnow() -> datetime:
    return datetime.now(UTC)


class _Record(BaseModel):
    """A record kept as plain JSON (readable with `jq`); unknown fields of a newer writer are ignored."""

    model_config = ConfigDict(extra="ignore")

    def to_json(self) -> bytes:
        return self.model_dump_json(indent=2).encode()


JsonRecord = _Record  # the public name (chaos, incidents)


class Artifact(_Record):
    path: str  # relative to the backup's folder in the repository
    size: int
    sha256: str


class Manifest(_Record):
    """Written LAST, atomically: a backup without a manifest is not a backup."""

    format: Literal["lifeboat.manifest/v1"] = "lifeboat.manifest/v1"
    id: str
    datastore: str
    engine: str
    kind: str  # full / diff / incr / logical / rdb / snapshot / oplog ...
    series: str  # backups of one series chain to each other; retention runs per series
    status: Literal["complete"] = "complete"
    region: str
    started_at: datetime
    finished_at: datetime
    parent: str | None = None  # backup id this one depends on (incremental chains)
    position: dict[str, Any] = {}  # LSN / WAL range / restore point / oplog ts ...
    artifacts: list[Artifact] = []
    counts: dict[str, int] = {}  # recorded at `position`, compared by restore tests
    tools: dict[str, str] = {}  # native tool versions
    native: dict[str, Any] = {}  # e.g. pgBackRest label
    source: str = ""  # connection id and host, never credentials
    run: dict[str, str] = {}  # dag_id / run_id that produced it
    restore_hint: str = ""  # how to restore with the standard tools alone

    @property
    def duration_seconds(self) -> float:
        return (self.finished_at - self.started_at).total_seconds()

    @property
    def size(self) -> int:
        return sum(a.size for a in self.artifacts) + int(self.native.get("repo_size", 0) or 0)


class Check(_Record):
    name: str
    ok: bool
    detail: str = ""


class Verification(_Record):
    format: Literal["lifeboat.verification/v1"] = "lifeboat.verification/v1"
    backup_id: str
    datastore: str
    verified_at: datetime = Field(default_factory=utcnow)
    ok: bool
    checks: list[Check]
    run: dict[str, str] = {}

    @property
    def problems(self) -> list[str]:
        return [f"{c.name}: {c.detail}" for c in self.checks if not c.ok]


class DrillStep(_Record):
    name: str
    started_at: datetime
    finished_at: datetime | None = None
    ok: bool | None = None
    detail: str = ""

    @property
    def seconds(self) -> float | None:
        return None if self.finished_at is None else (self.finished_at - self.started_at).total_seconds()


class Drill(_Record):
    format: Literal["lifeboat.drill/v1"] = "lifeboat.drill/v1"
    id: str
    type: str  # restore_test / full_system / failover / simulation
    datastore: str
    scope: list[str] = []
    backup_id: str | None = None
    target: str = "latest"
    started_at: datetime
    finished_at: datetime | None = None
    steps: list[DrillStep] = []
    # Measured, never claimed: from wall-clock timestamps and heartbeats found in the restored data.
    restore_started_at: datetime | None = None
    ready_at: datetime | None = None
    # Where the RTO clock ran: the first step inside it and the step after which it stopped.
    rto_started_at_step: str | None = None
    rto_stopped_after_step: str | None = None
    newest_heartbeat_at: datetime | None = None
    rto_seconds: float | None = None
    rpo_seconds: float | None = None
    objective_rto_seconds: float
    objective_rpo_seconds: float
    verdict: Literal["pass", "fail", "running"] = "running"
    reasons: list[str] = []
    run: dict[str, str] = {}
    # Engine- or drill-specific numbers beside RTO/RPO (the quarterly drill: its recovery point,
    # per-store RPO, the skew between stores, leftovers after teardown).
    measurements: dict[str, Any] = {}

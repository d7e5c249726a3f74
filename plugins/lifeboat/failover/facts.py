"""The facts a failover reads and passes between its steps, as typed models (JSON-safe XComs).

Each engine fills the same fields in its own way (PostgreSQL: WAL receiver, LSNs, timelines; Redis:
INFO replication offsets and links); the plan, the approver's text and the timeline read only these.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict


class _Facts(BaseModel):
    model_config = ConfigDict(extra="forbid")

    def dump(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


class Replication(_Facts):
    """A standby's view of its upstream."""

    status: str | None = None  # PostgreSQL: the WAL receiver's status ("streaming"); Redis: the link ("up")
    host: str | None = None
    port: int | None = None
    timeline: int | None = None
    slot: str | None = None
    offset: int | None = None  # Redis: the replica's replication offset
    sync_in_progress: bool = False


class Role(_Facts):
    """What one region's server is right now (read-only observation; unreachable is a fact too)."""

    reachable: bool | None  # None: not observed (failover not automated for the engine)
    role: Literal["primary", "standby"] | None = None
    error: str = ""
    read_only: bool | None = None
    server_version: str | None = None
    timeline: int | None = None  # PostgreSQL
    lsn: str | None = None  # PostgreSQL primary: current WAL position
    replay_lsn: str | None = None  # PostgreSQL standby
    replid: str | None = None  # Redis: master_replid (tells promotions apart)
    offset: int | None = None  # Redis: master_repl_offset
    replicas: int | None = None
    replication: Replication | None = None

    @property
    def live_primary(self) -> bool:
        return bool(self.reachable and self.role == "primary")

    def describe(self) -> str:
        """'primary' / 'standby', or 'unreachable (<the last part of the error>)' for the plan."""
        if not self.reachable:
            return f"unreachable ({self.error.rsplit(': ', 1)[-1][:100]})"
        return self.role or "?"


class _Lag(_Facts):
    replication_lag_bytes: int | None = None
    replication_lag_seconds: float | None = None


class EngineFacts(_Lag):
    """What an engine adds to a preflight (replication lag, capacity)."""

    receive_lsn: str | None = None
    replay_lsn: str | None = None
    last_replayed_transaction_at: str | None = None
    link: str | None = None
    capacity: dict[str, Any] = {}
    warnings: list[str] = []


class ExpectedLoss(_Lag):
    """The plan's data-loss window for one datastore."""

    expected_data_loss_seconds: float | None = None
    data_loss_basis: str = ""
    unreplicated_seconds: float | None = None
    newest_verified_backup_age_seconds: float | None = None


class Preflight(EngineFacts, ExpectedLoss):
    """Everything the plan and the approver need about one datastore (read-only): its engine's facts,
    the expected loss, and what a failover would do."""

    datastore: str
    engine: str
    implemented: bool
    target_region: str
    source_region: str
    checked_at: str
    target: Role | None = None
    source: Role | None = None
    action: Literal["promote", "none", "blocked", "manual"] = "promote"
    note: str = ""
    manual: str = ""
    blockers: list[str] = []
    newest_verified_backup: str | None = None
    catalog_error: str = ""
    newest_heartbeat_target: str | None = None
    newest_heartbeat_source: str | None = None

    def expected_loss(self) -> ExpectedLoss:
        return ExpectedLoss.model_validate(self.model_dump(include=set(ExpectedLoss.model_fields)))


class CaughtUp(_Facts):
    """Whether a (rebuilt) standby has everything its primary has."""

    ok: bool
    datastore: str
    standby: str
    primary: str
    state: str | None = None
    lag_bytes: int | None = None
    slot: str | None = None
    standby_role: str | None = None
    detail: str = ""


class PromotionHeartbeats(_Facts):
    """The newest heartbeats measured right after a promotion: the failover's data loss."""

    target: str | None = None  # newest heartbeat on the promoted server
    source: str | None = None  # newest heartbeat on the old primary, if it answered
    source_reachable: bool = False
    measured_at: str
    measured: str

    def target_at(self) -> datetime | None:
        return datetime.fromisoformat(self.target) if self.target else None

    def source_at(self) -> datetime | None:
        return datetime.fromisoformat(self.source) if self.source else None


def first_line(exc: BaseException, secret: str = "") -> str:
    """`<type>: <first line of the message>` (at most 400 characters), `secret` masked as ***."""
    text = (str(exc).strip().splitlines() or [""])[0]
    if secret:
        text = text.replace(secret, "***")
    return f"{type(exc).__name__}: {text}"[:400]

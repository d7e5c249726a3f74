"""Replication canaries: a small object written to the source bucket on the heartbeat schedule; its
arrival at the destination measures the replication lag. Pure logic (keys, bodies, the lag report);
writing and polling are the engine's.

Key:   .lifeboat/canary/<source region>/<UTC time to the microsecond>.json (sorts by time)
Body:  {"canary": 1, "written_at": ISO time, "source_region": ..., "seq": n}

The lag the check reports is the worse of
  - the newest canary that arrived: arrived_at - written_at, and
  - the oldest canary that has not arrived: now - written_at (a lower bound of the current lag --
    with replication stopped it grows with the clock, which is what makes a paused replication alert).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime

PREFIX = ".lifeboat/canary/"
_FMT = "%Y%m%dT%H%M%S.%fZ"


def key(written_at: datetime, source_region: str, prefix: str = PREFIX) -> str:
    return f"{prefix}{source_region}/{_utc(written_at).strftime(_FMT)}.json"


def body(written_at: datetime, source_region: str, seq: int = 0) -> bytes:
    return json.dumps({"canary": 1, "written_at": _utc(written_at).isoformat(), "source_region": source_region,
                       "seq": seq}, sort_keys=True).encode()


def written_at(canary_key: str, prefix: str = PREFIX) -> datetime:
    """The write time encoded in a canary key (ValueError naming the key when it is not one)."""
    if not canary_key.startswith(prefix) or not canary_key.endswith(".json"):
        raise ValueError(f"not a canary key: {canary_key!r}")
    stamp = canary_key.rsplit("/", 1)[-1][: -len(".json")]
    try:
        return datetime.strptime(stamp, _FMT).replace(tzinfo=UTC)
    except ValueError:
        raise ValueError(f"not a canary key: {canary_key!r}") from None


@dataclass(frozen=True)
class Lag:
    lag_s: float | None  # None: no canary at all
    newest_arrived_key: str | None
    newest_arrived_lag_s: float | None
    oldest_pending_key: str | None
    oldest_pending_age_s: float | None
    pending: int
    arrived: int

    def to_json(self) -> dict:
        return asdict(self)

    def exceeds(self, limit_s: float) -> bool:
        return self.lag_s is not None and self.lag_s > limit_s


def lag(canaries: Iterable[tuple[str, datetime | None]], now: datetime, prefix: str = PREFIX) -> Lag:
    """canaries: (key, arrived_at or None). Only canaries newer than the newest arrived one count as
    pending (an older one that never arrived was superseded: S3 CRR replicates objects, not order)."""
    items = sorted(((written_at(k, prefix), k, _utc(a) if a else None) for k, a in canaries), key=lambda t: t[0])
    now = _utc(now)
    arrived = [(w, k, a) for w, k, a in items if a is not None]
    newest = arrived[-1] if arrived else None
    pending = [(w, k) for w, k, a in items if a is None and (newest is None or w > newest[0])]
    newest_lag = max(0.0, (newest[2] - newest[0]).total_seconds()) if newest else None
    oldest = pending[0] if pending else None
    oldest_age = max(0.0, (now - oldest[0]).total_seconds()) if oldest else None
    values = [v for v in (newest_lag, oldest_age) if v is not None]
    return Lag(lag_s=max(values) if values else None, newest_arrived_key=newest[1] if newest else None,
               newest_arrived_lag_s=newest_lag, oldest_pending_key=oldest[1] if oldest else None,
               oldest_pending_age_s=oldest_age, pending=len(pending), arrived=len(arrived))


def _utc(t: datetime) -> datetime:
    if t.tzinfo is None:
        raise ValueError(f"naive datetime {t!r}: canary times must carry a time zone")
    return t.astimezone(UTC)

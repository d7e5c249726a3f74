"""The quarterly drill's one consistent recovery point, computed from what the catalogs reach (pure)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from lifeboat.datastores.recovery import RecoveryRange
from lifeboat.errors import RestoreFailed
from lifeboat.recovery.quarterly import consistent_point

T0 = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)


def t(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def pg(until: float, since: float = 0) -> RecoveryRange:
    return RecoveryRange("postgres", continuous=True, until=t(until), since=t(since), detail="wal")


def snaps(name: str, *minutes: float) -> RecoveryRange:
    s = [(t(m), f"{name}-{m:g}") for m in minutes]
    return RecoveryRange(name, continuous=False, until=s[-1][0] if s else None, snapshots=s, detail="snaps")


def test_point_is_the_oldest_newest_instant_and_snapshots_are_taken_at_or_before_it():
    cp = consistent_point({"postgres": pg(90), "redis": snaps("redis", 0, 60, 120), "es": snaps("es", 30, 75)})
    assert cp["point"] == t(75) and cp["limited_by"] == "es"
    assert cp["per"]["postgres"]["instant"] == t(75) and cp["per"]["postgres"]["backup_id"] is None
    assert cp["per"]["redis"]["backup_id"] == "redis-60"  # 120 is after the point
    assert cp["per"]["es"]["backup_id"] == "es-75"
    assert cp["skew_seconds"] == 15 * 60  # redis's data is from 15 minutes before the point


def test_wal_end_limits_the_point_when_it_is_the_oldest():
    cp = consistent_point({"postgres": pg(50), "redis": snaps("redis", 10, 60)})
    assert cp["point"] == t(50) and cp["limited_by"] == "postgres"
    assert cp["per"]["redis"]["backup_id"] == "redis-10" and cp["skew_seconds"] == 40 * 60


def test_a_store_with_nothing_to_restore_is_named():
    with pytest.raises(RestoreFailed, match="redis: the catalog has nothing to restore"):
        consistent_point({"postgres": pg(50), "redis": snaps("redis")})


def test_a_base_backup_after_the_point_is_refused_naming_both():
    with pytest.raises(RestoreFailed, match=r"postgres: its oldest base backup .* \(set by redis\)"):
        consistent_point({"postgres": pg(90, since=40), "redis": snaps("redis", 30)})

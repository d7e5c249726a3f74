"""Schedules and staleness, defined once: the monitor's alerts and the DR page use these, so they
cannot disagree on what "stale" means.

- `interval(cron, now)`: the largest gap between two consecutive fire times of `cron` among its
  recent ones (a weekday-only cron counts its weekend gap).
- A backup series is **stale** when its newest backup is older than `STALE_INTERVALS` times the
  shortest interval of the kinds that feed it, plus `GRACE` (a backup finishes after its fire
  time). Series, not kinds: a full also serves as the newest diff or incremental of its chain.
- The newest *verified* backup is stale past `VERIFIED_LIMIT` (the weekly verification plus a day);
  the newest restore test past `RESTORE_TEST_LIMIT` (the monthly drill plus a few days).

The monitor's alerts, the DR page, the Prometheus metrics (and so the alerting rules) and the reports
read these; none has its own copy.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from lifeboat.records import Manifest

STALE_INTERVALS = 2
GRACE = timedelta(minutes=5)
VERIFIED_LIMIT = timedelta(days=8)
RESTORE_TEST_LIMIT = timedelta(days=35)
_SAMPLES = 8


def interval(cron: str, now: datetime) -> timedelta | None:
    """Largest gap between consecutive fire times of `cron` before `now`; None if it cannot be read."""
    try:
        from croniter import croniter

        it = croniter(cron, now)
        times = sorted(it.get_prev(datetime) for _ in range(_SAMPLES))
    except (ValueError, KeyError, TypeError):
        return None
    return max(b - a for a, b in itertools.pairwise(times))


@dataclass(frozen=True)
class SeriesFreshness:
    series: str
    kinds: tuple[str, ...]
    interval: timedelta | None  # the shortest interval among its kinds
    newest: Manifest | None
    age: timedelta | None

    @property
    def limit(self) -> timedelta | None:
        return None if self.interval is None else STALE_INTERVALS * self.interval + GRACE

    @property
    def stale(self) -> bool:
        """No backup at all, or the newest one older than the limit."""
        if self.newest is None or self.age is None:
            return True
        return self.limit is not None and self.age > self.limit


def freshness(schedules: dict[str, str], series_of: Callable[[str], str], backups: Iterable[Manifest],
              now: datetime) -> list[SeriesFreshness]:
    """One entry per backup series of a datastore (kind -> cron in `schedules`), in inventory order."""
    by_series: dict[str, list[str]] = {}
    for kind in schedules:
        by_series.setdefault(series_of(kind), []).append(kind)
    backups = list(backups)
    out = []
    for series, kinds in by_series.items():
        gaps = [g for g in (interval(schedules[k], now) for k in kinds) if g is not None]
        mine = sorted((m for m in backups if m.series == series), key=lambda m: m.finished_at)
        newest = mine[-1] if mine else None
        out.append(SeriesFreshness(series, tuple(kinds), min(gaps) if gaps else None, newest,
                                   (now - newest.finished_at) if newest else None))
    return out

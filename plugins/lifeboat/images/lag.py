"""Image replication lag. A registry records no push time, so Lifeboat remembers when it first saw
each image (repository@digest) in the primary registry -- the "first-seen" ledger kept in the
catalog -- and the lag is the age of the oldest image in use that the standby lacks (0 when the
standby has every one). Pure logic over the ledger and the observed presence.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime


def key(repository: str, digest: str) -> str:
    return f"{repository}@{digest}"


def remember(ledger: Mapping[str, str], keys: Iterable[str], now: datetime) -> dict[str, str]:
    """The ledger with every key not yet in it first seen `now` (existing times are never moved)."""
    out = dict(ledger)
    for k in keys:
        out.setdefault(k, now.astimezone(UTC).isoformat())
    return out


def first_seen(ledger: Mapping[str, str], k: str) -> datetime | None:
    raw = ledger.get(k)
    return datetime.fromisoformat(raw) if raw else None


@dataclass(frozen=True)
class Lacking:
    image: str  # the reference in use
    repository: str
    digest: str
    first_seen: datetime | None


def oldest(lacking: Iterable[Lacking]) -> Lacking | None:
    """The lacking image first seen longest ago (one never seen counts as seen now: lag 0)."""
    items = [x for x in lacking if x.first_seen is not None]
    return min(items, key=lambda x: x.first_seen) if items else None  # type: ignore[arg-type, return-value]


def lag_seconds(lacking: Iterable[Lacking], now: datetime) -> float:
    o = oldest(lacking)
    return 0.0 if o is None or o.first_seen is None else max(0.0, (now - o.first_seen).total_seconds())


def per_repository(lacking: Iterable[Lacking]) -> dict[str, str | None]:
    """{repository: first-seen time (ISO) of its oldest lacking image}; the metrics hook reads this."""
    out: dict[str, str | None] = {}
    for x in lacking:
        t = x.first_seen.isoformat() if x.first_seen else None
        cur = out.get(x.repository)
        if x.repository not in out or (t is not None and (cur is None or t < cur)):
            out[x.repository] = t
    return out

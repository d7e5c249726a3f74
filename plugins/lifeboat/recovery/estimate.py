"""How long a recovery will take, from the drills in the catalog (never a guess): per datastore the
newest measured restore of it (a recovery's restore + validate steps, a full-system drill's steps, a
monthly restore test's RTO), per service the newest measured restart + verification."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from lifeboat.records import Drill


def _steps_seconds(d: Drill, words: Iterable[str]) -> float | None:
    """Seconds of the steps whose name names `words` (e.g. 'postgres'), None when there are none."""
    words = [w for w in words if w]
    got = [s.seconds for s in d.steps if s.seconds is not None and any(f" {w}" in f" {s.name}" for w in words)]
    return sum(got) if got else None


def datastore_estimate(drills: list[Drill], name: str) -> dict[str, Any]:
    """{"seconds", "from"}: the newest measured restore of datastore `name` (None when nothing was measured)."""
    for d in sorted(drills, key=lambda d: d.started_at, reverse=True):
        if d.type == "restore_test" and d.datastore == name and d.rto_seconds is not None:
            return {"seconds": round(d.rto_seconds, 1), "from": f"restore test {d.id}"}
        if d.type in ("recovery", "full_system") and name in d.scope:
            secs = _steps_seconds(d, [name])
            if secs is not None:
                return {"seconds": round(secs, 1), "from": f"{d.type.replace('_', ' ')} drill {d.id}"}
    return {"seconds": None, "from": "no drill of it in the catalog yet"}


def service_estimate(drills: list[Drill], name: str) -> dict[str, Any]:
    for d in sorted(drills, key=lambda d: d.started_at, reverse=True):
        if d.type in ("recovery", "service_recovery", "full_system") and name in d.scope:
            secs = _steps_seconds(d, [name])
            if secs is not None:
                return {"seconds": round(secs, 1), "from": f"{d.type.replace('_', ' ')} drill {d.id}"}
    return {"seconds": None, "from": "no drill of it in the catalog yet"}


def estimate(drills: list[Drill], datastores: Iterable[str], services: Iterable[str]) -> dict[str, Any]:
    """Per node and in total; `unknown` lists what no drill measured yet (the total leaves it out)."""
    per: dict[str, dict[str, Any]] = {}
    for n in datastores:
        per[n] = datastore_estimate(drills, n)
    for n in services:
        per[n] = service_estimate(drills, n)
    known = [v["seconds"] for v in per.values() if v["seconds"] is not None]
    return {"per": per, "total_seconds": round(sum(known), 1) if known else None,
            "unknown": [n for n, v in per.items() if v["seconds"] is None]}

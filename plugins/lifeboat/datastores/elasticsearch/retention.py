"""SLM-style retention for snapshots, computed by Lifeboat (so it also works where SLM is unavailable)."""

from __future__ import annotations

from datetime import datetime

from lifeboat.catalog import Catalog, RetentionPlan
from lifeboat.datastores.elasticsearch.options import SlmRetention
from lifeboat.durations import parse_duration
from lifeboat.records import utcnow


def slm_plan(cat: Catalog, datastore: str, r: SlmRetention, now: datetime | None = None) -> RetentionPlan:
    """SLM semantics, per series "snapshot", newest first: the newest `min_count` are always kept;
    anything beyond the newest `max_count` goes; in between, snapshots older than `expire_after`
    go. Lifeboat's invariant on top: the newest verified backup is always kept."""
    now = now or utcnow()
    plan = RetentionPlan(datastore)
    expire = parse_duration(r.expire_after) if r.expire_after else None
    newest_first = list(reversed(cat.backups(datastore)))
    vmap = cat.verification_map(datastore)
    verified = [m for m in newest_first if vmap.get(m.id) is not None and vmap[m.id].ok]
    delete = []
    for n, m in enumerate(newest_first):
        if n < r.min_count:
            plan.keep.setdefault(m.id, []).append(f"min_count={r.min_count}")
        elif (r.max_count is not None and n >= r.max_count) or (expire is not None and now - m.finished_at > expire):
            delete.append(m)
        else:
            plan.keep.setdefault(m.id, []).append(f"expire_after={r.expire_after}" if expire else "no expire_after")
    if verified:
        plan.keep.setdefault(verified[0].id, []).append("newest verified")
    plan.delete = [m for m in delete if m.id not in plan.keep]
    return plan

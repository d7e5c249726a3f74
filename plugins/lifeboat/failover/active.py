"""Writing the active-region record (lifeboat.regions.ActiveRegion) -- failover and failback only."""

from __future__ import annotations

import logging
from datetime import datetime

from lifeboat.layout import Layout
from lifeboat.records import utcnow
from lifeboat.regions import ActiveRegion, check_region, read_active
from lifeboat.repository import Repository

log = logging.getLogger(__name__)


def write_active(inv, region: str, *, by: str, kind: str, reason: str = "", drill_id: str | None = None,
                 since: datetime | None = None) -> dict:
    """Record that `region` is active, in both regions' catalogs (the new region's first; the other may
    be gone -- then the key is recorded as pending there and the next mirror copies it). Idempotent: a
    re-run of the same operation (`by`) keeps the record's `since`."""
    check_region(inv, region, "active region")
    current = read_active(inv, prefer=region)
    was = current.region if current else inv.regions.primary
    if current is not None and current.region == region and current.by == by:
        rec = current.model_copy(update={"drill_id": drill_id or current.drill_id})
    else:
        previous = was if was != region else (current.previous if current else None)
        rec = ActiveRegion(region=region, since=since or utcnow(), by=by, kind=kind,  # type: ignore[arg-type]
                           previous=previous, drill_id=drill_id, reason=reason)
    written = Repository.from_inventory(inv, region).put_everywhere(Layout.active_region(), rec.to_json())
    log.info("active region: %s since %s (%s); written to %s", rec.region, rec.since.isoformat(), rec.by, written)
    return {"active_region": rec.region, "since": rec.since.isoformat(), "by": rec.by, "previous": rec.previous,
            "written": written, "changed": was != region}

"""Which region a job acts in, and which region is active.

Two questions, answered at run time (never at DAG-parse time):

* **the active region** -- where the platform's primaries are. The inventory's `regions.primary` until
  a failover or failback writes the *active-region record* (`regions/active.json`, in both regions'
  catalogs: region, since, by which run/drill, the previous region). Heartbeats, backups and the
  monitor target the active region's datastores, so after a failover they follow it without an
  inventory edit.
* **the acting region** -- whose catalog copy a job reads and writes, whose servers it restores into:
  the region it is told (`--region`, a job's `region` argument), else `LIFEBOAT_REGION` (a deployment
  that lives in one region: the standby region's Airflow sets `LIFEBOAT_REGION=us-east-1`), else the
  active region.

The record is written by failover and failback (lifeboat.failover.active.write_active).

A job that must act on the primaries (heartbeat, backup, retention, monitor) in a region that is not
the active one says so (`NotActiveRegion`): an Airflow in the standby region idles until a failover
makes its region active, then takes over.

The record is read from the acting region's copy first and the other region's copy second; the newer
of the two wins (the other region may have been gone when a failover wrote it). An unreadable copy is
never fatal: the other region may be the one that is gone.
"""

from __future__ import annotations

import logging
import os
from datetime import datetime
from typing import Literal

from pydantic import Field

from lifeboat.errors import InventoryError, Refused, RepositoryError
from lifeboat.layout import Layout
from lifeboat.records import _Record

log = logging.getLogger(__name__)

ENV = "LIFEBOAT_REGION"


class NotActiveRegion(Refused):
    """A job that acts on the primaries was asked to run in a region that is not the active one."""

    def __init__(self, message: str, region: str, active: str):
        super().__init__(message)
        self.region = region
        self.active = active


class ActiveRegion(_Record):
    """`regions/active.json`: where the platform's primaries are, since when, and who moved them."""

    format: Literal["lifeboat.active-region/v1"] = "lifeboat.active-region/v1"
    region: str
    since: datetime
    by: str = Field(description="what made it active: '<dag_id>/<run_id>', the drill id when known")
    kind: Literal["failover", "failback", "manual"] = "failover"
    previous: str | None = None
    drill_id: str | None = None
    reason: str = ""


def regions(inv) -> tuple[str, str]:
    return inv.regions.primary, inv.regions.standby


def other(inv, region: str) -> str:
    primary, standby = regions(inv)
    return standby if region == primary else primary


def check_region(inv, region: str, where: str = "--region") -> str:
    """`region` if it is an inventory region; an error naming `where` and the inventory otherwise."""
    if region not in regions(inv):
        raise InventoryError(f"{where} {region!r}: not an inventory region ({inv.source or 'inventory'}: regions "
                             f"{', '.join(regions(inv))})")
    return region


def deployment_region(inv) -> str | None:
    """`LIFEBOAT_REGION`: the region this deployment (Airflow, a shell) lives in; None when unset."""
    value = (os.environ.get(ENV) or "").strip()
    return check_region(inv, value, f"environment variable {ENV}") if value else None


def read_record(inv, region: str) -> ActiveRegion | None:
    """The active-region record in `region`'s catalog copy (None: none there); raises when unreadable."""
    from lifeboat.storage import open_storage

    loc = inv.repository[region]
    st = open_storage(loc.url, loc.connection, create_root=False)
    key = Layout.active_region()
    if not st.exists(key):
        return None
    return ActiveRegion.model_validate_json(st.get_bytes(key))


def read_active(inv, prefer: str | None = None) -> ActiveRegion | None:
    """The newest active-region record among the readable catalog copies (`prefer`'s first), else None."""
    first = prefer or deployment_region(inv) or inv.regions.primary
    found: list[ActiveRegion] = []
    for region in (first, other(inv, first)):
        try:
            rec = read_record(inv, region)
        except Exception as exc:  # that region's copy may be the one that is gone
            log.info("active-region record not readable in %s: %s", region, exc)
            continue
        if rec is not None:
            found.append(rec)
    return max(found, key=lambda r: r.since) if found else None


def active_region(inv, prefer: str | None = None) -> str:
    """The region the primaries are in: the newest record's, else the inventory's `regions.primary`."""
    rec = read_active(inv, prefer)
    if rec is None:
        return inv.regions.primary
    if rec.region not in regions(inv):
        raise InventoryError(f"{Layout.active_region()}: region {rec.region!r} (written by {rec.by}) is not an "
                             f"inventory region ({', '.join(regions(inv))}); fix the record or the inventory")
    return rec.region


def acting_region(inv, region: str | None = None) -> str:
    """Where a job acts: `region` (checked), else LIFEBOAT_REGION, else the active region."""
    if region:
        return check_region(inv, region)
    return deployment_region(inv) or active_region(inv)


def require_active(inv, region: str, what: str) -> str:
    """`region` if it is the active region; NotActiveRegion otherwise (jobs on the primaries)."""
    active = active_region(inv, prefer=region)
    if region != active:
        rec = read_active(inv, prefer=region)
        since = f" since {rec.since.isoformat()} ({rec.by})" if rec else " (the inventory's regions.primary)"
        raise NotActiveRegion(f"{what}: {region} is not the active region -- {active} is{since}; "
                              f"{what.split(' ')[0]} runs against the active region's primaries. Nothing done in "
                              f"{region}.", region, active)
    return region


def describe(inv, prefer: str | None = None) -> dict:
    """For the DR page and the CLI: the active region, since when, by what (None: the inventory default)."""
    try:
        rec = read_active(inv, prefer)
    except RepositoryError as exc:
        return {"region": inv.regions.primary, "since": None, "by": None, "source": f"unreadable: {exc}"}
    if rec is None:
        return {"region": inv.regions.primary, "since": None, "by": None, "previous": None, "kind": None,
                "source": "inventory regions.primary (no failover recorded)"}
    return {"region": rec.region, "since": rec.since.isoformat(), "by": rec.by, "previous": rec.previous,
            "kind": rec.kind, "drill_id": rec.drill_id, "source": Layout.active_region()}

"""Incident jobs shared by the Airflow operators and the `python -m lifeboat incidents` CLI."""

from __future__ import annotations

import logging

from lifeboat.inventory import load_inventory

log = logging.getLogger(__name__)
MONITOR_SCHEDULE = "*/5 * * * *"  # dags/lifeboat_monitor.py: the cadence the delivery windows are planned with


def process(results: list[dict], run: dict | None = None, region: str | None = None) -> dict:
    """One round: the monitor's findings of every datastore that was evaluated -> incidents + notices."""
    from lifeboat import regions
    from lifeboat.incidents.manager import IncidentManager, cadence_of
    from lifeboat.repository import Repository

    inv = load_inventory()
    results = [r for r in results if r]
    where = regions.acting_region(inv, region)
    if not results and where != regions.active_region(inv, prefer=where):
        # the monitor skipped every datastore: this deployment is not in the active region, whose own
        # monitor keeps the incidents (notices must not go out twice)
        return {"skipped": f"{where} is not the active region: incidents are kept by the active region's monitor"}
    findings = [f for r in results for f in r.get("findings", [])]
    evaluated = {r["datastore"] for r in results}
    mgr = IncidentManager(inv, Repository.from_inventory(inv, where), cadence=cadence_of(MONITOR_SCHEDULE))
    return mgr.run(findings, evaluated)


def acknowledge(incident_id: str, by: str, note: str = "", via: str = "cli", region: str | None = None) -> dict:
    from lifeboat import regions
    from lifeboat.incidents.manager import acknowledge as ack
    from lifeboat.repository import Repository

    inv = load_inventory()
    return ack(inv, Repository.from_inventory(inv, regions.acting_region(inv, region)), incident_id, by, note=note,
               via=via)


def listing(region: str | None = None, include_closed: bool = False) -> list[dict]:
    from lifeboat import regions
    from lifeboat.incidents.manager import incident_view
    from lifeboat.incidents.store import IncidentStore
    from lifeboat.records import utcnow
    from lifeboat.repository import Repository

    inv = load_inventory()
    store = IncidentStore(Repository.from_inventory(inv, regions.acting_region(inv, region)))
    now = utcnow()
    items = store.all() if include_closed else store.active()
    return [incident_view(i, now) for i in items]

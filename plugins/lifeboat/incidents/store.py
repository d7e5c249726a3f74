"""Incidents in the catalog of both regions (keys: lifeboat.layout; Repository.put_everywhere).

Every write goes to the repository copy of this region and of the other one, so the standby region
has the incident history when the primary is gone; a copy that cannot be written is logged and the
other still is (the write fails only when neither can be). Reads use the first readable copy.
"""

from __future__ import annotations

import logging
from datetime import datetime

from lifeboat.incidents.model import Ack, Incident
from lifeboat.layout import Layout

log = logging.getLogger(__name__)


class IncidentStore:
    def __init__(self, repo):
        self.repo = repo

    def active(self) -> list[Incident]:
        return sorted(self.repo.records_anywhere(Layout.incident("active"), Incident),
                      key=lambda i: (i.opened_at, i.id))

    def closed(self, month: str | None = None) -> list[Incident]:
        return sorted(self.repo.records_anywhere(Layout.incident("closed", month=month or ""), Incident),
                      key=lambda i: (i.opened_at, i.id))

    def all(self) -> list[Incident]:
        return sorted(self.active() + self.closed(), key=lambda i: (i.opened_at, i.id))

    def get(self, incident_id: str) -> Incident | None:
        return next((i for i in self.all() if i.id == incident_id), None)

    def save(self, inc: Incident) -> None:
        if inc.settled:
            self.repo.put_everywhere(Layout.incident("closed", inc.id, month=inc.opened_at), inc.to_json())
            self.repo.delete_everywhere(Layout.incident("active", inc.id))
        else:
            self.repo.put_everywhere(Layout.incident("active", inc.id), inc.to_json())

    def acks(self) -> list[Ack]:
        return self.repo.records_anywhere(Layout.incident("acks"), Ack)

    def acknowledge(self, incident_id: str, by: str, at: datetime, note: str = "", via: str = "") -> Ack:
        """Record an acknowledgement. Refuses an unknown or already resolved incident, naming it."""
        from lifeboat.errors import Refused

        if not by.strip():
            raise Refused("an acknowledgement needs the name of who acknowledges (by)")
        inc = next((i for i in self.active() if i.id == incident_id), None)
        if inc is None:
            known = self.get(incident_id)
            why = "it is resolved" if known else "no such incident in the catalog"
            raise Refused(f"incident {incident_id!r} cannot be acknowledged: {why}")
        if inc.status == "resolved":
            raise Refused(f"incident {incident_id!r} cannot be acknowledged: it is resolved")
        existing = next((a for a in self.acks() if a.incident_id == incident_id), None)
        if existing is not None:
            return existing
        ack = Ack(incident_id=incident_id, by=by.strip(), at=at, note=note, via=via)
        self.repo.put_everywhere(Layout.incident("acks", incident_id), ack.to_json())
        return ack

"""Incidents in the catalog of both regions (layout in lifeboat.incidents.model).

Every write goes to the repository copy of this region and of the other one, so the standby region
has the incident history when the primary is gone; a copy that cannot be written is logged and the
other still is (the write fails only when neither can be). Reads use the first readable copy.
"""

from __future__ import annotations

import logging
from datetime import datetime

from pydantic import ValidationError

from lifeboat.copies import delete_everywhere, put_everywhere, storages
from lifeboat.errors import RepositoryError
from lifeboat.incidents.model import Ack, Incident

log = logging.getLogger(__name__)

ACTIVE = "incidents/active/"
CLOSED = "incidents/closed/"
ACKS = "incidents/acks/"


def _read_all(repo, prefix: str, model) -> list:
    """Records under `prefix` from the first copy that can be listed."""
    last: Exception | None = None
    for st in storages(repo):
        try:
            keys = [o.key for o in st.list(prefix) if o.key.endswith(".json")]
        except Exception as exc:
            last = exc
            continue
        out = []
        for key in keys:
            try:
                out.append(model.model_validate_json(st.get_bytes(key)))
            except (ValidationError, OSError, ValueError) as exc:
                log.warning("skipping %s", RepositoryError(f"{st.url}/{key}: unreadable record: {exc}"))
        return out
    if last is not None:
        raise RepositoryError(f"no readable copy of {prefix}: {last}")
    return []


class IncidentStore:
    def __init__(self, repo):
        self.repo = repo

    def active(self) -> list[Incident]:
        return sorted(_read_all(self.repo, ACTIVE, Incident), key=lambda i: (i.opened_at, i.id))

    def closed(self, month: str | None = None) -> list[Incident]:
        prefix = f"{CLOSED}{month}/" if month else CLOSED
        return sorted(_read_all(self.repo, prefix, Incident), key=lambda i: (i.opened_at, i.id))

    def all(self) -> list[Incident]:
        return sorted(self.active() + self.closed(), key=lambda i: (i.opened_at, i.id))

    def get(self, incident_id: str) -> Incident | None:
        return next((i for i in self.all() if i.id == incident_id), None)

    def save(self, inc: Incident) -> None:
        if inc.settled:
            put_everywhere(self.repo, f"{CLOSED}{inc.opened_at:%Y-%m}/{inc.id}.json", inc.to_json())
            delete_everywhere(self.repo, f"{ACTIVE}{inc.id}.json")
        else:
            put_everywhere(self.repo, f"{ACTIVE}{inc.id}.json", inc.to_json())

    def acks(self) -> list[Ack]:
        return _read_all(self.repo, ACKS, Ack)

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
        put_everywhere(self.repo, f"{ACKS}{incident_id}.json", ack.to_json())
        return ack

"""Incident records: one open incident per monitor finding, kept in the catalog of both regions.

    incidents/active/<id>.json            open, acknowledged, or resolved with notices still to send
    incidents/closed/<YYYY-MM>/<id>.json  settled (resolved and every notice sent or given up)
    incidents/acks/<id>.json              an acknowledgement (written by the DR page or the CLI only)

An incident has one writer (lifeboat_monitor's `incidents` task); an acknowledgement is a separate
record with its own writer, merged on the next run, so neither overwrites the other. Plain JSON: a
person with `cat` reads it when Lifeboat is gone. No secret is ever recorded (recipients are e-mail
addresses and channel names).
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Literal

from pydantic import Field

from lifeboat.incidents.settings import SEVERITIES
from lifeboat.records import JsonRecord as _Record

NoticeKind = Literal["open", "escalation", "acknowledged", "resolved"]
RANK = {s: i for i, s in enumerate(reversed(SEVERITIES))}  # low 0 ... critical 3


class Notice(_Record):
    """One delivery attempt of one notice to one channel (and, for contacts, its recipients)."""

    kind: NoticeKind
    level: int = 1
    channel: str
    to: list[str] = Field(default_factory=list)
    at: datetime
    ok: bool
    error: str = ""
    digest: bool = False
    late_seconds: float = 0.0  # how far past the severity's delivery window (0 = in time)


class Ack(_Record):
    format: Literal["lifeboat.incident-ack/v1"] = "lifeboat.incident-ack/v1"
    incident_id: str
    by: str
    at: datetime
    note: str = ""
    via: str = ""  # dr-page / cli / hitl


class Incident(_Record):
    format: Literal["lifeboat.incident/v1"] = "lifeboat.incident/v1"
    id: str
    key: str  # the finding: "<datastore>:<check>"
    datastore: str
    check: str
    severity: str
    max_severity: str
    status: Literal["open", "acknowledged", "resolved"] = "open"
    opened_at: datetime
    last_seen_at: datetime
    resolved_at: datetime | None = None
    acknowledged_at: datetime | None = None
    acknowledged_by: str = ""
    ack_note: str = ""
    level: int = 1  # escalation level reached
    value: str = ""
    threshold: str = ""
    message: str = ""
    notices: list[Notice] = Field(default_factory=list)
    settled: bool = False

    def delivered(self, kind: str, channel: str, level: int | None = None, to: list[str] | None = None) -> bool:
        return any(n.ok and n.kind == kind and n.channel == channel and (level is None or n.level == level)
                   and (to is None or sorted(n.to) == sorted(to)) for n in self.notices)

    def attempts(self, kind: str, channel: str, level: int | None = None) -> int:
        return sum(1 for n in self.notices if n.kind == kind and n.channel == channel
                   and (level is None or n.level == level))

    def reached(self) -> list[Notice]:
        """Successful first notices and escalations: who must hear that it cleared."""
        return [n for n in self.notices if n.ok and n.kind in ("open", "escalation")]

    @property
    def active(self) -> bool:
        return self.status != "resolved"


def finding_key(datastore: str, check: str) -> str:
    return f"{datastore}:{check}"


def incident_id(key: str, opened_at: datetime) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", key.lower()).strip("-")[:80]
    return f"{slug}-{opened_at.strftime('%Y%m%dT%H%M%SZ')}"

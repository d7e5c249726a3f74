"""One round of incident handling: merge acknowledgements, reconcile findings, escalate, deliver,
record. Called by lifeboat_monitor's `incidents` task with the findings of every datastore, and by
tests with an injected clock and the real channels.

Every delivery goes through lifeboat.alerts.deliver (the providers' notifiers on the inventory's
channels and Airflow connections); each attempt is recorded on the incident, which is what makes a
notice go out once: a channel that has it is never sent it again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, cast

from lifeboat.incidents import engine
from lifeboat.incidents.model import Incident, Notice, NoticeKind
from lifeboat.incidents.settings import Severity
from lifeboat.incidents.store import IncidentStore
from lifeboat.records import utcnow

log = logging.getLogger(__name__)
CADENCE = timedelta(minutes=5)  # lifeboat_monitor's schedule


def cadence_of(cron: str = "*/5 * * * *") -> timedelta:
    from lifeboat.schedule import interval

    return interval(cron, utcnow()) or CADENCE


class IncidentManager:
    def __init__(self, inventory, repo, *, clock: Callable[[], datetime] = utcnow, cadence: timedelta = CADENCE,
                 send: Callable[[engine.Delivery], str | None] | None = None):
        self.inv = inventory
        self.store = IncidentStore(repo)
        self.clock = clock
        self.cadence = cadence
        self.send = send or self._send

    def _send(self, d: engine.Delivery) -> str | None:
        from lifeboat import alerts

        return alerts.deliver(d.channel, cast("Severity", d.severity), d.summary, d.body, inventory=self.inv,
                              dedup_key=d.dedup_key, action=d.pagerduty_action, to=d.to or None)

    def run(self, findings: list[dict], evaluated: set[str] | None = None) -> dict:
        """`evaluated`: datastores whose checks ran (default: those named in `findings`)."""
        now = self.clock()
        evaluated = set(evaluated if evaluated is not None else (f["datastore"] for f in findings))
        incidents = self.store.active()
        before = {i.id: i.to_json() for i in incidents}
        engine.apply_acks(incidents, self.store.acks())
        incidents = engine.reconcile(incidents, findings, evaluated, now)
        deliveries = engine.plan(incidents, self.inv.alerts, now, self.cadence)
        by_id = {i.id: i for i in incidents}
        sent = failed = 0
        for d in deliveries:
            error = self.send(d)
            late = max(0.0, (now - d.due_by).total_seconds()) if d.due_by else 0.0
            for inc_id, kind in d.entries:
                by_id[inc_id].notices.append(Notice(kind=cast("NoticeKind", kind), level=d.level, channel=d.channel,
                                                    to=d.to, at=now, ok=error is None, error=error or "",
                                                    digest=d.digest, late_seconds=late))
            if error is None:
                sent += 1
            else:
                failed += 1
        for inc in incidents:
            inc.settled = engine.is_settled(inc, self.inv.alerts)
            if inc.settled or inc.to_json() != before.get(inc.id):
                self.store.save(inc)
        summary: dict[str, Any] = {
            "at": now.isoformat(), "deliveries": sent, "failed_deliveries": failed,
            "open": [i.id for i in incidents if i.status == "open"],
            "acknowledged": [i.id for i in incidents if i.status == "acknowledged"],
            "resolved": [i.id for i in incidents if i.status == "resolved"],
            "notices": [{"channel": d.channel, "kind": d.kind, "level": d.level, "to": d.to,
                         "incidents": sorted({e[0] for e in d.entries})} for d in deliveries],
        }
        log.info("incidents: %d open, %d acknowledged, %d resolved; %d notice(s) sent, %d failed",
                 len(summary["open"]), len(summary["acknowledged"]), len(summary["resolved"]), sent, failed)
        return summary


def acknowledge(inventory, repo, incident_id: str, by: str, note: str = "", via: str = "",
                at: datetime | None = None) -> dict:
    """Acknowledge an incident: escalation stops at the next monitor round (PagerDuty is told then)."""
    ack = IncidentStore(repo).acknowledge(incident_id, by, at or utcnow(), note=note, via=via)
    return ack.model_dump(mode="json")


def incident_view(inc: Incident, now: datetime) -> dict:
    """JSON for the DR page and the reports."""
    return {"id": inc.id, "key": inc.key, "datastore": inc.datastore, "check": inc.check, "severity": inc.severity,
            "max_severity": inc.max_severity, "status": inc.status, "level": inc.level,
            "opened_at": inc.opened_at.isoformat(),
            "age_seconds": ((inc.resolved_at or now) - inc.opened_at).total_seconds(),
            "acknowledged_by": inc.acknowledged_by,
            "acknowledged_at": inc.acknowledged_at.isoformat() if inc.acknowledged_at else None,
            "resolved_at": inc.resolved_at.isoformat() if inc.resolved_at else None,
            "message": inc.message, "value": inc.value, "threshold": inc.threshold,
            "notices": len([n for n in inc.notices if n.ok])}

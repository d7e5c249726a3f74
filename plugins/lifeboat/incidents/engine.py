"""The incident state machine, pure: findings in, incidents and due notices out. No I/O, no clock of
its own: every function takes `now`, so tests drive hours of escalation in microseconds.

    finding not ok, no open incident     -> open one (level 1); notice the severity's route
    finding not ok, incident open        -> update it; nothing is sent twice (one notice per channel)
    severity rises (high -> critical)    -> the new severity's route hears it once
    unacknowledged past a level's `after` -> escalation notice to that level's channels and contacts
    acknowledged                         -> escalation stops; PagerDuty gets `acknowledge`
    finding ok (or gone) again           -> resolved; everyone who was told hears that it cleared

Timing (alerts.timing): critical/high/medium notices go out at the first dispatch after detection;
the monitor's cadence (5 minutes) is at most the high window, so each lands in its window. Low
notices -- openings and clearings -- are collected into one digest per low route channel, sent when
the oldest pending entry would otherwise miss its window at the next dispatch (age >= window - cadence).
A failed delivery is retried at the next dispatch, at most MAX_ATTEMPTS times.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from lifeboat.incidents.model import RANK, Ack, Incident, finding_key, incident_id

MAX_ATTEMPTS = 3
DIGEST = "low"  # the severity whose notices are batched into a digest


@dataclass
class Delivery:
    """One message to one channel. `entries` are the (incident id, notice kind) it settles."""

    channel: str
    kind: str
    severity: str
    summary: str
    body: str
    entries: list[tuple[str, str]]
    level: int = 1
    to: list[str] = field(default_factory=list)
    pagerduty_action: str = "trigger"
    dedup_key: str | None = None
    due_by: datetime | None = None
    digest: bool = False


# -- findings -> incidents -----------------------------------------------------------------------------
def reconcile(incidents: list[Incident], findings: list[dict], evaluated: set[str], now: datetime) -> list[Incident]:
    """Open, update and resolve incidents from one round of findings. `evaluated` names the datastores
    whose checks ran this round: an incident of a datastore that was not evaluated is left alone
    (a failed monitor task must not look like a recovery). Returns every incident, new ones included."""
    by_key = {i.key: i for i in incidents if i.active}
    out = list(incidents)
    seen: set[str] = set()
    for f in findings:
        if f.get("severity", "ok") == "ok":
            continue
        key = finding_key(f["datastore"], f["check"])
        seen.add(key)
        inc = by_key.get(key)
        if inc is None:
            inc = Incident(id=incident_id(key, now), key=key, datastore=f["datastore"], check=f["check"],
                           severity=f["severity"], max_severity=f["severity"], opened_at=now, last_seen_at=now,
                           value=str(f.get("value", "")), threshold=str(f.get("threshold", "")),
                           message=f.get("message", ""))
            by_key[key] = inc
            out.append(inc)
            continue
        inc.last_seen_at = now
        inc.severity = f["severity"]
        if RANK[inc.severity] > RANK[inc.max_severity]:
            inc.max_severity = inc.severity
        inc.value, inc.threshold = str(f.get("value", "")), str(f.get("threshold", ""))
        inc.message = f.get("message", inc.message)
    for key, inc in by_key.items():
        if key not in seen and inc.datastore in evaluated:
            inc.status = "resolved"
            inc.resolved_at = now
    return out


def apply_acks(incidents: list[Incident], acks: list[Ack]) -> None:
    by_id = {a.incident_id: a for a in acks}
    for inc in incidents:
        a = by_id.get(inc.id)
        if a is not None and inc.acknowledged_at is None:
            inc.acknowledged_at, inc.acknowledged_by, inc.ack_note = a.at, a.by, a.note
            if inc.status == "open":
                inc.status = "acknowledged"


def due_level(inc: Incident, escalation, now: datetime) -> int:
    """The escalation level an incident has reached: the last level whose `after` has passed while it
    stayed unacknowledged (acknowledgement freezes it at the level reached by then)."""
    if inc.max_severity not in escalation.severities:
        return 1
    until = inc.acknowledged_at or inc.resolved_at or now
    elapsed = until - inc.opened_at
    return max([lv.level for lv in escalation.levels if elapsed >= lv.after] or [1])


# -- incidents -> deliveries ---------------------------------------------------------------------------
def _texts(inc: Incident, kind: str, level_name: str = "") -> tuple[str, str]:
    sev = inc.severity.upper()
    if kind == "open":
        summary = f"[lifeboat {sev}] {inc.message or inc.key}"
    elif kind == "escalation":
        summary = f"[lifeboat {sev} escalation level {inc.level}: {level_name}] {inc.message or inc.key}"
    elif kind == "acknowledged":
        summary = f"[lifeboat ACKNOWLEDGED by {inc.acknowledged_by}] {inc.message or inc.key}"
    else:
        summary = f"[lifeboat RESOLVED] {inc.key} cleared after {_age(inc.opened_at, inc.resolved_at)}"
    body = (f"incident {inc.id}\nfinding {inc.key}: {inc.value} (threshold {inc.threshold})\n"
            f"severity {inc.severity} (highest {inc.max_severity}), opened {inc.opened_at:%Y-%m-%d %H:%M:%S} UTC, "
            f"escalation level {inc.level}, status {inc.status}\n")
    if inc.acknowledged_at:
        body += f"acknowledged by {inc.acknowledged_by} at {inc.acknowledged_at:%Y-%m-%d %H:%M:%S} UTC\n"
    if kind in ("open", "escalation"):
        body += (f"Acknowledge on the Disaster Recovery page (Airflow) or: "
                 f"python -m lifeboat incidents ack {inc.id} --by <you>\n")
    return summary, body


def _age(start: datetime, end: datetime | None) -> str:
    from lifeboat.durations import format_duration

    return format_duration((end - start) if end else None)


def _want(inc: Incident, kind: str, channel: str, level: int, to: list[str] | None = None) -> bool:
    if inc.delivered(kind, channel, level, to):
        return False
    return inc.attempts(kind, channel, level) < MAX_ATTEMPTS


def plan(incidents: list[Incident], alerts, now: datetime, cadence: timedelta) -> list[Delivery]:
    """Every notice due now that has not been delivered. `alerts` is the inventory's alerts section;
    `cadence` is how often this runs (the monitor's schedule)."""
    out: list[Delivery] = []
    esc = alerts.escalation
    digest_entries: dict[str, list[tuple[Incident, str, datetime]]] = {}
    pd = {n for n, c in alerts.channels.items() if c.type == "pagerduty"}
    for inc in incidents:
        if inc.settled:
            continue
        inc.level = max(inc.level, due_level(inc, esc, now))
        window = alerts.timing.window(inc.max_severity)
        if inc.max_severity == DIGEST:
            for ch in alerts.routes.get(DIGEST, []):
                if not inc.delivered("open", ch):
                    if inc.attempts("open", ch) < MAX_ATTEMPTS:
                        digest_entries.setdefault(ch, []).append((inc, "open", inc.opened_at))
                elif inc.status == "resolved" and _want(inc, "resolved", ch, 0):
                    digest_entries.setdefault(ch, []).append((inc, "resolved", inc.resolved_at or now))
            continue
        # first notice: the route of the highest severity reached (a rise reaches the new route once),
        # plus level 1's own channels for severities that escalate
        channels = list(alerts.routes.get(inc.max_severity, []))
        if inc.max_severity in esc.severities:
            channels += [n for n in esc.level(1).channels if n not in channels]
        summary, body = _texts(inc, "open")
        for ch in channels:
            if _want(inc, "open", ch, 1):
                out.append(Delivery(channel=ch, kind="open", severity=inc.max_severity, summary=summary, body=body,
                                    entries=[(inc.id, "open")], dedup_key=inc.id, due_by=inc.opened_at + window))
        # escalation: levels 2.. reached while unacknowledged
        if inc.max_severity in esc.severities:
            for lv in esc.levels:
                if lv.level > inc.level:
                    break
                s, b = _texts(inc, "escalation", lv.name)
                targets: list[tuple[str, list[str]]] = [(c, []) for c in lv.channels if lv.level > 1]
                emails = sorted({e for c in lv.contacts for e in alerts.contacts[c].email})
                if emails:
                    targets.append((esc.email_channel, emails))
                for ch, to in targets:
                    if _want(inc, "escalation", ch, lv.level, to or None):
                        out.append(Delivery(channel=ch, kind="escalation", severity=inc.max_severity, summary=s,
                                            body=b, entries=[(inc.id, "escalation")], level=lv.level, to=to,
                                            dedup_key=inc.id, due_by=inc.opened_at + lv.after + window))
        # acknowledgement: PagerDuty's incident follows ours
        if inc.acknowledged_at is not None and inc.status != "resolved":
            s, b = _texts(inc, "acknowledged")
            for n in {n.channel for n in inc.reached()} & pd:
                if _want(inc, "acknowledged", n, 0):
                    out.append(Delivery(channel=n, kind="acknowledged", severity=inc.max_severity, summary=s, body=b,
                                        entries=[(inc.id, "acknowledged")], level=0, pagerduty_action="acknowledge",
                                        dedup_key=inc.id))
        # resolution notice: to every channel and recipient list that heard about it
        if inc.status == "resolved":
            s, b = _texts(inc, "resolved")
            for ch, heard in sorted({(n.channel, tuple(sorted(n.to))) for n in inc.reached()}):
                if _want(inc, "resolved", ch, 0, list(heard) or None):
                    out.append(Delivery(channel=ch, kind="resolved", severity=inc.max_severity, summary=s, body=b,
                                        entries=[(inc.id, "resolved")], level=0, to=list(heard),
                                        pagerduty_action="resolve", dedup_key=inc.id,
                                        due_by=inc.resolved_at + window))
    out += _digests(digest_entries, alerts.timing.window(DIGEST), now, cadence)
    return out


def _digests(entries: dict[str, list[tuple[Incident, str, datetime]]], window: timedelta, now: datetime,
             cadence: timedelta) -> list[Delivery]:
    out = []
    for ch, items in entries.items():
        if not items:
            continue
        oldest = min(t for _, _, t in items)
        if now < oldest + window - cadence:
            continue  # the next dispatch still delivers the oldest entry within its window
        lines, settles = [], []
        for inc, kind, t in sorted(items, key=lambda x: x[2]):
            settles.append((inc.id, kind))
            if kind == "open" and inc.status == "resolved":
                settles.append((inc.id, "resolved"))  # appeared and cleared between two digests: one line
            mark = ("cleared" if kind == "resolved" else "open" if inc.status != "resolved"
                    else "appeared, since cleared")
            lines.append(f"- {t:%Y-%m-%d %H:%M} UTC  {inc.key}: {inc.value} (threshold {inc.threshold}) [{mark}]  "
                         f"{inc.id}")
        summary = f"[lifeboat low] digest: {len(items)} low finding notice(s)"
        out.append(Delivery(channel=ch, kind="digest", severity=DIGEST, summary=summary, body="\n".join(lines) + "\n",
                            entries=settles, due_by=oldest + window, digest=True))
    return out


def is_settled(inc: Incident, alerts) -> bool:
    """Resolved, and every notice it owes was delivered (or given up after MAX_ATTEMPTS)."""
    if inc.status != "resolved":
        return False

    def done(kind: str, ch: str, to: list[str] | None = None) -> bool:
        return inc.delivered(kind, ch, None, to) or inc.attempts(kind, ch) >= MAX_ATTEMPTS

    if inc.max_severity == DIGEST:
        return all(done("open", ch) and (done("resolved", ch) or not inc.delivered("open", ch))
                   for ch in alerts.routes.get(DIGEST, []))
    return all(done("resolved", n.channel, n.to or None) for n in inc.reached())

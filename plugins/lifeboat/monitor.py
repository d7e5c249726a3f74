"""Monitoring: how far is each datastore from its objectives right now?

Checks, per datastore, every run of `lifeboat_monitor` (every 5 minutes):
- data-loss exposure the engine reports (PostgreSQL: WAL archive lag, standby replay lag; S3: canary
  replication lag; images: the oldest image in use the standby lacks) against RPO: over the RPO ->
  critical, over half of it -> high;
- the engine's own live checks (`monitor_findings`: configuration drift of the ConfigMaps, a CDN
  origin group that no longer fails over, the replication configuration of the upload bucket; Kubernetes:
  the platform's readiness audit against the DR plan and the standby against the newest verified backup);
- newest backup of each series against its own schedule: stale as lifeboat.schedule defines it (older
  than STALE_INTERVALS of its shortest interval plus a grace period) -> high;
- newest *verified* backup older than 8 days -> medium (the weekly verification did not happen or failed);
- newest restore-test drill older than 35 days -> low; the newest one failed -> high.
Each finding is routed by severity through lifeboat.alerts (DR plan: critical -> PagerDuty/SMS,
high -> Slack + e-mail, medium/low -> e-mail).
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from datetime import datetime

from lifeboat.catalog import Catalog
from lifeboat.durations import format_duration
from lifeboat.inventory import Inventory
from lifeboat.records import utcnow
from lifeboat.schedule import RESTORE_TEST_LIMIT, VERIFIED_LIMIT, freshness

log = logging.getLogger(__name__)


@dataclass
class Finding:
    datastore: str
    check: str
    severity: str  # critical / high / medium / low / ok
    value: str
    threshold: str
    message: str

    def as_dict(self) -> dict:
        return asdict(self)


def evaluate(inv: Inventory, engine, now: datetime | None = None) -> list[Finding]:
    now = now or utcnow()
    name = engine.name
    spec = inv.datastore(name)
    rpo = inv.objectives_for(name).rpo
    out: list[Finding] = []

    def add(check: str, severity: str, value: str, threshold: str, message: str) -> None:
        out.append(Finding(name, check, severity, value, threshold, message))

    # 1. exposure the engine can measure live (seconds of data a failure now would lose)
    try:
        exposure = engine.exposure()
    except Exception as exc:  # the datastore itself is unreachable: that is the finding
        add("reachable", "critical", "no", "yes", f"{name}: cannot measure replication/archiving: {exc}")
        exposure = {}
    for check, seconds in exposure.items():
        if seconds is None:
            add(check, "high", "unknown", format_duration(rpo), f"{name}: {check} cannot be measured")
            continue
        sev = "critical" if seconds > rpo.total_seconds() else "high" if seconds > rpo.total_seconds() / 2 else "ok"
        add(check, sev, format_duration(seconds), format_duration(rpo),
            f"{name}: {check} {format_duration(seconds)} (RPO {format_duration(rpo)})")

    # 1b. the engine's own live checks (configuration drift, CDN origin groups, images the standby lacks)
    try:
        own = engine.monitor_findings()
    except Exception as exc:  # the service itself is unreachable: that is the finding
        own = []
        add("reachable", "critical", "no", "yes", f"{name}: cannot run its checks: {exc}")
    for f in own:
        add(f.check, f.severity, f.value, f.threshold, f.message)

    # 2. newest backup per series against its schedule (lifeboat.schedule: the DR page uses the same)
    cat = Catalog(engine.ctx.repo)
    backups = cat.backups(name)
    schedules = {kind: b.schedule for kind, b in spec.backups.items()}
    for f in freshness(schedules, engine.series_of, backups, now):
        limit = format_duration(f.limit) if f.limit is not None else "unknown"
        if f.newest is None:
            add(f"{f.series} backup age", "high", "none", limit, f"{name}: no {f.series} backup at all")
            continue
        add(f"{f.series} backup age", "high" if f.stale else "ok", format_duration(f.age), limit,
            f"{name}: newest {f.series} backup {f.newest.id} is {format_duration(f.age)} old")

    # 3. verification and drills
    vmap = cat.verification_map(name)
    verified = [m for m in backups if vmap.get(m.id) is not None and vmap[m.id].ok]
    v_age = (now - verified[-1].finished_at) if verified else None
    add("verified backup age", "medium" if v_age is None or v_age > VERIFIED_LIMIT else "ok",
        format_duration(v_age) if v_age else "none", f"{VERIFIED_LIMIT.days} days",
        f"{name}: newest verified backup {'is ' + format_duration(v_age) + ' old' if v_age else 'missing'}")
    drills = [d for d in engine.ctx.repo.drills() if d.datastore == name and d.type == "restore_test"]
    if not drills:
        add("restore test", "low", "none", f"{RESTORE_TEST_LIMIT.days} days", f"{name}: never restore-tested")
    else:
        d = drills[-1]
        d_age = now - d.started_at
        sev = "high" if d.verdict == "fail" else "low" if d_age > RESTORE_TEST_LIMIT else "ok"
        add("restore test", sev, f"{d.verdict}, {format_duration(d_age)} ago",
            f"pass within {RESTORE_TEST_LIMIT.days} days",
            f"{name}: newest restore test {d.id}: {d.verdict}" + (f" ({'; '.join(d.reasons)})" if d.reasons else ""))
    return out


def run(inv: Inventory, engine, send_alerts: bool = True) -> dict:
    from lifeboat import alerts

    findings = evaluate(inv, engine)
    for f in findings:
        (log.warning if f.severity != "ok" else log.info)("[%s] %s", f.severity, f.message)
    if send_alerts:
        for severity in ("critical", "high", "medium", "low"):
            hits = [f for f in findings if f.severity == severity]
            if hits:
                alerts.send(severity, f"lifeboat: {engine.name}: {len(hits)} {severity} finding(s)",
                            "\n".join(f.message for f in hits), inventory=inv)
    found = {f.severity for f in findings}
    return {"datastore": engine.name, "findings": [f.as_dict() for f in findings],
            "worst": next((s for s in ("critical", "high", "medium", "low") if s in found), "ok")}

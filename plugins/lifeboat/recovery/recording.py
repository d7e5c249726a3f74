"""The last tasks of a recovery: the outcome, the drill record, the notification.

lifeboat_recover records a `recovery` drill: RTO = trigger -> verified (the services' /health and
/ready against the recovered targets); data loss = the failure time (`failed_at`, default the
trigger) - the newest heartbeat found in the recovered data, per datastore, the drill's RPO the
largest of them. lifeboat_recover_service records a `service_recovery` drill (nothing stateful is
restored: no data loss to measure)."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from lifeboat.alerts import Severity
from lifeboat.durations import format_duration
from lifeboat.errors import RestoreFailed
from lifeboat.failover.recording import FAILED_OUTCOMES as FAILED_OUTCOMES
from lifeboat.failover.recording import (
    attach_drill,
    close_record,
    deliver,
    drill_recorder,
    gate_outcome,
    open_record,
    report_lines,
)
from lifeboat.records import Drill, DrillStep, utcnow
from lifeboat.recovery.operation import RecoveryOp, operation
from lifeboat.recovery.timeline import RecoveryTimeline

log = logging.getLogger(__name__)

SEVERITY: dict[str, Severity] = {
    "completed": "high", "failed": "critical", "blocked": "critical", "not_approved": "high", "rejected": "medium",
    "refused": "medium", "dry_run": "low", "dry_run_failed": "medium"}


def outcome(kind: str, params: dict, xcoms: dict[str, Any]) -> tuple[str, str]:
    """(outcome, one-line detail) from what the tasks returned (None: the task did not succeed)."""
    gate = gate_outcome(kind, params, xcoms, operation, lambda: xcoms.get("verify") is not None)
    if gate is not None:
        return gate
    if xcoms.get("verify") is not None:
        return "completed", f"{kind} in {xcoms['guard']['region']} completed and verified"
    return "failed", f"the {kind} stopped before verification (see the timeline)"


def data_loss(tl: RecoveryTimeline) -> dict[str, dict[str, Any]]:
    ref = tl.failed_at or tl.triggered_at
    out = {}
    for ds, rec in tl.recovered.items():
        hb = datetime.fromisoformat(rec["newest_heartbeat"]) if rec.get("newest_heartbeat") else None
        out[ds] = {"newest_heartbeat": rec.get("newest_heartbeat"), "measured_against": ref.isoformat(),
                   "seconds": None if hb is None else round(max(0.0, (ref - hb).total_seconds()), 3),
                   "backup_id": rec.get("backup_id"), "into": rec.get("into"), "locator": rec.get("locator")}
    return out


def _drill(op: RecoveryOp, tl: RecoveryTimeline, result: str, detail: str) -> Drill:
    type_ = "recovery" if tl.kind == "recover" else "service_recovery"
    rec = drill_recorder(op, tl, result, type_=type_, scope=[n.split(":", 1)[1] for n in tl.order],
                         target=f"{tl.region}: {tl.target}")
    d = rec.drill
    d.backup_id = ", ".join(f"{ds}: {r.get('backup_id')}" for ds, r in tl.recovered.items()) or None
    error = None if result == "completed" else RestoreFailed(detail)
    if tl.kind == "recover":
        losses = data_loss(tl)
        hbs = [datetime.fromisoformat(v["newest_heartbeat"]) for v in losses.values() if v["newest_heartbeat"]]
        d.newest_heartbeat_at = min(hbs) if hbs else None
        now = utcnow()
        d.steps.append(DrillStep(name="data loss (heartbeats)", started_at=now, finished_at=now, ok=True,
                                 detail="; ".join(
            f"{ds}: newest heartbeat {v['newest_heartbeat'] or 'none'}, "
            f"{format_duration(v['seconds']) if v['seconds'] is not None else 'unknown'} before "
            f"{'the failure' if tl.failed_at else 'the trigger'}" for ds, v in losses.items()) or "nothing recovered"))
        return rec.finish(error, loss_reference=tl.failed_at or tl.triggered_at)
    return rec.finish(error, rpo_applies=False)


def record(kind: str, params: dict, run: dict, xcoms: dict[str, Any]) -> dict:
    """Turn the timeline into a drill record, copied to the other region. Runs whatever happened before."""
    result, detail = outcome(kind, params, xcoms)
    summary, op, tl = open_record(kind, params, run, xcoms, result, detail, operation)
    if tl is None:
        return summary
    summary["order"] = [s.name for s in tl.steps]
    if result not in ("rejected", "not_approved"):
        attach_drill(summary, op, tl, _drill(op, tl, result, detail))
    if kind == "recover":
        summary["data_loss"] = data_loss(tl)
        summary["recovered"] = {ds: r.get("locator") for ds, r in tl.recovered.items()}
    return close_record(kind, summary, op, tl)


def notify(kind: str, params: dict, run: dict, summary: dict | None) -> dict:
    summary = summary or {"outcome": "failed", "detail": "the record task did not succeed"}
    result = summary.get("outcome", "failed")
    title = f"lifeboat {kind.replace('_', ' ')} of {', '.join(params.get('scope') or [])}: {result.replace('_', ' ')}"
    lines = report_lines(summary, params, run, format_duration)
    for ds, loc in (summary.get("recovered") or {}).items():
        lines.append(f"{ds} now at {loc}")
    return deliver(SEVERITY, result, title, lines)

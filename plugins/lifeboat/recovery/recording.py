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

from lifeboat import alerts
from lifeboat.alerts import Severity
from lifeboat.drills import DrillRecorder
from lifeboat.durations import format_duration
from lifeboat.errors import LifeboatError, RestoreFailed
from lifeboat.inventory import Objectives
from lifeboat.layout import Layout
from lifeboat.records import Drill, DrillStep, utcnow
from lifeboat.recovery.operation import RecoveryOp, operation
from lifeboat.recovery.timeline import RecoveryTimeline

log = logging.getLogger(__name__)

FAILED_OUTCOMES = ("refused", "blocked", "not_approved", "failed", "dry_run_failed")
SEVERITY: dict[str, Severity] = {
    "completed": "high", "failed": "critical", "blocked": "critical", "not_approved": "high", "rejected": "medium",
    "refused": "medium", "dry_run": "low", "dry_run_failed": "medium"}


def outcome(kind: str, params: dict, xcoms: dict[str, Any]) -> tuple[str, str]:
    """(outcome, one-line detail) from what the tasks returned (None: the task did not succeed)."""
    if xcoms.get("guard") is None:
        try:
            operation(kind, params)
            return "refused", "the guard task did not succeed"
        except LifeboatError as exc:
            return "refused", str(exc)
    dry = bool(xcoms["guard"].get("dry_run"))
    if xcoms.get("plan") is None:
        return ("dry_run_failed" if dry else "blocked"), "preflight or plan failed (see the plan task's log)"
    if dry:
        return ("dry_run", "dry run complete: nothing was changed") if xcoms.get("verify") is not None else \
            ("dry_run_failed", "a dry-run step failed (see the task logs); nothing was changed")
    approval = xcoms.get("approval")
    if approval is None:
        return "not_approved", "the approval timed out or failed: nothing was changed"
    if "Approve" not in (approval.get("chosen_options") or []):
        who = (approval.get("responded_by_user") or {}).get("name", "someone")
        return "rejected", f"rejected by {who}: nothing was changed"
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
    inv = op.inv
    rpo = min((inv.objectives_for(d).rpo for d in tl.datastores), default=inv.objectives.rpo)
    label = tl.datastores[0] if len(tl.datastores) == 1 and not tl.services else "platform"
    type_ = "recovery" if tl.kind == "recover" else "service_recovery"
    rec = DrillRecorder(datastore=label, type_=type_, objectives=Objectives(rto=inv.objectives.rto, rpo=rpo),
                        repo=op.store.repo, run={"dag_id": tl.dag_id, "run_id": tl.run_id},
                        scope=[n.split(":", 1)[1] for n in tl.order], target=f"{tl.region}: {tl.target}",
                        started_at=tl.triggered_at)
    d = rec.drill
    d.steps = list(tl.steps)
    d.restore_started_at = tl.triggered_at  # the RTO clock: the trigger ..
    d.ready_at = tl.verified_at if result == "completed" else None  # .. verified (/health, /ready)
    d.rto_started_at_step = "trigger"
    d.rto_stopped_after_step = next((s.name for s in reversed(tl.steps) if s.name.startswith("verify")), None)
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
    summary: dict[str, Any] = {"outcome": result, "detail": detail, "kind": kind}
    if result in ("refused", "dry_run", "dry_run_failed") or xcoms.get("guard") is None:
        return summary
    op = operation(kind, params, run, check_confirm=False)
    tl = op.store.load(op.timeline_id)
    if tl is None:
        return {**summary, "detail": detail + " (no timeline found)"}
    tl.outcome = result
    summary["timeline_id"] = tl.id
    summary["order"] = [s.name for s in tl.steps]
    if result not in ("rejected", "not_approved"):
        d = _drill(op, tl, result, detail)
        tl.drill_id = d.id
        summary.update(drill_id=d.id, verdict=d.verdict, rto_seconds=d.rto_seconds, rpo_seconds=d.rpo_seconds,
                       reasons=d.reasons, drill_copy=op.store.repo.copy_to_mirror(Layout.drill(d.id), d.to_json()))
    if kind == "recover":
        summary["data_loss"] = data_loss(tl)
        summary["recovered"] = {ds: r.get("locator") for ds, r in tl.recovered.items()}
    op.store.save(tl)
    summary["timeline_copy"] = op.store.repo.copy_to_mirror(tl.key, tl.to_json())
    log.info("%s: %s", kind, summary)
    return summary


def notify(kind: str, params: dict, run: dict, summary: dict | None) -> dict:
    summary = summary or {"outcome": "failed", "detail": "the record task did not succeed"}
    result = summary.get("outcome", "failed")
    title = f"lifeboat {kind.replace('_', ' ')} of {', '.join(params.get('scope') or [])}: {result.replace('_', ' ')}"
    lines = [summary.get("detail", ""), f"reason: {params.get('reason')}",
             f"run: {run.get('dag_id')} {run.get('run_id')}"]
    if summary.get("drill_id"):
        lines.append(f"drill {summary['drill_id']}: {summary.get('verdict')}, "
                     f"RTO {format_duration(summary.get('rto_seconds'))}, "
                     f"data loss {format_duration(summary.get('rpo_seconds'))}")
        lines += [f"- {r}" for r in summary.get("reasons", [])]
    for ds, loc in (summary.get("recovered") or {}).items():
        lines.append(f"{ds} now at {loc}")
    body = "\n".join(line for line in lines if line)
    delivered = alerts.send(SEVERITY.get(result, "high"), title, body)
    return {"outcome": result, "failed": result in FAILED_OUTCOMES, "delivered": delivered, "title": title}

"""The last tasks of a failover or failback: the outcome, the drill record (RTO from the trigger to
verified, data loss from the heartbeats measured at promotion), the notification."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from lifeboat import alerts
from lifeboat.alerts import Severity
from lifeboat.drills import DrillRecorder
from lifeboat.errors import LifeboatError, RestoreFailed
from lifeboat.failover.operation import Operation, operation
from lifeboat.failover.planning import seconds_text
from lifeboat.failover.timeline import Timeline
from lifeboat.inventory import Objectives
from lifeboat.layout import Layout
from lifeboat.records import Drill, DrillStep, utcnow

log = logging.getLogger(__name__)

FAILED_OUTCOMES = ("refused", "blocked", "not_approved", "failed", "dry_run_failed")


def gate_outcome(kind: str, params: dict, xcoms: dict[str, Any], operation_fn: Callable[..., Any],
                 dry_done: Callable[[], bool]) -> tuple[str, str] | None:
    """The outcome decided before anything changed (guard, plan, dry run, approval), None past approval.
    operation_fn re-checks the params for the refusal's reason; dry_done: did the dry run get through."""
    if xcoms.get("guard") is None:
        try:
            operation_fn(kind, params)
            return "refused", "the guard task did not succeed"
        except LifeboatError as exc:
            return "refused", str(exc)
    dry = bool(xcoms["guard"].get("dry_run"))
    if xcoms.get("plan") is None:
        return ("dry_run_failed" if dry else "blocked"), "preflight or plan failed (see the plan task's log)"
    if dry:
        return ("dry_run", "dry run complete: nothing was changed") if dry_done() else \
            ("dry_run_failed", "a dry-run step failed (see the task logs); nothing was changed")
    approval = xcoms.get("approval")
    if approval is None:
        return "not_approved", "the approval timed out or failed: nothing was changed"
    if "Approve" not in (approval.get("chosen_options") or []):
        who = (approval.get("responded_by_user") or {}).get("name", "someone")
        return "rejected", f"rejected by {who}: nothing was changed"
    return None


def outcome(kind: str, params: dict, xcoms: dict[str, Any]) -> tuple[str, str]:
    """(outcome, one-line detail) from what the tasks returned (None: the task did not succeed)."""
    gate = gate_outcome(kind, params, xcoms, operation, lambda: xcoms.get("verify") is not None or (
        kind == "failback" and xcoms.get("caught_up") is not None and not xcoms["guard"].get("switch_back")))
    if gate is not None:
        return gate
    if kind == "failback" and not xcoms["guard"].get("switch_back"):
        return ("rebuilt", "standbys rebuilt and caught up; not switched back") if xcoms.get("caught_up") else \
            ("failed", "rebuilding the standbys did not finish")
    if xcoms.get("verify") is not None:
        return "completed", f"{kind} to {xcoms['guard']['target_region']} completed and verified"
    return "failed", f"the {kind} stopped before verification (see the timeline)"


def open_record(kind: str, params: dict, run: dict, xcoms: dict[str, Any], result: str, detail: str,
                operation_fn: Callable[..., Any]) -> tuple[dict[str, Any], Any, Any]:
    """(summary, operation, timeline) for a record task; the timeline None when there is nothing to record
    (nothing changed, or no timeline found: the summary says which)."""
    summary: dict[str, Any] = {"outcome": result, "detail": detail, "kind": kind}
    if result in ("refused", "dry_run", "dry_run_failed") or xcoms.get("guard") is None:
        return summary, None, None  # no timeline: nothing changed, nothing to measure
    op = operation_fn(kind, params, run, check_confirm=False)
    tl = op.store.load(op.timeline_id)
    if tl is None:
        return {**summary, "detail": detail + " (no timeline found)"}, op, None
    tl.outcome = result
    summary["timeline_id"] = tl.id
    return summary, op, tl


def attach_drill(summary: dict[str, Any], op: Any, tl: Any, d: Drill) -> None:
    """Link the drill to the timeline and the summary, and copy it to the other region."""
    tl.drill_id = d.id
    summary.update(drill_id=d.id, verdict=d.verdict, rto_seconds=d.rto_seconds, rpo_seconds=d.rpo_seconds,
                   reasons=d.reasons, drill_copy=op.store.repo.copy_to_mirror(Layout.drill(d.id), d.to_json()))


def close_record(kind: str, summary: dict[str, Any], op: Any, tl: Any) -> dict[str, Any]:
    """Save the timeline (with its outcome) and copy it to the other region."""
    op.store.save(tl)
    summary["timeline_copy"] = op.store.repo.copy_to_mirror(tl.key, tl.to_json())
    log.info("%s: %s", kind, summary)
    return summary


def record(kind: str, params: dict, run: dict, xcoms: dict[str, Any]) -> dict:
    """Turn the timeline into a drill record (type failover/failback) in the catalog, copied to the other
    region. Runs whatever happened before (trigger rule all_done)."""
    result, detail = outcome(kind, params, xcoms)
    summary, op, tl = open_record(kind, params, run, xcoms, result, detail, operation)
    if tl is None:
        return summary
    if tl.heartbeats:  # something was promoted: a drill with measured RTO and data loss
        attach_drill(summary, op, tl, _drill(op, tl, result, detail))
    summary["data_loss"] = _data_loss(tl)
    if result == "completed" and _whole_region(params):  # heartbeats, backups, monitor follow it from now on
        from lifeboat.failover.active import write_active

        summary["active_region"] = write_active(
            op.inv, tl.target_region, by=f"{tl.dag_id}/{tl.run_id}", kind=kind, reason=str(params.get("reason") or ""),
            drill_id=summary.get("drill_id"), since=tl.verified_at)
    return close_record(kind, summary, op, tl)


def _whole_region(params: dict) -> bool:
    scope = params.get("scope") or ["region"]
    return "region" in ([scope] if isinstance(scope, str) else list(scope))


def _data_loss(tl: Timeline) -> dict[str, dict[str, Any]]:
    out = {}
    for ds, hb in tl.heartbeats.items():
        t, s = hb.target_at(), hb.source_at()
        out[ds] = {
            "newest_heartbeat_promoted": hb.target,
            "seconds_before_trigger": None if t is None else round(max(0.0, (tl.triggered_at - t).total_seconds()), 3),
            "newest_heartbeat_old_primary": hb.source,
            "unreplicated_seconds": None if (t is None or s is None) else round(max(0.0, (s - t).total_seconds()), 3),
            "old_primary_reachable": hb.source_reachable,
            "measured": hb.measured,
        }
    return out


def drill_recorder(op: Any, tl: Any, result: str, *, type_: str, scope: list[str], target: str) -> DrillRecorder:
    """A drill of the operation's timeline: its steps, the RTO clock from the trigger to verified (the
    services' checks against the new primaries), the tightest RPO objective of its datastores."""
    inv = op.inv
    rpo = min((inv.objectives_for(d).rpo for d in tl.datastores), default=inv.objectives.rpo)
    label = tl.datastores[0] if len(tl.datastores) == 1 and not tl.services else "platform"
    rec = DrillRecorder(datastore=label, type_=type_, objectives=Objectives(rto=inv.objectives.rto, rpo=rpo),
                        repo=op.store.repo, run={"dag_id": tl.dag_id, "run_id": tl.run_id},
                        scope=scope, target=target, started_at=tl.triggered_at)
    d = rec.drill
    d.steps = list(tl.steps)
    d.restore_started_at = tl.triggered_at  # the RTO clock: the trigger ..
    d.ready_at = tl.verified_at if result == "completed" else None  # .. verified (write+read, /health, /ready)
    d.rto_started_at_step = "trigger"
    d.rto_stopped_after_step = next((s.name for s in reversed(tl.steps) if s.name.startswith("verify")), None)
    return rec


def _drill(op: Operation, tl: Timeline, result: str, detail: str) -> Drill:
    rec = drill_recorder(op, tl, result, type_=op.kind, scope=tl.datastores + tl.services, target=tl.target_region)
    d = rec.drill
    losses = _data_loss(tl)
    promoted_hbs = [t for t in (v.target_at() for v in tl.heartbeats.values()) if t is not None]
    d.newest_heartbeat_at = min(promoted_hbs) if promoted_hbs else None
    if op.kind == "failback":  # a switchover: the loss is what the old primary had and the new one lacks
        unrep = [v["unreplicated_seconds"] for v in losses.values() if v["unreplicated_seconds"] is not None]
        if unrep:
            d.newest_heartbeat_at = tl.triggered_at - timedelta(seconds=max(unrep))
    now = utcnow()
    d.steps.append(DrillStep(name="data loss (heartbeats)", started_at=now, finished_at=now, ok=True, detail="; ".join(
        f"{ds}: newest heartbeat on {tl.target_region} {seconds_text(v['seconds_before_trigger'])} before the trigger"
        + (f", old primary {seconds_text(v['unreplicated_seconds'])} ahead" if v["unreplicated_seconds"] is not None
           else ", old primary unreachable" if not v["old_primary_reachable"] else "")
        + f" ({v['measured']})" for ds, v in losses.items())))
    error = None if result == "completed" else RestoreFailed(detail)
    d = rec.finish(error)
    manual = [ds for ds in tl.datastores if not op.engine(ds).implemented]
    if manual:
        d.reasons.append(f"not automated, manual steps needed: {', '.join(manual)}")
        d.verdict = "fail"
        op.store.repo.save_drill(d)
    return d


SEVERITY: dict[str, Severity] = {
    "completed": "critical", "failed": "critical", "blocked": "critical", "not_approved": "high",
    "rejected": "medium", "refused": "medium", "rebuilt": "high", "dry_run": "low", "dry_run_failed": "medium"}


def notify(kind: str, params: dict, run: dict, summary: dict | None) -> dict:
    """Tell people what happened, whatever happened (the DAG's `done` gate decides the run's state)."""
    summary = summary or {"outcome": "failed", "detail": "the record task did not succeed"}
    result = summary.get("outcome", "failed")
    title = f"lifeboat {kind} to {params.get('target_region')}: {result.replace('_', ' ')}"
    return deliver(SEVERITY, result, title, report_lines(summary, params, run, seconds_text))


def report_lines(summary: dict, params: dict, run: dict, duration: Callable[[Any], str]) -> list[str]:
    """The notification's lines: the detail, the reason, the run, the drill's verdict and reasons."""
    lines = [summary.get("detail", ""), f"reason: {params.get('reason')}",
             f"run: {run.get('dag_id')} {run.get('run_id')}"]
    if summary.get("drill_id"):
        lines.append(f"drill {summary['drill_id']}: {summary.get('verdict')}, "
                     f"RTO {duration(summary.get('rto_seconds'))}, "
                     f"data loss {duration(summary.get('rpo_seconds'))}")
        lines += [f"- {r}" for r in summary.get("reasons", [])]
    return lines


def deliver(severity: dict[str, Severity], result: str, title: str, lines: list[str]) -> dict:
    """Send the notification at the outcome's severity; what the notify task returns."""
    body = "\n".join(line for line in lines if line)
    delivered = alerts.send(severity.get(result, "high"), title, body)
    return {"outcome": result, "failed": result in FAILED_OUTCOMES, "delivered": delivered, "title": title}

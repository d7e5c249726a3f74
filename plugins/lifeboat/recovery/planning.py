"""The first tasks of lifeboat_recover: the guard, the preflight per datastore, the plan the approver
reads (ordered steps, the estimated duration from previous drills). Nothing here changes anything
(the guard only opens the timeline of a real run)."""

from __future__ import annotations

import logging
from typing import Any

from lifeboat.durations import format_duration
from lifeboat.errors import LifeboatError, Refused
from lifeboat.records import utcnow
from lifeboat.recovery.estimate import estimate
from lifeboat.recovery.operation import RecoveryOp, operation
from lifeboat.recovery.runtime import runtime
from lifeboat.recovery.timeline import RecoveryTimeline

log = logging.getLogger(__name__)


def _parse(ts: str | None):
    from datetime import datetime

    return datetime.fromisoformat(ts) if ts else None


def guard(kind: str, params: dict, run: dict) -> dict:
    """Refuse before touching anything; a real run opens (or resumes) its timeline."""
    op = operation(kind, params, run)
    order = [f"{n.kind}:{n.name}" for n in op.order]
    out = {"kind": kind, "region": op.region, "requested": op.requested, "order": order,
           "datastores": op.datastores, "services": op.services, "into": op.into, "target": op.target,
           "dry_run": op.dry_run, "added_by_dependency_map": [n.name for n in op.order if n.name not in op.requested]}
    if op.dry_run:
        log.info("DRY RUN of %s in %s: nothing will be changed", kind, op.region)
        return {**out, "note": "dry run: every step reports what it would do; nothing is changed"}
    tl = op.store.load(op.timeline_id)
    if tl is None:
        tl = RecoveryTimeline(id=op.timeline_id, kind=op.kind, dag_id=run.get("dag_id", ""),
                              run_id=run.get("run_id", ""),
                              region=op.region, requested=op.requested, order=order, datastores=op.datastores,
                              services=op.services, reason=op.reason, into=op.into, target=op.target,
                              failed_at=op.failed_at, triggered_at=_parse(run.get("run_started_at")) or utcnow())
        resumed = False
    else:
        tl.attempts += 1
        tl.outcome = "running"
        resumed = True
        log.warning("resuming %s (attempt %d, triggered %s): finished steps are checked, not repeated", tl.id,
                    tl.attempts, tl.triggered_at.isoformat())
    op.store.save(tl)
    return {**out, "timeline_id": tl.id, "triggered_at": tl.triggered_at.isoformat(), "resumed": resumed,
            "attempt": tl.attempts}


def preflight(kind: str, params: dict, run: dict, datastore: str) -> dict:
    """Read-only facts about one datastore in the acting region: the backup a recovery starts from,
    what the catalog can reach, whether the engine automates this kind of recovery, the live state."""
    op = operation(kind, params, run, check_confirm=False)
    eng = op.engine(datastore)
    target = op.target_for(datastore)
    out: dict[str, Any] = {"datastore": datastore, "engine": eng.engine, "target": target, "blockers": [],
                           "warnings": []}
    try:
        m = eng.recovery_backup(target)
        from lifeboat.catalog import Catalog

        v = Catalog(eng.ctx.repo).last_verification(datastore, m.id)
        out["backup"] = {"id": m.id, "kind": m.kind, "from": eng.backup_time(m).isoformat(),
                         "verified": bool(v and v.ok)}
        if not (v and v.ok):
            out["warnings"].append(f"{datastore}: backup {m.id} is not verified")
    except LifeboatError as exc:
        out["blockers"].append(f"{datastore}: {exc}")
        m = None
    try:
        rng = eng.recovery_range()
        out["range"] = {"continuous": rng.continuous, "until": rng.until.isoformat() if rng.until else None,
                        "detail": rng.detail}
        t = eng.target_time(target)
        if rng.continuous and t is not None and rng.until is not None and t > rng.until:
            out["blockers"].append(f"{datastore}: target {target} is after the newest instant the catalog reaches "
                                   f"({rng.until.isoformat()}, {rng.detail})")
    except LifeboatError as exc:
        out["warnings"].append(f"{datastore}: cannot read what the catalog reaches: {exc}")
    out["automated"] = True
    if m is not None:
        try:
            eng.recovery_target(m, target, into=op.into, tag=op.tag)
        except Refused as exc:
            out["automated"] = False
            out["manual"] = str(exc)
    try:
        eng.ping()
        out["live"] = "reachable"
    except Exception as exc:
        out["live"] = f"unreachable: {str(exc).splitlines()[0][:200]}"
    log.info("preflight %s: %s", datastore, out)
    return out


def plan(kind: str, params: dict, run: dict, preflights: list[dict] | None) -> dict:
    """Ordered steps (dependencies first), the estimate from previous drills, blockers and warnings;
    the approver reads `text`. Fails (dry runs too) when something blocks the recovery."""
    op = operation(kind, params, run, check_confirm=False)
    by_ds = {p["datastore"]: p for p in (preflights or []) if p}
    blockers = [f"{d}: no preflight result" for d in op.datastores if d not in by_ds]
    warnings: list[str] = []
    for p in by_ds.values():
        blockers += p["blockers"]
        warnings += p["warnings"]
    drills = op.store.repo.drills()
    est = estimate(drills, op.datastores, op.services)
    steps: list[str] = []
    if op.into == "live":
        for d in op.datastores:
            steps.append(f"fence {d}@{op.region}: stop the live server (host access); a second confirmation was given")
    for node in op.order:
        e = est["per"].get(node.name, {})
        took = f" (~{format_duration(e['seconds'])}, {e['from']})" if e.get("seconds") is not None else \
            f" (no estimate: {e.get('from', '')})"
        if node.kind == "datastore":
            p = by_ds.get(node.name, {})
            if not p.get("automated", True):
                steps.append(f"MANUAL {node.name}: {p.get('manual')}")
                continue
            b = p.get("backup") or {}
            steps.append(f"restore {node.name} into a {op.into} target from {b.get('id', '?')} "
                         f"({'verified' if b.get('verified') else 'NOT verified'}, data from {b.get('from', '?')}) "
                         f"to {p.get('target', op.target)}{took}; live now: {p.get('live', '?')}")
            steps.append(f"validate {node.name}: counts against the manifest, the engine's integrity checks, heartbeat "
                         "continuity")
        else:
            rt = runtime(op, node.name)
            keys = [f"{k} ({ds})" for ds, k in rt.spec.env.items() if ds in op.datastores]
            steps.append(f"repoint {node.name}: {', '.join(keys) or 'no connection keys'} -> the recovered targets"
                         + (f" (Secret {rt.spec.secret})" if rt.spec.secret and rt.kube is not None else "")
                         + f"; {rt.describe()}{took}")
            steps.append(f"verify {node.name}: " + ", ".join(
                [*(["Deployment rolled out, every pod Ready"] if rt.kube is not None else []),
                 *[f"{k} {u}" for k, u in rt.urls().items()]]))
    steps.append("record a recovery drill: RTO from the trigger to verified, data loss from the heartbeats in the "
                 f"recovered data against {op.failed_at.isoformat() if op.failed_at else 'the trigger time'}; notify")
    total = est["total_seconds"]
    head = (f"**RECOVER in {op.region}** -- {'DRY RUN, nothing will change' if op.dry_run else 'REAL RUN'}\n\n"
            f"Reason: {op.reason}\n\nScope: {', '.join(op.requested)}"
            + (f" (+ dependencies: {', '.join(n.name for n in op.order if n.name not in op.requested)})"
               if any(n.name not in op.requested for n in op.order) else "")
            + f"\n\nInto: {op.into} target(s); target: {op.target}"
            + (f" (per datastore: {op.targets})" if op.targets else "") + "\n")
    lines = [head, "Steps, in order (dependencies first):", *(f"{i}. {s}" for i, s in enumerate(steps, 1)),
             f"\nEstimated duration: {format_duration(total) if total is not None else 'unknown'}"
             + (f" (not measured yet: {', '.join(est['unknown'])})" if est["unknown"] else "")]
    for title, items in (("Warnings:", warnings), ("BLOCKED:", blockers)):
        if items:
            lines += [f"\n{title}", *(f"- {w}" for w in items)]
    text = "\n".join(lines)
    log.info("plan:\n%s", text)
    result = {"kind": kind, "region": op.region, "dry_run": op.dry_run, "order": [n.name for n in op.order],
              "steps": steps, "estimate": est, "estimated_seconds": total, "blockers": blockers,
              "warnings": warnings, "preflights": by_ds, "text": text}
    if blockers:
        raise Refused(f"{kind} in {op.region} is blocked:\n- " + "\n- ".join(blockers))
    return result


def order_text(op: RecoveryOp) -> str:
    return " -> ".join(n.name for n in op.order)

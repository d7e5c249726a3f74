"""The first tasks of a failover or failback: the guard, the preflight per datastore, the plan the
approver reads. Nothing here changes anything (the guard only opens the timeline of a real run)."""

from __future__ import annotations

import logging
from typing import Any

from lifeboat.durations import format_duration
from lifeboat.errors import LifeboatError, Refused
from lifeboat.failover.facts import ExpectedLoss, Preflight
from lifeboat.failover.operation import Operation, operation, parse
from lifeboat.failover.timeline import Timeline
from lifeboat.records import utcnow

log = logging.getLogger(__name__)


def seconds_text(v: float | None) -> str:
    return "unknown" if v is None else format_duration(v)


def guard(kind: str, params: dict, run: dict) -> dict:
    """The first task: refuse before touching anything; a real run opens (or resumes) its timeline."""
    op = operation(kind, params, run)
    out = {"kind": kind, "target_region": op.target, "source_region": op.source, "datastores": op.datastores,
           "services": op.services, "whole_region": op.whole_region, "dry_run": op.dry_run,
           "switch_back": op.switch_back, "manual": op.manual()}
    if op.dry_run:
        log.info("DRY RUN of %s to %s: nothing will be changed", kind, op.target)
        return {**out, "note": "dry run: every step reports what it would do; nothing is changed"}
    tl = op.store.load(op.timeline_id)
    started = parse(run.get("run_started_at")) or utcnow()
    if tl is None:
        tl = Timeline(id=op.timeline_id, kind=op.kind, dag_id=run.get("dag_id", ""), run_id=run.get("run_id", ""),
                      target_region=op.target, source_region=op.source, datastores=op.datastores,
                      services=op.services, reason=op.reason, switch_back=op.switch_back, triggered_at=started)
        resumed = False
    else:
        tl.attempts += 1
        tl.outcome = "running"
        resumed = True
        log.warning("resuming %s %s (attempt %d, triggered %s): completed steps are checked, not repeated",
                    kind, tl.id, tl.attempts, tl.triggered_at.isoformat())
    op.store.save(tl)
    return {**out, "timeline_id": tl.id, "triggered_at": tl.triggered_at.isoformat(), "resumed": resumed,
            "attempt": tl.attempts}


def preflight(kind: str, params: dict, run: dict, datastore: str) -> dict:
    """Read-only facts about one datastore in both regions."""
    op = operation(kind, params, run, check_confirm=False)
    rep = op.engine(datastore).preflight(op.target)
    log.info("preflight %s: %s", datastore, rep.model_dump(mode="json", exclude={"target", "source"}))
    return rep.dump()


class Plan:
    """The ordered steps of one operation, with what blocks it and what the approver should know."""

    def __init__(self, op: Operation, preflights: list[dict] | None):
        self.op = op
        self.by_ds = {p.datastore: p for p in (Preflight.model_validate(x) for x in (preflights or []) if x)}
        self.steps: list[str] = []
        self.blockers: list[str] = [f"{ds}: no preflight result" for ds in op.datastores if ds not in self.by_ds]
        self.warnings: list[str] = [w for p in self.by_ds.values() for w in p.warnings]
        self.loss: dict[str, ExpectedLoss] = {}
        self.manual = [d for d in op.datastores if d in self.by_ds and not self.by_ds[d].implemented]
        self.auto = [d for d in op.datastores if d in self.by_ds and d not in self.manual]

    @property
    def moving(self) -> bool:
        """Does the platform move (a failover, or a failback that switches back)?"""
        return self.op.kind == "failover" or self.op.switch_back

    def failover_steps(self) -> None:
        op = self.op
        for ds in self.auto:
            p, eng = self.by_ds[ds], op.engine(ds)
            self.blockers += p.blockers
            if p.source is not None and p.source.live_primary:
                self.steps.append(f"fence {ds}@{op.source}: {eng.describe_fence} (a marker heartbeat is written first)")
            else:
                state = p.source.describe() if p.source else "?"
                self.steps.append(f"fence {ds}@{op.source}: skipped, {state} (recorded, not fatal)")
        for ds in self.auto:
            p, eng = self.by_ds[ds], op.engine(ds)
            if p.action == "none":
                self.steps.append(f"promote {ds}@{op.target}: already primary, nothing to do")
            else:
                self.steps.append(f"promote {ds}@{op.target}: {eng.describe_promote}")
            self.loss[ds] = p.expected_loss()

    def failback_steps(self) -> None:
        op = self.op
        for ds in self.auto:
            p, eng = self.by_ds[ds], op.engine(ds)
            t, s = p.target, p.source
            if t is not None and t.role == "primary" and (s is None or s.role != "primary"):
                self.steps.append(f"{ds}: {op.target} is already the primary: nothing to fail back")
                continue
            if s is None or s.role != "primary":
                self.blockers.append(f"{ds}: {op.source} is not a reachable primary "
                                     f"({s.describe() if s else '?'}); nothing to rebuild from")
                continue
            self.steps.append(f"rebuild {ds}@{op.target} as a standby of {op.source}: {eng.describe_rebuild} -- "
                              f"writes made on {op.target} after the failover are discarded "
                              f"(now: {t.describe() if t else '?'})")
            self.loss[ds] = ExpectedLoss(expected_data_loss_seconds=0.0, data_loss_basis="switchover: promotes only "
                                                                                          "after the standby replayed "
                                                                                          "everything")
        self.steps.append(f"wait until every rebuilt standby in {op.target} has caught up")
        if op.switch_back:
            for ds in self.auto:
                self.steps.append(f"switch back {ds}: fence {op.source} ({op.engine(ds).describe_fence}), promote "
                                  f"{op.target} once caught up, rebuild {op.source} as its standby")

    def service_steps(self) -> dict[str, Any]:
        op, state = self.op, {}
        api = op.services_api()
        for name in op.services:
            svc = api.spec(name)
            try:
                rep = api.replicas(svc, op.target)
            except LifeboatError as exc:
                self.blockers.append(str(exc))
                continue
            state[name] = {"replicas": rep, "health": api.check(svc, op.target, ready=False).get("health")}
            if rep.get("managed"):
                self.steps.append(f"scale {name} in {op.target}: {rep['desired']} -> {svc.replicas} replicas "
                                  f"(kubernetes {rep['connection']}, namespace {svc.namespace})")
            else:
                self.steps.append(f"{name} in {op.target}: no kubernetes connection, not scaled")
        return state

    def traffic_steps(self) -> dict[str, Any]:
        op = self.op
        state = op.traffic().preflight(op.target)
        if not state["ok"]:
            self.blockers.append(state["error"])
        for name, r in state.get("records", {}).items():
            if (r["current"] or "").rstrip(".") == r["target"].rstrip("."):
                self.steps.append(f"DNS {name}: already points at {r['target']}")
            else:
                self.steps.append(f"DNS {name}: {r['current']} -> {r['target']} (Route 53 UPSERT)")
        from lifeboat.failover.cdn import origin_failover

        state["cdn"] = origin_failover(op.inv, op.target)  # CloudFront fails over per request: a fact to report
        for name, c in state["cdn"].items():
            if c["ok"]:
                self.steps.append(f"CDN {name} (distribution {c['distribution']}): origin groups fail over per "
                                  f"request to {op.target} ({', '.join(c['groups'])}): nothing to switch")
            else:
                self.warnings.append(f"CDN {name}: origin groups will not serve {op.target}: "
                                     + ("; ".join(c.get("findings") or []) or c.get("error", "")))
        return state

    def closing_steps(self) -> None:
        op = self.op
        if op.kind == "failback" and op.switch_back and op.services:
            self.steps.append(f"after the DNS TTL: scale services in {op.source} back to their standby replicas")
        if self.moving:
            checks = [f"write+read on {d}@{op.target}" for d in self.auto] + [
                f"{s} Deployment Ready, /health and /ready in {op.target}" for s in op.services]
            self.steps.append("verify: " + "; ".join(checks))
            self.steps.append("record the timeline as a drill (RTO from the trigger, data loss from heartbeats), "
                              "notify")

    def text(self) -> str:
        op = self.op
        head = (f"**{op.kind.upper()} to {op.target}** (from {op.source}) -- "
                f"{'DRY RUN, nothing will change' if op.dry_run else 'REAL RUN'}\n\n"
                f"Reason: {op.reason}\n\nScope: {', '.join(op.datastores + op.services)}"
                f"{' (whole region)' if op.whole_region else ''}\n")
        lines = [head, "Steps, in order:", *(f"{i}. {s}" for i, s in enumerate(self.steps, 1))]
        if self.loss:
            lines.append("\nExpected data loss:")
            for ds, v in self.loss.items():
                extra = []
                if v.replication_lag_bytes is not None:
                    extra.append(f"replication lag {v.replication_lag_bytes} bytes")
                if v.unreplicated_seconds is not None:
                    extra.append(f"old primary's newest heartbeat is {seconds_text(v.unreplicated_seconds)} newer")
                if v.newest_verified_backup_age_seconds is not None:
                    extra.append(f"newest verified backup {seconds_text(v.newest_verified_backup_age_seconds)} old")
                lines.append(f"- {ds}: up to {seconds_text(v.expected_data_loss_seconds)} "
                             f"({v.data_loss_basis}){'; ' + ', '.join(extra) if extra else ''}")
        for title, items in (("Warnings:", self.warnings), ("BLOCKED:", self.blockers)):
            if items:
                lines += [f"\n{title}", *(f"- {w}" for w in items)]
        return "\n".join(lines)


def plan(kind: str, params: dict, run: dict, preflights: list[dict] | None) -> dict:
    """Ordered steps, the expected data-loss window, blockers and warnings; the approver reads `text`.
    Fails (in dry runs too) when something blocks the operation."""
    op = operation(kind, params, run, check_confirm=False)
    p = Plan(op, preflights)
    if kind == "failover":
        p.failover_steps()
    else:
        p.failback_steps()
    for ds in p.manual:
        p.steps.append(f"MANUAL {ds} ({p.by_ds[ds].engine}): {p.by_ds[ds].manual}")
    services = p.service_steps() if p.moving and op.services else {}
    traffic = p.traffic_steps() if p.moving and op.traffic_in_scope else {}
    p.closing_steps()
    text = p.text()
    result = {"kind": kind, "target_region": op.target, "source_region": op.source, "dry_run": op.dry_run,
              "steps": p.steps, "expected_data_loss": {ds: v.dump() for ds, v in p.loss.items()},
              "blockers": p.blockers, "warnings": p.warnings, "manual": p.manual, "services": services,
              "traffic": traffic, "text": text}
    log.info("plan:\n%s", text)
    if p.blockers:
        raise Refused(f"{kind} to {op.target} is blocked:\n- " + "\n- ".join(p.blockers))
    return result

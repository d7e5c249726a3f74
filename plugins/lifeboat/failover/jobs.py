"""The failover and failback jobs: one function per DAG task (thin operators call them).

Every function takes the DAG run's params and a `run` dict, re-validates the params (a task marked
successful by hand does not bypass the guard), checks the current state before acting, and returns a
JSON-safe dict (the task's XCom). With `dry_run` nothing is changed anywhere: each step reads the
current state and says what it would do.

Failover (to `target_region`, from the other region):
    guard -> preflight (per datastore) -> plan -> approval -> fence -> promote -> scale_services
          -> switch_traffic -> verify -> record -> notify
Failback (restore `target_region`, the original primary, from the current primary):
    guard -> preflight -> plan -> approval -> rebuild_target -> caught_up
          -> [switch_back: fence -> promote -> rebuild_source -> scale_services -> switch_traffic
              -> drain_source -> verify] -> record -> notify
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cached_property
from typing import Any

from lifeboat.errors import LifeboatError, Refused, RestoreFailed
from lifeboat.failover import check_inventory, failover_datastores, open_failover, scope_choices
from lifeboat.failover.timeline import Timeline, TimelineStore, timeline_id
from lifeboat.inventory import Inventory, format_duration, load_inventory
from lifeboat.records import utcnow

log = logging.getLogger("lifeboat.failover.jobs")

KINDS = ("failover", "failback")
CAUGHT_UP_TIMEOUT = 300.0
FAILED_OUTCOMES = ("refused", "blocked", "not_approved", "failed", "dry_run_failed")


# =========================================================================== the operation

@dataclass
class Operation:
    kind: str
    inv: Inventory
    target: str
    source: str
    datastores: list[str]
    services: list[str]
    whole_region: bool
    dry_run: bool
    reason: str
    switch_back: bool
    run: dict = field(default_factory=dict)
    _engines: dict = field(default_factory=dict, repr=False)

    def engine(self, name: str):
        if name not in self._engines:
            self._engines[name] = open_failover(name, inventory=self.inv, target_region=self.target)
        return self._engines[name]

    def automated(self) -> list[str]:
        return [d for d in self.datastores if self.engine(d).implemented]

    def manual(self) -> list[str]:
        return [d for d in self.datastores if not self.engine(d).implemented]

    @property
    def traffic_in_scope(self) -> bool:
        return bool(self.inv.failover and self.inv.failover.traffic) and (self.whole_region or bool(self.services))

    @cached_property
    def store(self) -> TimelineStore:
        from lifeboat.repository import Repository

        return TimelineStore(Repository.from_inventory(self.inv, self.target))

    @property
    def timeline_id(self) -> str:
        return timeline_id(self.kind, self.run)

    def timeline(self) -> Timeline | None:
        """The persisted timeline (None in dry runs). Created by the guard."""
        if self.dry_run:
            return None
        tl = self.store.load(self.timeline_id)
        if tl is None:
            raise Refused(f"no timeline {self.timeline_id} in {self.store.repo.primary.url}: the guard task creates "
                          "it -- clear the whole run instead of single tasks")
        return tl

    def services_api(self):
        from lifeboat.failover.services import Services

        return Services(self.inv.failover.services)

    def traffic(self):
        from lifeboat.failover.traffic import Traffic

        return Traffic(self.inv.failover.traffic)


def operation(kind: str, params: dict, run: dict | None = None, *, check_confirm: bool = True) -> Operation:
    """Validate the trigger parameters. Raises Refused (naming the parameter) before anything is touched."""
    if kind not in KINDS:
        raise Refused(f"unknown operation {kind!r}")
    inv = load_inventory()
    check_inventory(inv)
    regions = [inv.regions.primary, inv.regions.standby]
    target = str(params.get("target_region") or "").strip()
    if target not in regions:
        raise Refused(f"target_region {target!r}: not an inventory region (regions: {', '.join(regions)}). "
                      "Nothing was changed.")
    source = regions[1] if target == regions[0] else regions[0]
    reason = str(params.get("reason") or "").strip()
    if len(reason) < 3:
        raise Refused("reason: required -- say why (it goes into the timeline, the drill record and the "
                      "notification). Nothing was changed.")
    dry_run = params.get("dry_run", True)
    if not isinstance(dry_run, bool):
        raise Refused(f"dry_run: must be true or false, got {dry_run!r}. Nothing was changed.")
    scope = params.get("scope")
    scope = ["region"] if scope is None else scope
    if isinstance(scope, str):
        scope = [s.strip() for s in scope.split(",") if s.strip()]
    if not scope:  # an emptied selection is not "everything"
        raise Refused("scope: empty -- choose 'region' or datastores/services. Nothing was changed.")
    choices = scope_choices(inv)
    unknown = [s for s in scope if s not in choices]
    if unknown:
        raise Refused(f"scope: unknown {', '.join(map(repr, unknown))} (choose 'region' or any of: "
                      f"{', '.join(choices[1:])}). Nothing was changed.")
    whole = "region" in scope
    all_ds = failover_datastores(inv)
    all_svc = [s.name for s in inv.failover.services]
    datastores = all_ds if whole else [d for d in all_ds if d in scope]
    services = all_svc if whole else [s for s in all_svc if s in scope]
    if not datastores and not services:
        raise Refused("scope: selects no datastore and no service. Nothing was changed.")
    if not dry_run and check_confirm:
        confirm = str(params.get("confirm") or "").strip()
        if confirm != target:
            what = "is missing" if not confirm else f"is {confirm!r}"
            raise Refused(f"confirm: a real {kind} (dry_run=false) needs the target region typed exactly: "
                          f"{target!r}; the confirmation {what}. Nothing was changed.")
    switch_back = params.get("switch_back", False)
    if not isinstance(switch_back, bool):  # bool("false") is True
        raise Refused(f"switch_back: must be true or false, got {switch_back!r}. Nothing was changed.")
    return Operation(kind=kind, inv=inv, target=target, source=source, datastores=datastores, services=services,
                     whole_region=whole, dry_run=dry_run, reason=reason, switch_back=switch_back,
                     run=dict(run or {}))


def _iso(dt: datetime | None) -> str | None:
    return dt.isoformat() if dt else None


def _parse(ts: str | None) -> datetime | None:
    return datetime.fromisoformat(ts) if ts else None


# =========================================================================== guard, preflight, plan

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
    started = _parse(run.get("run_started_at")) or utcnow()
    if tl is None:
        tl = Timeline(id=op.timeline_id, kind=kind, dag_id=run.get("dag_id", ""), run_id=run.get("run_id", ""),
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
    rep["warnings"] = list(rep.get("warnings", [])) + [f"{datastore}: {w}" for w in rep.pop("warnings_engine", [])]
    log.info("preflight %s: %s", datastore, {k: v for k, v in rep.items() if k not in ("target", "source")})
    return rep


def _seconds(v: float | None) -> str:
    return "unknown" if v is None else format_duration(v)


def plan(kind: str, params: dict, run: dict, preflights: list[dict] | None) -> dict:
    """Ordered steps, the expected data-loss window, blockers and warnings; the approver reads `text`.
    Fails (in dry runs too) when something blocks the operation."""
    op = operation(kind, params, run, check_confirm=False)
    by_ds = {p["datastore"]: p for p in (preflights or []) if p}
    steps: list[str] = []
    blockers: list[str] = []
    warnings: list[str] = []
    loss: dict[str, Any] = {}
    for ds in op.datastores:
        if ds not in by_ds:
            blockers.append(f"{ds}: no preflight result")
    for p in by_ds.values():
        warnings += p.get("warnings", [])
    manual = [d for d in op.datastores if not by_ds.get(d, {}).get("implemented", True)]
    auto = [d for d in op.datastores if d in by_ds and d not in manual]

    def role_text(facts: dict) -> str:
        if not facts.get("reachable"):
            return f"unreachable ({facts.get('error', '').rsplit(': ', 1)[-1][:100]})"
        return facts.get("role") or "?"

    if kind == "failover":
        for ds in auto:
            p, eng = by_ds[ds], op.engine(ds)
            blockers += p.get("blockers", [])
            src = p["source"]
            if src.get("reachable") and src.get("role") == "primary":
                steps.append(f"fence {ds}@{op.source}: {eng.describe_fence} (a marker heartbeat is written first)")
            else:
                steps.append(f"fence {ds}@{op.source}: skipped, {role_text(src)} (recorded, not fatal)")
        for ds in auto:
            p, eng = by_ds[ds], op.engine(ds)
            if p.get("action") == "none":
                steps.append(f"promote {ds}@{op.target}: already primary, nothing to do")
            else:
                steps.append(f"promote {ds}@{op.target}: {eng.describe_promote}")
            loss[ds] = {k: p.get(k) for k in ("expected_data_loss_seconds", "data_loss_basis", "unreplicated_seconds",
                                              "replication_lag_bytes", "replication_lag_seconds",
                                              "newest_verified_backup_age_seconds")}
    else:  # failback
        for ds in auto:
            p, eng = by_ds[ds], op.engine(ds)
            t, s = p["target"], p["source"]
            if t.get("role") == "primary" and s.get("role") != "primary":
                steps.append(f"{ds}: {op.target} is already the primary: nothing to fail back")
                continue
            if s.get("role") != "primary":
                blockers.append(f"{ds}: {op.source} is not a reachable primary ({role_text(s)}); nothing to "
                                "rebuild from")
                continue
            steps.append(f"rebuild {ds}@{op.target} as a standby of {op.source}: {eng.describe_rebuild} -- "
                         f"writes made on {op.target} after the failover are discarded "
                         f"(now: {role_text(t)})")
            loss[ds] = {"expected_data_loss_seconds": 0.0,
                        "data_loss_basis": "switchover: promotes only after the standby replayed everything"}
        steps.append(f"wait until every rebuilt standby in {op.target} has caught up")
        if op.switch_back:
            for ds in auto:
                steps.append(f"switch back {ds}: fence {op.source} ({op.engine(ds).describe_fence}), promote "
                             f"{op.target} once caught up, rebuild {op.source} as its standby")
    for ds in manual:
        steps.append(f"MANUAL {ds} ({by_ds[ds]['engine']}): {by_ds[ds].get('manual')}")
    moving = kind == "failover" or op.switch_back
    services_state: dict[str, Any] = {}
    if moving and op.services:
        api = op.services_api()
        for name in op.services:
            svc = api.spec(name)
            try:
                rep = api.replicas(svc, op.target)
            except LifeboatError as exc:
                blockers.append(str(exc))
                continue
            health = api.check(svc, op.target, ready=False)
            services_state[name] = {"replicas": rep, "health": health.get("health")}
            if rep.get("managed"):
                steps.append(f"scale {name} in {op.target}: {rep['desired']} -> {svc.replicas} replicas "
                             f"(kubernetes {rep['connection']}, namespace {svc.namespace})")
            else:
                steps.append(f"{name} in {op.target}: no kubernetes connection, not scaled")
    traffic_state: dict[str, Any] = {}
    if moving and op.traffic_in_scope:
        traffic_state = op.traffic().preflight(op.target)
        if not traffic_state["ok"]:
            blockers.append(traffic_state["error"])
        for name, r in traffic_state.get("records", {}).items():
            if (r["current"] or "").rstrip(".") == r["target"].rstrip("."):
                steps.append(f"DNS {name}: already points at {r['target']}")
            else:
                steps.append(f"DNS {name}: {r['current']} -> {r['target']} (Route 53 UPSERT)")
    if kind == "failback" and op.switch_back and op.services:
        steps.append(f"after the DNS TTL: scale services in {op.source} back to their standby replicas")
    if moving:
        checks = [f"write+read on {d}@{op.target}" for d in auto] + [
            f"{s} Deployment Ready, /health and /ready in {op.target}" for s in op.services]
        steps.append("verify: " + "; ".join(checks))
        steps.append("record the timeline as a drill (RTO from the trigger, data loss from heartbeats), notify")
    text = _plan_text(op, steps, loss, blockers, warnings)
    result = {"kind": kind, "target_region": op.target, "source_region": op.source, "dry_run": op.dry_run,
              "steps": steps, "expected_data_loss": loss, "blockers": blockers, "warnings": warnings,
              "manual": manual, "services": services_state, "traffic": traffic_state, "text": text}
    log.info("plan:\n%s", text)
    if blockers:
        raise Refused(f"{kind} to {op.target} is blocked:\n- " + "\n- ".join(blockers))
    return result


def _plan_text(op: Operation, steps: list[str], loss: dict, blockers: list[str], warnings: list[str]) -> str:
    head = (f"**{op.kind.upper()} to {op.target}** (from {op.source}) -- "
            f"{'DRY RUN, nothing will change' if op.dry_run else 'REAL RUN'}\n\n"
            f"Reason: {op.reason}\n\nScope: {', '.join(op.datastores + op.services)}"
            f"{' (whole region)' if op.whole_region else ''}\n")
    lines = [head, "Steps, in order:"]
    lines += [f"{i}. {s}" for i, s in enumerate(steps, 1)]
    if loss:
        lines.append("\nExpected data loss:")
        for ds, v in loss.items():
            extra = []
            if v.get("replication_lag_bytes") is not None:
                extra.append(f"replication lag {v['replication_lag_bytes']} bytes")
            if v.get("unreplicated_seconds") is not None:
                extra.append(f"old primary's newest heartbeat is {_seconds(v['unreplicated_seconds'])} newer")
            if v.get("newest_verified_backup_age_seconds") is not None:
                extra.append(f"newest verified backup {_seconds(v['newest_verified_backup_age_seconds'])} old")
            lines.append(f"- {ds}: up to {_seconds(v.get('expected_data_loss_seconds'))} "
                         f"({v.get('data_loss_basis')}){'; ' + ', '.join(extra) if extra else ''}")
    if warnings:
        lines.append("\nWarnings:")
        lines += [f"- {w}" for w in warnings]
    if blockers:
        lines.append("\nBLOCKED:")
        lines += [f"- {b}" for b in blockers]
    return "\n".join(lines)


# =========================================================================== datastore steps

def _per_datastore(op: Operation, tl: Timeline | None, step: str, would, act, skip=None) -> dict[str, str]:
    """One step on every automated datastore, in order: `skip(ds, eng)` may give a reason to leave it
    alone (or raise); a dry run reports `would(ds, eng)`; otherwise `act(ds, eng)` runs as a recorded
    timeline step named `step` (formatted with ds, target, source)."""
    out: dict[str, str] = {}
    for ds in op.automated():
        eng = op.engine(ds)
        reason = skip(ds, eng) if skip else None
        if reason:
            out[ds] = reason
        elif op.dry_run:
            out[ds] = f"DRY RUN: would {would(ds, eng)}"
        else:
            with op.store.step(tl, step.format(ds=ds, target=op.target, source=op.source)) as s:
                s.detail = act(ds, eng)
            out[ds] = s.detail
    return out


def _live_primary(facts: dict) -> bool:
    return bool(facts.get("reachable") and facts.get("role") == "primary")


def fence(kind: str, params: dict, run: dict) -> dict:
    """Stop writes on the old primary where it is reachable (a marker heartbeat first)."""
    from lifeboat.datastores import open_engine

    op = operation(kind, params, run)

    def skip(ds, eng):
        if kind != "failback":
            return None
        if eng.role(op.target).get("role") == "primary":
            return f"{op.target} is already primary: no switchover fence needed"
        src = eng.role(op.source)
        if not _live_primary(src):
            raise Refused(f"switchover needs {ds}@{op.source} reachable as primary; found "
                          f"{src.get('role') or src.get('error')}")
        return None

    def would(ds, eng):
        src = eng.role(op.source)
        return (f"fence {ds}@{op.source} ({eng.describe_fence})" if _live_primary(src) else
                f"skip fencing {ds}@{op.source}: {src.get('role') or 'unreachable'}")

    def act(ds, eng):
        marker = ""
        if _live_primary(eng.role(op.source)):
            try:
                at = open_engine(ds, inventory=op.inv, region=op.source).heartbeat()
                marker = f"marker heartbeat {at.isoformat()} written; "
            except Exception as exc:  # the marker sharpens the measurement; fencing matters more
                marker = f"marker heartbeat not written ({type(exc).__name__}: {exc}); "
        return marker + eng.fence(op.source)

    out = _per_datastore(op, op.timeline(), "fence {ds}@{source}", would, act, skip)
    return {"dry_run": op.dry_run, "fenced": out, "manual": op.manual()}


def promote(kind: str, params: dict, run: dict) -> dict:
    """Promote the target region's standby of every datastore, in order; never twice."""
    op = operation(kind, params, run)
    tl = op.timeline()
    out: dict[str, Any] = {}
    for ds in op.automated():
        eng = op.engine(ds)
        before = eng.role(op.target)
        if op.dry_run:
            out[ds] = (f"DRY RUN: would promote {ds}@{op.target} ({eng.describe_promote}); now "
                       f"{before.get('role') or before.get('error')}")
            continue
        already = before.get("role") == "primary"
        with op.store.step(tl, f"promote {ds}@{op.target}") as s:
            source_reachable = bool(eng.role(op.source).get("reachable"))
            s.detail = eng.promote(op.target, require_caught_up=(kind == "failback"))
            # Measured right after the promotion, before anything new is written there.
            hb_target = eng.newest_heartbeat_or_none(op.target)
            hb_source = eng.newest_heartbeat_or_none(op.source) if source_reachable else None
            if ds not in tl.heartbeats or not already:
                tl.heartbeats[ds] = {
                    "target": _iso(hb_target), "source": _iso(hb_source), "source_reachable": source_reachable,
                    "measured_at": utcnow().isoformat(),
                    "measured": ("after the fact: already primary when this run reached the promote step"
                                 if already else "right after the promotion")}
            out[ds] = {"detail": s.detail, "promoted_now": not already, "heartbeats": tl.heartbeats[ds]}
    return {"dry_run": op.dry_run, "promoted": out, "manual": op.manual()}


def rebuild_target(kind: str, params: dict, run: dict) -> dict:
    """Failback: the original primary region becomes a standby of the current primary."""
    op = operation(kind, params, run)

    def skip(ds, eng):
        if eng.role(op.target).get("role") == "primary" and eng.role(op.source).get("role") != "primary":
            return f"{op.target} is already the primary: nothing to rebuild"
        return None

    out = _per_datastore(
        op, op.timeline(), "rebuild {ds}@{target} as standby of {source}",
        would=lambda ds, eng: (f"rebuild {ds}@{op.target} ({eng.role(op.target).get('role') or 'not running'}) "
                               f"as a standby of {op.source}: {eng.describe_rebuild}"),
        act=lambda ds, eng: eng.rebuild_as_standby(op.target, op.source), skip=skip)
    return {"dry_run": op.dry_run, "rebuilt": out, "manual": op.manual()}


def caught_up(kind: str, params: dict, run: dict, timeout: float = CAUGHT_UP_TIMEOUT) -> dict:
    """Failback: wait until every rebuilt standby has caught up with the current primary."""
    op = operation(kind, params, run)
    tl = op.timeline()
    out: dict[str, Any] = {}
    for ds in op.automated():
        eng = op.engine(ds)
        if eng.role(op.target).get("role") == "primary":
            out[ds] = {"ok": True, "detail": f"{op.target} is already the primary"}
            continue
        if op.dry_run:
            try:
                out[ds] = eng.caught_up(op.target, op.source)
            except LifeboatError as exc:
                out[ds] = {"ok": False, "detail": str(exc)}
            continue
        with op.store.step(tl, f"caught up {ds}@{op.target}") as s:
            deadline = time.monotonic() + timeout
            while True:
                res = eng.caught_up(op.target, op.source)
                if res["ok"]:
                    break
                if time.monotonic() > deadline:
                    raise RestoreFailed(f"{ds}@{op.target} has not caught up with {op.source} after "
                                        f"{timeout:.0f}s: {res['detail']}")
                time.sleep(1)
            s.detail = res["detail"]
            out[ds] = res
    return {"dry_run": op.dry_run, "caught_up": out}


def rebuild_source(kind: str, params: dict, run: dict) -> dict:
    """Failback after the switch: the region we came from becomes a standby of the target again."""
    op = operation(kind, params, run)
    out = _per_datastore(
        op, op.timeline(), "rebuild {ds}@{source} as standby of {target}",
        would=lambda ds, eng: f"rebuild {ds}@{op.source} as a standby of {op.target}: {eng.describe_rebuild}",
        act=lambda ds, eng: eng.rebuild_as_standby(op.source, op.target))
    return {"dry_run": op.dry_run, "rebuilt": out}


# =========================================================================== services and traffic

def scale_services(kind: str, params: dict, run: dict) -> dict:
    """Scale the target region's deployments up to their active replicas and wait until ready."""
    op = operation(kind, params, run)
    tl = op.timeline()
    api = op.services_api()
    out = {}
    for name in op.services:
        svc = api.spec(name)
        if op.dry_run:
            out[name] = api.scale(svc, op.target, svc.replicas, dry_run=True)
            continue
        with op.store.step(tl, f"scale {name} in {op.target}") as s:
            res = api.scale(svc, op.target, svc.replicas)
            ready = api.wait_ready(svc, op.target, svc.replicas)
            res["ready"] = ready.get("ready")
            s.detail = f"{res['detail']}, ready {ready.get('ready')}"
            out[name] = res
    return {"dry_run": op.dry_run, "services": out}


def switch_traffic(kind: str, params: dict, run: dict) -> dict:
    """Point the Route 53 records at the target region (read first; UPSERT only what differs)."""
    op = operation(kind, params, run)
    if not op.traffic_in_scope:
        return {"dry_run": op.dry_run, "records": [], "note": "traffic not in scope"}
    tl = op.timeline()
    if op.dry_run:
        return {"dry_run": True, "records": op.traffic().switch(op.target, dry_run=True)}
    with op.store.step(tl, f"switch traffic to {op.target}") as s:
        res = op.traffic().switch(op.target)
        s.detail = "; ".join(f"{r['record']}: {r['from']} -> {r['to']}" + ("" if r["changed"] else " (unchanged)")
                             for r in res)
    return {"dry_run": False, "records": res}


def drain_source(kind: str, params: dict, run: dict) -> dict:
    """Failback: after the DNS TTL, scale the services in the region we left back to standby replicas."""
    op = operation(kind, params, run)
    tl = op.timeline()
    api = op.services_api()
    ttl = max((r.ttl for r in op.inv.failover.traffic.records), default=0) if op.traffic_in_scope else 0
    out = {}
    if op.dry_run:
        for name in op.services:
            svc = api.spec(name)
            out[name] = api.scale(svc, op.source, svc.standby_replicas, dry_run=True)
        return {"dry_run": True, "services": out, "wait_seconds": ttl}
    with op.store.step(tl, f"drain services in {op.source}") as s:
        time.sleep(ttl)  # resolvers may hand out the old record until its TTL expires
        for name in op.services:
            svc = api.spec(name)
            out[name] = api.scale(svc, op.source, svc.standby_replicas)
        s.detail = f"waited {ttl}s (DNS TTL); " + "; ".join(f"{n}: {r['detail']}" for n, r in out.items())
    return {"dry_run": False, "services": out, "wait_seconds": ttl}


# =========================================================================== verify, record, notify

def verify(kind: str, params: dict, run: dict) -> dict:
    """A real write + read on every promoted datastore; every service's Deployment rolled out and Ready, its
    /health and /ready; stops the clock (so the RTO includes the pods becoming Ready)."""
    op = operation(kind, params, run)
    tl = op.timeline()
    api = op.services_api()
    out: dict[str, Any] = {"services": {}}
    out["datastores"] = _per_datastore(
        op, tl, "verify {ds}@{target}",
        would=lambda ds, eng: (f"write+read on {ds}@{op.target} (now "
                               f"{eng.role(op.target).get('role') or eng.role(op.target).get('error')})"),
        act=lambda ds, eng: eng.verify(op.target))
    for name in op.services:
        svc = api.spec(name)
        if op.dry_run:  # /ready writes through the service: only /health in a dry run
            out["services"][name] = {**api.check(svc, op.target, ready=False),
                                     "deployment": api.replicas(svc, op.target)}
            continue
        with op.store.step(tl, f"verify {name} in {op.target}") as s:
            # the Deployment rolled out with every pod Ready (its readinessProbe passing), then the URLs
            deployment = api.wait_ready(svc, op.target, svc.replicas)
            res = {**api.wait_healthy(svc, op.target), "deployment": deployment}
            out["services"][name] = res
            if not res["ok"]:
                raise RestoreFailed(f"{name} in {op.target} is not healthy after {svc.ready_timeout}: "
                                    + "; ".join(f"{k} {v.get('url')} -> {v.get('status') or v.get('error')} "
                                                f"{v.get('body', '')}" for k, v in res.items()
                                                if k in ("health", "ready")))
            ready = deployment.get("ready")
            s.detail = "; ".join([*([f"deployment {ready}/{svc.replicas} Ready"] if ready is not None else []),
                                  *(f"{k} {v['status']}" for k, v in res.items() if k in ("health", "ready"))])
    if not op.dry_run:
        tl.verified_at = utcnow()
        op.store.save(tl)
        out["verified_at"] = tl.verified_at.isoformat()
        out["rto_seconds"] = round((tl.verified_at - tl.triggered_at).total_seconds(), 3)
    return {"dry_run": op.dry_run, **out}


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
        done = xcoms.get("verify") is not None or (kind == "failback" and xcoms.get("caught_up") is not None
                                                   and not xcoms["guard"].get("switch_back"))
        return ("dry_run", "dry run complete: nothing was changed") if done else \
            ("dry_run_failed", "a dry-run step failed (see the task logs); nothing was changed")
    approval = xcoms.get("approval")
    if approval is None:
        return "not_approved", "the approval timed out or failed: nothing was changed"
    if "Approve" not in (approval.get("chosen_options") or []):
        who = (approval.get("responded_by_user") or {}).get("name", "someone")
        return "rejected", f"rejected by {who}: nothing was changed"
    if kind == "failback" and not xcoms["guard"].get("switch_back"):
        return ("rebuilt", "standbys rebuilt and caught up; not switched back") if xcoms.get("caught_up") else \
            ("failed", "rebuilding the standbys did not finish")
    if xcoms.get("verify") is not None:
        return "completed", f"{kind} to {xcoms['guard']['target_region']} completed and verified"
    return "failed", f"the {kind} stopped before verification (see the timeline)"


def record(kind: str, params: dict, run: dict, xcoms: dict[str, Any]) -> dict:
    """Turn the timeline into a drill record (type failover/failback) in the catalog, copied to the other
    region. Runs whatever happened before (trigger rule all_done)."""
    result, detail = outcome(kind, params, xcoms)
    summary: dict[str, Any] = {"outcome": result, "detail": detail, "kind": kind}
    if result in ("refused", "dry_run", "dry_run_failed") or xcoms.get("guard") is None:
        return summary  # no timeline: nothing changed, nothing to measure
    op = operation(kind, params, run, check_confirm=False)
    tl = op.store.load(op.timeline_id)
    if tl is None:
        return {**summary, "detail": detail + " (no timeline found)"}
    tl.outcome = result
    summary["timeline_id"] = tl.id
    if tl.heartbeats:  # something was promoted: a drill with measured RTO and data loss
        d = _drill(op, tl, result, detail)
        tl.drill_id = d.id
        summary.update(drill_id=d.id, verdict=d.verdict, rto_seconds=d.rto_seconds, rpo_seconds=d.rpo_seconds,
                       reasons=d.reasons, drill_copy=op.store.copy_to_other_region(f"drills/{d.id}.json", d.to_json()))
    summary["data_loss"] = _data_loss(tl)
    op.store.save(tl)
    summary["timeline_copy"] = op.store.copy_to_other_region(tl.key, tl.to_json())
    log.info("%s: %s", kind, summary)
    return summary


def _data_loss(tl: Timeline) -> dict[str, dict[str, Any]]:
    out = {}
    for ds, hb in tl.heartbeats.items():
        t, s = _parse(hb.get("target")), _parse(hb.get("source"))
        out[ds] = {
            "newest_heartbeat_promoted": hb.get("target"),
            "seconds_before_trigger": None if t is None else round(max(0.0, (tl.triggered_at - t).total_seconds()), 3),
            "newest_heartbeat_old_primary": hb.get("source"),
            "unreplicated_seconds": None if (t is None or s is None) else round(max(0.0, (s - t).total_seconds()), 3),
            "old_primary_reachable": hb.get("source_reachable"),
            "measured": hb.get("measured"),
        }
    return out


def _drill(op: Operation, tl: Timeline, result: str, detail: str):
    from lifeboat.drills import DrillRecorder
    from lifeboat.inventory import Objectives
    from lifeboat.records import DrillStep

    inv = op.inv
    rpo = min((inv.objectives_for(d).rpo for d in tl.datastores), default=inv.objectives.rpo)
    label = tl.datastores[0] if len(tl.datastores) == 1 and not tl.services else "platform"
    rec = DrillRecorder(datastore=label, type_=op.kind, objectives=Objectives(rto=inv.objectives.rto, rpo=rpo),
                        repo=op.store.repo, run={"dag_id": tl.dag_id, "run_id": tl.run_id},
                        scope=tl.datastores + tl.services, target=tl.target_region, started_at=tl.triggered_at)
    d = rec.drill
    d.steps = list(tl.steps)
    d.restore_started_at = tl.triggered_at
    d.ready_at = tl.verified_at if result == "completed" else None
    losses = _data_loss(tl)
    promoted_hbs = [_parse(v["target"]) for v in tl.heartbeats.values() if v.get("target")]
    d.newest_heartbeat_at = min(promoted_hbs) if promoted_hbs else None
    if op.kind == "failback":  # a switchover: the loss is what the old primary had and the new one lacks
        unrep = [v["unreplicated_seconds"] for v in losses.values() if v["unreplicated_seconds"] is not None]
        if unrep:
            d.newest_heartbeat_at = tl.triggered_at - timedelta(seconds=max(unrep))
    now = utcnow()
    d.steps.append(DrillStep(name="data loss (heartbeats)", started_at=now, finished_at=now, ok=True, detail="; ".join(
        f"{ds}: newest heartbeat on {tl.target_region} {_seconds(v['seconds_before_trigger'])} before the trigger"
        + (f", old primary {_seconds(v['unreplicated_seconds'])} ahead" if v["unreplicated_seconds"] is not None
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


SEVERITY = {"completed": "critical", "failed": "critical", "blocked": "critical", "not_approved": "high",
            "rejected": "medium", "refused": "medium", "rebuilt": "high", "dry_run": "low", "dry_run_failed": "medium"}


def notify(kind: str, params: dict, run: dict, summary: dict | None) -> dict:
    """Tell people what happened, whatever happened (the DAG's `done` gate decides the run's state)."""
    from lifeboat import alerts

    summary = summary or {"outcome": "failed", "detail": "the record task did not succeed"}
    result = summary.get("outcome", "failed")
    target = params.get("target_region")
    title = f"lifeboat {kind} to {target}: {result.replace('_', ' ')}"
    lines = [summary.get("detail", ""), f"reason: {params.get('reason')}",
             f"run: {run.get('dag_id')} {run.get('run_id')}"]
    if summary.get("drill_id"):
        lines.append(f"drill {summary['drill_id']}: {summary.get('verdict')}, RTO "
                     f"{_seconds(summary.get('rto_seconds'))}, data loss {_seconds(summary.get('rpo_seconds'))}")
        lines += [f"- {r}" for r in summary.get("reasons", [])]
    body = "\n".join(line for line in lines if line)
    delivered = alerts.send(SEVERITY.get(result, "high"), title, body)
    return {"outcome": result, "failed": result in FAILED_OUTCOMES, "delivered": delivered, "title": title}

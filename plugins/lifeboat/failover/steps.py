"""The steps that act: fence, promote, rebuild, catch up, scale services, switch traffic, drain, verify.

Each checks the current state first (a cleared and re-run task continues instead of repeating) and,
in a dry run, only reports what it would do. Real steps are recorded in the operation's timeline.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from lifeboat.datastores import open_engine
from lifeboat.errors import LifeboatError, Refused, RestoreFailed
from lifeboat.failover.facts import CaughtUp, PromotionHeartbeats
from lifeboat.failover.operation import Operation, iso, operation
from lifeboat.failover.timeline import Timeline
from lifeboat.records import utcnow
from lifeboat.waiting import WaitTimeout, wait_until

log = logging.getLogger(__name__)
CAUGHT_UP_TIMEOUT = 300.0


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


def fence(kind: str, params: dict, run: dict) -> dict:
    """Stop writes on the old primary where it is reachable (a marker heartbeat first)."""
    op = operation(kind, params, run)

    def skip(ds, eng):
        if kind != "failback":
            return None
        if eng.role(op.target).role == "primary":
            return f"{op.target} is already primary: no switchover fence needed"
        src = eng.role(op.source)
        if not src.live_primary:
            raise Refused(f"switchover needs {ds}@{op.source} reachable as primary; found {src.role or src.error}")
        return None

    def would(ds, eng):
        src = eng.role(op.source)
        return (f"fence {ds}@{op.source} ({eng.describe_fence})" if src.live_primary else
                f"skip fencing {ds}@{op.source}: {src.role or 'unreachable'}")

    def act(ds, eng):
        marker = ""
        if eng.role(op.source).live_primary:
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
        if tl is None:  # a dry run
            out[ds] = (f"DRY RUN: would promote {ds}@{op.target} ({eng.describe_promote}); now "
                       f"{before.role or before.error}")
            continue
        already = before.role == "primary"
        with op.store.step(tl, f"promote {ds}@{op.target}") as s:
            source_reachable = bool(eng.role(op.source).reachable)
            s.detail = eng.promote(op.target, require_caught_up=(kind == "failback"))
            # Measured right after the promotion, before anything new is written there.
            hb_target = eng.newest_heartbeat_or_none(op.target)
            hb_source = eng.newest_heartbeat_or_none(op.source) if source_reachable else None
            if ds not in tl.heartbeats or not already:
                tl.heartbeats[ds] = PromotionHeartbeats(
                    target=iso(hb_target), source=iso(hb_source), source_reachable=source_reachable,
                    measured_at=utcnow().isoformat(),
                    measured=("after the fact: already primary when this run reached the promote step"
                              if already else "right after the promotion"))
            out[ds] = {"detail": s.detail, "promoted_now": not already, "heartbeats": tl.heartbeats[ds].dump()}
    return {"dry_run": op.dry_run, "promoted": out, "manual": op.manual()}


def rebuild_target(kind: str, params: dict, run: dict) -> dict:
    """Failback: the original primary region becomes a standby of the current primary."""
    op = operation(kind, params, run)

    def skip(ds, eng):
        if eng.role(op.target).role == "primary" and eng.role(op.source).role != "primary":
            return f"{op.target} is already the primary: nothing to rebuild"
        return None

    out = _per_datastore(
        op, op.timeline(), "rebuild {ds}@{target} as standby of {source}",
        would=lambda ds, eng: (f"rebuild {ds}@{op.target} ({eng.role(op.target).role or 'not running'}) "
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
        if eng.role(op.target).role == "primary":
            out[ds] = {"ok": True, "detail": f"{op.target} is already the primary"}
            continue
        if op.dry_run:
            try:
                out[ds] = eng.caught_up(op.target, op.source).dump()
            except LifeboatError as exc:
                out[ds] = {"ok": False, "detail": str(exc)}
            continue
        with op.store.step(tl, f"caught up {ds}@{op.target}") as s:
            def probe(eng: Any = eng) -> CaughtUp:
                return eng.caught_up(op.target, op.source)

            try:
                res = wait_until(f"{ds}@{op.target} to catch up with {op.source}", probe, timeout, 1,
                                 done=lambda r: r.ok)
            except WaitTimeout as exc:
                raise RestoreFailed(f"{ds}@{op.target} has not caught up with {op.source} after "
                                    f"{timeout:.0f}s: {exc.last.detail if exc.last else ''}") from None
            s.detail = res.detail
            out[ds] = res.dump()
    return {"dry_run": op.dry_run, "caught_up": out}


def rebuild_source(kind: str, params: dict, run: dict) -> dict:
    """Failback after the switch: the region we came from becomes a standby of the target again."""
    op = operation(kind, params, run)
    out = _per_datastore(
        op, op.timeline(), "rebuild {ds}@{source} as standby of {target}",
        would=lambda ds, eng: f"rebuild {ds}@{op.source} as a standby of {op.target}: {eng.describe_rebuild}",
        act=lambda ds, eng: eng.rebuild_as_standby(op.source, op.target))
    return {"dry_run": op.dry_run, "rebuilt": out}


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
    traffic = op.spec.traffic
    ttl = max((r.ttl for r in traffic.records), default=0) if op.traffic_in_scope and traffic else 0
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


def verify(kind: str, params: dict, run: dict) -> dict:
    """A real write + read on every promoted datastore; every service's Deployment rolled out and Ready, its
    /health and /ready; stops the clock (so the RTO includes the pods becoming Ready)."""
    op = operation(kind, params, run)
    tl = op.timeline()
    api = op.services_api()
    out: dict[str, Any] = {"services": {}}
    out["datastores"] = _per_datastore(
        op, tl, "verify {ds}@{target}",
        would=lambda ds, eng: f"write+read on {ds}@{op.target} (now {eng.role(op.target).describe()})",
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
    if tl is not None:  # a real run: the RTO clock stops here
        tl.verified_at = verified = utcnow()
        op.store.save(tl)
        out["verified_at"] = verified.isoformat()
        out["rto_seconds"] = round((verified - tl.triggered_at).total_seconds(), 3)
    return {"dry_run": op.dry_run, **out}

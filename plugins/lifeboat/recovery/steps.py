"""The steps of lifeboat_recover that act: fence (live targets only), restore + validate, repoint +
restart, verify. Each checks the timeline first (a cleared and re-run task continues instead of
repeating) and, in a dry run, only reports what it would do."""

from __future__ import annotations

import logging
from typing import Any

from lifeboat.errors import LifeboatError, RestoreFailed
from lifeboat.records import utcnow
from lifeboat.recovery.operation import RecoveryOp, operation
from lifeboat.recovery.runtime import runtime
from lifeboat.schedule import interval

log = logging.getLogger(__name__)


def continuity_limits(inv) -> tuple[float, float]:
    """(window, largest allowed gap) in seconds for the heartbeat continuity check (inventory `recovery:`)."""
    rs = inv.recovery
    if rs.heartbeat_gap is not None:
        gap = rs.heartbeat_gap.total_seconds()
    else:
        every = interval(inv.schedules.heartbeat, utcnow())
        gap = 2 * (every.total_seconds() if every else 60.0) + 30.0
    return rs.continuity_window.total_seconds(), gap


def automated(op: RecoveryOp, preflights: dict[str, dict] | None = None) -> list[str]:
    """The scope's datastores whose recovery the engine automates, in restore order."""
    out = []
    for n in op.order:
        if n.kind != "datastore":
            continue
        if preflights is not None and not (preflights.get(n.name) or {}).get("automated", True):
            continue
        out.append(n.name)
    return out


def fence(kind: str, params: dict, run: dict) -> dict:
    """into=live only: stop each live server first (the second confirmation was checked by the guard)."""
    op = operation(kind, params, run)
    if op.into != "live":
        return {"dry_run": op.dry_run, "fenced": {}, "note": "new targets: the live datastores are left as they are"}
    tl = op.timeline()
    out: dict[str, str] = {}
    for ds in automated(op):
        eng = op.engine(ds)
        if op.dry_run:
            try:
                now = eng.ping()
            except Exception as exc:
                now = describe_error(exc)
            out[ds] = f"DRY RUN: would stop the live {ds} (now: {now})"
            continue
        with op.store.step(tl, f"fence {ds}@{op.region} (stop the live server)") as s:
            s.detail = eng.stop_live()
        out[ds] = s.detail
    return {"dry_run": op.dry_run, "fenced": out}


def restore(kind: str, params: dict, run: dict, preflights: dict[str, dict] | None = None) -> dict:
    """Every datastore of the scope in restore order: restore into its recovery target, validate it
    (counts, integrity, heartbeat continuity); a datastore already recovered by this run is checked."""
    op = operation(kind, params, run)
    tl = op.timeline()
    window, gap = continuity_limits(op.inv)
    out: dict[str, Any] = {}
    for ds in automated(op, preflights):
        eng = op.engine(ds)
        target = op.target_for(ds)
        m = eng.recovery_backup(target)
        if tl is None:
            out[ds] = {"dry_run": True, "detail": f"DRY RUN: would restore {ds} from {m.id} to {target} into a "
                                                  f"{op.into} target, then validate it"}
            continue
        done = tl.recovered.get(ds)
        if done:
            with op.store.step(tl, f"restore {ds}: already recovered by this run") as s:
                s.detail = f"{done['locator']}: {eng.probe_recovered(done['locator'])}"
            out[ds] = done
            continue
        rec = eng.recover(m, target, into=op.into, tag=op.tag, steps=op.steps(tl), window=window, max_gap=gap)
        tl.recovered[ds] = rec.dump()
        op.store.save(tl)
        out[ds] = rec.dump()
    return {"dry_run": op.dry_run, "recovered": out}


def repoint(kind: str, params: dict, run: dict) -> dict:
    """Every service of the scope in order: its connection config pointed at the recovered targets,
    restarted, and waited for (Ready, /health, /ready) before the next one -- gradual recovery."""
    op = operation(kind, params, run)
    tl = op.timeline()
    recovered = (tl.recovered if tl else {})
    out: dict[str, Any] = {}
    for node in op.order:
        if node.kind != "service":
            continue
        rt = runtime(op, node.name)
        uses = {ds: recovered[ds]["locator"] for ds in rt.spec.uses() if ds in recovered}
        timeout = op.ready_timeout(node.name)
        if tl is None:
            keys = ", ".join(rt.spec.env.get(d, d) for d in rt.spec.uses() if d in op.datastores) or "nothing"
            out[node.name] = {"dry_run": True, "health": rt.health(),
                              "detail": f"DRY RUN: would repoint {keys} and {rt.describe()}"}
            continue
        if (tl.repointed.get(node.name) or {}).get("ready"):
            with op.store.step(tl, f"restart {node.name}: already done by this run") as s:
                s.detail = str(rt.wait_ready(timeout))
            out[node.name] = tl.repointed[node.name]
            continue
        with op.store.step(tl, f"repoint {node.name}") as s:
            changed = rt.repoint(uses, {ds: op.engine(ds) for ds in uses})
            s.detail = (f"{', '.join(changed['keys']) or 'no keys'} in {', '.join(changed['where']) or 'nothing'}"
                        + "".join(f"; {n}" for n in changed["notes"])
                        + (f"; NOT repointed (no env key): {', '.join(changed['not_configured'])}"
                           if changed["not_configured"] else ""))
        with op.store.step(tl, f"restart {node.name}") as s:
            restarted = rt.restart()
            s.detail = str(restarted) if restarted else "nothing to restart"
        with op.store.step(tl, f"wait for {node.name} to be ready") as s:
            ready = rt.wait_ready(timeout)
            s.detail = "; ".join(f"{k}: {v}" for k, v in ready.items()) or "no deployment, no URL: not checked"
        tl.repointed[node.name] = {"keys": changed["keys"], "where": changed["where"], "restart": restarted,
                                   "ready": ready}
        op.store.save(tl)
        out[node.name] = tl.repointed[node.name]
    return {"dry_run": op.dry_run, "services": out}


def verify(kind: str, params: dict, run: dict) -> dict:
    """Every recovered datastore answers, every service's Deployment is Ready and /health and /ready
    answer 200: the RTO clock stops here."""
    op = operation(kind, params, run)
    tl = op.timeline()
    out: dict[str, Any] = {"datastores": {}, "services": {}}
    for node in op.order:
        if node.kind == "datastore":
            if tl is None:
                out["datastores"][node.name] = "DRY RUN: would check the recovered target answers"
                continue
            if node.name not in tl.recovered:
                continue  # manual
            with op.store.step(tl, f"verify {node.name}") as s:
                s.detail = op.engine(node.name).probe_recovered(tl.recovered[node.name]["locator"])
            out["datastores"][node.name] = s.detail
            continue
        rt = runtime(op, node.name)
        if tl is None:
            out["services"][node.name] = {"health": rt.health()}  # /ready writes: not in a dry run
            continue
        timeout = op.ready_timeout(node.name)
        with op.store.step(tl, f"verify {node.name}") as s:
            res = rt.wait_ready(timeout)
            s.detail = "; ".join(f"{k}: {v}" for k, v in res.items()) or "no deployment, no URL: not checked"
        out["services"][node.name] = res
    if tl is not None:
        manual = [d for d in op.datastores if d not in tl.recovered]
        if manual:
            raise RestoreFailed(f"not recovered (manual steps needed): {', '.join(manual)}")
        tl.verified_at = verified = utcnow()
        op.store.save(tl)
        out["verified_at"] = verified.isoformat()
        out["rto_seconds"] = round((verified - tl.triggered_at).total_seconds(), 3)
    return {"dry_run": op.dry_run, **out}


def describe_error(exc: BaseException) -> str:
    return str(exc).splitlines()[0][:300] if isinstance(exc, LifeboatError) else f"{type(exc).__name__}: {exc}"

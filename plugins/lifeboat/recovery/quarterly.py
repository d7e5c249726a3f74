"""lifeboat_drill_quarterly: the whole platform restored into a drill environment, to ONE consistent
recovery point, in dependency order; the services started against the restored stores; business
checks; per-step and total RTO against the objective (`recovery.drill_timeout`, 4 h), per-store RPO
and the skew between stores; teardown guaranteed. Recorded as a `full_system` drill (the DR page shows
its steps as a timeline); its `measurements` hold the point, per-store RPO and skew.

The recovery point (`consistent_point`, pure): the newest instant every datastore can be restored to,
from the catalogs -- a continuous engine (PostgreSQL: base backups + archived WAL up to its last
commit) reaches any instant in [since, until]; a snapshot engine (Redis RDB, Elasticsearch snapshot,
...) only its snapshots' instants. The point is the earliest of the newest instants (a continuous
engine's WAL end, a snapshot engine's newest snapshot); continuous engines are restored exactly to it,
snapshot engines from their newest snapshot at or before it. The planned skew is the point minus the
oldest store's data instant; the measured one comes from the heartbeats found in the restored data.

Restore order: every datastore of the dependency map (lifeboat.dependencies.restore_order over all
services), each into a NEW target named `drill-<stamp>-<datastore>` under the recovery folder (the
drill environment: lifeboat.drillenv), never a live one.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from lifeboat.datastores.base import RecoveryRange
from lifeboat.dependencies import restore_order
from lifeboat.drillenv import DrillEnvironment
from lifeboat.drills import DrillRecorder, drill_summary
from lifeboat.errors import LifeboatError, RestoreFailed
from lifeboat.inventory import Objectives, load_inventory
from lifeboat.layout import Layout
from lifeboat.records import utcnow

log = logging.getLogger(__name__)


def consistent_point(ranges: dict[str, RecoveryRange]) -> dict[str, Any]:
    """{"point", "per": {ds: {"instant", "backup_id"|None, "how"}}, "skew_seconds", "limited_by"}.
    Raises RestoreFailed naming the datastore that has nothing to restore or cannot reach the point."""
    newest: dict[str, datetime] = {}
    for name, r in ranges.items():
        t = r.until if r.continuous else (r.snapshots[-1][0] if r.snapshots else None)
        if t is None:
            raise RestoreFailed(f"{name}: the catalog has nothing to restore ({r.detail})")
        newest[name] = t
    limited_by = min(newest, key=lambda n: newest[n])
    point = newest[limited_by]
    per: dict[str, dict[str, Any]] = {}
    for name, r in ranges.items():
        if r.continuous:
            if r.since is not None and r.since > point:
                raise RestoreFailed(f"{name}: its oldest base backup ({r.since.isoformat()}) is after the point "
                                    f"{point.isoformat()} (set by {limited_by})")
            per[name] = {"instant": point, "backup_id": None, "how": f"point in time ({r.detail})"}
        else:
            snap = r.at_or_before(point)
            if snap is None:
                raise RestoreFailed(f"{name}: no snapshot at or before {point.isoformat()} (set by {limited_by})")
            per[name] = {"instant": snap[0], "backup_id": snap[1], "how": f"snapshot {snap[1]}"}
    skew = (point - min(v["instant"] for v in per.values())).total_seconds()
    return {"point": point, "per": per, "skew_seconds": skew, "limited_by": limited_by}


def business_checks(eng: Any, locator: dict[str, Any]) -> str:
    """Cross-record checks in a restored PostgreSQL: no comment without its post, no post or comment
    without its author, and the newest post with comments: its author and comments agree."""
    import psycopg

    from lifeboat.recovery.runtime import endpoint_uri

    uri = eng.repoint_uri(endpoint_uri(eng.endpoint()), locator)
    with psycopg.connect(uri, autocommit=True, connect_timeout=5) as c:
        def one(sql: str) -> Any:
            got = c.execute(sql).fetchone()
            return got[0] if got else None

        if not one("SELECT to_regclass('public.posts') IS NOT NULL AND to_regclass('public.comments') IS NOT NULL "
                   "AND to_regclass('public.users') IS NOT NULL"):
            return "no users/posts/comments tables: nothing to check"
        orphans = {
            "comments without post": "SELECT count(*) FROM comments c LEFT JOIN posts p ON p.id = c.post_id "
                                     "WHERE p.id IS NULL",
            "posts without author": "SELECT count(*) FROM posts p LEFT JOIN users u ON u.id = p.user_id "
                                    "WHERE u.id IS NULL",
            "comments without author": "SELECT count(*) FROM comments c LEFT JOIN users u ON u.id = c.user_id "
                                       "WHERE u.id IS NULL",
        }
        bad = {k: n for k, q in orphans.items() if (n := one(q))}
        if bad:
            raise RestoreFailed("business check: " + ", ".join(f"{n} {k}" for k, n in bad.items()))
        row = c.execute("SELECT p.id, u.id, (SELECT count(*) FROM comments WHERE post_id = p.id) FROM posts p "
                        "JOIN users u ON u.id = p.user_id WHERE EXISTS (SELECT 1 FROM comments WHERE post_id = p.id)"
                        " ORDER BY p.id DESC LIMIT 1").fetchone()
        totals = c.execute("SELECT (SELECT count(*) FROM users), (SELECT count(*) FROM posts), "
                           "(SELECT count(*) FROM comments)").fetchone() or (0, 0, 0)
    sample = f"post {row[0]} by user {row[1]} with {row[2]} comments" if row else "no post with comments"
    return (f"users={totals[0]} posts={totals[1]} comments={totals[2]}; no orphans; newest commented {sample}")


def _tag(now: datetime) -> str:
    return "drill-" + now.strftime("%Y%m%dt%H%M%S").lower()


def run(run: dict | None = None, region: str | None = None) -> dict:
    """The quarterly full-system drill (one job: the drill environment lives for its length)."""
    from lifeboat.datastores import open_engine
    from lifeboat.recovery.operation import acting_region
    from lifeboat.recovery.steps import continuity_limits

    inv = load_inventory()
    region = acting_region(inv, region)
    order = restore_order(inv.services, list(inv.datastores), list(inv.services) or list(inv.datastores))
    names = [n.name for n in order.order if n.kind == "datastore"] or [d.name for d in inv.enabled_datastores()]
    engines = {n: open_engine(n, inventory=inv, region=region, run=run) for n in names}
    repo = next(iter(engines.values())).ctx.repo
    rpo_obj = min((inv.objectives_for(d).rpo for d in names), default=inv.objectives.rpo)
    rec = DrillRecorder(datastore="platform", type_="full_system", repo=repo, run=run,
                        objectives=Objectives(rto=inv.recovery.drill_timeout, rpo=rpo_obj),
                        scope=[n.name for n in order.order], target="one consistent recovery point")
    d = rec.drill
    started = d.started_at
    window, gap = continuity_limits(inv)
    measurements: dict[str, Any] = {"region": region, "stores": {}}
    error: BaseException | None = None
    env = DrillEnvironment(inv, region, _tag(started))
    try:
        with rec.step("recovery point from the catalogs") as s:
            ranges = {n: e.recovery_range() for n, e in engines.items()}
            cp = consistent_point(ranges)
            measurements.update(point=cp["point"].isoformat(), limited_by=cp["limited_by"],
                                planned_skew_seconds=round(cp["skew_seconds"], 3))
            s.detail = (f"{cp['point'].isoformat()} (set by {cp['limited_by']}); " + "; ".join(
                f"{n}: {v['how']} at {v['instant'].isoformat()}" for n, v in cp["per"].items()))
        rec.restore_started()
        recovered: dict[str, dict[str, Any]] = {}
        for n in names:
            eng, per = engines[n], cp["per"][n]
            target = "latest" if per["backup_id"] else cp["point"].isoformat()
            m = eng.recovery_backup(per["instant"].isoformat())
            rt = eng.recovery_target(m, target, into="new", tag=env.tag)
            env.add_target(n, rt)
            rt.precheck(rec)
            rt.restore(rec)
            rt.verify(rec)
            with rec.step(f"heartbeat continuity {n}") as s:
                newest, s.detail = rt.continuity(window, gap)
            recovered[n] = {"locator": rt.locator(), "backup_id": m.id, "newest_heartbeat": newest}
            measurements["stores"][n] = {
                "backup_id": m.id, "restored_to": per["instant"].isoformat(), "how": per["how"],
                "newest_heartbeat": newest.isoformat() if newest else None,
                "rpo_seconds": round((started - newest).total_seconds(), 3) if newest else None}
        for svc in [x.name for x in order.order if x.kind == "service"]:
            spec = inv.services[svc]
            if spec.process is None:
                continue
            with rec.step(f"start {svc} against the restored stores") as s:
                from lifeboat.recovery.runtime import endpoint_uri

                values = {spec.env[ds]: engines[ds].repoint_uri(endpoint_uri(engines[ds].endpoint()),
                                                                  recovered[ds]["locator"])
                          for ds in spec.uses() if ds in spec.env and ds in recovered}
                inst = env.start_service(svc, spec.process, values)
                s.detail = f"{svc} on 127.0.0.1:{inst.port} with {', '.join(sorted(values)) or 'no keys'}"
            with rec.step(f"verify {svc}: /health and /ready") as s:
                res = _wait_healthy(inst, 60.0)
                s.detail = "; ".join(f"{k} {v['url']} -> {v['status']}" for k, v in res.items())
        for n in names:
            if engines[n].engine != "postgres":
                continue
            with rec.step(f"business checks {n}") as s:
                s.detail = business_checks(engines[n], recovered[n]["locator"])
        rec.ready()
        hbs = [v["newest_heartbeat"] for v in recovered.values() if v["newest_heartbeat"]]
        rec.heartbeat_found(min(hbs) if hbs else None)
        if hbs:
            measurements["measured_skew_seconds"] = round((max(hbs) - min(hbs)).total_seconds(), 3)
    except BaseException as exc:  # recorded in the drill; raised after the record is written
        error = exc
    now = utcnow()
    env.teardown()  # always: after a failed step too
    td = "; ".join(env.torn_down) or "nothing to tear down"
    left = env.leftovers()
    d.steps.append(_step("tear down the drill environment", now, not left and "FAILED" not in td,
                         td + (f"; LEFT BEHIND: {', '.join(left)}" if left else "")))
    measurements["leftovers"] = left
    d.measurements = measurements
    if left and error is None:
        error = RestoreFailed(f"teardown left {', '.join(left)}")
    drill = rec.finish(error)
    copy = repo.copy_to_mirror(Layout.drill(drill.id), drill.to_json())
    summary = {**drill_summary(drill), "measurements": measurements, "drill_copy": copy,
               "step_seconds": {s.name: s.seconds for s in drill.steps}}
    log.info("quarterly drill %s: %s", drill.id, summary)
    if error is not None:
        if isinstance(error, LifeboatError):
            raise error
        raise RestoreFailed(f"quarterly drill {drill.id} failed: {type(error).__name__}: {error}") from error
    if drill.verdict != "pass":
        raise RestoreFailed(f"quarterly drill {drill.id}: {drill.verdict}: {'; '.join(drill.reasons)}")
    return summary


def _wait_healthy(inst: Any, timeout: float) -> dict[str, Any]:
    from lifeboat.failover.services import http_check
    from lifeboat.waiting import WaitTimeout, wait_until

    urls = {"health": inst.url("health"), "ready": inst.url("ready")}
    try:
        return wait_until(f"{inst.name} on 127.0.0.1:{inst.port} healthy",
                          lambda: {k: http_check(u) for k, u in urls.items()}, timeout, 1.0,
                          done=lambda r: all(v["ok"] for v in r.values()))
    except WaitTimeout as exc:
        raise RestoreFailed(f"{inst.name} against the restored stores is not healthy after {timeout:.0f}s: "
                            + "; ".join(f"{k} -> {v.get('status') or v.get('error')} {v.get('body', '')}"
                                        for k, v in (exc.last or {}).items())) from None


def _step(name: str, at: datetime, ok: bool, detail: str):
    from lifeboat.records import DrillStep

    return DrillStep(name=name, started_at=at, finished_at=utcnow(), ok=ok, detail=detail)

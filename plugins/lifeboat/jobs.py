"""The jobs: one function per DAG task, shared by the Airflow operators and the `python -m lifeboat` CLI.

Each takes plain arguments, returns a JSON-safe dict (it becomes the task's XCom), logs what it
does, and raises a LifeboatError with a clear message when it cannot do its job.

Every job acts in one region (`region`, else `LIFEBOAT_REGION`, else the active region:
lifeboat.regions), resolved when it runs: it reads that region's catalog copy and writes only there.
Jobs on the primaries (heartbeat, backup, retention that deletes, monitor) refuse a region that is not
the active one (`NotActiveRegion`; the operators skip). A restore test in a region that is not active
records its drill as pending for the other region, which the next mirror copies when it can.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from croniter import croniter

from lifeboat import regions, registry
from lifeboat.catalog import Catalog
from lifeboat.datastores import open_engine
from lifeboat.drills import DrillRecorder, drill_summary
from lifeboat.errors import BackupNotFound, Refused, VerificationFailed
from lifeboat.inventory import Inventory, load_inventory
from lifeboat.layout import DRILLS, Layout

log = logging.getLogger(__name__)

def due_kinds(inv: Inventory, name: str, when: datetime, requested: str = "auto") -> list[str]:
    """Backup kinds to take in a run.

    auto: the kinds whose cron matches `when` (the run's logical date); when several kinds of one
    series fall due together (full and incr at 03:00), only the first listed in the inventory runs,
    since it covers the others. all: one backup of every series (the first kind listed for it).
    A kind that continues another (MongoDB oplog after full) is dropped when that one runs too.
    Any other value names one kind (manual runs)."""
    spec = inv.datastore(name)
    engine = registry.backup_class(spec.engine)
    series_of = engine.series_of
    if requested == "all":
        candidates = list(spec.backups)
    elif requested and requested != "auto":
        if requested not in spec.backups:
            raise Refused(f"datastores.{name}.backups: no backup kind {requested!r} (has: {', '.join(spec.backups)})")
        return [requested]
    else:
        candidates = [k for k, b in spec.backups.items() if croniter.match(b.schedule, when)]
    chosen: dict[str, str] = {}
    for kind in candidates:  # inventory order: full before diff before incr
        chosen.setdefault(series_of(kind), kind)
    kinds = set(chosen.values())
    return sorted(k for k in kinds if engine.continues.get(k) not in kinds)


def _engine(name: str, region: str | None, run: dict | None, *, needs_active: str = ""):
    """The engine for `name` acting in the resolved region; `needs_active` (what the job does) refuses a
    region that is not the active one."""
    inv = load_inventory()
    inv.datastore(name)  # an unknown name is named before anything else
    where = regions.acting_region(inv, region)
    if needs_active:
        regions.require_active(inv, where, f"{needs_active} of {name}")
    return open_engine(name, inventory=inv, region=where, run=run)


def backup(name: str, kind: str, when: datetime, run: dict | None = None, region: str | None = None) -> dict:
    eng = _engine(name, region, run, needs_active="backup")
    m = eng.backup(kind, eng.backup_id(name, kind, when))
    log.info("backup %s complete in %s: %s, %.1fs, %d artifact(s)", m.id, eng.region, m.kind, m.duration_seconds,
             len(m.artifacts))
    return {"datastore": name, "backup_id": m.id, "kind": m.kind, "series": m.series, "parent": m.parent,
            "seconds": round(m.duration_seconds, 3), "counts": m.counts, "region": eng.region}


def mirror(run: dict | None = None, region: str | None = None) -> dict:
    """Mirror the acting region's catalog copy to the other region: the whole catalog from the active
    region (and each engine's native repository that lives outside it), only this region's own records
    from any other. Never fails because the other region is gone: the result says `pending`."""
    from lifeboat.repository import Repository

    inv = load_inventory()
    here = regions.acting_region(inv, region)
    active = regions.active_region(inv, prefer=here)
    scope = "full" if here == active else "records"
    repo = Repository.from_inventory(inv, here)
    # the catalog index first (a crash between a record and its index entry leaves it behind), so the
    # mirror copies an index that matches the records
    areas = sorted({*(a for ds in inv.datastores for a in Layout.index_areas(ds)), DRILLS, *repo.index_areas()})
    repaired = repo.repair_index(areas)
    report = repo.mirror(scope=scope).as_dict()
    report["index_repaired"] = {a: r for a, r in repaired.items() if any(r.values())}
    out = {"from": here, "to": regions.other(inv, here), "active_region": active, **report}
    if scope == "full":
        out["native"] = _mirror_native(inv, here, run)
    log.info("mirrored %s -> %s (%s): %s", here, out["to"], scope, out)
    return out


def _mirror_native(inv: Inventory, here: str, run: dict | None) -> dict:
    """Engines whose native repository lives outside the catalog (Elasticsearch's fs snapshot
    repository) copy it themselves; an unreachable other side is reported, not raised."""
    out = {}
    for spec in inv.enabled_datastores():
        cls = registry.backup_class(spec.engine)
        if getattr(cls, "replicate_native", None) is None:
            continue
        try:
            out[spec.name] = open_engine(spec.name, inventory=inv, region=here, run=run).replicate_native()
        except Exception as exc:  # the other region (or this engine's repository) is not reachable now
            log.warning("native repository of %s not mirrored: %s", spec.name, exc)
            out[spec.name] = {"pending": True, "error": f"{type(exc).__name__}: {exc}"[:500]}
    return out


def verify(name: str, backup_ids: list[str] | None = None, run: dict | None = None, raise_on_failure: bool = True,
           deep: bool = True, region: str | None = None) -> dict:
    """Verify the given backups (default: every backup in the catalog). `deep=False` is the quick
    verification right after a backup (the engine skips repository-wide reads)."""
    eng = _engine(name, region, run)
    cat = Catalog(eng.ctx.repo)
    manifests = [cat.get(name, b) for b in backup_ids] if backup_ids else cat.backups(name)
    if not manifests:
        raise BackupNotFound(f"{name}: nothing to verify: the catalog at {eng.ctx.repo.url} has no backups")
    results = eng.verify(manifests) if deep else eng.verify_new(manifests)
    failed = [v for v in results if not v.ok]
    summary = {"datastore": name, "verified": [v.backup_id for v in results if v.ok],
               "failed": {v.backup_id: v.problems for v in failed}, "region": eng.region}
    for v in results:
        log.info("%s %s: %s", "OK  " if v.ok else "FAIL", v.backup_id,
                 "; ".join(f"{c.name}: {c.detail.splitlines()[0] if c.detail else ''}" for c in v.checks))
    if failed and raise_on_failure:
        raise VerificationFailed(", ".join(v.backup_id for v in failed), [p for v in failed for p in v.problems])
    return summary


@dataclass
class DrillOutcome:
    """A finished drill: its summary (the task's XCom) and the error that failed it, if any."""

    summary: dict
    error: BaseException | None = None

    def raise_for_verdict(self) -> dict:
        """The summary if the drill passed; else the error that stopped it, or VerificationFailed
        naming every reason (RTO/RPO over the objective or not measured)."""
        if self.error is not None:
            raise self.error
        if self.summary["verdict"] != "pass":
            raise VerificationFailed(self.summary["drill_id"], self.summary["reasons"])
        return self.summary


def restore_drill(name: str, backup_id: str | None = None, target: str = "latest", run: dict | None = None,
                  drill_type: str = "restore_test", region: str | None = None) -> DrillOutcome:
    """Restore into a scratch target, check it, measure RTO/RPO, record the drill -- and report the
    result without raising, so the caller can show the verdict before it fails the task."""
    eng = _engine(name, region, run)
    cat = Catalog(eng.ctx.repo)
    recorder = DrillRecorder(datastore=name, type_=drill_type, objectives=eng.ctx.inventory.objectives_for(name),
                             repo=eng.ctx.repo, run=run, target=target or "latest")
    error: BaseException | None = None
    try:
        with recorder.step("choose backup") as s:
            if backup_id:
                m = cat.get(name, backup_id)
            else:
                series = eng.restore_series
                try:
                    m = cat.latest(name, verified=True, series=series)
                    s.detail = f"newest verified {series} backup"
                except BackupNotFound:
                    m = cat.latest(name, series=series)
                    s.detail = f"newest {series} backup (none verified yet)"
            recorder.drill.backup_id = m.id
            s.detail = f"{m.id} ({s.detail or 'requested'})"
        eng.restore_test(m, target, recorder)
    except BaseException as exc:  # recorded in the drill (a task timeout too), handed to the caller
        error = exc
    drill = recorder.finish(error)
    summary = {**drill_summary(drill), "region": eng.region}
    _owe_the_other_region(eng)
    return DrillOutcome(summary, error)


def _owe_the_other_region(eng) -> None:
    """Records written in a region that is not active reach the active region through this region's
    pending record (the active region's mirror would not look for them)."""
    try:
        if eng.region != regions.active_region(eng.ctx.inventory, prefer=eng.region):
            eng.ctx.repo.note_pending()
    except Exception as exc:  # the drill is recorded here; the copy is a courtesy to the other region
        log.warning("could not note %s as pending for the other region: %s", eng.ctx.repo.written, exc)


def restore_test(name: str, backup_id: str | None = None, target: str = "latest", run: dict | None = None,
                 drill_type: str = "restore_test", region: str | None = None) -> dict:
    """Restore into a scratch target, check it, measure RTO/RPO, record the drill. Raises if it failed."""
    return restore_drill(name, backup_id, target, run, drill_type, region).raise_for_verdict()


def heartbeat(name: str, run: dict | None = None, region: str | None = None) -> dict:
    eng = _engine(name, region, run, needs_active="heartbeat")
    at = eng.heartbeat()
    return {"datastore": name, "written_at": at.isoformat(), "region": eng.region}


def retention(name: str, apply: bool = False, run: dict | None = None, region: str | None = None) -> dict:
    """Plan retention; delete only when `apply` (explicit) AND there is something the rules allow (and only
    in the active region: a mirror carries the deletions to the other copy)."""
    eng = _engine(name, region, run, needs_active="retention" if apply else "")
    plan = eng.retention_plan()
    summary = plan.summary()
    if not apply:
        log.info("retention plan for %s (dry run; nothing deleted): %s", name, summary)
        return {**summary, "applied": False}
    for m in plan.delete:  # newest first: dependents go before what they depend on
        log.info("retention: deleting %s (%s)", m.id, m.kind)
        eng.delete_backup(m)
    return {**summary, "applied": True}


def monitor(name: str, run: dict | None = None, send_alerts: bool = True, region: str | None = None) -> dict:
    from lifeboat import monitor as mon

    eng = _engine(name, region, run, needs_active="monitor")
    return {**mon.run(eng.ctx.inventory, eng, send_alerts=send_alerts), "region": eng.region}


def repair_replica(name: str, dry_run: bool = True, confirm: str = "", include_different: bool = False,
                   run: dict | None = None, region: str | None = None) -> dict:
    """The guarded repair of an S3 replica (objects engine): copies only the keys the inventory diff finds
    missing in the replica. Dry run by default (names every key it would copy); a real run needs
    confirm = "repair <datastore>"."""
    from lifeboat.datastores.objects.repair import repair

    eng = _engine(name, region, run)
    if eng.engine != "objects":
        raise Refused(f"datastores.{name}: engine {eng.engine!r} has no replica repair (only objects engines)")
    return repair(eng, dry_run=dry_run, confirm=confirm, include_different=include_different)

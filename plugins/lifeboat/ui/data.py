"""What the DR page shows, computed from the catalog alone (no Airflow, no metadata database).

`load_snapshot(region)` reads the inventory and ONE region's copy of the repository -- the requested
region (query parameter, else `$LIFEBOAT_REGION`, else the inventory's primary) and, when that copy is
missing or unreadable, the other region's copy, saying so. Because the catalog is nothing but the
repository layout, the page works the same from the standby region's Airflow when the primary region
is gone.

Every failure becomes a `status` + a `message` that names the file, URL or field at fault: the page
renders it, never a stack trace. Records that do not parse are skipped by the repository; they are
collected here as `problems` so the page can name them.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from lifeboat import registry
from lifeboat.drills import drill_summary, grade, iso
from lifeboat.errors import LifeboatError, RepositoryError
from lifeboat.records import Drill, Manifest, Verification, utcnow
from lifeboat.schedule import STALE_INTERVALS, freshness, interval

log = logging.getLogger(__name__)

CACHE_SECONDS = float(os.environ.get("LIFEBOAT_UI_CACHE_SECONDS", "10"))


class BadRequest(LifeboatError):
    """The request names something the inventory does not have (e.g. an unknown region)."""


# -- small helpers ---------------------------------------------------------------------------------
class _SkippedRecords(logging.Handler):
    """Collects the records the repository skipped as unreadable (it logs and goes on), for this
    thread only, so the page can name each one."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.thread = threading.get_ident()
        self.problems: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.thread != self.thread:
            return
        exc = record.args[0] if isinstance(record.args, tuple) and record.args else None
        if isinstance(exc, RepositoryError):
            self.problems.append(str(exc))


# -- the snapshot ------------------------------------------------------------------------------------
@dataclass
class Snapshot:
    status: str  # ok | empty | missing | unreadable | error
    message: str = ""
    generated_at: datetime = field(default_factory=utcnow)
    requested_region: str | None = None
    region: str | None = None
    role: str | None = None  # primary | standby
    repository: str | None = None
    regions: dict[str, str] = field(default_factory=dict)  # role -> region
    fallback: dict[str, str] | None = None  # {"from": region, "result": missing|unreadable, "reason": ...}
    active: dict[str, Any] | None = None  # the active-region record: region, since, kind, by (lifeboat.regions)
    attempts: list[dict[str, str]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    datastores: list[dict[str, Any]] = field(default_factory=list)
    drills: list[Drill] = field(default_factory=list)

    @property
    def usable(self) -> bool:
        return self.status in ("ok", "empty")

    def source(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "message": self.message,
            "generated_at": iso(self.generated_at),
            "requested_region": self.requested_region,
            "region": self.region,
            "role": self.role,
            "repository": self.repository,
            "regions": self.regions,
            "fallback": self.fallback,
            "active": self.active,
            "attempts": self.attempts,
            "problems": self.problems,
        }


def resolve_region(inv, requested: str | None) -> str:
    region = requested or os.environ.get("LIFEBOAT_REGION") or inv.regions.primary
    known = (inv.regions.primary, inv.regions.standby)
    if region not in known:
        raise BadRequest(
            f"unknown region {region!r}: the inventory ({inv.source}) has primary {known[0]!r} and standby {known[1]!r}"
        )
    return region


def _active(inv, region: str) -> dict[str, Any]:
    """Which region the primaries are in, since when (no record yet: the inventory's primary)."""
    from lifeboat.regions import read_active

    try:
        rec = read_active(inv, prefer=region)
    except Exception as exc:  # the page still shows the catalog
        return {"region": inv.regions.primary, "since": None, "kind": None, "by": None, "error": str(exc)[:300]}
    if rec is None:
        return {"region": inv.regions.primary, "since": None, "kind": None, "by": "inventory regions.primary"}
    return {"region": rec.region, "since": iso(rec.since), "kind": rec.kind, "by": rec.by,
            "previous": rec.previous}


def _open_readable(inv, region: str, snap: Snapshot):
    """The Repository of the first readable copy: `region`'s, else the other region's."""
    from lifeboat.repository import Repository

    repo, used, snap.attempts = Repository.open_readable(inv, region)
    if repo is not None and used != region:
        first = snap.attempts[0]
        snap.fallback = {"from": region, "result": first["result"], "reason": first["reason"]}
    return repo, used


def load_snapshot(region: str | None = None, inventory=None) -> Snapshot:
    """Everything the page needs, read once. Raises BadRequest only for an unknown region."""
    from lifeboat.inventory import load_inventory

    snap = Snapshot(status="error", requested_region=region)
    try:
        inv = inventory or load_inventory()
    except LifeboatError as exc:
        snap.message = f"The inventory cannot be loaded: {exc}"
        return snap
    snap.regions = {"primary": inv.regions.primary, "standby": inv.regions.standby}
    wanted = resolve_region(inv, region)
    snap.requested_region = wanted
    repo, used = _open_readable(inv, wanted, snap)
    if repo is None:
        kinds = {a["result"] for a in snap.attempts}
        snap.status = "missing" if kinds == {"missing"} else "unreadable"
        what = "No repository found" if snap.status == "missing" else "The repository cannot be read"
        snap.message = f"{what} in either region (check `repository:` in {inv.source}): " + "; ".join(
            f"{a['region']}: {a['reason']}" for a in snap.attempts
        )
        return snap
    snap.region, snap.repository = used, repo.url
    snap.active = _active(inv, used)
    snap.role = "primary" if used == inv.regions.primary else "standby"

    catcher = _SkippedRecords()
    from lifeboat import catalog_index, repository

    # Records are read by the repository and, through the catalog index, by catalog_index: the page
    # must hear about every record either of them skips.
    loggers = (repository.log, catalog_index.log)
    for repo_log in loggers:
        if not repo_log.isEnabledFor(logging.WARNING):
            repo_log.setLevel(logging.WARNING)
        repo_log.addHandler(catcher)
    try:
        with repo.one_read():  # each catalog index read once for the whole page
            snap.drills = repo.drills()
            snap.datastores = [_datastore_view(inv, spec, repo, snap.drills, snap.generated_at)
                               for spec in inv.datastores.values()]
    except Exception as exc:
        log.exception("reading the catalog at %s failed", repo.url)
        snap.status = "unreadable"
        snap.message = f"Reading the catalog at {repo.url} failed: {type(exc).__name__}: {exc}"
        return snap
    finally:
        for repo_log in loggers:
            repo_log.removeHandler(catcher)
    snap.problems = sorted(set(catcher.problems))
    has_backups = any(d["backups"]["count"] for d in snap.datastores)
    if not has_backups and not snap.drills:
        snap.status = "empty"
        snap.message = (
            f"The catalog at {repo.url} ({used}) holds no backups and no drills yet. Backups appear "
            "after the lifeboat_backup DAG runs, drills after lifeboat_restore_test_monthly."
        )
    else:
        snap.status = "ok"
    if snap.problems:
        snap.message = (snap.message + " " if snap.message else "") + (
            f"{len(snap.problems)} record(s) could not be read and are not shown."
        )
    return snap


# -- views -------------------------------------------------------------------------------------------
def _backup_view(m: Manifest, now: datetime) -> dict[str, Any]:
    return {"id": m.id, "kind": m.kind, "series": m.series, "finished_at": iso(m.finished_at),
            "age_seconds": (now - m.finished_at).total_seconds(), "size": m.size,
            "duration_seconds": m.duration_seconds}


def _verification_view(v: Verification | None) -> dict[str, Any] | None:
    if v is None:
        return None
    return {"backup_id": v.backup_id, "verified_at": iso(v.verified_at), "ok": v.ok, "problems": v.problems,
            "checks": [{"name": c.name, "ok": c.ok} for c in v.checks]}


def _datastore_view(inv, spec, repo, drills: list[Drill], now: datetime) -> dict[str, Any]:
    from lifeboat.catalog import Catalog

    cat = Catalog(repo)
    obj = inv.objectives_for(spec.name)
    backups = cat.backups(spec.name)  # oldest first
    vmap = cat.verification_map(spec.name)
    newest = backups[-1] if backups else None

    # Staleness per series, as lifeboat.schedule defines it (the monitor's alerts use the same).
    series = {f.series: f for f in freshness({k: b.schedule for k, b in spec.backups.items()},
                                             registry.backup_class(spec.engine).series_of, backups, now)}
    kinds = []
    for kind, sched in spec.backups.items():
        of_kind = [m for m in backups if m.kind == kind]
        f = next(x for x in series.values() if kind in x.kinds)
        gap = interval(sched.schedule, now)
        kinds.append({
            "kind": kind, "schedule": sched.schedule, "series": f.series,
            "interval_seconds": gap.total_seconds() if gap else None, "count": len(of_kind),
            "newest_id": of_kind[-1].id if of_kind else None,
            "age_seconds": (now - of_kind[-1].finished_at).total_seconds() if of_kind else None,
            "stale": f.stale,
        })

    last_v = max(vmap.values(), key=lambda v: v.verified_at) if vmap else None
    ids = {m.id for m in backups}
    verified = sum(1 for i in ids if i in vmap and vmap[i].ok)
    failed = sum(1 for i in ids if i in vmap and not vmap[i].ok)

    mine = [d for d in drills if d.datastore == spec.name]
    finished = [d for d in mine if d.verdict != "running"]
    latest = finished[-1] if finished else None

    notes: list[str] = []
    state = "ok"

    def worse(new: str) -> None:
        nonlocal state
        order = ["ok", "warn", "fail"]
        state = max(state, new, key=order.index)

    if not spec.enabled:
        notes.append("disabled in the inventory")
    if not backups:
        notes.append("no backup in the catalog")
        worse("fail")
    stale = [f for f in series.values() if f.stale and f.newest is not None]
    if stale:
        notes.append("stale: " + ", ".join(f"{f.series} backups ({'/'.join(f.kinds)}) older than {STALE_INTERVALS}x "
                                            "the shortest schedule" for f in stale))
        worse("warn")
    never = [k["kind"] for k in kinds if not k["count"]]
    if backups and never:
        notes.append(f"no {', '.join(never)} backup yet")
    if last_v is not None and not last_v.ok:
        notes.append(f"last verification failed ({last_v.backup_id})")
        worse("fail")
    elif newest is not None and newest.id not in vmap:
        notes.append("newest backup not verified yet")
        worse("warn")
    if latest is None:
        notes.append("never drilled")
        worse("warn")
    elif latest.verdict != "pass":
        notes.append("latest drill failed")
        worse("fail")
    elif "near" in (grade(latest.rto_seconds, latest.objective_rto_seconds),
                    grade(latest.rpo_seconds, latest.objective_rpo_seconds)):
        notes.append("latest drill close to an objective")
        worse("warn")

    return {
        "name": spec.name,
        "engine": spec.engine,
        "enabled": spec.enabled,
        "objectives": {"rto_seconds": obj.rto.total_seconds(), "rpo_seconds": obj.rpo.total_seconds()},
        "backups": {"count": len(backups), "newest": _backup_view(newest, now) if newest else None,
                    "kinds": kinds, "incomplete": len(repo.incomplete(spec.name))},
        "verification": {"last": _verification_view(last_v), "verified": verified, "failed": failed,
                         "unverified": len(ids) - verified - failed},
        "latest_drill": drill_summary(latest, now) if latest else None,
        "drills": len(mine),
        "state": state,
        "notes": notes,
    }


def drill_detail(d: Drill, now: datetime | None = None) -> dict[str, Any]:
    out = drill_summary(d, now)
    t0 = d.started_at
    out["steps"] = [
        {"name": s.name, "started_at": iso(s.started_at), "finished_at": iso(s.finished_at), "seconds": s.seconds,
         "offset_seconds": (s.started_at - t0).total_seconds(), "ok": s.ok, "detail": s.detail}
        for s in d.steps
    ]
    out["marks"] = {
        "restore_started": _offset(d.restore_started_at, t0),
        "ready": _offset(d.ready_at, t0),
        "newest_heartbeat": _offset(d.newest_heartbeat_at, t0),
    }
    out["restore_started_at"] = iso(d.restore_started_at)
    out["ready_at"] = iso(d.ready_at)
    out["newest_heartbeat_at"] = iso(d.newest_heartbeat_at)
    out["measurements"] = d.measurements
    return out


def _offset(dt: datetime | None, t0: datetime) -> float | None:
    return None if dt is None else (dt - t0).total_seconds()


# -- a short cache: the page asks for /health, /datastores and /drills at once ----------------------
_cache: dict[tuple, tuple[float, Snapshot]] = {}
_cache_lock = threading.Lock()


def cached_snapshot(region: str | None = None) -> Snapshot:
    from lifeboat.inventory import inventory_path

    path = inventory_path()
    try:
        mtime = path.stat().st_mtime
    except OSError:
        mtime = 0.0
    key = (str(path), mtime, region or "", os.environ.get("LIFEBOAT_REGION", ""))
    now = time.monotonic()
    with _cache_lock:
        hit = _cache.get(key)
        if hit and now - hit[0] < CACHE_SECONDS:
            return hit[1]
    snap = load_snapshot(region)
    with _cache_lock:
        for k in [k for k, (t, _) in _cache.items() if now - t >= CACHE_SECONDS or k[:2] != key[:2]]:
            del _cache[k]
        _cache[key] = (now, snap)
    return snap

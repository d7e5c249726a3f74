"""The numbers of a report, from the catalog only (manifests, verifications, drills, incidents)."""

from __future__ import annotations

import re
import statistics
from datetime import UTC, datetime, timedelta
from typing import Any

from lifeboat.errors import LifeboatError

KINDS = ("monthly", "quarterly")
CHAOS_TYPES = ("simulation", "chaos")  # drill types of failure simulations (their pass share is the score)


def period_bounds(kind: str, period: str) -> tuple[datetime, datetime]:
    if kind == "monthly":
        m = re.fullmatch(r"(\d{4})-(\d{2})", period or "")
        if not m or not 1 <= int(m.group(2)) <= 12:
            raise LifeboatError(f"monthly report period must be YYYY-MM, got {period!r}")
        y, mo = int(m.group(1)), int(m.group(2))
        start = datetime(y, mo, 1, tzinfo=UTC)
        end = datetime(y + (mo == 12), mo % 12 + 1, 1, tzinfo=UTC)
        return start, end
    if kind == "quarterly":
        m = re.fullmatch(r"(\d{4})-Q([1-4])", period or "")
        if not m:
            raise LifeboatError(f"quarterly report period must be YYYY-Qn, got {period!r}")
        y, q = int(m.group(1)), int(m.group(2))
        start = datetime(y, 3 * q - 2, 1, tzinfo=UTC)
        end = datetime(y + (q == 4), (3 * q) % 12 + 1, 1, tzinfo=UTC)
        return start, end
    raise LifeboatError(f"unknown report kind {kind!r} (one of: {', '.join(KINDS)})")


def previous_period(kind: str, when: datetime) -> str:
    """The last full period before `when` (a run on 1 December reports on November / Q3)."""
    if kind == "monthly":
        prev = when.replace(day=1) - timedelta(days=1)
        return f"{prev:%Y-%m}"
    q = (when.month - 1) // 3 + 1
    y, q = (when.year, q - 1) if q > 1 else (when.year - 1, 4)
    return f"{y}-Q{q}"


def _pct(n: int, d: int) -> float | None:
    return round(100.0 * n / d, 1) if d else None


def _stats(values: list[float]) -> dict:
    if not values:
        return {"n": 0, "min": None, "median": None, "max": None}
    return {"n": len(values), "min": min(values), "median": statistics.median(values), "max": max(values)}


def build(kind: str, period: str, inv, repo, now: datetime) -> dict:
    from lifeboat.catalog import Catalog
    from lifeboat.datastores import engine_class
    from lifeboat.incidents.store import IncidentStore
    from lifeboat.schedule import freshness as series_freshness

    start, end = period_bounds(kind, period)
    history_from = end - timedelta(days=365)
    cat = Catalog(repo)
    drills = [d for d in repo.drills() if d.verdict != "running"]
    report: dict = {"kind": kind, "period": period, "start": start.isoformat(), "end": end.isoformat(),
                    "generated_at": now.isoformat(), "platform": inv.platform, "datastores": [],
                    "regions": {"primary": inv.regions.primary, "standby": inv.regions.standby}}
    totals: dict[str, Any] = {"drills": 0, "drills_passed": 0, "verifications": 0, "verifications_passed": 0,
                              "stale_series": 0}
    for spec in inv.enabled_datastores():
        name = spec.name
        obj = inv.objectives_for(name)
        backups = cat.backups(name)
        verifs = [v for v in repo.verifications(name) if start <= v.verified_at < end]
        mine = [d for d in drills if d.datastore == name]
        in_period = [d for d in mine if start <= d.started_at < end and d.type not in CHAOS_TYPES]
        at = min(end, now)  # staleness as lifeboat.schedule defines it, seen at the period's end
        schedules = {k: b.schedule for k, b in spec.backups.items()}
        freshness = [{"series": f.series, "newest": f.newest.id if f.newest else None,
                      "age_seconds": f.age.total_seconds() if f.age is not None else None,
                      "limit_seconds": f.limit.total_seconds() if f.limit is not None else None, "stale": f.stale,
                      "backups_in_period": sum(1 for m in backups if m.series == f.series
                                               and start <= m.finished_at < end)}
                     for f in series_freshness(schedules, engine_class(spec.engine).series_of,
                                               [m for m in backups if m.finished_at < at], at)]
        passed_v = sum(1 for v in verifs if v.ok)
        ds = {
            "name": name, "engine": spec.engine,
            "objectives": {"rto_seconds": obj.rto.total_seconds(), "rpo_seconds": obj.rpo.total_seconds()},
            "drills": [_drill_row(d) for d in in_period],
            "history": [_drill_row(d) for d in mine if history_from <= d.started_at < end
                        and d.type not in CHAOS_TYPES],
            "chaos": [_drill_row(d) for d in mine if start <= d.started_at < end and d.type in CHAOS_TYPES],
            "verification": {"total": len(verifs), "passed": passed_v, "failed": len(verifs) - passed_v,
                             "pass_rate": _pct(passed_v, len(verifs)),
                             "failures": [{"backup_id": v.backup_id, "at": v.verified_at.isoformat(),
                                           "problems": v.problems} for v in verifs if not v.ok]},
            "freshness": freshness,
            "rto": _stats([d.rto_seconds for d in in_period if d.rto_seconds is not None]),
            "rpo": _stats([d.rpo_seconds for d in in_period if d.rpo_seconds is not None]),
        }
        ds["drills_passed"] = sum(1 for d in in_period if d.verdict == "pass")
        ds["objectives_met"] = all(r["rto_ok"] and r["rpo_ok"] for r in ds["drills"]) if ds["drills"] else None
        chaos = ds["chaos"]
        ds["chaos_score"] = round(sum(1 for c in chaos if c["verdict"] == "pass") / len(chaos), 3) if chaos else None
        totals["drills"] += len(in_period)
        totals["drills_passed"] += ds["drills_passed"]
        totals["verifications"] += len(verifs)
        totals["verifications_passed"] += passed_v
        totals["stale_series"] += sum(1 for f in freshness if f["stale"])
        report["datastores"].append(ds)
    totals["drill_pass_rate"] = _pct(totals["drills_passed"], totals["drills"])
    totals["verification_pass_rate"] = _pct(totals["verifications_passed"], totals["verifications"])
    report["totals"] = totals
    report["incidents"] = _incidents(IncidentStore(repo), start, end, now)
    report["chaos"] = _chaos(repo, start, end)
    if kind == "quarterly":
        report["months"] = _months(report, repo, start, end)
    return report


def _chaos(repo, start: datetime, end: datetime) -> dict:
    """Failure simulations of the period (lifeboat.chaos records, both regions' catalogs): per experiment
    its runs, passes, mean resilience score (0-100), median detect/recover times and data lost."""
    from lifeboat.chaos.store import ChaosStore

    runs = [r for r in ChaosStore(repo).records() if start <= r.started_at < end and r.verdict != "running"]
    by_exp: dict[str, list] = {}
    for r in runs:
        by_exp.setdefault(r.experiment, []).append(r)
    rows = []
    for name, rs in sorted(by_exp.items()):
        scores = [r.score for r in rs if r.score is not None]
        rows.append({"experiment": name, "kind": rs[-1].kind, "family": rs[-1].family,
                     "environment": rs[-1].environment, "runs": len(rs),
                     "passed": sum(1 for r in rs if r.verdict == "pass"), "newest_verdict": rs[-1].verdict,
                     "score": round(statistics.mean(scores), 1) if scores else None,
                     "detect": _stats([r.detect_seconds for r in rs if r.detect_seconds is not None]),
                     "recover": _stats([r.recover_seconds for r in rs if r.recover_seconds is not None]),
                     "data_lost": sum(d.lost for r in rs for d in r.data_loss)})
    scores = [r.score for r in runs if r.score is not None]
    return {"experiments": rows, "runs": len(runs), "passed": sum(1 for r in runs if r.verdict == "pass"),
            "score": round(statistics.mean(scores), 1) if scores else None}


def _drill_row(d) -> dict:
    return {"id": d.id, "type": d.type, "started_at": d.started_at.isoformat(), "verdict": d.verdict,
            "rto_seconds": d.rto_seconds, "rpo_seconds": d.rpo_seconds,
            "objective_rto_seconds": d.objective_rto_seconds, "objective_rpo_seconds": d.objective_rpo_seconds,
            "rto_ok": d.rto_seconds is not None and d.rto_seconds <= d.objective_rto_seconds,
            "rpo_ok": d.rpo_seconds is not None and d.rpo_seconds <= d.objective_rpo_seconds,
            "backup_id": d.backup_id, "reasons": d.reasons}


def _incidents(store, start: datetime, end: datetime, now: datetime) -> dict:
    try:
        everything = store.all()
    except LifeboatError:
        everything = []
    opened = [i for i in everything if start <= i.opened_at < end]
    still_open = [i for i in everything if i.status != "resolved"]
    tta = [(i.acknowledged_at - i.opened_at).total_seconds() for i in opened if i.acknowledged_at]
    ttr = [(i.resolved_at - i.opened_at).total_seconds() for i in opened if i.resolved_at]
    return {"opened": len(opened), "resolved": sum(1 for i in opened if i.resolved_at),
            "by_severity": {s: sum(1 for i in opened if i.max_severity == s) for s in ("critical", "high", "medium",
                                                                                       "low")},
            "mean_time_to_acknowledge_seconds": statistics.mean(tta) if tta else None,
            "mean_time_to_resolve_seconds": statistics.mean(ttr) if ttr else None,
            "open": [{"id": i.id, "key": i.key, "severity": i.severity, "status": i.status, "level": i.level,
                      "age_seconds": (now - i.opened_at).total_seconds()} for i in still_open]}


def _months(report: dict, repo, start: datetime, end: datetime) -> list[dict]:
    """Per month of the quarter: drills, drill pass rate, verification pass rate (the trend)."""
    out = []
    m = start
    while m < end:
        nxt = datetime(m.year + (m.month == 12), m.month % 12 + 1, 1, tzinfo=UTC)
        rows = [r for ds in report["datastores"] for r in ds["drills"]
                if m <= datetime.fromisoformat(r["started_at"]) < nxt]
        vs = [v for ds in report["datastores"] for v in repo.verifications(ds["name"]) if m <= v.verified_at < nxt]
        out.append({"month": f"{m:%Y-%m}", "drills": len(rows),
                    "drill_pass_rate": _pct(sum(1 for r in rows if r["verdict"] == "pass"), len(rows)),
                    "verifications": len(vs), "verification_pass_rate": _pct(sum(1 for v in vs if v.ok), len(vs))})
        m = nxt
    return out

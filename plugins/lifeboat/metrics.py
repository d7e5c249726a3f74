"""Prometheus metrics computed from the catalog (and, for live exposure, the datastores themselves).

Served by the DR page's app at `/lifeboat/metrics` (lifeboat.ui.ops; bearer token from the Airflow
connection `lifeboat_metrics`) and printed by `python -m lifeboat metrics`. The catalog copy read is
the requested region's, else the other one's (`lifeboat_catalog_info` says which), so the standby
region's Prometheus keeps seeing the backups when the primary region is gone.

Every sample is a gauge; ages are computed at scrape time. The alerting rules that mirror
lifeboat_monitor's checks are in include/prometheus/lifeboat-rules.yml:
    backup age > its limit (lifeboat.schedule)       high       lifeboat_backup_age_seconds / _limit_seconds
    newest verified backup > 8 days                  medium     lifeboat_verified_backup_age_seconds
    live exposure > RPO (> RPO/2: high)              critical   lifeboat_exposure_seconds / _objective_rpo_seconds
Named hooks feed the rest: S3 and image replication lag (lifeboat.replication_metrics, built in), chaos scores
(`register_hook`).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from datetime import datetime

from lifeboat.records import utcnow

log = logging.getLogger(__name__)

EXPOSURE_TIMEOUT = float(os.environ.get("LIFEBOAT_METRICS_EXPOSURE_TIMEOUT", "5"))
CACHE_SECONDS = float(os.environ.get("LIFEBOAT_METRICS_CACHE_SECONDS", "15"))

# name -> (help, label names)
METRICS: dict[str, tuple[str, tuple[str, ...]]] = {
    "lifeboat_catalog_info": ("The catalog copy these metrics were computed from (1)", ("region", "role", "fallback")),
    "lifeboat_backup_count": ("Complete backups in the catalog", ("datastore", "series")),
    "lifeboat_backup_age_seconds": ("Age of the newest complete backup", ("datastore", "series")),
    "lifeboat_backup_age_limit_seconds": ("Age past which the series is stale (lifeboat.schedule: 2 schedule "
                                          "intervals + grace)", ("datastore", "series")),
    "lifeboat_backup_last_timestamp_seconds": ("Finish time of the newest complete backup", ("datastore", "series")),
    "lifeboat_backups_incomplete": ("Backup folders without a manifest (interrupted)", ("datastore",)),
    "lifeboat_verified_backup_count": ("Backups whose newest verification passed", ("datastore",)),
    "lifeboat_verified_backup_age_seconds": ("Age of the newest backup whose verification passed", ("datastore",)),
    "lifeboat_verified_backup_age_limit_seconds": ("Age past which the newest verified backup is stale",
                                                   ("datastore",)),
    "lifeboat_verification_ok": ("Result of the most recent verification (1 pass, 0 fail)", ("datastore",)),
    "lifeboat_verification_last_timestamp_seconds": ("Time of the most recent verification", ("datastore",)),
    "lifeboat_drill_count": ("Finished drills in the catalog", ("datastore", "type")),
    "lifeboat_drill_rto_seconds": ("Measured RTO of the newest finished drill", ("datastore", "type")),
    "lifeboat_drill_rpo_seconds": ("Measured RPO of the newest finished drill", ("datastore", "type")),
    "lifeboat_drill_pass": ("Verdict of the newest finished drill (1 pass, 0 fail)", ("datastore", "type")),
    "lifeboat_drill_age_seconds": ("Age of the newest finished drill", ("datastore", "type")),
    "lifeboat_objective_rto_seconds": ("The datastore's RTO objective", ("datastore",)),
    "lifeboat_objective_rpo_seconds": ("The datastore's RPO objective", ("datastore",)),
    "lifeboat_exposure_seconds": ("Data a failure now would lose, per mechanism (WAL archive lag, replica lag)",
                                  ("datastore", "check")),
    "lifeboat_exposure_up": ("Whether live exposure could be measured (1) or the datastore was unreachable (0)",
                             ("datastore",)),
    "lifeboat_s3_replication_lag_seconds": ("S3 cross-region replication lag (hook: s3_replication_lag)",
                                            ("bucket",)),
    "lifeboat_image_replication_lag_seconds": ("Container image replication lag (hook: image_replication_lag)",
                                               ("repository",)),
    "lifeboat_chaos_score": ("Score of the newest chaos/failure simulation, 0..1 (hook: chaos_scores)",
                             ("scenario",)),
    "lifeboat_incidents_open": ("Open incidents (lifeboat.incidents)", ("severity", "status")),
    "lifeboat_metrics_collect_seconds": ("Time to compute these metrics", ()),
}

Sample = tuple[str, dict[str, str], float]
Hook = Callable[[object, datetime], Iterable[tuple[dict[str, str], float]]]
# Named hooks later engines fill: hook name -> metric it feeds. register_hook(name, fn).
HOOK_METRICS = {"s3_replication_lag": "lifeboat_s3_replication_lag_seconds",
                "image_replication_lag": "lifeboat_image_replication_lag_seconds",
                "chaos_scores": "lifeboat_chaos_score"}
_HOOKS: dict[str, Hook] = {}


def register_hook(name: str, fn: Hook) -> None:
    """fn(inventory, now) -> [(labels, value), ...] for the metric HOOK_METRICS[name]."""
    if name not in HOOK_METRICS:
        raise ValueError(f"unknown metrics hook {name!r} (known: {', '.join(HOOK_METRICS)})")
    _HOOKS[name] = fn


def catalog_samples(inv, repo, now: datetime) -> list[Sample]:
    """Everything that comes from the catalog alone."""
    from lifeboat.catalog import Catalog
    from lifeboat.datastores import engine_class
    from lifeboat.schedule import VERIFIED_LIMIT, freshness

    cat = Catalog(repo)
    out: list[Sample] = []
    drills = [d for d in repo.drills() if d.verdict != "running"]
    for spec in inv.enabled_datastores():
        name = spec.name
        obj = inv.objectives_for(name)
        out += [("lifeboat_objective_rto_seconds", {"datastore": name}, obj.rto.total_seconds()),
                ("lifeboat_objective_rpo_seconds", {"datastore": name}, obj.rpo.total_seconds())]
        backups = cat.backups(name)
        schedules = {kind: b.schedule for kind, b in spec.backups.items()}
        for f in freshness(schedules, engine_class(spec.engine).series_of, backups, now):
            lab = {"datastore": name, "series": f.series}
            out.append(("lifeboat_backup_count", lab, sum(1 for m in backups if m.series == f.series)))
            if f.limit is not None:
                out.append(("lifeboat_backup_age_limit_seconds", lab, f.limit.total_seconds()))
            if f.newest is not None and f.age is not None:
                out += [("lifeboat_backup_age_seconds", lab, f.age.total_seconds()),
                        ("lifeboat_backup_last_timestamp_seconds", lab, f.newest.finished_at.timestamp())]
        out.append(("lifeboat_backups_incomplete", {"datastore": name}, len(repo.incomplete(name))))
        vmap = cat.verification_map(name)
        verified = [m for m in backups if vmap.get(m.id) is not None and vmap[m.id].ok]
        lab = {"datastore": name}
        out += [("lifeboat_verified_backup_count", lab, len(verified)),
                ("lifeboat_verified_backup_age_limit_seconds", lab, VERIFIED_LIMIT.total_seconds())]
        if verified:
            out.append(("lifeboat_verified_backup_age_seconds", lab, (now - verified[-1].finished_at).total_seconds()))
        if vmap:
            last = max(vmap.values(), key=lambda v: v.verified_at)
            out += [("lifeboat_verification_ok", lab, 1.0 if last.ok else 0.0),
                    ("lifeboat_verification_last_timestamp_seconds", lab, last.verified_at.timestamp())]
        for dtype in sorted({d.type for d in drills if d.datastore == name}):
            mine = [d for d in drills if d.datastore == name and d.type == dtype]
            d, dl = mine[-1], {"datastore": name, "type": dtype}
            out += [("lifeboat_drill_count", dl, len(mine)),
                    ("lifeboat_drill_pass", dl, 1.0 if d.verdict == "pass" else 0.0),
                    ("lifeboat_drill_age_seconds", dl, (now - d.started_at).total_seconds())]
            if d.rto_seconds is not None:
                out.append(("lifeboat_drill_rto_seconds", dl, d.rto_seconds))
            if d.rpo_seconds is not None:
                out.append(("lifeboat_drill_rpo_seconds", dl, d.rpo_seconds))
    return out


def incident_samples(repo) -> list[Sample]:
    from lifeboat.incidents.store import IncidentStore

    counts: dict[tuple[str, str], int] = {}
    for inc in IncidentStore(repo).active():
        if inc.status != "resolved":
            counts[(inc.severity, inc.status)] = counts.get((inc.severity, inc.status), 0) + 1
    return [("lifeboat_incidents_open", {"severity": s, "status": st}, n) for (s, st), n in sorted(counts.items())]


def exposure_samples(inv, timeout: float = EXPOSURE_TIMEOUT) -> list[Sample]:
    """Live exposure per datastore, each measured in its own thread with a deadline: a hung datastore
    makes `lifeboat_exposure_up` 0, never a hung scrape."""
    from lifeboat import regions
    from lifeboat.datastores import open_engine

    active = regions.active_region(inv)  # the exposure is the primaries' (they follow a failover)

    def measure(name: str) -> dict:
        return open_engine(name, inventory=inv, region=active).exposure()

    out: list[Sample] = []
    names = [ds.name for ds in inv.enabled_datastores()]
    pool = ThreadPoolExecutor(max_workers=max(1, len(names)), thread_name_prefix="lifeboat-exposure")
    try:
        futures = {n: pool.submit(measure, n) for n in names}
        deadline = time.monotonic() + timeout
        for name, fut in futures.items():
            try:
                values = fut.result(timeout=max(0.0, deadline - time.monotonic()))
            except FutureTimeout:
                log.warning("metrics: exposure of %s not measured within %.0fs", name, timeout)
                out.append(("lifeboat_exposure_up", {"datastore": name}, 0.0))
                continue
            except Exception as exc:
                log.warning("metrics: exposure of %s: %s", name, exc)
                out.append(("lifeboat_exposure_up", {"datastore": name}, 0.0))
                continue
            out.append(("lifeboat_exposure_up", {"datastore": name}, 1.0))
            out += [("lifeboat_exposure_seconds", {"datastore": name, "check": check}, float(v))
                    for check, v in values.items() if v is not None]
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
    return out


def hook_samples(inv, now: datetime) -> list[Sample]:
    from lifeboat.replication_metrics import HOOKS

    out: list[Sample] = []
    for name, fn in {**HOOKS, **_HOOKS}.items():
        try:
            out += [(HOOK_METRICS[name], dict(labels), float(v)) for labels, v in fn(inv, now)]
        except Exception as exc:  # one broken engine hook must not blank the other metrics
            log.warning("metrics hook %s failed: %s", name, exc)
    return out


def collect(inv=None, region: str | None = None, now: datetime | None = None, exposure: bool = True) -> list[Sample]:
    from lifeboat.inventory import load_inventory
    from lifeboat.repository import Repository

    t0 = time.monotonic()
    inv = inv or load_inventory()
    now = now or utcnow()
    repo, used, note = Repository.readable(inv, region or os.environ.get("LIFEBOAT_REGION"))
    role = "primary" if used == inv.regions.primary else "standby"
    out: list[Sample] = [("lifeboat_catalog_info", {"region": used, "role": role, "fallback": "1" if note else "0"}, 1)]
    out += catalog_samples(inv, repo, now)
    out += incident_samples(repo)
    if exposure:
        out += exposure_samples(inv)
    out += hook_samples(inv, now)
    out.append(("lifeboat_metrics_collect_seconds", {}, time.monotonic() - t0))
    return out


def render(samples: list[Sample]) -> bytes:
    """Prometheus text exposition format through prometheus_client (every family, even empty ones)."""
    from prometheus_client import CollectorRegistry, generate_latest
    from prometheus_client.core import GaugeMetricFamily

    class _Collector:
        def collect(self):
            for name, (help_, labels) in METRICS.items():
                fam = GaugeMetricFamily(name, help_, labels=list(labels))
                for n, lab, value in samples:
                    if n == name:
                        fam.add_metric([lab.get(k, "") for k in labels], value)
                yield fam

    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Collector())
    return generate_latest(registry)


_cache: dict[str, tuple[float, bytes]] = {}
_lock = threading.Lock()


def exposition(region: str | None = None) -> bytes:
    """The scrape body, cached for CACHE_SECONDS per region (Prometheus and people may scrape at once)."""
    key = region or ""
    with _lock:
        hit = _cache.get(key)
        if hit and time.monotonic() - hit[0] < CACHE_SECONDS:
            return hit[1]
    body = render(collect(region=region))
    with _lock:
        _cache[key] = (time.monotonic(), body)
    return body

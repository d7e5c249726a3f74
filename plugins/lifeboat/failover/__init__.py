"""Failover to the standby region and failback: one module per engine, registered by engine name.

    base.py        the interface (preflight / fence / promote / verify / heartbeats / rebuild / caught_up)
    facts.py       the typed facts the steps pass on (Role, Preflight, CaughtUp, PromotionHeartbeats)
    postgres.py    pg_promote(); fence read-only (or stop); failback with pg_rewind or pg_basebackup
    redis.py       REPLICAOF NO ONE; fence CLIENT PAUSE WRITE; failback REPLICAOF
    mongodb.py, elasticsearch.py   restore-based: the newest verified backup restored into the standby
    traffic.py     Route 53 records (UPSERT, idempotent)
    services.py    Kubernetes deployments (scale) and /health, /ready checks
    timeline.py    the persisted timeline of one operation (resumable; becomes the drill record)
    operation.py, planning.py, steps.py, recording.py   the functions the DAG tasks call
    jobs.py        (the step names the operators call, in one place)

Engines are registered in lifeboat.registry (with the backup engines).

Like the datastore engines, modules import their drivers inside functions: the DAG files import
this package at parse time.
"""

from __future__ import annotations

from lifeboat import registry
from lifeboat.errors import InventoryError


def failover_class(engine: str):
    return registry.failover_class(engine)


def check_inventory(inv) -> None:
    """Cross-references of the `failover:` section, with errors naming file and field. Cheap: the
    DAG files call it at parse time."""
    src = inv.source or "inventory"
    fo = inv.failover
    if fo is None:
        raise InventoryError(f"{src}: failover: section missing (lifeboat_failover needs traffic, services, order)")
    regions = {inv.regions.primary, inv.regions.standby}
    for i, name in enumerate(fo.order):
        if name not in inv.datastores:
            raise InventoryError(f"{src}: failover.order[{i}]: unknown datastore {name!r} "
                                 f"(has: {', '.join(sorted(inv.datastores))})")
    if len(set(fo.order)) != len(fo.order):
        raise InventoryError(f"{src}: failover.order: a datastore is listed twice")
    for name, opts in fo.datastores.items():
        if name not in inv.datastores:
            raise InventoryError(f"{src}: failover.datastores.{name}: unknown datastore")
        model = getattr(failover_class(inv.datastores[name].engine), "Options", None)
        if model is not None:
            from pydantic import ValidationError

            try:
                model.model_validate(opts)
            except ValidationError as exc:
                e = exc.errors()[0]
                msg = e["msg"].removeprefix("Value error, ")
                msg = "unknown field (typo?)" if e["type"] == "extra_forbidden" else msg
                where = ".".join(map(str, e["loc"]))
                raise InventoryError(f"{src}: failover.datastores.{name}.{where}: {msg}") from None
    for name in failover_datastores(inv):
        ds = inv.datastores[name]
        for region in regions:
            if region not in ds.connections:
                raise InventoryError(f"{src}: datastores.{name}.connections: failover needs a connection for "
                                     f"region {region!r}")
    if fo.traffic is not None:
        for i, rec in enumerate(fo.traffic.records):
            missing, unknown = regions - set(rec.targets), set(rec.targets) - regions
            if missing or unknown:
                what = f"no value for region(s) {', '.join(sorted(missing))}" if missing else \
                    f"unknown region(s) {', '.join(sorted(unknown))}"
                raise InventoryError(f"{src}: failover.traffic.records[{i}].targets: {what}")
    seen = set()
    for i, svc in enumerate(fo.services):
        if svc.name in seen or svc.name in inv.datastores:
            raise InventoryError(f"{src}: failover.services[{i}].name: {svc.name!r} is not unique "
                                 "(service and datastore names share the scope parameter)")
        seen.add(svc.name)
        if inv.services and svc.name not in inv.services:
            raise InventoryError(f"{src}: failover.services[{i}].name: {svc.name!r} is not in services: (the "
                                 f"dependency map has {', '.join(inv.services)})")
        for fld in ("kubernetes", "health", "ready"):
            unknown = set(getattr(svc, fld)) - regions
            if unknown:
                raise InventoryError(f"{src}: failover.services[{i}].{fld}: unknown region(s) "
                                     f"{', '.join(sorted(unknown))}")
        for fld in ("health", "ready"):
            for region, url in getattr(svc, fld).items():
                if not url.startswith(("http://", "https://")):
                    raise InventoryError(f"{src}: failover.services[{i}].{fld}.{region}: not an http(s) URL: {url!r}")


def failover_datastores(inv) -> list[str]:
    """Datastores a whole-region failover acts on, in promotion order."""
    fo = inv.failover
    order = list(fo.order) if fo and fo.order else []
    rest = [ds.name for ds in inv.enabled_datastores() if ds.name not in order]
    return [n for n in order if inv.datastores[n].enabled] + ([] if fo and fo.order else rest)


def scope_choices(inv) -> list[str]:
    """Values the scope parameter accepts: 'region' or names of datastores and services."""
    services = [s.name for s in inv.failover.services] if inv.failover else []
    return ["region", *failover_datastores(inv), *services]


def open_failover(name: str, *, inventory=None, target_region: str | None = None, runner=None):
    """The failover engine for inventory datastore `name`; catalog reads go to `target_region`'s copy."""
    from lifeboat.failover.base import FailoverContext
    from lifeboat.inventory import load_inventory
    from lifeboat.repository import Repository
    from lifeboat.runners import LocalRunner

    inv = inventory or load_inventory()
    spec = inv.datastore(name)
    options = (inv.failover.datastores.get(name) if inv.failover else None) or {}
    try:
        repo = Repository.from_inventory(inv, target_region)
    except Exception:  # the catalog is informative here; failover must not depend on it
        repo = None
    ctx = FailoverContext(inventory=inv, spec=spec, options=options, runner=runner or LocalRunner(), repo=repo)
    return failover_class(spec.engine)(ctx)

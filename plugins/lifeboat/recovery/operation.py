"""One recovery (lifeboat_recover) or service recovery (lifeboat_recover_service), as its trigger
parameters describe it: validated before anything is touched (a task marked successful by hand does
not bypass the guard), the scope resolved through the dependency map into restore order."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from lifeboat.dependencies import Node, restore_order
from lifeboat.errors import Refused
from lifeboat.failover.timeline import TimelineOwner, require_confirm
from lifeboat.inventory import FailoverService, Inventory, load_inventory
from lifeboat.recovery.timeline import RecoveryTimeline, Steps, TimelineStore

Kind = Literal["recover", "recover_service"]
NOTHING = "Nothing was changed."


def acting_region(inv: Inventory, requested: str | None) -> str:
    """The region a run acts in: the one asked for, else the active region ($LIFEBOAT_REGION, then the
    active-region record where the inventory keeps one), else the primary."""
    regions = [inv.regions.primary, inv.regions.standby]
    req = (requested or "").strip()
    if req and req != "active":
        if req not in regions:
            raise Refused(f"region {req!r}: not an inventory region (regions: {', '.join(regions)}). {NOTHING}")
        return req
    env = os.environ.get("LIFEBOAT_REGION", "").strip()
    if env in regions:
        return env
    try:  # the active-region record (lifeboat.regions), where the deployment has one
        from lifeboat import regions as active

        got = active.active_region(inv)
        if got in regions:
            return got
    except Exception:  # noqa: S110 -- no record: the primary
        pass
    return inv.regions.primary


def _bool(params: dict, name: str, default: bool) -> bool:
    v = params.get(name, default)
    if not isinstance(v, bool):  # bool("false") is True
        raise Refused(f"{name}: must be true or false, got {v!r}. {NOTHING}")
    return v


def _time(value: Any, name: str) -> datetime | None:
    if value in (None, "", "latest", "now"):
        return None
    try:
        t = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise Refused(f"{name}: {value!r} is not an ISO-8601 time (e.g. 2026-12-01T10:15:00+00:00). "
                      f"{NOTHING}") from None
    if t.tzinfo is None:
        raise Refused(f"{name}: {value!r} has no time zone (write e.g. {value}+00:00). {NOTHING}")
    return t


@dataclass
class RecoveryOp(TimelineOwner[TimelineStore, RecoveryTimeline]):
    store_class = TimelineStore
    kind: Kind
    inv: Inventory
    region: str
    requested: list[str]
    order: list[Node]
    datastores: list[str]
    services: list[str]
    dry_run: bool
    reason: str
    into: str = "new"
    target: str = "latest"
    targets: dict[str, str] = field(default_factory=dict)
    failed_at: datetime | None = None
    params: dict = field(default_factory=dict)
    run: dict = field(default_factory=dict)
    _engines: dict[str, Any] = field(default_factory=dict, repr=False)

    def engine(self, name: str):
        if name not in self._engines:
            from lifeboat.datastores import open_engine

            self._engines[name] = open_engine(name, inventory=self.inv, region=self.region, run=self.run)
        return self._engines[name]

    def target_for(self, datastore: str) -> str:
        return self.targets.get(datastore, self.target)

    @property
    def store_region(self) -> str:
        return self.region

    def real_timeline(self) -> RecoveryTimeline:
        tl = self.timeline()
        if tl is None:
            raise Refused(f"{self.kind} step without a timeline: a dry run records none")
        return tl

    def steps(self, tl: RecoveryTimeline | None) -> Steps:
        return Steps(self.store, tl)

    @property
    def tag(self) -> str:
        """Names what this run creates (directories, ports' owners, databases, indices): from the run id."""
        import hashlib

        return "r" + hashlib.sha1(self.timeline_id.encode(), usedforsecurity=False).hexdigest()[:10]

    def ready_timeout(self, name: str) -> float:
        dep = self.deployment(name)
        return dep.ready_timeout.total_seconds() if dep is not None else 300.0

    def deployment(self, name: str) -> FailoverService | None:
        """The service's Kubernetes deployment (failover.services), if the inventory has one."""
        specs = self.inv.failover.services if self.inv.failover else []
        return next((s for s in specs if s.name == name), None)


def scope_choices(inv: Inventory) -> list[str]:
    return [*inv.services, *inv.datastores]


def operation(kind: str, params: dict, run: dict | None = None, *, check_confirm: bool = True) -> RecoveryOp:
    """Validate the trigger parameters. Raises Refused (naming the parameter) before anything is touched."""
    if kind not in ("recover", "recover_service"):
        raise Refused(f"unknown operation {kind!r}")
    inv = load_inventory()
    region = acting_region(inv, params.get("region"))
    reason = str(params.get("reason") or "").strip()
    if len(reason) < 3:
        raise Refused(f"reason: required -- say why (it goes into the timeline, the drill record and the "
                      f"notification). {NOTHING}")
    dry_run = _bool(params, "dry_run", True)
    scope = params.get("scope") or []
    if isinstance(scope, str):
        scope = [s.strip() for s in scope.split(",") if s.strip()]
    if not scope:
        raise Refused(f"scope: empty -- choose the affected services (their datastores are resolved through "
                      f"services: in the inventory) or datastores. {NOTHING}")
    if kind == "recover_service":
        unknown = [s for s in scope if s not in inv.services]
        if unknown:
            raise Refused(f"scope: {', '.join(map(repr, unknown))} not a service of the dependency map (services: "
                          f"{', '.join(inv.services) or 'none'}). {NOTHING}")
    try:
        resolved = restore_order(inv.services, list(inv.datastores), scope)
    except ValueError as exc:
        raise Refused(f"scope: {exc}. {NOTHING}") from None
    into = str(params.get("into") or "new")
    if into not in ("new", "live"):
        raise Refused(f"into: {into!r} -- 'new' (a new instance/database/index, the default) or 'live'. {NOTHING}")
    target = str(params.get("target") or "latest").strip()
    _time(target, "target")
    targets = params.get("targets") or {}
    if not isinstance(targets, dict) or any(k not in inv.datastores for k in targets):
        raise Refused(f"targets: a mapping of datastore -> target, got {targets!r}. {NOTHING}")
    failed_at = _time(params.get("failed_at"), "failed_at")
    order = list(resolved.order)  # recover_service checks the datastores (restores nothing) before restarting
    op = RecoveryOp(kind=kind, inv=inv, region=region, requested=list(scope), order=order,  # type: ignore[arg-type]
                    datastores=list(resolved.datastores), services=list(resolved.services), dry_run=dry_run,
                    reason=reason, into=into, target=target, targets={k: str(v) for k, v in targets.items()},
                    failed_at=failed_at, params=dict(params), run=dict(run or {}))
    if not dry_run and check_confirm:
        require_confirm(params, region, kind=kind, what="acting region", nothing=NOTHING)
        if kind == "recover" and into == "live":
            want = ",".join(op.datastores)
            got = ",".join(s.strip() for s in str(params.get("confirm_live") or "").split(",") if s.strip())
            if got != want:
                raise Refused(f"confirm_live: restoring INTO THE LIVE targets (into=live) overwrites them: type the "
                              f"datastores exactly, {want!r}; got {got or 'nothing'!r}. {NOTHING}")
    return op

"""One failover or failback operation, as its trigger parameters describe it: validated before anything
is touched (a task marked successful by hand does not bypass the guard)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from lifeboat.errors import Refused
from lifeboat.failover import check_inventory, failover_datastores, open_failover, scope_choices
from lifeboat.failover.timeline import Timeline, TimelineOwner, TimelineStore, require_confirm
from lifeboat.inventory import FailoverSpec, Inventory, load_inventory

Kind = Literal["failover", "failback"]
KINDS: tuple[Kind, ...] = ("failover", "failback")


@dataclass
class Operation(TimelineOwner[TimelineStore, Timeline]):
    store_class = TimelineStore
    kind: Kind
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
    _engines: dict[str, Any] = field(default_factory=dict, repr=False)

    def engine(self, name: str) -> Any:
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

    @property
    def store_region(self) -> str:  # the region taking over (the other one may be gone)
        return self.target

    @property
    def spec(self) -> FailoverSpec:
        """The inventory's failover section (check_inventory made sure there is one)."""
        if self.inv.failover is None:
            raise Refused(f"{self.inv.source}: failover: section missing")
        return self.inv.failover

    def real_timeline(self) -> Timeline:
        """The timeline of a real (not dry) run."""
        tl = self.timeline()
        if tl is None:
            raise Refused(f"{self.kind} step without a timeline: a dry run records none")
        return tl

    def services_api(self):
        from lifeboat.failover.services import Services

        return Services(self.spec.services)

    def traffic(self):
        from lifeboat.failover.traffic import Traffic

        if self.spec.traffic is None:
            raise Refused(f"{self.inv.source}: failover.traffic: not configured")
        return Traffic(self.spec.traffic)


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
    all_svc = [s.name for s in inv.failover.services] if inv.failover else []
    datastores = all_ds if whole else [d for d in all_ds if d in scope]
    services = all_svc if whole else [s for s in all_svc if s in scope]
    if not datastores and not services:
        raise Refused("scope: selects no datastore and no service. Nothing was changed.")
    if not dry_run and check_confirm:
        require_confirm(params, target, kind=kind, what="target region", nothing="Nothing was changed.")
    switch_back = params.get("switch_back", False)
    if not isinstance(switch_back, bool):  # bool("false") is True
        raise Refused(f"switch_back: must be true or false, got {switch_back!r}. Nothing was changed.")
    return Operation(kind="failover" if kind == "failover" else "failback", inv=inv, target=target, source=source,
                     datastores=datastores, services=services, whole_region=whole, dry_run=dry_run, reason=reason,
                     switch_back=switch_back, run=dict(run or {}))


def iso(dt: datetime | None) -> str | None:
    return dt.isoformat() if dt else None


def parse(ts: str | None) -> datetime | None:
    return datetime.fromisoformat(ts) if ts else None

"""The failover interface every datastore implements (one module per engine, like lifeboat.datastores).

Regions are inventory regions; each datastore reaches a region through the Airflow connection the
inventory names for it (`datastores.<name>.connections.<region>`). Every verb checks the current
state first, so a retried or re-run task continues instead of repeating what already happened:

- `role(region)`                      -> Role (reachable, primary|standby, engine facts)   (read-only)
- `preflight(target_region)`          -> reachability, replication lag, newest verified backup age,
                                         standby capacity, the action a failover would take (read-only)
- `fence(old_region)`                 -> stop writes on the old primary where it is reachable; an
                                         unreachable old primary is recorded, never fatal
                                         (the engine implements `fence_primary`)
- `promote(target_region)`            -> make the standby the primary; a primary is left alone; a
                                         reachable old primary is caught up with first (the engine
                                         implements `catch_up`, `promote_standby`, `identity`)
- `verify(region)`                    -> a real write and read-back on the (new) primary
- `newest_heartbeat(region)`          -> the newest heartbeat present there (data-loss measurement)
- `rebuild_as_standby(region, primary_region)` -> turn a former primary into a standby of the primary
- `caught_up(standby_region, primary_region)`  -> CaughtUp (ok, lag_bytes, ...)

The facts are typed models (lifeboat.failover.facts): the plan, the approval text and the timeline
read only their fields.

Engines whose failover is not automated subclass `NotAutomated`: their preflight says so plainly and
the plan lists them as manual steps; every other verb refuses.
"""

from __future__ import annotations

import abc
import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar, Generic, TypeVar, cast, get_args

from pydantic import BaseModel, ConfigDict, ValidationError

from lifeboat import registry
from lifeboat.connections import Endpoint, resolve
from lifeboat.errors import InventoryError, Refused, RestoreFailed
from lifeboat.failover.facts import CaughtUp, EngineFacts, Preflight, Role
from lifeboat.inventory import DatastoreSpec, Inventory
from lifeboat.records import utcnow
from lifeboat.runners import LocalRunner, Runner

log = logging.getLogger(__name__)


class FailoverOptions(BaseModel):
    """`failover.datastores.<name>` -- per engine; unknown keys are errors naming the field."""

    model_config = ConfigDict(extra="forbid", frozen=True)


@dataclass
class FailoverContext:
    inventory: Inventory
    spec: DatastoreSpec
    options: dict[str, Any] = field(default_factory=dict)
    runner: Runner = field(default_factory=LocalRunner)
    repo: Any = None  # lifeboat.repository.Repository as seen from the target region (catalog reads)


FailoverOptionsT = TypeVar("FailoverOptionsT", bound="FailoverOptions")


class FailoverDatastore(abc.ABC, Generic[FailoverOptionsT]):
    """`class MyFailover(FailoverDatastore[MyFailoverOptions])`: the type parameter is the model of the
    inventory's `failover.datastores.<name>` block (`Options`; default `FailoverOptions`) and types `options`."""

    engine: ClassVar[str]
    Options: ClassVar[type[FailoverOptions]] = FailoverOptions
    options: FailoverOptionsT
    implemented: ClassVar[bool] = True
    # One line each, shown in the plan the approver reads.
    describe_fence: ClassVar[str] = ""
    describe_promote: ClassVar[str] = ""
    describe_rebuild: ClassVar[str] = ""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        declared = [a for b in cls.__dict__.get("__orig_bases__", ()) for a in get_args(b)
                    if isinstance(a, type) and issubclass(a, FailoverOptions)]
        if declared:
            cls.Options = declared[0]

    def __init__(self, ctx: FailoverContext):
        self.ctx = ctx
        self.spec = ctx.spec
        self.name = ctx.spec.name
        self.inventory = ctx.inventory
        try:
            self.options = cast(FailoverOptionsT, self.Options.model_validate(ctx.options or {}))
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            msg = "unknown field (typo?)" if first["type"] == "extra_forbidden" else first["msg"]
            raise InventoryError(f"{self.inventory.source}: failover.datastores.{self.name}.{where}: {msg}") from None
        self.engine_options = registry.options_model(ctx.spec.engine).model_validate(ctx.spec.options)

    # -- helpers ---------------------------------------------------------------------------------
    def conn_id(self, region: str) -> str:
        return self.spec.connection_for(region)

    def endpoint(self, region: str) -> Endpoint:
        return resolve(self.conn_id(region))

    def where(self, region: str) -> str:
        return f"{self.name}@{region} (connection {self.conn_id(region)!r})"

    def other_region(self, region: str) -> str:
        r = self.inventory.regions
        return r.standby if region == r.primary else r.primary

    # -- the verbs -------------------------------------------------------------------------------
    @abc.abstractmethod
    def role(self, region: str) -> Role:
        """What the region's server is now; an unreachable server is a Role with reachable=False."""

    @abc.abstractmethod
    def newest_heartbeat(self, region: str) -> datetime | None: ...

    @abc.abstractmethod
    def fence_primary(self, old_region: str, facts: Role) -> str:
        """Stop writes on a reachable primary (the engine's native way)."""

    @abc.abstractmethod
    def catch_up(self, target_region: str, source_region: str, source: Role) -> tuple[bool, str]:
        """Wait (bounded) until the standby has everything the reachable old primary wrote:
        (caught up?, what was found)."""

    @abc.abstractmethod
    def promote_standby(self, target_region: str) -> str:
        """Make a standby the primary (the engine's native way); verify the new role."""

    @abc.abstractmethod
    def identity(self, facts: Role) -> str:
        """What tells promotions apart (PostgreSQL timeline, Redis replication id)."""

    def fence(self, old_region: str) -> str:
        """Fence the old primary where it is reachable; unreachable or a standby is recorded, not fatal."""
        r = self.role(old_region)
        if not r.reachable:
            return f"{self.where(old_region)} unreachable, not fenced (recorded): {r.error}"
        if r.role == "standby":
            return f"{self.where(old_region)} is a standby: nothing to fence"
        return self.fence_primary(old_region, r)

    def promote(self, target_region: str, *, require_caught_up: bool = False) -> str:
        """Promote the target's standby -- never a primary again. A reachable old primary is caught up
        with first; `require_caught_up` (a switchover) refuses rather than lose anything."""
        r = self.role(target_region)
        if not r.reachable:
            raise RestoreFailed(f"cannot promote {self.where(target_region)}: unreachable: {r.error}")
        if r.role == "primary":
            return f"{self.where(target_region)} is already primary ({self.identity(r)}): not promoted again"
        source_region = self.other_region(target_region)
        src = self.role(source_region)
        if src.live_primary:
            ok, note = self.catch_up(target_region, source_region, src)
            if not ok and require_caught_up:
                raise Refused(f"{note}: not promoting (a switchover must not lose data)")
            if not ok:
                note += ": promoted anyway (failover)"
        elif require_caught_up:
            raise Refused(f"switchover to {target_region} needs {self.where(source_region)} reachable as primary "
                          f"(found: {src.role or src.error})")
        else:
            note = f"old primary {source_region} unreachable: promoted with what it had already replicated"
        return f"{self.promote_standby(target_region)}; {note}"

    @abc.abstractmethod
    def verify(self, region: str) -> str: ...

    @abc.abstractmethod
    def rebuild_as_standby(self, old_region: str, new_primary_region: str) -> str: ...

    @abc.abstractmethod
    def caught_up(self, standby_region: str, primary_region: str) -> CaughtUp: ...

    def engine_preflight(self, target_region: str, source_region: str, target: Role, source: Role) -> EngineFacts:
        """Engine facts for the preflight: replication lag, capacity (read-only)."""
        return EngineFacts()

    # -- preflight (shared) ----------------------------------------------------------------------
    def preflight(self, target_region: str) -> Preflight:
        """Read-only: everything the plan and the approver need to decide."""
        source_region = self.other_region(target_region)
        now = utcnow()
        target, source = self.role(target_region), self.role(source_region)
        p = Preflight(datastore=self.name, engine=self.spec.engine, implemented=True, target_region=target_region,
                      source_region=source_region, target=target, source=source, checked_at=now.isoformat(),
                      **self.backup_age(now))
        if p.newest_verified_backup_age_seconds is None:
            p.warnings.append(f"{self.name}: no verified backup in the catalog of {target_region}")
        hb_target = self.newest_heartbeat_or_none(target_region) if target.reachable else None
        hb_source = self.newest_heartbeat_or_none(source_region) if source.reachable else None
        p.newest_heartbeat_target = hb_target.isoformat() if hb_target else None
        p.newest_heartbeat_source = hb_source.isoformat() if hb_source else None
        if target.reachable:
            facts = self.engine_preflight(target_region, source_region, target, source)
            p = p.model_copy(update=facts.model_dump(exclude={"warnings"}, exclude_unset=True))
            p.warnings += [f"{self.name}: {w}" for w in facts.warnings]
        # What a failover would do here.
        if not target.reachable:
            p.action = "blocked"
            p.blockers.append(f"{self.where(target_region)} is unreachable: {target.error}")
        elif target.role == "primary":
            p.action = "none"
            p.note = f"{target_region} is already the primary (promoted before): nothing to promote"
            if source.live_primary:
                p.warnings.append(f"{self.name}: BOTH regions answer as primary (split brain): fence {source_region} "
                                  "and fail back to rebuild it as a standby")
        # Expected data loss: what the standby has not received, as far as can be known now.
        if hb_target is not None:
            p.expected_data_loss_seconds = round(max(0.0, (now - hb_target).total_seconds()), 3)
            p.data_loss_basis = f"newest heartbeat on {target_region} ({hb_target.isoformat()})"
        else:
            p.data_loss_basis = f"no heartbeat found on {target_region}"
        if hb_target and hb_source:
            p.unreplicated_seconds = round(max(0.0, (hb_source - hb_target).total_seconds()), 3)
        return p

    def newest_heartbeat_or_none(self, region: str) -> datetime | None:
        try:
            return self.newest_heartbeat(region)
        except Exception as exc:  # the preflight reports, it does not fail on a missing table
            log.warning("%s: newest heartbeat on %s not readable: %s", self.name, region, exc)
            return None

    def backup_age(self, now: datetime) -> dict[str, Any]:  # fields of Preflight
        """Newest verified backup in the catalog (the target region's copy: the other may be gone)."""
        if self.ctx.repo is None:
            return {"newest_verified_backup": None, "newest_verified_backup_age_seconds": None}
        from lifeboat.catalog import Catalog
        from lifeboat.errors import BackupNotFound

        try:
            m = Catalog(self.ctx.repo).latest(self.name, verified=True)
        except BackupNotFound:
            return {"newest_verified_backup": None, "newest_verified_backup_age_seconds": None}
        except Exception as exc:  # a catalog problem is a warning here, not a blocker
            return {"newest_verified_backup": None, "newest_verified_backup_age_seconds": None,
                    "catalog_error": f"{type(exc).__name__}: {exc}"[:300]}
        return {"newest_verified_backup": m.id,
                "newest_verified_backup_age_seconds": round((now - m.finished_at).total_seconds(), 1)}


class NotAutomated(FailoverDatastore):
    """An engine whose failover Lifeboat does not automate (yet). `manual` says what to do by hand;
    the preflight reports it and the plan lists it as a manual step; every action refuses."""

    implemented = False
    manual: ClassVar[str] = ""

    def __init__(self, ctx: FailoverContext):  # no engine options needed to say "not implemented"
        self.ctx = ctx
        self.spec = ctx.spec
        self.name = ctx.spec.name
        self.inventory = ctx.inventory
        self.options = FailoverOptions()

    def preflight(self, target_region: str) -> Preflight:
        return Preflight(datastore=self.name, engine=self.spec.engine, implemented=False, action="manual",
                         target_region=target_region, source_region=self.other_region(target_region),
                         manual=self.manual, checked_at=utcnow().isoformat(),
                         warnings=[f"{self.name} ({self.spec.engine}): failover not implemented in Lifeboat -- "
                                   f"manual step: {self.manual}"])

    def _refuse(self, verb: str):
        raise Refused(f"{self.name} ({self.spec.engine}): {verb} is not implemented in Lifeboat; manual step: "
                      f"{self.manual}")

    def role(self, region):
        return Role(reachable=None, error="not implemented")

    def newest_heartbeat(self, region):
        return None

    def fence(self, old_region):
        self._refuse("fence")

    def fence_primary(self, old_region, facts):
        self._refuse("fence")

    def catch_up(self, target_region, source_region, source):
        self._refuse("catch_up")

    def promote(self, target_region, *, require_caught_up=False):
        self._refuse("promote")

    def promote_standby(self, target_region):
        self._refuse("promote")

    def identity(self, facts):
        return "not implemented"

    def verify(self, region):
        self._refuse("verify")

    def rebuild_as_standby(self, old_region, new_primary_region):
        self._refuse("rebuild_as_standby")

    def caught_up(self, standby_region, primary_region):
        self._refuse("caught_up")

"""The one interface every datastore implements, and the flow every engine shares.

DAG families iterate over the inventory and call these verbs; nothing datastore-specific leaks into
DAG files or operators. The base class owns the flow of each verb (after the Airflow providers'
RdsBaseOperator: the base runs the sequence, a subclass fills in one step):

- `backup(kind, backup_id)` -> Manifest. The base checks the kind, returns the finished manifest of
  a retried task (ids are deterministic), gives the engine an empty staging folder, uploads what the
  engine left there, builds the manifest, commits it LAST and removes the staging folder. The engine
  implements `_take(kind, backup_id, staging) -> Taken` (the native tool run and what it recorded).
- `verify(manifests)` / `verify_new(manifests)` -> one Verification per manifest: the artifact
  checksums (every engine) plus the engine's `checks(...)`, stored next to each backup.
- `restore_test(manifest, target, drill)`: the base runs the sequence of `restored(...)` and owns THE
  RTO CLOCK, which starts at exactly one place for every engine -- after the backup was chosen and
  the scratch target's pre-checks passed, immediately before its first restore step -- and stops
  when the target is ready AND its data verified. The engine implements a `ScratchTarget`.
- `heartbeat()` -> writes the heartbeat used to measure RPO, returns its timestamp.
- `delete_backup(manifest)` -> removes one backup (retention; the caller decides what may go).
"""

from __future__ import annotations

import abc
import contextlib
import logging
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar

from lifeboat import registry
from lifeboat.connections import Endpoint, resolve
from lifeboat.datastores.options import EngineOptions
from lifeboat.drills import DrillRecorder
from lifeboat.errors import InventoryError
from lifeboat.inventory import DatastoreSpec, Inventory
from lifeboat.net import free_port
from lifeboat.records import Artifact, Check, Manifest, Verification, utcnow
from lifeboat.repository import Repository
from lifeboat.runners import LocalRunner, Runner

log = logging.getLogger(__name__)

__all__ = ["Datastore", "EngineContext", "EngineOptions", "ScratchTarget", "Taken"]


@dataclass
class EngineContext:
    inventory: Inventory
    spec: DatastoreSpec
    repo: Repository
    runner: Runner = field(default_factory=LocalRunner)
    region: str = ""
    run: dict[str, str] = field(default_factory=dict)

    @property
    def workdir(self) -> Path:
        p = Path(self.inventory.workdir)
        p.mkdir(parents=True, exist_ok=True)
        return p


@dataclass
class Taken:
    """What an engine's `_take` step produced; the base turns it into the manifest."""

    position: dict[str, Any] = field(default_factory=dict)  # LSN / WAL range / restore point / oplog ts ...
    counts: dict[str, int] = field(default_factory=dict)  # exact at `position`, compared by restore tests
    tools: dict[str, str] = field(default_factory=dict)
    native: dict[str, Any] = field(default_factory=dict)
    restore_hint: str = ""
    parent: str | None = None
    artifacts: list[Artifact] | None = None  # None: every file the engine left in staging is uploaded
    source: str | None = None  # default: the connection's description (never credentials)


class ScratchTarget(abc.ABC):
    """A throw-away restore target (never the live datastore), driven by `Datastore.restored`.

    Each method records its own drill steps. `teardown` always runs, also when an earlier step failed,
    and must be safe to call when nothing was started."""

    teardown_step: ClassVar[str] = "tear down scratch target"

    def precheck(self, drill: DrillRecorder) -> None:  # noqa: B027 -- optional step, nothing by default
        """Safety guards and pre-checks (space, memory, the backup is restorable): before the clock."""

    @abc.abstractmethod
    def restore(self, drill: DrillRecorder) -> None:
        """Start the target, load or restore the backup into it, wait until it is ready (inside the clock)."""

    @abc.abstractmethod
    def verify(self, drill: DrillRecorder) -> None:
        """Compare the restored data with the manifest (counts, digests); raise on a difference."""

    @abc.abstractmethod
    def newest_heartbeat(self) -> datetime | None: ...

    def heartbeat_detail(self, hb: datetime | None) -> str:
        return hb.isoformat() if hb else "no heartbeat in the restored data"

    def after_ready(self, drill: DrillRecorder) -> None:  # noqa: B027 -- optional step, nothing by default
        """Further checks that are not part of the recovery (outside the RTO), e.g. a logical dump."""

    @abc.abstractmethod
    def teardown(self) -> str:
        """Stop and delete everything the target created; returns what was done."""


class Datastore(abc.ABC):
    engine: ClassVar[str]
    # from the registry entry of `engine`, which the inventory validates with at DAG-parse time
    Options: ClassVar[type[EngineOptions]]
    kinds: ClassVar[tuple[str, ...]]
    restore_series: ClassVar[str]  # the series a restore test starts from (e.g. "physical", "rdb")
    # kind -> the kind whose backup it continues (MongoDB: an oplog slice continues from a full). When
    # both fall due in one run, only the base runs: it covers the other, and they never race.
    continues: ClassVar[dict[str, str]] = {}
    free_port = staticmethod(free_port)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "engine" in cls.__dict__:
            cls.kinds = registry.backup_kinds(cls.engine)
            cls.Options = registry.options_model(cls.engine)

    def __init__(self, ctx: EngineContext):
        self.ctx = ctx
        self.spec = ctx.spec
        self.name = ctx.spec.name
        self.options: Any = self.Options.model_validate(ctx.spec.options)
        self.region = ctx.region or ctx.inventory.regions.primary

    # -- helpers ---------------------------------------------------------------------------------
    def endpoint(self, region: str | None = None) -> Endpoint:
        return resolve(self.conn_id(region))

    def conn_id(self, region: str | None = None) -> str:
        return self.spec.connection_for(region or self.region)

    def in_active_region(self) -> bool:
        """Is this engine's region the active one (where the primaries are: lifeboat.regions)?"""
        from lifeboat.regions import active_region

        return active_region(self.ctx.inventory, prefer=self.region) == self.region

    @staticmethod
    def backup_id(datastore: str, kind: str, when: datetime) -> str:
        """Deterministic: a retried task computes the same id and finds its own finished work."""
        return f"{datastore}-{kind}-{when.strftime('%Y%m%dT%H%M%SZ')}"

    @classmethod
    def series_of(cls, kind: str) -> str:
        """Backups of one series chain to each other (full <- diff <- incr); retention and the
        scheduler treat series separately."""
        return kind

    def check_kind(self, kind: str) -> None:
        if kind not in self.kinds:
            raise InventoryError(
                f"datastores.{self.name}.backups.{kind}: {self.engine} has no backup kind {kind!r} "
                f"(supported: {', '.join(self.kinds)})"
            )

    def scratch_dir(self, name: str) -> Path:
        """<workdir>/scratch/<name>: the only place scratch targets put files."""
        return self.ctx.workdir / "scratch" / name

    # -- backup (template method) -------------------------------------------------------------------
    def backup(self, kind: str, backup_id: str) -> Manifest:
        self.check_kind(kind)
        done = self.ctx.repo.manifest(self.name, backup_id)
        if done is not None:
            log.info("backup %s is already complete (retried task): nothing to do", backup_id)
            return done
        started = utcnow()
        staging = self.ctx.workdir / "staging" / backup_id
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        try:
            taken = self._take(kind, backup_id, staging)
            artifacts = taken.artifacts
            if artifacts is None:
                artifacts = self.ctx.repo.put_tree(self.name, backup_id, staging)
            m = Manifest(
                id=backup_id, datastore=self.name, engine=self.engine, kind=kind, series=self.series_of(kind),
                region=self.region, started_at=started, finished_at=utcnow(), parent=taken.parent,
                position=taken.position, artifacts=artifacts, counts=taken.counts, tools=taken.tools,
                native=taken.native, source=taken.source or self.endpoint().describe(), run=self.ctx.run,
                restore_hint=taken.restore_hint,
            )
            return self.ctx.repo.commit(m)  # the manifest is the last write
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    @abc.abstractmethod
    def _take(self, kind: str, backup_id: str, staging: Path) -> Taken:
        """Run the native backup of `kind`; files for the repository go into `staging`."""

    # -- verification -----------------------------------------------------------------------------
    def verify(self, manifests: list[Manifest]) -> list[Verification]:
        """The weekly verification: every check, also those that read the whole repository."""
        return self._verify(manifests, deep=True)

    def verify_new(self, manifests: list[Manifest]) -> list[Verification]:
        """Right after a backup (asset-triggered): engines skip repository-wide reads when not `deep`."""
        return self._verify(manifests, deep=False)

    def _verify(self, manifests: list[Manifest], deep: bool) -> list[Verification]:
        batch = self.verification_batch(manifests, deep)
        return [self.record_verification(m, [self.ctx.repo.check_artifacts(m), *self.checks(m, batch, deep)])
                for m in manifests]

    def verification_batch(self, manifests: list[Manifest], deep: bool) -> Any:
        """Facts read once for a batch of manifests (pgBackRest's repository listing, ...)."""
        return None

    @abc.abstractmethod
    def checks(self, m: Manifest, batch: Any, deep: bool) -> list[Check]:
        """The engine's checks of one backup (its native verifier, chain continuity ...)."""

    def record_verification(self, manifest: Manifest, checks: list[Check]) -> Verification:
        """Store the verdict of `checks` next to the backup (ok only if every check passed)."""
        v = Verification(backup_id=manifest.id, datastore=self.name, ok=all(c.ok for c in checks), checks=checks,
                         run=self.ctx.run)
        self.ctx.repo.save_verification(v)
        return v

    # -- restore test (template method) ----------------------------------------------------------------
    @abc.abstractmethod
    def scratch_target(self, manifest: Manifest, target: str, drill: DrillRecorder) -> ScratchTarget:
        """The scratch target for restoring `manifest` to `target`; no I/O yet. Refuses targets the
        engine cannot restore to (before anything is touched)."""

    @contextlib.contextmanager
    def restored(self, manifest: Manifest, target: str, drill: DrillRecorder) -> Iterator[ScratchTarget]:
        """Restore into a scratch target, verify it, measure; yields the verified target, then tears it down.

        THE RTO CLOCK: starts after the pre-checks, immediately before the first restore step; stops
        when the target is ready and verified. The drill records both step names."""
        scratch = self.scratch_target(manifest, target or "latest", drill)
        try:
            scratch.precheck(drill)
            drill.restore_started()  # -- clock starts: nothing restored yet, every pre-check passed
            scratch.restore(drill)
            scratch.verify(drill)
            drill.ready()  # -- clock stops: ready and verified
            with drill.step("newest heartbeat") as s:
                hb = scratch.newest_heartbeat()
                drill.heartbeat_found(hb)
                s.detail = scratch.heartbeat_detail(hb)
            scratch.after_ready(drill)
            yield scratch
        finally:
            with drill.step(scratch.teardown_step) as s:
                s.detail = scratch.teardown()

    def restore_test(self, manifest: Manifest, target: str, drill: DrillRecorder) -> None:
        with self.restored(manifest, target, drill):
            pass

    # -- heartbeat, monitoring, retention ----------------------------------------------------------
    @abc.abstractmethod
    def heartbeat(self) -> datetime: ...

    def exposure(self) -> dict[str, float | None]:
        """Seconds of data a failure right now would lose, per mechanism (archive lag, replica lag).
        Engines that can measure it override this; lifeboat.monitor compares it with the RPO."""
        return {}

    def retention_plan(self, now: datetime | None = None):
        """What retention may delete. Default: the inventory's keep rules over the catalog; an engine
        with native retention semantics (Elasticsearch's SLM-style rules) overrides it."""
        from lifeboat.catalog import Catalog

        return Catalog(self.ctx.repo).retention_plan(self.name, self.spec.retention, now)

    def delete_backup(self, manifest: Manifest) -> None:
        self.ctx.repo.delete_backup(self.name, manifest.id)

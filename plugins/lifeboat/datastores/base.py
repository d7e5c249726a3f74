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
- `recover(manifest, target, into=..., ...)`: the base runs the sequence of a RECOVERY (the
  recover DAG): a `RecoveryTarget` that is KEPT -- a new instance / port / database / index /
  namespace (`into="new"`, the default), or the live target after it was fenced (`into="live"`) --
  restored, verified, its heartbeat continuity checked; only a failed restore into a new target is
  cleaned up (`abandon`). The engine implements `recovery_target(...)`.
- `recovery_range()` -> what the catalog can restore this datastore to (continuous up to an instant,
  or discrete snapshots): the quarterly drill picks ONE consistent point from all of them.
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
from lifeboat.datastores.recovery import Recovered, RecoveryRange, RecoveryTarget
from lifeboat.drills import DrillRecorder
from lifeboat.errors import InventoryError, Refused
from lifeboat.inventory import DatastoreSpec, Inventory
from lifeboat.net import free_port
from lifeboat.records import Artifact, Check, Manifest, Verification, utcnow
from lifeboat.repository import Repository
from lifeboat.runners import LocalRunner, Runner

log = logging.getLogger(__name__)

__all__ = [
    "Datastore",
    "EngineContext",
    "EngineOptions",
    "MonitorFinding",
    "Recovered",
    "RecoveryRange",
    "RecoveryTarget",
    "ScratchTarget",
    "Taken",
]


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


@dataclass(frozen=True)
class MonitorFinding:
    """One result of an engine's own monitor check (lifeboat.monitor turns it into a Finding)."""

    check: str
    severity: str  # critical / high / medium / low / ok
    value: str
    threshold: str
    message: str


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

    def connection(self) -> dict[str, Any] | None:
        """How a client reaches the restored data while the target is up -- `uri` (may carry a password:
        in memory only, never logged or recorded) and engine facts (database / index names). The drill
        environment starts the platform API stand-in against it and runs its business checks on it."""
        return None

    def locator(self) -> dict[str, Any]:
        """Where the target is (JSON-safe, no secret): for records and leftover searches."""
        return {}


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

    def check_scratch_root(self, root: Path, what: str = "scratch folder") -> None:
        """Refuse a scratch target's folder outside <workdir>/scratch or one that already exists."""
        scratch = (self.ctx.workdir / "scratch").resolve()
        if scratch not in root.resolve().parents:
            raise Refused(f"{what} {root} is not under {scratch}")
        if root.exists():
            raise Refused(f"scratch folder {root} already exists; not overwriting it")

    # -- backup (template method) -------------------------------------------------------------------
    def backup(self, kind: str, backup_id: str) -> Manifest:
        self.check_kind(kind)
        done = self.ctx.repo.manifest(self.name, backup_id)
        if done is not None:
            log.info("backup %s is already complete (retried task): nothing to do", backup_id)
            self.ctx.repo.index_manifest(done)  # the attempt may have died between manifest and index entry
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

    # -- recovery (template method) -----------------------------------------------------------------
    def recovery_target(self, manifest: Manifest, target: str, *, into: str, tag: str) -> RecoveryTarget:
        """The engine's RecoveryTarget for restoring `manifest` to `target` (a time, or 'latest') `into`
        "new" or "live"; no I/O yet. `tag` names what it creates. Engines without one refuse."""
        raise Refused(f"{self.name} ({self.engine}): recovery into a {into} target is not automated; restore with "
                      f"the standard tools (docs/datastores/{self.engine}.md) and repoint the services by hand")

    def recover(self, manifest: Manifest, target: str, *, into: str, tag: str, steps: Any, window: float,
                max_gap: float) -> Recovered:
        """Restore into a recovery target and validate it; the target is kept. A failed restore into a
        NEW target removes what it created (`abandon`); a live target is never removed."""
        if into not in ("new", "live"):
            raise Refused(f"into: {into!r} -- a recovery goes into a 'new' target or the fenced 'live' one")
        rt = self.recovery_target(manifest, target or "latest", into=into, tag=tag)
        try:
            rt.precheck(steps)
            rt.restore(steps)
            rt.verify(steps)
            with steps.step(f"heartbeat continuity {self.name}") as s:
                newest, s.detail = rt.continuity(window, max_gap)
        except BaseException:
            if into == "new":
                with steps.step(f"abandon the new {self.name} target") as s:
                    s.detail = rt.abandon()
            raise
        return Recovered(datastore=self.name, into=into, backup_id=manifest.id, locator=rt.locator(),
                         newest_heartbeat=newest, continuity=s.detail)

    def repoint_uri(self, uri: str, locator: dict[str, Any]) -> str:
        """A client URI of the live target (a service's own, with its credentials) turned to the
        recovered target: host and port replaced by the locator's (engines change more where needed)."""
        from urllib.parse import urlsplit, urlunsplit

        p = urlsplit(uri)
        if not locator.get("port"):
            return uri
        auth = p.netloc.rpartition("@")[0]
        netloc = (auth + "@" if auth else "") + f"{locator.get('host', '127.0.0.1')}:{locator['port']}"
        return urlunsplit((p.scheme, netloc, p.path, p.query, p.fragment))

    def ping(self) -> str:
        """A cheap check that the live datastore answers (engines override with a real request)."""
        import socket

        ep = self.endpoint()
        with socket.create_connection((ep.host, ep.port or 0), timeout=5):
            return f"{ep.host}:{ep.port} accepts connections"

    def probe_recovered(self, locator: dict[str, Any]) -> str:
        """That a recovered target still answers (a re-run finds its restore done): a TCP connect where
        the locator has a port; engines without one (databases, indices on the live server) trust it."""
        import socket

        if not locator.get("port"):
            return "recorded (no port to probe)"
        with socket.create_connection((locator.get("host", "127.0.0.1"), int(locator["port"])), timeout=5):
            return f"{locator.get('host', '127.0.0.1')}:{locator['port']} answers"

    def backup_time(self, m: Manifest) -> datetime:
        """The instant a backup's data is from (engines know better than the manifest's end time)."""
        return m.finished_at

    def recovery_range(self) -> RecoveryRange:
        """Default: discrete, one instant per complete backup of the restore series (`backup_time`)."""
        from lifeboat.catalog import Catalog

        snaps = sorted((self.backup_time(m), m.id) for m in Catalog(self.ctx.repo).backups(self.name,
                                                                                             self.restore_series))
        return RecoveryRange(self.name, continuous=False, until=snaps[-1][0] if snaps else None, snapshots=snaps,
                             detail=f"{len(snaps)} {self.restore_series} backups")

    def target_time(self, target: str) -> datetime | None:
        """The instant a recovery target names: None for 'latest', else an ISO-8601 time with zone
        (engines with their own positions -- MongoDB's oplog timestamps -- accept those too)."""
        if target in ("latest", "", None):
            return None
        try:
            t = datetime.fromisoformat(str(target).replace("Z", "+00:00"))
        except ValueError:
            raise Refused(f"{self.name}: recovery target {target!r} is neither 'latest' nor an ISO-8601 time") from None
        if t.tzinfo is None:
            raise Refused(f"{self.name}: recovery target {target!r} has no time zone; write e.g. {target}+00:00")
        return t

    def recovery_backup(self, target: str) -> Manifest:
        """The backup a recovery to `target` ('latest' or a time) starts from: the newest verified backup
        of the restore series from at or before it, else the newest such backup."""
        from lifeboat.catalog import Catalog
        from lifeboat.errors import BackupNotFound

        target_time = self.target_time(target)
        cat = Catalog(self.ctx.repo)
        backups = [m for m in cat.backups(self.name, self.restore_series)
                   if target_time is None or self.backup_time(m) <= target_time]
        if not backups:
            when = f" from before {target_time.isoformat()}" if target_time else ""
            raise BackupNotFound(f"{self.name}: no {self.restore_series} backup{when} in the catalog at "
                                 f"{self.ctx.repo.url}")
        vmap = cat.verification_map(self.name)
        verified = [m for m in backups if vmap.get(m.id) is not None and vmap[m.id].ok]
        return (verified or backups)[-1]

    # -- heartbeat, monitoring, retention ----------------------------------------------------------
    @abc.abstractmethod
    def heartbeat(self) -> datetime: ...

    def exposure(self) -> dict[str, float | None]:
        """Seconds of data a failure right now would lose, per mechanism (archive lag, replica lag).
        Engines that can measure it override this; lifeboat.monitor compares it with the RPO."""
        return {}

    def monitor_findings(self) -> list[MonitorFinding]:
        """The engine's own live checks for lifeboat_monitor (configuration drift, an origin group that
        no longer fails over, images the standby lacks). Default: none. A finding with severity "ok"
        reports a passing check (so an incident it opened resolves)."""
        return []

    def retention_plan(self, now: datetime | None = None):
        """What retention may delete. Default: the inventory's keep rules over the catalog; an engine
        with native retention semantics (Elasticsearch's SLM-style rules) overrides it."""
        from lifeboat.catalog import Catalog

        return Catalog(self.ctx.repo).retention_plan(self.name, self.spec.retention, now)

    def delete_backup(self, manifest: Manifest) -> None:
        self.ctx.repo.delete_backup(self.name, manifest.id)

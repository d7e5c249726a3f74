"""The one interface every datastore implements.

DAG families iterate over the inventory and call these verbs; nothing datastore-specific leaks into
DAG files or operators:

- `backup(kind, backup_id)`     -> Manifest (committed to the repository, manifest last)
- `verify(manifests)`           -> one Verification per manifest (native verifier + checksums + chain)
- `restore_test(manifest, target, drill)` restores into a *scratch* target, checks the data against the
  manifest, measures RTO/RPO through the DrillRecorder, and tears the scratch target down
- `heartbeat()`                 -> writes the heartbeat used to measure RPO, returns its timestamp
- `delete_backup(manifest)`     -> removes one backup (retention; the caller decides what may go)
"""

from __future__ import annotations

import abc
import socket
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import ClassVar

from pydantic import BaseModel, ConfigDict

from lifeboat.connections import Endpoint, resolve
from lifeboat.drills import DrillRecorder
from lifeboat.inventory import DatastoreSpec, Inventory
from lifeboat.records import Manifest, Verification
from lifeboat.repository import Repository
from lifeboat.runners import LocalRunner, Runner


class EngineOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


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


class Datastore(abc.ABC):
    engine: ClassVar[str]
    Options: ClassVar[type[EngineOptions]]
    kinds: ClassVar[tuple[str, ...]]
    restore_series: ClassVar[str]  # the series a restore test starts from (e.g. "physical", "rdb")
    # kind -> the kind whose backup it continues (MongoDB: an oplog slice continues from a full). When
    # both fall due in one run, only the base runs: it covers the other, and they never race.
    continues: ClassVar[dict[str, str]] = {}

    def __init__(self, ctx: EngineContext):
        self.ctx = ctx
        self.spec = ctx.spec
        self.name = ctx.spec.name
        self.options = self.Options.model_validate(ctx.spec.options)
        self.region = ctx.region or ctx.inventory.regions.primary

    # -- helpers ---------------------------------------------------------------------------------
    def endpoint(self, region: str | None = None) -> Endpoint:
        return resolve(self.spec.connection_for(region or self.region))

    @staticmethod
    def backup_id(datastore: str, kind: str, when: datetime) -> str:
        """Deterministic: a retried task computes the same id and finds its own finished work."""
        return f"{datastore}-{kind}-{when.strftime('%Y%m%dT%H%M%SZ')}"

    @staticmethod
    def free_port() -> int:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            return s.getsockname()[1]

    @classmethod
    def series_of(cls, kind: str) -> str:
        """Backups of one series chain to each other (full <- diff <- incr); retention and the
        scheduler treat series separately."""
        return kind

    def check_kind(self, kind: str) -> None:
        from lifeboat.errors import InventoryError

        if kind not in self.kinds:
            raise InventoryError(
                f"datastores.{self.name}.backups.{kind}: {self.engine} has no backup kind {kind!r} "
                f"(supported: {', '.join(self.kinds)})"
            )

    # -- the verbs -------------------------------------------------------------------------------
    @abc.abstractmethod
    def backup(self, kind: str, backup_id: str) -> Manifest: ...

    @abc.abstractmethod
    def verify(self, manifests: list[Manifest]) -> list[Verification]: ...

    def record_verification(self, manifest: Manifest, checks: list) -> Verification:
        """Store the verdict of `checks` next to the backup (ok only if every check passed)."""
        v = Verification(backup_id=manifest.id, datastore=self.name, ok=all(c.ok for c in checks), checks=checks,
                         run=self.ctx.run)
        self.ctx.repo.save_verification(v)
        return v

    def verify_new(self, manifests: list[Manifest]) -> list[Verification]:
        """Verification right after a backup (asset-triggered, hourly): engines whose full verifier
        reads the whole repository override this with the checks that concern these backups only.
        The weekly run calls `verify`."""
        return self.verify(manifests)

    @abc.abstractmethod
    def restore_test(self, manifest: Manifest, target: str, drill: DrillRecorder) -> None: ...

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

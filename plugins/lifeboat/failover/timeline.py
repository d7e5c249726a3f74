"""The timeline of one failover or failback, persisted step by step (resumable, honest).

Stored as `failovers/<id>.json` in the repository of the region taking over (the other one may be
gone), rewritten after every step; the id comes from the DAG run, so a cleared and re-run run
continues the same timeline: its trigger time (the RTO clock) and the heartbeats measured right
after each promotion survive the interruption. At the end it becomes a drill record (type
`failover` / `failback`), stored with the other drills and copied to the other region.
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Iterator
from datetime import datetime
from functools import cached_property
from typing import Any, Generic, Literal, TypeVar

from pydantic import Field

from lifeboat.errors import Refused
from lifeboat.failover.facts import PromotionHeartbeats
from lifeboat.layout import Layout
from lifeboat.records import DrillStep, _Record, utcnow

log = logging.getLogger(__name__)


def timeline_id(kind: str, run: dict) -> str:
    """`<kind>-<run id>` (a kind's `_` as `-`), safe as a file name; the same for a cleared and re-run run."""
    return f"{kind.replace('_', '-')}-" + re.sub(r"[^A-Za-z0-9_.-]+", "_", run.get("run_id") or "manual")[:120]


class OperationTimeline(_Record):
    """What every operation's timeline records (a failover's or failback's, a recovery's): the run, the
    scope, the trigger (the RTO clock), the steps, the outcome. Subclasses fix `format` and `kind`."""

    format: str
    id: str
    kind: str
    dag_id: str = ""
    run_id: str = ""
    datastores: list[str] = Field(default_factory=list)
    services: list[str] = Field(default_factory=list)
    reason: str = ""
    triggered_at: datetime
    attempts: int = 1
    steps: list[DrillStep] = Field(default_factory=list)
    verified_at: datetime | None = None
    outcome: str = "running"
    drill_id: str | None = None


class Timeline(OperationTimeline):
    format: Literal["lifeboat.failover/v1"] = "lifeboat.failover/v1"
    kind: Literal["failover", "failback"]
    target_region: str
    source_region: str
    switch_back: bool = False
    # datastore -> newest heartbeats measured at promotion
    heartbeats: dict[str, PromotionHeartbeats] = Field(default_factory=dict)

    @property
    def key(self) -> str:
        return Layout.timeline(self.id)


class TimelineStore:
    """Read and write timelines in a Repository (target region first, copy to the other region).
    `model` and `key_of` name the record; lifeboat.recovery.timeline reuses this store for recoveries."""

    model: type = Timeline
    key_of = staticmethod(Layout.timeline)

    def __init__(self, repo):
        self.repo = repo

    def load(self, tid: str) -> Any:
        return self.repo.find_record(self.key_of(tid), self.model)

    def save(self, tl: Any) -> None:
        self.repo.put_record(tl.key, tl.to_json())

    @contextlib.contextmanager
    def step(self, tl: Any, name: str) -> Iterator[DrillStep]:
        """Record a step (saved whether it succeeds or fails); a no-op recorder for dry runs."""
        s = DrillStep(name=name, started_at=utcnow())
        try:
            yield s
        except BaseException as exc:
            s.finished_at, s.ok = utcnow(), False
            s.detail = (s.detail + " " if s.detail else "") + f"{type(exc).__name__}: {exc}"[:2000]
            if tl is not None:
                tl.steps.append(s)
                self.save(tl)
            raise
        s.finished_at, s.ok = utcnow(), True
        log.info("%s: %s (%.1fs)", name, s.detail, s.seconds or 0.0)
        if tl is not None:
            tl.steps.append(s)
            self.save(tl)


StoreT = TypeVar("StoreT", bound=TimelineStore)
TimelineT = TypeVar("TimelineT", bound=OperationTimeline)


class TimelineOwner(Generic[StoreT, TimelineT]):
    """The timeline store and the persisted timeline of an operation (a failover's, a recovery's): the
    operation names `store_class` and the region whose repository keeps the timeline (`store_region`)."""

    store_class: type[StoreT]
    kind: str
    inv: Any
    run: dict
    dry_run: bool

    @property
    def store_region(self) -> str:
        raise NotImplementedError

    @cached_property
    def store(self) -> StoreT:
        from lifeboat.repository import Repository

        return self.store_class(Repository.from_inventory(self.inv, self.store_region))

    @property
    def timeline_id(self) -> str:
        return timeline_id(self.kind, self.run)

    def timeline(self) -> TimelineT | None:
        """The persisted timeline (None in dry runs), created by the guard."""
        if self.dry_run:
            return None
        tl = self.store.load(self.timeline_id)
        if tl is None:
            raise Refused(f"no timeline {self.timeline_id} in {self.store.repo.url}: the guard task creates it -- "
                          "clear the whole run instead of single tasks")
        return tl


def require_confirm(params: dict, expected: str, *, kind: str, what: str, nothing: str) -> None:
    """A real (dry_run=false) operation needs `expected` (the region it acts in) typed into `confirm`;
    raises Refused naming the parameter and what was typed."""
    confirm = str(params.get("confirm") or "").strip()
    if confirm != expected:
        got = "is missing" if not confirm else f"is {confirm!r}"
        raise Refused(f"confirm: a real {kind} (dry_run=false) needs the {what} typed exactly: "
                      f"{expected!r}; the confirmation {got}. {nothing}")

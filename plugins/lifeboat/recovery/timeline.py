"""The timeline of one recovery, persisted step by step (resumable, honest).

`recoveries/<id>.json` in the acting region's repository, rewritten after every step; the id comes
from the DAG run, so a cleared and re-run run continues it: the trigger time (the RTO clock) and the
recovered targets (where they are) survive the interruption, and a finished restore is found instead
of repeated. At the end it becomes a drill record (type `recovery` / `service_recovery`).
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any, Literal

from pydantic import Field

from lifeboat.failover.timeline import OperationTimeline
from lifeboat.failover.timeline import TimelineStore as FailoverTimelineStore
from lifeboat.failover.timeline import timeline_id as timeline_id  # the same ids for recoveries (recovery.operation)
from lifeboat.layout import Layout
from lifeboat.records import utcnow

log = logging.getLogger(__name__)


class RecoveryTimeline(OperationTimeline):
    format: Literal["lifeboat.recovery/v1"] = "lifeboat.recovery/v1"
    kind: Literal["recover", "recover_service"]
    region: str
    requested: list[str] = Field(default_factory=list)
    order: list[str] = Field(default_factory=list)  # "datastore:<name>" / "service:<name>", restore order
    into: str = "new"
    target: str = "latest"
    failed_at: datetime | None = None
    recovered: dict[str, dict[str, Any]] = Field(default_factory=dict)  # datastore -> Recovered.dump()
    repointed: dict[str, dict[str, Any]] = Field(default_factory=dict)  # service -> what changed (no values)

    @property
    def key(self) -> str:
        return Layout.recovery(self.id)


class TimelineStore(FailoverTimelineStore):
    """The failover timeline store (one step recorder, saved whether a step succeeds or fails;
    nothing saved for a dry run), for `recoveries/<id>.json`."""

    model = RecoveryTimeline
    key_of = staticmethod(Layout.recovery)


class Steps:
    """`step(name)` recording into one timeline: what engines' recovery targets write their steps to."""

    def __init__(self, store: TimelineStore, tl: RecoveryTimeline | None):
        self.store, self.tl = store, tl

    def step(self, name: str):
        return self.store.step(self.tl, name)


def started(tl: RecoveryTimeline) -> datetime:
    return tl.triggered_at or utcnow()

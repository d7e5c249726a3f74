"""Drill records: steps with timestamps, measured RTO/RPO, verdict against the objectives.

RTO = restore start -> target ready AND verified (the clock stops only when checks passed).
      For restore tests the clock starts at one place for every engine: after the backup was
      chosen and the pre-checks passed, immediately before the first step that restores data
      (lifeboat.datastores.base.Datastore.restored); the drill records the first step inside the
      clock and the step after which it stopped.
RPO = drill start -> newest heartbeat found in the restored data: how much of the recent past a real
      recovery at this moment would have lost. Both are wall-clock measurements, never estimates.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from lifeboat.durations import format_duration
from lifeboat.inventory import Objectives
from lifeboat.records import Drill, DrillStep, utcnow

log = logging.getLogger(__name__)

NEAR_OBJECTIVE = 0.8  # a measurement above this share of its objective is "near": a pass, but close


def drill_id(datastore: str, type_: str, started_at: datetime) -> str:
    stamp = f"{started_at:%Y%m%dT%H%M%S}{started_at.microsecond // 1000:03d}Z"  # ms: two drills a second stay apart
    return f"{datastore}-{type_.replace('_', '-')}-{stamp}"


def grade(measured: float | None, objective: float | None) -> str:
    """ok / near / miss against the objective; none when not measured."""
    if measured is None or objective is None:
        return "none"
    if measured > objective:
        return "miss"
    if measured > NEAR_OBJECTIVE * objective:
        return "near"
    return "ok"


def iso(dt: datetime | None) -> str | None:
    return dt.isoformat().replace("+00:00", "Z") if dt else None


def drill_summary(d: Drill, now: datetime | None = None) -> dict[str, Any]:
    """The one summary of a drill: the restore-test task's XCom, the CLI's output and the DR page's rows.
    The id is under both names its readers use: `id` (the DR page's JSON) and `drill_id` (task XComs)."""
    end = d.finished_at or (now or utcnow())
    return {
        "id": d.id, "drill_id": d.id, "type": d.type, "datastore": d.datastore, "scope": d.scope,
        "backup_id": d.backup_id, "target": d.target, "started_at": iso(d.started_at),
        "finished_at": iso(d.finished_at), "duration_seconds": (end - d.started_at).total_seconds(),
        "rto_seconds": d.rto_seconds, "rpo_seconds": d.rpo_seconds,
        "objective_rto_seconds": d.objective_rto_seconds, "objective_rpo_seconds": d.objective_rpo_seconds,
        "rto": format_duration(d.rto_seconds), "rpo": format_duration(d.rpo_seconds),
        "rto_grade": grade(d.rto_seconds, d.objective_rto_seconds),
        "rpo_grade": grade(d.rpo_seconds, d.objective_rpo_seconds),
        "rto_clock": {"started_at_step": d.rto_started_at_step, "stopped_after_step": d.rto_stopped_after_step},
        "verdict": d.verdict, "reasons": d.reasons, "run": d.run, "steps": len(d.steps),
    }


class DrillRecorder:
    def __init__(self, *, datastore: str, type_: str, objectives: Objectives, repo=None, run: dict | None = None,
                 scope: list[str] | None = None, target: str = "latest", started_at: datetime | None = None):
        started = started_at or utcnow()
        self.repo = repo
        self._clock_step: int | None = None
        self.drill = Drill(
            id=drill_id(datastore, type_, started),
            type=type_,
            datastore=datastore,
            scope=scope or [datastore],
            target=target,
            started_at=started,
            objective_rto_seconds=objectives.rto.total_seconds(),
            objective_rpo_seconds=objectives.rpo.total_seconds(),
            run=run or {},
        )

    @contextlib.contextmanager
    def step(self, name: str) -> Iterator[DrillStep]:
        s = DrillStep(name=name, started_at=utcnow())
        self.drill.steps.append(s)
        log.info("drill %s: step %s ...", self.drill.id, name)
        try:
            yield s
        except BaseException as exc:
            s.finished_at, s.ok = utcnow(), False
            s.detail = (s.detail + " " if s.detail else "") + f"{type(exc).__name__}: {exc}"[:2000]
            log.error("drill %s: step %s FAILED after %.1fs", self.drill.id, name, s.seconds)
            raise
        s.finished_at, s.ok = utcnow(), True
        log.info("drill %s: step %s ok (%.1fs) %s", self.drill.id, name, s.seconds, s.detail)

    def restore_started(self) -> None:
        """Start the RTO clock; the next step recorded is the first one inside it."""
        self.drill.restore_started_at = utcnow()
        self._clock_step = len(self.drill.steps)

    def ready(self) -> None:
        """Stop the RTO clock: the target is ready and its data verified."""
        self.drill.ready_at = utcnow()
        if self.drill.steps:
            self.drill.rto_stopped_after_step = self.drill.steps[-1].name

    def heartbeat_found(self, at: datetime | None) -> None:
        self.drill.newest_heartbeat_at = at

    def finish(self, error: BaseException | None = None, *, loss_reference: datetime | None = None,
               rpo_applies: bool = True) -> Drill:
        """Close the drill: RTO and RPO from its timestamps, the verdict against the objectives, saved.
        `loss_reference`: the instant data loss is measured from (a recovery's failure time; default the
        drill's start). `rpo_applies=False`: nothing stateful was restored (a service restart), so no
        heartbeat is expected and its absence is no reason to fail."""
        d = self.drill
        d.finished_at = utcnow()
        if self._clock_step is not None and self._clock_step < len(d.steps):
            d.rto_started_at_step = d.steps[self._clock_step].name
        reasons = []
        if d.restore_started_at and d.ready_at:
            d.rto_seconds = (d.ready_at - d.restore_started_at).total_seconds()
        if d.newest_heartbeat_at:
            d.rpo_seconds = max(0.0, ((loss_reference or d.started_at) - d.newest_heartbeat_at).total_seconds())
        if error is not None:
            reasons.append(f"drill failed: {type(error).__name__}: {str(error)[:500]}")
        if d.rto_seconds is None:
            reasons.append("RTO not measured (target never became ready and verified)")
        elif d.rto_seconds > d.objective_rto_seconds:
            reasons.append(f"RTO {format_duration(d.rto_seconds)} exceeds objective "
                           f"{format_duration(d.objective_rto_seconds)}")
        if d.rpo_seconds is None:
            if rpo_applies:
                reasons.append("RPO not measured (no heartbeat found in the restored data)")
        elif d.rpo_seconds > d.objective_rpo_seconds:
            reasons.append(f"RPO {format_duration(d.rpo_seconds)} exceeds objective "
                           f"{format_duration(d.objective_rpo_seconds)}")
        d.reasons = reasons
        d.verdict = "fail" if reasons else "pass"
        if self.repo is not None:
            self.repo.save_drill(d)
        log.info(
            "drill %s: %s  RTO=%s (objective %s, clock %s .. %s)  RPO=%s (objective %s)%s",
            d.id, d.verdict.upper(), format_duration(d.rto_seconds), format_duration(d.objective_rto_seconds),
            d.rto_started_at_step or "-", d.rto_stopped_after_step or "-",
            format_duration(d.rpo_seconds), format_duration(d.objective_rpo_seconds),
            "".join(f"\n  - {r}" for r in reasons),
        )
        return d

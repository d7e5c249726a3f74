"""Drill verdicts come from measured timestamps; a missing measurement is a failure, not a pass."""

from datetime import timedelta

import pytest

from lifeboat.drills import DrillRecorder
from lifeboat.inventory import Objectives
from lifeboat.records import utcnow

OBJ = Objectives(rto="4h", rpo="1h")


def test_drill_pass_when_measured_within_objectives():
    r = DrillRecorder(datastore="pg", type_="restore_test", objectives=OBJ)
    r.restore_started()
    with r.step("restore"):
        pass
    r.ready()
    r.heartbeat_found(r.drill.started_at - timedelta(seconds=42))
    d = r.finish()
    assert d.verdict == "pass", d.reasons
    assert d.rpo_seconds == pytest.approx(42)
    assert 0 <= d.rto_seconds < 5
    assert d.steps[0].ok is True


def test_drill_fails_without_heartbeat_or_readiness():
    r = DrillRecorder(datastore="pg", type_="restore_test", objectives=OBJ)
    d = r.finish()
    assert d.verdict == "fail"
    assert any("RTO not measured" in x for x in d.reasons) and any("RPO not measured" in x for x in d.reasons)


def test_drill_fails_when_rpo_exceeds_objective():
    r = DrillRecorder(datastore="pg", type_="restore_test", objectives=OBJ)
    r.restore_started()
    r.ready()
    r.heartbeat_found(utcnow() - timedelta(hours=2))
    d = r.finish()
    assert d.verdict == "fail" and "exceeds objective" in d.reasons[0]


def test_drill_step_failure_is_recorded_with_error():
    r = DrillRecorder(datastore="pg", type_="restore_test", objectives=OBJ)
    with pytest.raises(RuntimeError), r.step("boom"):
        raise RuntimeError("disk full")
    assert r.drill.steps[0].ok is False and "disk full" in r.drill.steps[0].detail

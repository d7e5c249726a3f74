"""Failure-simulation logic that needs no servers: the score, the guard, the inventory's chaos section,
and the Experiment flow's measurements driven by a FAKE fault and FAKE probes (named so: the real faults
run against the local stack in tests/integration/test_chaos.py)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from lifeboat.chaos.records import ChaosRecord, ProbeStats, quarter, resilience_score

ROOT = Path(__file__).resolve().parents[2]
TEXT = (ROOT / "include" / "inventory.yaml").read_text()
PRODUCTION = """
    production:
      kubernetes: lifeboat_k8s_us_west_2
      api: https://api.us-west-2.community.example.com
      datastores:
        postgres: {connection: lifeboat_pg_us_west_2}
        redis: {connection: lifeboat_redis_us_west_2}
        mongodb: {connection: lifeboat_mongo_us_west_2}
  experiments:"""


def inv_with(text: str = TEXT):
    from lifeboat.inventory import parse_inventory

    return parse_inventory(text, source="include/inventory.yaml")


def test_chaos_resilience_score_is_the_weighted_probe_success():
    probes = [ProbeStats(name="a", kind="http", weight=1, polls=10, passes=10),
              ProbeStats(name="b", kind="http", weight=3, polls=10, passes=5)]
    assert resilience_score(probes) == round(100 * (1 * 1.0 + 3 * 0.5) / 4, 1) == 62.5
    assert resilience_score([]) is None
    assert quarter(datetime(2026, 11, 3, tzinfo=UTC)) == "2026-Q4"


def test_chaos_guard_defaults_to_the_drill_environment_and_guards_production():
    from lifeboat.chaos.jobs import guard
    from lifeboat.errors import Refused

    inv = inv_with(TEXT.replace("\n  experiments:", PRODUCTION, 1))
    g = guard({}, "service", inv)
    assert (g["environment"], g["production"], g["experiments"]) == (
        "drill", False, ["api-gateway-pod-delete", "api-gateway-scale-zero"])
    with pytest.raises(Refused, match=r"confirm: .*'production'.* is missing. Nothing was injected"):
        guard({"environment": "production", "reason": "game day"}, "service", inv)
    with pytest.raises(Refused, match=r"confirm: .* is 'prod'"):
        guard({"environment": "production", "confirm": "prod", "reason": "game day"}, "service", inv)
    with pytest.raises(Refused, match="reason: required"):
        guard({"environment": "production", "confirm": "production"}, "service", inv)
    assert guard({"environment": "production", "confirm": "production", "reason": "game day"}, "service",
                 inv)["production"]
    with pytest.raises(Refused, match=r"environment 'staging': not under chaos.environments"):
        guard({"environment": "staging"}, "service", inv)
    with pytest.raises(Refused, match=r"experiments: unknown 'postgres-kill' .*this DAG runs: api-gateway"):
        guard({"experiments": ["postgres-kill"]}, "service", inv)


@pytest.mark.parametrize(("old", "new", "message"), [
    ("  environment: drill\n", "  environment: production\n", "chaos.environment: 'production' is not under"),
    ("target: {datastore: redis, toxic: timeout}", "target: {datastore: redis, toxic: flood}",
     "chaos.experiments.4.target.toxic: 'flood' is not one of latency, timeout, down"),
    ("target: {datastore: mongodb}", "target: {datastore: cassandra}",
     "chaos.experiments.7.target.datastore: 'cassandra' is not under chaos.environments.drill.datastores"),
    ("kind: scale_zero, family: service, target: {deployment: api-gateway}", "kind: scale_zero, family: service",
     "chaos.experiments.1.target.deployment: required for a scale_zero experiment"),
    ('database: "0 10 15 1,4,7,10 *"', 'database: "quarterly"', "chaos.schedules.database: not a valid cron"),
])
def test_chaos_inventory_errors_name_the_field(old, new, message):
    from lifeboat.errors import InventoryError

    assert old in TEXT
    with pytest.raises(InventoryError) as err:
        inv_with(TEXT.replace(old, new, 1))
    assert f"include/inventory.yaml: {message}" in str(err.value), str(err.value)


# -- the flow, with a FAKE fault --------------------------------------------------------------------------

class FakeProbe:
    """FAKE: fails while the FAKE fault is injected (and for `heal_after` seconds of recovery)."""

    kind = "fake"

    def __init__(self, name, fault, weight=1):
        self.name, self.fault, self.weight = name, fault, weight

    def check(self):
        return (not self.fault.broken()), ("broken" if self.fault.broken() else "ok")


class FakeFault:
    """FAKE fault: a flag, plus how long the 'platform' takes to heal after the revert."""

    kind = "fake"
    self_healing = False
    heal_after = 0.5
    injected_at = 0.0
    reverted_at: float | None = None
    reverts = 0

    def __init__(self, spec, env, inv, record_id):
        import time

        self.time = time
        self.info = {}

    def broken(self):
        if not self.injected_at:
            return False
        return self.reverted_at is None or self.time.monotonic() < self.reverted_at + self.heal_after

    def probes(self):
        return [FakeProbe("fake-probe", self, weight=3)]

    def revert_info(self):
        return {"fake": True}

    def inject(self):
        self.injected_at = self.time.monotonic()
        type(self).last = self
        return "FAKE fault injected"

    def recover(self):
        return self.revert(self.info)

    def revert(self, info):
        type(self).reverts += 1
        if self.reverted_at is None:
            self.reverted_at = self.time.monotonic()
        return "FAKE fault reverted"


class MemoryStore:
    def __init__(self):
        self.saved, self.markers, self.cleared = [], {}, []

    def save(self, rec):
        self.saved.append(rec)

    def mark_injected(self, m):
        self.markers[m.id] = m

    def clear_injected(self, mid):
        self.markers.pop(mid)
        self.cleared.append(mid)


def fake_run(monkeypatch, **changes):
    from lifeboat.chaos import experiment

    text = TEXT.replace("poll_seconds: 0.25", "poll_seconds: 0.05").replace(
        "api: ${LIFEBOAT_CHAOS_API_URL:-https://api.drill.community.example.com}", "api: ''")
    inv = inv_with(text)
    spec = inv.chaos.experiment("api-gateway-scale-zero").model_copy(update=changes)
    store = MemoryStore()
    FakeFault.reverts = 0
    exp = experiment.Experiment(inv, spec, "drill", record_id="fake-1", store=store, faults={"scale_zero": FakeFault})
    return exp.run(), store


def test_chaos_flow_measures_detection_and_recovery_and_reverts_once_more_in_finally(monkeypatch):
    rec, store = fake_run(monkeypatch, duration=timedelta(seconds=1))
    assert isinstance(rec, ChaosRecord) and rec.verdict == "pass", rec.reasons
    assert 0 <= rec.detect_seconds <= 0.2  # the first round after injection saw it (poll 0.05 s)
    assert 1.5 - 0.05 <= rec.recover_seconds <= 1.5 + 0.5  # 1 s fault + 0.5 s healing
    assert rec.steady_before and rec.steady_after and not rec.aborted
    assert FakeFault.reverts == 2  # the recovery step, then the finally (idempotent)
    assert store.markers == {} and store.cleared == ["fake-1"] and store.saved == [rec]
    (p,) = rec.probes
    assert p.weight == 3 and 0 < p.passes < p.polls and rec.score == round(100 * p.passes / p.polls, 1)
    assert [s["name"] for s in rec.steps] == ["steady before", "injected", "detected", "recovery step", "reverted",
                                              "steady after"]


def test_chaos_flow_aborts_when_a_probe_fails_longer_than_allowed(monkeypatch):
    import time

    t0 = time.monotonic()
    rec, store = fake_run(monkeypatch, duration=timedelta(seconds=30), abort_after=timedelta(seconds=1))
    assert time.monotonic() - t0 < 5  # not the 30 s of the fault
    assert rec.aborted and rec.verdict == "fail" and rec.reasons[0].startswith("aborted: probe fake-probe failing for")
    assert rec.abort_revert_seconds is not None and rec.abort_revert_seconds < 0.1
    failing = (rec.fault_ended_at - rec.probes[0].first_failure_at).total_seconds()
    assert 1.0 < failing < 1.3
    assert rec.steady_after and store.markers == {}


def test_chaos_flow_a_fault_no_probe_notices_fails_the_experiment(monkeypatch):
    monkeypatch.setattr(FakeFault, "broken", lambda self: False)
    rec, _ = fake_run(monkeypatch, duration=timedelta(seconds=0.3))
    assert rec.verdict == "fail" and "no probe noticed the fault" in " ".join(rec.reasons)


def test_chaos_summary_lists_experiments_with_scores_trends_and_quarters():
    from lifeboat.chaos.store import summary

    def r(name, at, score, verdict="pass"):
        return ChaosRecord(id=f"{name}-{at:%m%d}", experiment=name, kind="pod_delete", family="service",
                           environment="drill", started_at=at, score=score, verdict=verdict)

    recs = [r("a", datetime(2026, 9, 1, tzinfo=UTC), 80.0), r("a", datetime(2026, 10, 1, tzinfo=UTC), 90.0),
            r("a", datetime(2026, 11, 1, tzinfo=UTC), 70.0, "fail"), r("b", datetime(2026, 11, 2, tzinfo=UTC), 50.0)]
    out = summary(recs)
    a = next(e for e in out["experiments"] if e["experiment"] == "a")
    assert a["runs"] == 3 and a["last"]["score"] == 70.0 and a["last"]["verdict"] == "fail"
    assert [t["score"] for t in a["trend"]] == [80.0, 90.0, 70.0]
    assert a["quarters"] == {"2026-Q3": 80.0, "2026-Q4": 80.0}
    assert out["quarters"] == {"2026-Q3": 80.0, "2026-Q4": round((90 + 70 + 50) / 3, 1)}
    assert re.fullmatch(r"a-\d{4}", a["last"]["id"])

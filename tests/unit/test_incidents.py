"""Incidents with an injected clock: de-duplication, the plan's delivery windows, escalation levels,
acknowledgement and resolution notices. The store is a real file:// catalog in both regions; the
sender records what the channels would be handed (the real channels: tests/integration/test_alerting.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from lifeboat.errors import InventoryError, Refused
from lifeboat.incidents import engine
from lifeboat.incidents.manager import IncidentManager, acknowledge
from lifeboat.incidents.store import IncidentStore
from lifeboat.inventory import parse_inventory
from lifeboat.repository import Repository

TEXT = (Path(__file__).resolve().parents[2] / "include" / "inventory.yaml").read_text()
T0 = datetime(2026, 12, 1, 10, 0, 7, tzinfo=UTC)
CRIT = {"datastore": "postgres", "check": "WAL archive lag", "severity": "critical", "value": "2.0h",
        "threshold": "15.0m", "message": "postgres: WAL archive lag 2.0h (RPO 15.0m)"}


def finding(severity="critical", datastore="postgres", check="WAL archive lag"):
    return {**CRIT, "severity": severity, "datastore": datastore, "check": check}


class Clock:
    def __init__(self, t: datetime):
        self.t = t

    def __call__(self) -> datetime:
        return self.t

    def advance(self, **kw) -> None:
        self.t += timedelta(**kw)


@pytest.fixture
def inv(tmp_path):
    for region in ("w2", "e1"):  # both regions' copies exist (the other region's is never created)
        (tmp_path / region).mkdir()
    text = TEXT.replace("${LIFEBOAT_REPO_PRIMARY:-s3://community-platform-dr-us-west-2/lifeboat}",
                        f"file://{tmp_path}/w2").replace(
        "${LIFEBOAT_REPO_STANDBY:-s3://community-platform-dr-us-east-1/lifeboat}", f"file://{tmp_path}/e1")
    return parse_inventory(text, "inventory.yaml")


@pytest.fixture
def rig(inv):
    clock = Clock(T0)
    sent: list[engine.Delivery] = []
    failing: set[str] = set()

    def send(d):
        if d.channel in failing:
            return "ConnectionRefusedError: receiver down"
        sent.append(d)
        return None

    repo = Repository.from_inventory(inv)
    mgr = IncidentManager(inv, repo, clock=clock, send=send)
    return mgr, clock, sent, failing, repo


def channels(sent, kind=None):
    return sorted((d.channel, d.kind, d.level, tuple(d.to)) for d in sent if kind in (None, d.kind))


def test_incident_critical_pages_once_however_often_the_finding_repeats(rig):
    mgr, clock, sent, _, _ = rig
    for _ in range(3):
        out = mgr.run([finding()])
        clock.advance(minutes=5)
    assert channels(sent) == [("pagerduty", "open", 1, ()), ("sms", "open", 1, ())]
    assert len(out["open"]) == 1 and out["deliveries"] == 0
    assert sent[0].dedup_key == out["open"][0] and sent[0].pagerduty_action == "trigger"


def test_incident_escalates_level_by_level_until_acknowledged_then_stops(rig, inv):
    mgr, clock, sent, _, repo = rig
    mgr.run([finding()])
    clock.advance(minutes=14, seconds=59)
    mgr.run([finding()])
    assert not channels(sent, "escalation"), "level 2 is due at 15m, not before"
    clock.advance(seconds=2)
    mgr.run([finding()])
    assert channels(sent, "escalation") == [
        ("email", "escalation", 2, ("dba@community.example.com", "sysadmin@community.example.com")),
        ("slack", "escalation", 2, ())]
    inc_id = IncidentStore(repo).active()[0].id
    acknowledge(inv, repo, inc_id, "kim", note="looking", via="test", at=clock.t)
    clock.advance(minutes=40)  # level 3 (30m) and 4 (1h) would be due now
    mgr.run([finding()])
    assert [d.level for d in sent if d.kind == "escalation"] == [2, 2], "acknowledged: no level 3 or 4"
    assert channels(sent, "acknowledged") == [("pagerduty", "acknowledged", 0, ())]
    assert sent[-1].pagerduty_action == "acknowledge"
    inc = IncidentStore(repo).active()[0]
    assert (inc.status, inc.level, inc.acknowledged_by) == ("acknowledged", 2, "kim")


def test_incident_unacknowledged_reaches_every_level_with_its_contacts(rig):
    mgr, clock, sent, _, _ = rig
    mgr.run([finding()])
    clock.advance(hours=1, minutes=1)
    mgr.run([finding()])  # one late run reaches levels 2, 3 and 4 at once
    esc = [(d.level, d.channel, tuple(d.to)) for d in sent if d.kind == "escalation"]
    assert (4, "email", ("cto@community.example.com", "dr-manager@community.example.com")) in esc
    assert (3, "email", ("dr-manager@community.example.com",)) in esc
    assert sorted({lv for lv, _, _ in esc}) == [2, 3, 4]


def test_incident_resolution_reaches_everyone_who_was_told_and_settles(rig, inv):
    mgr, clock, sent, _, repo = rig
    mgr.run([finding()])
    clock.advance(minutes=16)
    mgr.run([finding()])
    clock.advance(minutes=1)
    out = mgr.run([finding("ok")])
    resolved = channels(sent, "resolved")
    assert resolved == [("email", "resolved", 0, ("dba@community.example.com", "sysadmin@community.example.com")),
                        ("pagerduty", "resolved", 0, ()), ("slack", "resolved", 0, ()), ("sms", "resolved", 0, ())]
    assert next(d for d in sent if d.kind == "resolved" and d.channel == "pagerduty").pagerduty_action == "resolve"
    assert out["resolved"] and not IncidentStore(repo).active()
    closed = IncidentStore(repo).closed()
    assert [i.status for i in closed] == ["resolved"] and closed[0].resolved_at == clock.t
    # both regions hold the record
    for st in (repo.primary, repo.mirror_storage):
        assert any(o.key.startswith("incidents/closed/2026-12/") for o in st.list("incidents/"))
    # it comes back later: a new incident, paged again
    clock.advance(minutes=5)
    out = mgr.run([finding()])
    assert len(out["open"]) == 1 and out["open"][0] != closed[0].id
    assert [d.channel for d in sent if d.kind == "open"] == ["pagerduty", "sms", "pagerduty", "sms"]


@pytest.mark.parametrize(("severity", "window"), [("critical", 0), ("high", 5), ("medium", 15), ("low", 60)])
@pytest.mark.parametrize("offset", [0, 61, 299])
def test_incident_first_notice_lands_within_the_plans_window(rig, severity, window, offset):
    mgr, clock, sent, _, _ = rig
    detected = clock.t
    mgr.run([finding(severity)])  # the run that detects it
    while not sent and clock.t < detected + timedelta(hours=2):
        clock.advance(seconds=300 - offset if clock.t == detected else 300)
        offset = 0
        mgr.run([finding(severity)])
    assert sent, f"{severity}: never delivered"
    delay = clock.t - detected
    assert delay <= timedelta(minutes=window), f"{severity}: delivered after {delay}, window {window} min"
    if severity == "low":
        assert delay >= timedelta(minutes=window - 5), "low findings wait for the digest"
        assert sent[0].digest and sent[0].channel == "email"
    else:
        assert delay == timedelta(0), f"{severity}: sent at the first dispatch"


def test_incident_low_digest_collects_findings_and_clearings_into_one_mail(rig):
    mgr, clock, sent, _, repo = rig
    lows = [finding("low", "postgres", "restore test"), finding("low", "redis", "restore test")]
    mgr.run(lows[:1])
    clock.advance(minutes=10)
    mgr.run(lows, evaluated={"postgres", "redis"})
    clock.advance(minutes=10)
    mgr.run([lows[1]], evaluated={"postgres", "redis"})  # postgres cleared before any digest
    assert not sent
    clock.advance(minutes=35)  # 55 min after the first: the next dispatch would be too late
    mgr.run([lows[1]], evaluated={"postgres", "redis"})
    assert len(sent) == 1 and sent[0].digest
    assert "postgres:restore test" in sent[0].body and "appeared, since cleared" in sent[0].body
    assert "redis:restore test" in sent[0].body
    assert [i.datastore for i in IncidentStore(repo).active()] == ["redis"]  # postgres settled by the digest


def test_incident_of_a_datastore_not_evaluated_stays_open(rig):
    mgr, clock, _, _, _ = rig
    mgr.run([finding()])
    clock.advance(minutes=5)
    out = mgr.run([finding("ok", "redis", "rdb backup age")])  # postgres' monitor task did not run
    assert out["open"] and not out["resolved"]


def test_incident_severity_rise_reaches_the_new_route_once(rig):
    mgr, clock, sent, _, _ = rig
    mgr.run([finding("high")])
    assert channels(sent) == [("email", "open", 1, ()), ("slack", "open", 1, ())]
    clock.advance(minutes=5)
    mgr.run([finding("critical")])
    clock.advance(minutes=5)
    mgr.run([finding("critical")])
    assert [c for c, k, _, _ in channels(sent, "open")] == ["email", "pagerduty", "slack", "sms"]


def test_incident_failed_delivery_is_retried_then_given_up(rig):
    mgr, clock, sent, failing, repo = rig
    failing.add("sms")
    for _ in range(5):
        mgr.run([finding()])
        clock.advance(minutes=1)
    inc = IncidentStore(repo).active()[0]
    assert inc.attempts("open", "sms") == engine.MAX_ATTEMPTS and not inc.delivered("open", "sms")
    assert inc.delivered("open", "pagerduty") and [d.channel for d in sent] == ["pagerduty"]


def test_incident_acknowledge_refuses_unknown_and_needs_a_name(rig, inv):
    mgr, _, _, _, repo = rig
    mgr.run([finding()])
    with pytest.raises(Refused, match="no such incident"):
        acknowledge(inv, repo, "nope", "kim")
    with pytest.raises(Refused, match="needs the name"):
        acknowledge(inv, repo, IncidentStore(repo).active()[0].id, " ")


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (("contacts: [sysadmin, dba]", "contacts: [sysadmin, dbx]"),
         "alerts.escalation.levels[1].contacts: unknown contact 'dbx'"),
        (("- {level: 3, name: architect, after: 30m", "- {level: 3, name: architect, after: 10m"),
         "alerts.escalation.levels: `after` must increase"),
        (("email: dba@community.example.com", "email: dba-at-example"), "alerts.contacts.dba.email"),
        (("high: 5m, medium", "high: soon, medium"), "alerts.timing.high: not a duration"),
    ],
)
def test_incident_settings_errors_name_the_field(change, expected):
    with pytest.raises(InventoryError) as err:
        parse_inventory(TEXT.replace(*change), "inventory.yaml")
    assert expected in str(err.value)

"""Incident notices through the real channels into real local receivers (devstack `receivers`: an
aiosmtpd SMTP server, Slack's chat.postMessage shape over HTTP, a PagerDuty Events API v2 stand-in
over HTTPS, and moto's SNS delivering the SMS topic to an HTTP subscription). Time is an injected
clock: an hour of escalation takes a second."""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from devstack.components.receivers import inbox
from lifeboat.incidents.manager import IncidentManager, acknowledge
from lifeboat.inventory import parse_inventory
from lifeboat.repository import Repository

pytestmark = pytest.mark.integration
TEXT = (Path(__file__).resolve().parents[2] / "include" / "inventory.yaml").read_text()


@pytest.fixture
def rig(stack_env, tmp_path, unique):
    text = TEXT.replace("${LIFEBOAT_REPO_PRIMARY:-s3://community-platform-dr-us-west-2/lifeboat}",
                        f"file://{tmp_path}/w2").replace(
        "${LIFEBOAT_REPO_STANDBY:-s3://community-platform-dr-us-east-1/lifeboat}", f"file://{tmp_path}/e1")
    inv = parse_inventory(text, "inventory.yaml")
    clock = {"t": datetime(2026, 12, 1, 9, 0, tzinfo=UTC)}
    repo = Repository.from_inventory(inv)
    mgr = IncidentManager(inv, repo, clock=lambda: clock["t"])
    url = os.environ["LIFEBOAT_RECEIVERS_URL"]
    start = max([i["seq"] for i in inbox(url)] or [0])
    finding = {"datastore": f"pg_{unique}", "check": "WAL archive lag", "severity": "critical", "value": "2.0h",
               "threshold": "15.0m", "message": f"pg_{unique}: WAL archive lag 2.0h (RPO 15.0m)"}

    def received(kind=None, settle: float = 0.0):
        """Messages about this test's incident (SNS delivers asynchronously: wait briefly for it)."""
        deadline = time.monotonic() + settle
        while True:
            got = [i for i in inbox(url, kind, start) if unique in str(i)]
            if time.monotonic() > deadline:
                return got
            time.sleep(0.1)

    return inv, repo, mgr, clock, finding, received


def test_alerting_critical_pages_once_escalates_stops_on_ack_and_resolves(rig):
    inv, repo, mgr, clock, finding, received = rig
    out = mgr.run([finding])
    inc_id = out["open"][0]
    clock["t"] += timedelta(minutes=5)
    mgr.run([finding])  # the same finding five minutes later: no second page
    clock["t"] += timedelta(minutes=5)
    mgr.run([finding])
    pages = received("pagerduty")
    assert [(p["event_action"], p["dedup_key"], p["severity"]) for p in pages] == [("trigger", inc_id, "critical")]
    assert len(received("sms")) == 1 and inc_id in received("sms")[0]["message"]
    assert not received("email") and not received("slack"), "nothing but the page before level 2 is due"

    clock["t"] += timedelta(minutes=6)  # 16 min unacknowledged: level 2 (senior engineer)
    mgr.run([finding])
    mails = received("email")
    assert len(mails) == 1 and sorted(mails[0]["rcpt_tos"]) == ["dba@community.example.com",
                                                              "sysadmin@community.example.com"]
    assert "escalation level 2: senior engineer" in mails[0]["subject"]
    assert len(received("slack")) == 1 and "escalation level 2" in received("slack")[0]["text"]

    acknowledge(inv, repo, inc_id, "kim.oncall", via="test", at=clock["t"])
    clock["t"] += timedelta(minutes=50)  # level 3 (30m) and level 4 (1h) would be due by now
    mgr.run([finding])
    assert len(received("email")) == 1, "acknowledged: no architect/CTO e-mail"
    assert [p["event_action"] for p in received("pagerduty")] == ["trigger", "acknowledge"]

    clock["t"] += timedelta(minutes=5)
    out = mgr.run([{**finding, "severity": "ok"}])
    assert out["resolved"] == [inc_id]
    pages = received("pagerduty")
    assert [p["event_action"] for p in pages] == ["trigger", "acknowledge", "resolve"]
    assert pages[-1]["dedup_key"] == inc_id
    resolved_mail = [m for m in received("email") if "RESOLVED" in m["subject"]]
    assert len(resolved_mail) == 1 and sorted(resolved_mail[0]["rcpt_tos"]) == ["dba@community.example.com",
                                                                               "sysadmin@community.example.com"]
    assert any("RESOLVED" in s["message"] for s in received("sms", settle=1.0))
    assert any("RESOLVED" in s["text"] for s in received("slack"))
    # once resolved and told, nothing more, however often the monitor runs
    total = len(received())
    clock["t"] += timedelta(minutes=5)
    mgr.run([{**finding, "severity": "ok"}])
    assert len(received()) == total


def test_alerting_pagerduty_stand_in_rejects_what_the_real_api_rejects(stack_env):
    import json
    import ssl
    import urllib.error
    import urllib.request

    conn = json.loads(os.environ["AIRFLOW_CONN_LIFEBOAT_PAGERDUTY"])
    ctx = ssl.create_default_context(cafile=conn["extra"]["ca_bundle"])
    req = urllib.request.Request(conn["extra"]["base_url"] + "/v2/enqueue", method="POST",
                                 data=json.dumps({"routing_key": "short", "event_action": "resolve"}).encode())
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(req, context=ctx, timeout=5)
    body = json.loads(err.value.read())
    assert err.value.code == 400 and body["status"] == "invalid event"
    assert any("routing_key" in e for e in body["errors"]) and any("dedup_key" in e for e in body["errors"])

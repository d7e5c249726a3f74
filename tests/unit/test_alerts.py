"""Severity routing: each severity goes to its channels; a failing channel does not stop the others."""

from pathlib import Path

from lifeboat import alerts
from lifeboat.inventory import parse_inventory

TEXT = (Path(__file__).resolve().parents[2] / "include" / "inventory.yaml").read_text()


def test_alerts_routes_follow_the_dr_plan():
    inv = parse_inventory(TEXT, "inventory.yaml")
    assert inv.alerts.routes["critical"] == ["pagerduty", "sms"]
    assert inv.alerts.routes["high"] == ["slack", "email"]
    assert inv.alerts.routes["medium"] == ["email"] and inv.alerts.routes["low"] == ["email"]
    assert inv.alerts.channels["pagerduty"].type == "pagerduty" and inv.alerts.channels["sms"].type == "sms"


def test_alerts_failing_channel_does_not_stop_the_next(monkeypatch):
    monkeypatch.delenv("AIRFLOW_CONN_LIFEBOAT_SLACK", raising=False)  # the devstack's receivers define it
    text = TEXT.replace("high: [slack, email]", "high: [slack, logged]").replace(
        "    email: {type: email", "    logged: {type: log}\n    email: {type: email")
    inv = parse_inventory(text, "inventory.yaml")
    delivered = alerts.send("high", "test alert", "body", inventory=inv)  # slack connection does not exist
    assert delivered == ["logged"]  # slack failed (logged as an error), the next channel still got it

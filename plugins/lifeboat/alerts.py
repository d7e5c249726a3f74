"""Severity-routed alerts (DR plan 2.1): critical -> PagerDuty/SMS, high -> Slack + e-mail,
medium/low -> e-mail. Routes and channels come from the inventory's `alerts` section; delivery uses
the Airflow providers' notifiers, built when an alert fires (never at DAG-parse time).

A channel that fails to deliver is logged and the next one is tried: an alert path must not
itself become the outage.
"""

from __future__ import annotations

import logging
from typing import Literal

from lifeboat.inventory import AlertChannel, Inventory, load_inventory

log = logging.getLogger(__name__)
Severity = Literal["critical", "high", "medium", "low"]


def _one(target: str | list[str] | None) -> str:
    return target[0] if isinstance(target, list) else (target or "")


def _notifier(channel: AlertChannel, severity: Severity, summary: str, body: str):
    if channel.type == "pagerduty":
        from airflow.providers.pagerduty.notifications.pagerduty import PagerdutyNotifier

        return PagerdutyNotifier(summary=summary, severity="critical" if severity == "critical" else "error",
                                 source="lifeboat", pagerduty_events_conn_id=channel.connection,
                                 custom_details={"details": body})
    if channel.type == "slack":
        from airflow.providers.slack.notifications.slack import SlackNotifier

        return SlackNotifier(slack_conn_id=channel.connection or "slack_api_default", channel=_one(channel.target),
                             text=f"*{summary}*\n{body}")
    if channel.type == "email":
        from airflow.providers.smtp.notifications.smtp import SmtpNotifier

        return SmtpNotifier(to=channel.target or [], smtp_conn_id=channel.connection or "smtp_default",
                            subject=f"[lifeboat {severity}] {summary}", html_content=f"<pre>{body}</pre>")
    if channel.type == "sms":
        from airflow.providers.amazon.aws.notifications.sns import SnsNotifier

        return SnsNotifier(aws_conn_id=channel.connection, target_arn=_one(channel.target),
                           message=f"{summary}\n{body}"[:1400])
    return None


def send(severity: Severity, summary: str, body: str = "", context=None,
         inventory: Inventory | None = None) -> list[str]:
    """Deliver to every channel the inventory routes `severity` to. Returns the channels that succeeded."""
    inv = inventory or load_inventory()
    delivered = []
    for name in inv.alerts.routes.get(severity, []):
        channel = inv.alerts.channels[name]
        log.warning("ALERT [%s] via %s: %s", severity, name, summary)
        try:
            notifier = _notifier(channel, severity, summary, body)
            if notifier is not None:
                notifier.notify(context or {})
            delivered.append(name)
        except Exception as exc:  # keep trying the other channels
            log.error("alert channel %s (%s) failed: %s", name, channel.type, exc)
    return delivered


def on_failure(severity: Severity):
    """An `on_failure_callback` that routes a task failure by severity."""

    def callback(context) -> None:
        ti = context.get("ti") or context.get("task_instance")
        exc = context.get("exception")
        summary = f"{ti.dag_id}.{ti.task_id} failed" if ti else "Lifeboat task failed"
        body = f"run {context['dag_run'].run_id}\n{type(exc).__name__ if exc else ''}: {exc}"
        try:
            send(severity, summary, body, context)
        except Exception as e:  # never raise from a callback
            log.error("could not route alert: %s", e)

    return callback

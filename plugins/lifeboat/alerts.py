"""Severity-routed alerts (DR plan 2.1): critical -> PagerDuty/SMS, high -> Slack + e-mail,
medium/low -> e-mail. Routes and channels come from the inventory's `alerts` section; delivery uses
the Airflow providers' notifiers, built when an alert fires (never at DAG-parse time).

A channel that fails to deliver is logged and the next one is tried: an alert path must not
itself become the outage. `deliver()` sends one message to one channel; lifeboat.incidents uses it
for de-duplicated incident notices (PagerDuty dedup key and trigger/acknowledge/resolve, e-mail to
escalation contacts). A PagerDuty connection may name another Events API endpoint in its extra
`base_url` (https://; `ca_bundle` for a private CA: the devstack's local stand-in); without it
events go to PagerDuty itself.
"""

from __future__ import annotations

import logging
from typing import Literal

from lifeboat.inventory import AlertChannel, Inventory, load_inventory

log = logging.getLogger(__name__)
Severity = Literal["critical", "high", "medium", "low"]


def _one(target: str | list[str] | None) -> str:
    return target[0] if isinstance(target, list) else (target or "")


def _pagerduty_notifier(**kwargs):
    """The provider's PagerdutyNotifier whose events go to the connection's `base_url` when it has one."""
    from airflow.providers.pagerduty.hooks.pagerduty_events import prepare_event_data
    from airflow.providers.pagerduty.notifications.pagerduty import PagerdutyNotifier

    class _Notifier(PagerdutyNotifier):
        def notify(self, context):
            import pagerduty

            hook = self.hook  # the integration key from the Airflow connection
            conn_id = self.pagerduty_events_conn_id or hook.default_conn_name
            extra = hook.get_connection(conn_id).extra_dejson or {}
            base_url = extra.get("base_url")
            if not base_url:
                return super().notify(context)
            data = prepare_event_data(summary=self.summary, severity=self.severity, source=self.source,
                                      custom_details=self.custom_details, component=self.component,
                                      group=self.group, class_type=self.class_type, action=self.action,
                                      dedup_key=self.dedup_key, images=self.images, links=self.links)
            client = pagerduty.EventsApiV2Client(hook.integration_key, base_url=base_url,
                                                 verify=extra.get("ca_bundle") or True)
            return client.send_event(**data)

    return _Notifier(**kwargs)


def _notifier(channel: AlertChannel, severity: Severity, summary: str, body: str, *, dedup_key: str | None = None,
              action: str = "trigger", to: list[str] | None = None):
    if channel.type == "pagerduty":
        return _pagerduty_notifier(summary=summary, severity="critical" if severity == "critical" else "error",
                                   source="lifeboat", pagerduty_events_conn_id=channel.connection,
                                   custom_details={"details": body}, action=action, dedup_key=dedup_key)
    if channel.type == "slack":
        from airflow.providers.slack.notifications.slack import SlackNotifier

        return SlackNotifier(slack_conn_id=channel.connection or "slack_api_default", channel=_one(channel.target),
                             text=f"*{summary}*\n{body}")
    if channel.type == "email":
        from airflow.providers.smtp.notifications.smtp import SmtpNotifier

        return SmtpNotifier(to=to or channel.target or [], smtp_conn_id=channel.connection or "smtp_default",
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
    return [name for name in inv.alerts.routes.get(severity, [])
            if deliver(name, severity, summary, body, context, inventory=inv) is None]


def deliver(name: str, severity: Severity, summary: str, body: str = "", context=None, *,
            inventory: Inventory | None = None, dedup_key: str | None = None, action: str = "trigger",
            to: list[str] | None = None) -> str | None:
    """Send one message through channel `name`. Returns None when delivered, else the error (logged)."""
    inv = inventory or load_inventory()
    channel = inv.alerts.channels[name]
    log.warning("ALERT [%s] via %s%s: %s", severity, name, f" to {', '.join(to)}" if to else "", summary)
    try:
        notifier = _notifier(channel, severity, summary, body, dedup_key=dedup_key, action=action, to=to)
        if notifier is not None:
            notifier.notify(context or {})
        return None
    except Exception as exc:  # the caller keeps trying the other channels
        log.error("alert channel %s (%s) failed: %s", name, channel.type, exc)
        return f"{type(exc).__name__}: {exc}"[:500]


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

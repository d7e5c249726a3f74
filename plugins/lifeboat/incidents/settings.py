"""Inventory models for `alerts.timing`, `alerts.contacts` and `alerts.escalation` (DR plan: 알림 설정,
연락처, 에스컬레이션). Pure pydantic, imported by lifeboat.inventory at DAG-parse time: keep it cheap.

    alerts:
      timing: {critical: 0s, high: 5m, medium: 15m, low: 1h}   # latest delivery after detection
      contacts:
        dba: {name: Database administrator, email: dba@community.example.com}
      escalation:
        severities: [critical, high]          # only these escalate
        email_channel: email                  # the channel whose SMTP connection mails contacts
        levels:
          - {level: 1, name: on-call engineer, after: 0m}            # the severity's route
          - {level: 2, name: senior engineer, after: 15m, contacts: [sysadmin, dba], channels: [slack]}

`after` counts from the moment the incident was opened; an acknowledged incident stops escalating.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

SEVERITIES = ("critical", "high", "medium", "low")
Severity = Literal["critical", "high", "medium", "low"]
_EMAIL = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"


def _duration(v: Any) -> timedelta:
    """A delay: 0 means at once (critical alerts, escalation level 1); negative is refused."""
    from lifeboat.durations import parse_duration

    return parse_duration(v, allow_zero=True)


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AlertTiming(_Model):
    """The latest a notification of each severity may reach people after the finding is detected
    (DR plan 2.1: Critical at once, High within 5 min, Medium within 15 min, Low within 1 h).
    Low findings are collected into one e-mail digest sent before its oldest entry's deadline."""

    critical: timedelta = timedelta(0)
    high: timedelta = timedelta(minutes=5)
    medium: timedelta = timedelta(minutes=15)
    low: timedelta = timedelta(hours=1)

    @field_validator("critical", "high", "medium", "low", mode="before")
    @classmethod
    def _d(cls, v: Any) -> timedelta:
        return _duration(v)

    def window(self, severity: str) -> timedelta:
        return getattr(self, severity)


class Contact(_Model):
    name: str
    role: str = ""
    email: list[str] = Field(default_factory=list)
    phone: str = ""  # shown in runbooks; paging goes through the channels (PagerDuty, SMS topic)

    @field_validator("email", mode="before")
    @classmethod
    def _emails(cls, v: Any) -> list[str]:
        import re

        items = [v] if isinstance(v, str) else list(v or [])
        for item in items:
            if not isinstance(item, str) or not re.match(_EMAIL, item):
                raise ValueError(f"not an e-mail address: {item!r}")
        return items


class EscalationLevel(_Model):
    level: int = Field(ge=1, le=9)
    name: str
    after: timedelta = Field(description="unacknowledged this long after the incident opened")
    contacts: list[str] = []  # contact names, each mailed through escalation.email_channel
    channels: list[str] = []  # channels notified at this level (level 1: the severity's route as well)

    @field_validator("after", mode="before")
    @classmethod
    def _d(cls, v: Any) -> timedelta:
        return _duration(v)


def _default_levels() -> list[EscalationLevel]:
    return [EscalationLevel(level=1, name="on-call engineer", after=timedelta(0))]


class Escalation(_Model):
    severities: list[Severity] = ["critical", "high"]
    email_channel: str = "email"
    levels: list[EscalationLevel] = Field(default_factory=_default_levels)

    @model_validator(mode="after")
    def _ordered(self) -> Escalation:
        numbers = [lv.level for lv in self.levels]
        if numbers != list(range(1, len(numbers) + 1)):
            raise ValueError(f"levels: must be numbered 1, 2, 3 ... in order, got {numbers}")
        afters = [lv.after for lv in self.levels]
        if afters != sorted(afters) or len(set(afters)) != len(afters):
            raise ValueError("levels: `after` must increase from one level to the next")
        if afters and afters[0] != timedelta(0):
            raise ValueError("levels[0].after: level 1 is the first notice: it must be 0")
        return self

    def level(self, number: int) -> EscalationLevel:
        return self.levels[number - 1]


def check_references(channels: dict, contacts: dict, escalation: Escalation) -> None:
    """Cross-checks of `alerts`: every name an escalation level uses is defined. Raises ValueError
    naming the field (the inventory's error formatter prefixes it with `alerts.`)."""
    for i, lv in enumerate(escalation.levels):
        for c in lv.contacts:
            if c not in contacts:
                raise ValueError(f"escalation.levels[{i}].contacts: unknown contact {c!r} "
                                 "(define it under alerts.contacts)")
            if not contacts[c].email:
                raise ValueError(f"contacts.{c}.email: escalation level {lv.level} mails this contact: "
                                 "it needs an address")
        for n in lv.channels:
            if n not in channels:
                raise ValueError(f"escalation.levels[{i}].channels: unknown channel {n!r} "
                                 "(define it under alerts.channels)")
    if any(lv.contacts for lv in escalation.levels):
        ch = channels.get(escalation.email_channel)
        if ch is None or ch.type != "email":
            raise ValueError(f"escalation.email_channel: {escalation.email_channel!r} is not an email channel "
                             "under alerts.channels (contacts are mailed through it)")

"""Durations as the inventory writes them ('90s', '15m', '4h', '7d', '2w'), parsed and formatted once.

Cheap to import (stdlib + pydantic): engine option models use `DurationStr` at DAG-parse time.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d|w)\s*$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(value: Any, *, allow_zero: bool = False) -> timedelta:
    """'90s', '15m', '4h', '7d', '2w' or a number of seconds -> a positive timedelta. Zero only with
    `allow_zero` (a keep rule that zero switches off, a delay of "at once"); negative never."""
    td = None
    try:
        if isinstance(value, timedelta):
            td = value
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            td = timedelta(seconds=value)
        elif isinstance(value, str) and (m := _DURATION.match(value)):
            td = timedelta(seconds=float(m.group(1)) * _UNIT_SECONDS[m.group(2)])
    except (OverflowError, ValueError):  # .inf, .nan, 10**20 seconds
        td = None
    if td is None:
        raise ValueError(f"not a duration: {value!r} (use e.g. '30s', '15m', '4h', '7d')")
    if td < timedelta(0) or (td == timedelta(0) and not allow_zero):
        raise ValueError(f"not a positive duration: {value!r} (a duration must be more than zero, e.g. '30s')")
    return td


def seconds(value: Any) -> float:
    """A duration option as seconds (for timeouts)."""
    return parse_duration(value).total_seconds()


def _valid_duration(value: str) -> str:
    parse_duration(value)
    return value


# An option kept as written ("10s", "4h") but validated as a duration when the inventory is loaded.
DurationStr = Annotated[str, AfterValidator(_valid_duration)]
# A field read as a timedelta from "4h", "7d" or seconds.
Duration = Annotated[timedelta, BeforeValidator(parse_duration)]
# A delay or keep rule where 0 is meaningful ("at once", "keep nothing by age").
DurationOrZero = Annotated[timedelta, BeforeValidator(lambda v: parse_duration(v, allow_zero=True))]
OptionalDuration = Annotated[timedelta | None, BeforeValidator(lambda v: None if v is None else parse_duration(v))]


def format_duration(td: timedelta | float | None) -> str:
    if td is None:
        return "-"
    secs = td.total_seconds() if isinstance(td, timedelta) else float(td)
    if secs < 120:
        return f"{secs:.1f}s"
    if secs < 7200:
        return f"{secs / 60:.1f}m"
    return f"{secs / 3600:.2f}h"


def check_cron(expr: str) -> str:
    from croniter import CroniterBadDateError, croniter  # shipped with Airflow

    if not isinstance(expr, str) or not croniter.is_valid(expr):
        raise ValueError(f"not a valid cron expression: {expr!r}")
    if not expr.strip().startswith("@") and len(expr.split()) != 5:  # croniter reads a 6th field as seconds
        raise ValueError(f"not a valid cron expression: {expr!r} (5 fields: minute hour day-of-month month "
                         "day-of-week)")
    try:
        croniter(expr).get_next()
    except CroniterBadDateError:
        raise ValueError(f"cron expression {expr!r} never fires (no such date)") from None
    return expr

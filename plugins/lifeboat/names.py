"""Name checks of the inventory's models, written once: a value must match a pattern entirely, and a list
of names may also refuse some names for a reason of its own. Pure (imported at DAG-parse time)."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable


def must_match(pattern: str | re.Pattern[str], value: str, message: str) -> str:
    """`value` when it matches `pattern` entirely, else ValueError(message) -- `{!r}` in it is the value."""
    if not re.fullmatch(pattern, value or ""):
        raise ValueError(message.format(value))
    return value


def names_matching(values: Iterable[str], pattern: str | re.Pattern[str], message: str,
                   refuse: Callable[[str], str | None] = lambda _name: None) -> list[str]:
    """Every name checked with must_match, then `refuse(name)` (a reason, or None to accept it)."""
    out = []
    for name in values:
        must_match(pattern, name, message)
        why = refuse(name)
        if why:
            raise ValueError(why)
        out.append(name)
    return out

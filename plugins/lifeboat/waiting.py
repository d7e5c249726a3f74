"""One way to wait for a state: `wait_until(what, probe, timeout, interval)`.

Every poll loop in Lifeboat goes through here (after the Airflow providers' `_wait_for_state`): the
probe returns the observed state, `done` decides whether it is the wanted one, and a timeout raises
`WaitTimeout` naming what was awaited and the last state observed, so a failed task log says what
it saw, not only that it gave up.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, TypeVar

from lifeboat.errors import LifeboatError

log = logging.getLogger(__name__)
T = TypeVar("T")


class WaitTimeout(LifeboatError):
    """The awaited state did not come within the timeout."""

    def __init__(self, what: str, timeout: float, last: Any):
        self.what, self.timeout, self.last = what, timeout, last
        super().__init__(f"timed out after {timeout:.0f}s waiting for {what} (last observed: {_short(last)})")


def _short(value: Any, limit: int = 500) -> str:
    text = repr(value) if not isinstance(value, str) else value
    return text if len(text) <= limit else text[:limit] + "…"


def wait_until(what: str, probe: Callable[[], T], timeout: float, interval: float = 0.5, *,
               done: Callable[[T], bool] = bool, retry_on: tuple[type[BaseException], ...] = (),
               max_interval: float | None = None) -> T:
    """Call `probe()` until `done(state)`; return that state.

    - `retry_on`: exception types that mean "not there yet" (a server still starting): the exception
      becomes the last observed state and polling goes on. Anything else propagates at once, so a
      probe can abort the wait (e.g. the scratch process died).
    - `max_interval`: the pause doubles from `interval` up to this (fast first answers, cheap long waits).
    """
    deadline = time.monotonic() + timeout
    pause = interval
    last: Any = None
    while True:
        try:
            state = probe()
        except retry_on as exc:
            last = f"{type(exc).__name__}: {exc}"
            log.debug("waiting for %s: %s", what, last)
        else:
            if done(state):
                return state
            last = state
        if time.monotonic() >= deadline:
            raise WaitTimeout(what, timeout, last)
        time.sleep(max(0.0, min(pause, deadline - time.monotonic())))
        if max_interval is not None:
            pause = min(max_interval, pause * 2)

"""The platform API stand-in's request/error/latency metrics as a recovery's performance check: a
baseline window on the healthy primary, a degraded window (the standby region's API answers 503 until
it is promoted), and the comparison that tells them apart."""

from __future__ import annotations

import contextlib
import os
import urllib.error
import urllib.request

import pytest

from lifeboat import perf

pytestmark = pytest.mark.integration


def _traffic(url: str, n: int) -> None:
    for _ in range(n):
        with contextlib.suppress(urllib.error.HTTPError):  # a 503 is counted by the server all the same
            urllib.request.urlopen(f"{url}/ready", timeout=10).close()


def _window(url: str, n: int) -> dict:
    before = perf.scrape(url)
    _traffic(url, n)
    return perf.window(before, perf.scrape(url))


def test_perf_platform_api_degraded_window_fails_against_the_baseline(stack_env):
    west, east = os.environ["LIFEBOAT_API_US_WEST_2_URL"], os.environ["LIFEBOAT_API_US_EAST_1_URL"]
    baseline = _window(west, 15)
    assert baseline["requests"] == 15 and baseline["errors"] == 0 and baseline["p95_seconds"] is not None
    degraded = _window(east, 15)  # a read-only standby: every /ready is a 503
    assert degraded["errors"] == 15
    verdict = perf.compare(baseline, degraded)
    assert not verdict["ok"] and "error ratio 100.0%" in " ".join(verdict["problems"])
    recovered = _window(west, 15)
    assert perf.compare(baseline, recovered, latency_factor=3.0, latency_slack=0.2)["ok"], recovered

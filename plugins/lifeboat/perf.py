"""Performance after a recovery against the pre-incident baseline (DR plan: 검증 및 모니터링 —
성능 모니터링): request rate, error ratio and p95 latency of a service, from its Prometheus metrics
(`<service>_requests_total`, `_request_errors_total`, `_request_duration_seconds` histogram; the
platform API stand-in serves exactly these).

A *window* is the difference of two scrapes of the service's /metrics (counters only grow), so no
Prometheus server is needed in a recovery with half the infrastructure gone; with Prometheus, the
same numbers are `rate(...[5m])` / `histogram_quantile(0.95, ...)` at the two times (docs/operations.md).

    before = scrape(url); ...traffic...; after = scrape(url)
    w = window(before, after)              # {"requests", "errors", "error_ratio", "p95_seconds", "seconds"}
    verdict = compare(baseline_window, w)  # {"ok": bool, "problems": [...], ...}
"""

from __future__ import annotations

import time
import urllib.request
from dataclasses import dataclass, field

PREFIX = "platform_api"
_HTTP = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@dataclass
class Scrape:
    at: float
    requests: float = 0.0
    errors: float = 0.0
    buckets: dict[float, float] = field(default_factory=dict)  # le -> cumulative count


def parse(text: str, at: float | None = None, prefix: str = PREFIX, exclude_paths: tuple[str, ...] = ("/metrics",)
          ) -> Scrape:
    """One scrape in the Prometheus text format, summed over labels (scrapes of /metrics excluded)."""
    from prometheus_client.parser import text_string_to_metric_families

    s = Scrape(at=time.time() if at is None else at)
    for fam in text_string_to_metric_families(text):
        for sample in fam.samples:
            if sample.labels.get("path") in exclude_paths:
                continue
            if sample.name == f"{prefix}_requests_total":
                s.requests += sample.value
            elif sample.name == f"{prefix}_request_errors_total":
                s.errors += sample.value
            elif sample.name == f"{prefix}_request_duration_seconds_bucket":
                le = float(sample.labels["le"])
                s.buckets[le] = s.buckets.get(le, 0.0) + sample.value
    return s


def scrape(url: str, timeout: float = 5.0, prefix: str = PREFIX) -> Scrape:
    with _HTTP.open(f"{url.rstrip('/')}/metrics", timeout=timeout) as r:
        return parse(r.read().decode(), prefix=prefix)


def _quantile(q: float, buckets: dict[float, float]) -> float | None:
    """histogram_quantile over cumulative buckets (linear inside the bucket, like Prometheus)."""
    items = sorted(buckets.items())
    total = items[-1][1] if items else 0.0
    if total <= 0:
        return None
    rank, prev_le, prev_count = q * total, 0.0, 0.0
    for le, count in items:
        if count >= rank:
            if le == float("inf"):
                return prev_le
            return prev_le + (le - prev_le) * ((rank - prev_count) / (count - prev_count) if count > prev_count else 0)
        prev_le, prev_count = le, count
    return prev_le


def window(before: Scrape, after: Scrape) -> dict:
    requests = after.requests - before.requests
    errors = after.errors - before.errors
    deltas = {le: after.buckets.get(le, 0.0) - before.buckets.get(le, 0.0) for le in after.buckets}
    seconds = max(after.at - before.at, 1e-9)
    return {"seconds": seconds, "requests": requests, "errors": errors, "rate": requests / seconds,
            "error_ratio": (errors / requests) if requests else 0.0, "p95_seconds": _quantile(0.95, deltas)}


def compare(baseline: dict, current: dict, *, error_ratio_margin: float = 0.01, latency_factor: float = 1.5,
            latency_slack: float = 0.05, min_rate_share: float = 0.5) -> dict:
    """Is `current` back at `baseline`? Error ratio within +1 point, p95 within 1.5x + 50 ms, and at
    least half the request rate (a service nobody reaches is not "healthy")."""
    problems = []
    if current["requests"] <= 0:
        problems.append("no requests in the current window")
    if current["error_ratio"] > baseline["error_ratio"] + error_ratio_margin:
        problems.append(f"error ratio {current['error_ratio']:.1%} > baseline {baseline['error_ratio']:.1%} "
                        f"+ {error_ratio_margin:.0%}")
    b95, c95 = baseline["p95_seconds"], current["p95_seconds"]
    if b95 is not None and c95 is not None and c95 > b95 * latency_factor + latency_slack:
        problems.append(f"p95 latency {c95 * 1000:.0f} ms > {latency_factor}x baseline {b95 * 1000:.0f} ms "
                        f"+ {latency_slack * 1000:.0f} ms")
    if baseline["rate"] > 0 and current["rate"] < min_rate_share * baseline["rate"]:
        problems.append(f"request rate {current['rate']:.2f}/s < {min_rate_share:.0%} of baseline "
                        f"{baseline['rate']:.2f}/s")
    return {"ok": not problems, "problems": problems, "baseline": baseline, "current": current}

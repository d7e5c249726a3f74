"""Performance windows from two scrapes, and the comparison with a baseline."""

from lifeboat import perf

TEXT = """# TYPE platform_api_requests counter
platform_api_requests_total{{path="/ready",code="200"}} {ok}
platform_api_requests_total{{path="/ready",code="503"}} {bad}
platform_api_requests_total{{path="/metrics",code="200"}} 99
# TYPE platform_api_request_errors counter
platform_api_request_errors_total{{path="/ready"}} {bad}
# TYPE platform_api_request_duration_seconds histogram
platform_api_request_duration_seconds_bucket{{path="/ready",le="0.01"}} {fast}
platform_api_request_duration_seconds_bucket{{path="/ready",le="0.1"}} {mid}
platform_api_request_duration_seconds_bucket{{path="/ready",le="+Inf"}} {total}
platform_api_request_duration_seconds_count{{path="/ready"}} {total}
platform_api_request_duration_seconds_sum{{path="/ready"}} 1.0
"""


def scrape(at, ok, bad, fast, mid):
    return perf.parse(TEXT.format(ok=ok, bad=bad, fast=fast, mid=mid, total=ok + bad), at=at)


def test_perf_window_counts_deltas_and_p95_like_prometheus():
    w = perf.window(scrape(0, 100, 0, 100, 100), scrape(10, 190, 10, 150, 200))
    assert (w["requests"], w["errors"], w["rate"]) == (100, 10, 10.0)
    assert w["error_ratio"] == 0.1
    # 50 of 100 under 10 ms, all under 100 ms: p95 = 0.01 + 0.09 * (95 - 50) / 50
    assert abs(w["p95_seconds"] - 0.091) < 1e-9


def test_perf_compare_flags_errors_latency_and_missing_traffic():
    base = perf.window(scrape(0, 0, 0, 0, 0), scrape(10, 100, 0, 100, 100))
    assert perf.compare(base, base)["ok"]
    worse = perf.window(scrape(0, 0, 0, 0, 0), scrape(10, 80, 20, 10, 60))
    problems = " ".join(perf.compare(base, worse)["problems"])
    assert "error ratio 20.0%" in problems and "p95 latency" in problems
    idle = perf.window(scrape(0, 0, 0, 0, 0), scrape(10, 0, 0, 0, 0))
    assert "no requests" in " ".join(perf.compare(base, idle)["problems"])

"""S3 replication checks, the pure pieces: paged, resumable inventory diff; canary lag."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from lifeboat.objects import canary
from lifeboat.objects.diff import (
    DIFFERENT,
    EXTRA,
    MISSING,
    DiffState,
    Entry,
    diff,
    repair_plan,
    versioned,
    versions_lister,
)


def lister(entries: list[Entry], calls: list | None = None):
    """A ListObjectsV2-like lister over sorted entries (StartAfter + MaxKeys)."""
    data = sorted(entries, key=lambda e: e.key)

    def page(start_after: str, limit: int):
        if calls is not None:
            calls.append((start_after, limit))
        rest = [e for e in data if e.key > start_after]
        return rest[:limit], len(rest) > limit

    return page


def objs(n: int, prefix: str = "k", etag: str = "e") -> list[Entry]:
    return [Entry(f"{prefix}{i:05d}", f"{etag}{i}", i) for i in range(n)]


def test_objects_diff_names_missing_different_and_extra_keys():
    src = [Entry("a", "1", 1), Entry("b", "2", 2), Entry("c", "3", 3), Entry("d", "4", 4)]
    dst = [Entry("a", "1", 1), Entry("c", "x", 3), Entry("d", "4", 5), Entry("e", "5", 5)]
    st = diff(lister(src), lister(dst), page_size=2)
    assert st.complete and not st.ok
    assert st.keys(MISSING) == ["b"]
    assert st.keys(DIFFERENT) == ["c", "d"]
    assert st.keys(EXTRA) == ["e"]
    details = {f["key"]: f["detail"] for f in st.findings}
    assert "ETag 3 != x" in details["c"] and "size 4 != 5" in details["d"]
    assert (st.compared, st.source_keys, st.dest_keys) == (5, 4, 4)


def test_objects_diff_of_identical_buckets_is_ok_and_etags_are_normalised():
    src = [Entry("a", "abc", 1)]
    dst = [Entry.of({"key": "a", "etag": '"ABC"', "size": 1})]
    st = diff(src, dst)
    assert st.ok and st.findings == [] and st.compared == 1


def test_objects_diff_resumes_from_its_cursor_across_runs_and_pages():
    src = objs(2500)
    dst = [e for e in objs(2500) if e.key not in ("k00007", "k01999", "k02499")]
    dst[100] = Entry(dst[100].key, "changed", dst[100].size)
    calls: list = []
    st = DiffState()
    runs = 0
    while not st.complete:
        # the state goes through JSON between runs, as an XCom or a stored record would
        st = DiffState.from_json(json.loads(json.dumps(diff(lister(src, calls), lister(dst), st,
                                                            max_keys=700, page_size=300).to_json())))
        runs += 1
        assert runs < 10
    assert runs == 4 and st.runs == 4
    assert st.keys(MISSING) == ["k00007", "k01999", "k02499"]
    assert st.keys(DIFFERENT) == [dst[100].key]
    assert st.compared == 2500 and st.source_keys == 2500 and st.dest_keys == 2497
    assert max(limit for _, limit in calls) == 300  # listed in pages, never the whole bucket at once
    assert {after for after, _ in calls} >= {"", "k00699", "k01399"}  # each run starts at the cursor


def test_objects_diff_split_into_runs_equals_one_run():
    src = [*objs(300), Entry("zz-only-in-source", "q", 1)]
    dst = [*objs(250), Entry("aa-only-in-dest", "q", 1)]
    whole = diff(lister(src), lister(dst))
    st = DiffState()
    while not st.complete:
        st = diff(lister(src), lister(dst), st, max_keys=37, page_size=11)
    assert st.findings == whole.findings and st.counts == whole.counts


def test_objects_diff_refuses_a_listing_out_of_key_order():
    def bad(start_after, limit):
        return [Entry("b"), Entry("a")], False

    with pytest.raises(ValueError, match="not in key order"):
        diff(bad, [])


def test_objects_diff_excludes_prefixes_such_as_canaries():
    src = [Entry(".lifeboat/canary/us-west-2/x.json", "1", 1), Entry("a", "1", 1)]
    st = diff(src, [Entry("a", "1", 1)], exclude_prefixes=[canary.PREFIX])
    assert st.ok and st.compared == 1


def test_objects_diff_compares_version_sets_when_asked():
    src = versioned([{"key": "a", "version_id": "v1", "etag": "1", "size": 1, "is_latest": False},
                     {"key": "a", "version_id": "v2", "etag": "2", "size": 2, "is_latest": True}])
    dst = versioned([{"key": "a", "version_id": "v2", "etag": "2", "size": 2, "is_latest": True}])
    assert src[0].etag == "2" and src[0].size == 2
    assert diff(src, dst).ok  # latest versions equal
    st = diff(src, dst, compare_versions=True)
    assert st.keys(DIFFERENT) == ["a"] and "versions missing in destination: v1" in st.findings[0]["detail"]


def test_objects_versions_lister_groups_each_page_by_key():
    versions = [{"key": "a", "version_id": "1", "etag": "x", "size": 1},
                {"key": "a", "version_id": "2", "etag": "y", "size": 1, "is_latest": False}]
    lst = versions_lister(lambda marker, limit: (versions, False, "a"))
    entries, more = lst("", 10)
    assert not more and [e.versions for e in entries] == [(("1", "x"), ("2", "y"))]


def test_objects_repair_plan_copies_only_missing_unless_asked_and_never_deletes():
    st = diff([Entry("a", "1"), Entry("b", "2"), Entry("c", "3")], [Entry("b", "x"), Entry("d", "4")])
    assert repair_plan(st) == ["a", "c"]
    assert repair_plan(st, include_different=True) == ["a", "b", "c"]
    capped = diff(objs(5), [], max_findings=2)
    assert capped.truncated and capped.counts[MISSING] == 5 and len(capped.findings) == 2
    with pytest.raises(ValueError, match="max_findings"):
        repair_plan(capped)


def test_objects_multipart_etag_difference_is_explained():
    st = diff([Entry("big", "abc-3", 10)], [Entry("big", "def", 10)])
    assert "multipart" in st.findings[0]["detail"]


# -- canaries --------------------------------------------------------------------------------------

T0 = datetime(2026, 12, 1, 12, 0, 0, tzinfo=UTC)


def test_canary_key_round_trips_its_write_time_and_sorts_by_time():
    k1 = canary.key(T0, "us-west-2")
    k2 = canary.key(T0 + timedelta(microseconds=1), "us-west-2")
    assert k1.startswith(canary.PREFIX + "us-west-2/") and k1 < k2
    assert canary.written_at(k1) == T0
    assert json.loads(canary.body(T0, "us-west-2", 3))["written_at"] == T0.isoformat()
    with pytest.raises(ValueError, match="not a canary key"):
        canary.written_at("uploads/a.png")
    with pytest.raises(ValueError, match="naive"):
        canary.key(datetime(2026, 1, 1), "us-west-2")


def test_canary_lag_of_healthy_replication_is_the_newest_arrival():
    ks = [canary.key(T0 + timedelta(minutes=i), "us-west-2") for i in range(3)]
    arrivals = [(k, canary.written_at(k) + timedelta(seconds=1.5)) for k in ks]
    lag = canary.lag(arrivals, now=T0 + timedelta(minutes=2, seconds=2))
    assert lag.lag_s == pytest.approx(1.5) and lag.pending == 0 and lag.arrived == 3
    assert not lag.exceeds(3600)


def test_canary_lag_grows_with_the_clock_when_replication_stops():
    ks = [canary.key(T0 + timedelta(minutes=i), "us-west-2") for i in range(5)]
    arrivals = [(k, canary.written_at(k) + timedelta(seconds=1) if i < 2 else None) for i, k in enumerate(ks)]
    for minutes, expected in ((10, 8 * 60), (70, 68 * 60)):
        lag = canary.lag(arrivals, now=T0 + timedelta(minutes=minutes))
        assert lag.oldest_pending_key == ks[2] and lag.pending == 3
        assert lag.lag_s == pytest.approx(expected)
    assert canary.lag(arrivals, now=T0 + timedelta(minutes=70)).exceeds(3600)


def test_canary_older_unarrived_canary_superseded_by_a_newer_arrival_is_not_pending():
    ks = [canary.key(T0 + timedelta(minutes=i), "us-west-2") for i in range(2)]
    lag = canary.lag([(ks[0], None), (ks[1], T0 + timedelta(minutes=1, seconds=2))], now=T0 + timedelta(hours=3))
    assert lag.pending == 0 and lag.lag_s == pytest.approx(2)
    assert canary.lag([], now=T0).lag_s is None

"""The platform's upload buckets against the real local stack: two SeaweedFS clusters, `weed filer.sync
-isActivePassive` replicating community-uploads-us-west-2 into community-uploads-us-east-1.

Each test writes under its own prefix (t-<unique>/). A test that pauses replication gets it resumed by
the `uploads_replication` fixture whatever happens.
"""

from __future__ import annotations

import json
import statistics
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from lifeboat.errors import ServiceUnsupported
from lifeboat.objects import canary
from lifeboat.objects.diff import DIFFERENT, MISSING, diff, repair_plan

pytestmark = pytest.mark.integration
WEST, EAST = "us-west-2", "us-east-1"
ARRIVAL_TIMEOUT_S = 60.0


def wait_for(bucket, key: str, timeout: float = ARRIVAL_TIMEOUT_S):
    """Poll HEAD until the key is there; (ObjectInfo, seconds waited) or (None, timeout)."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        info = bucket.head(key)
        if info is not None:
            return info, time.monotonic() - t0
        time.sleep(0.05)
    return None, timeout


def lister(bucket, prefix: str):
    return lambda after, limit: bucket.list_page(after, limit, prefix=prefix)


def test_uploads_object_written_in_us_west_2_arrives_in_us_east_1_identical(upload_buckets, unique):
    west, east = upload_buckets[WEST], upload_buckets[EAST]
    lags = []
    for i in range(5):
        key = f"t-{unique}/avatar-{i}.png"
        body = (f"{unique}:{i}:".encode() * 4000)[: 50_000 + i]
        put = west.put(key, body, content_type="image/png")
        t_put = time.monotonic()
        info, _ = wait_for(east, key)
        assert info is not None, f"{key} did not arrive in {EAST} within {ARRIVAL_TIMEOUT_S:.0f}s"
        lags.append(time.monotonic() - t_put)
        assert (info.etag, info.size) == (put.etag, len(body))
        assert east.get(key) == body
    print(f"\n[measure] filer.sync replication lag over 5 objects of ~50 kB: min {min(lags):.2f}s, "
          f"median {statistics.median(lags):.2f}s, max {max(lags):.2f}s")
    st = diff(lister(west, f"t-{unique}/"), lister(east, f"t-{unique}/"))
    assert st.ok and st.compared == 5


def test_uploads_paused_replication_holds_objects_back_the_canary_lag_grows_and_resume_catches_up(
        upload_buckets, uploads_replication, unique, stack_env):
    comp, state = uploads_replication
    west, east = upload_buckets[WEST], upload_buckets[EAST]
    # a canary before the outage arrives
    t1 = datetime.now(UTC)
    k1 = canary.key(t1, WEST)
    west.put(k1, canary.body(t1, WEST, 1))
    info, _ = wait_for(east, k1)
    assert info is not None
    arrived = {k1: datetime.now(UTC)}

    t_pause = time.monotonic()
    assert comp.pause(state) in ("stopped", "killed")
    assert comp.replication_status(state)["state"] == "paused"
    rep = json.loads(Path(stack_env["LIFEBOAT_UPLOADS_REPLICATION_FILE"]).read_text())
    assert rep["ReplicationConfiguration"]["Rules"][0]["Status"] == "Disabled" and rep["paused"] is True

    keys = [f"t-{unique}/during-outage-{i}.bin" for i in range(3)]
    for k in keys:
        west.put(k, k.encode() * 100)
    t2 = datetime.now(UTC)
    k2 = canary.key(t2, WEST)
    west.put(k2, canary.body(t2, WEST, 2))
    time.sleep(5.0)
    assert [east.head(k) for k in [*keys, k2]] == [None] * 4, "nothing may replicate while filer.sync is stopped"
    lag = canary.lag([(k1, arrived[k1]), (k2, None)], now=datetime.now(UTC))
    assert lag.oldest_pending_key == k2 and lag.lag_s >= 5.0
    assert lag.exceeds(4.0)  # an RPO of 4 s is already broken; an hour-long outage breaks 1 h the same way

    t_resume = time.monotonic()
    comp.resume(state)
    assert comp.replication_status(state)["state"] == "running"
    waited = []
    for k in [*keys, k2]:
        info, _ = wait_for(east, k)
        assert info is not None, f"{k} did not arrive after resume"
        waited.append(time.monotonic() - t_resume)
    print(f"\n[measure] filer.sync resumed from its checkpoint: 4 objects written during a "
          f"{t_resume - t_pause:.1f}s outage caught up {max(waited):.2f}s after resume")
    rep = json.loads(Path(stack_env["LIFEBOAT_UPLOADS_REPLICATION_FILE"]).read_text())
    assert rep["ReplicationConfiguration"]["Rules"][0]["Status"] == "Enabled"
    assert canary.lag([(k1, arrived[k1]), (k2, datetime.now(UTC))], now=datetime.now(UTC)).pending == 0


def test_uploads_inventory_diff_names_exactly_the_keys_a_paused_replication_missed_and_repair_copies_them(
        upload_buckets, uploads_replication, unique):
    comp, state = uploads_replication
    west, east = upload_buckets[WEST], upload_buckets[EAST]
    prefix = f"t-{unique}/"
    before = [f"{prefix}before-{i}" for i in range(3)]
    for k in before:
        west.put(k, k.encode())
    for k in before:
        assert wait_for(east, k)[0] is not None
    comp.pause(state)
    missed = [f"{prefix}missed-{i}" for i in range(4)]
    for k in missed:
        west.put(k, k.encode() * 10)
    st = diff(lister(west, prefix), lister(east, prefix), page_size=2)
    assert st.complete and st.keys(MISSING) == missed and not st.ok
    for key in repair_plan(st):
        copied = west.copy_to(east, key)
        assert copied.etag == west.head(key).etag
    after = diff(lister(west, prefix), lister(east, prefix))
    assert after.ok and after.compared == 7
    comp.resume(state)


def test_uploads_replication_configuration_and_versioning_on_seaweedfs(upload_buckets, unique):
    west, east = upload_buckets[WEST], upload_buckets[EAST]
    assert west.replication() is None  # GetBucketReplication: ReplicationConfigurationNotFoundError
    with pytest.raises(ServiceUnsupported, match="PutBucketReplication failed: NotImplemented"):
        west.put_replication({"Role": "arn:aws:iam::123456789012:role/crr", "Rules": [{
            "ID": "all", "Priority": 1, "Status": "Enabled", "Filter": {"Prefix": ""},
            "DeleteMarkerReplication": {"Status": "Disabled"},
            "Destination": {"Bucket": f"arn:aws:s3:::{east.bucket}"}}]})
    # versioning is a bucket setting (not replicated); the devstack enables it on both sides, as CRR needs
    assert (west.versioning(), east.versioning()) == ("Enabled", "Enabled")
    key = f"t-{unique}/versioned.txt"
    ids = [west.put(key, body).version_id for body in (b"one", b"two two")]
    assert all(ids) and ids[0] != ids[1]
    # filer.sync copies the version files themselves: both versions arrive under the same ids
    def version_sets_differ(st):
        return st.counts[MISSING] or any("versions" in f["detail"] for f in st.findings)

    deadline = time.monotonic() + ARRIVAL_TIMEOUT_S
    versions = diff_versions(west, east, f"t-{unique}/")
    while version_sets_differ(versions) and time.monotonic() < deadline:
        time.sleep(0.1)
        versions = diff_versions(west, east, f"t-{unique}/")
    assert versions.complete and versions.compared == 1
    assert not version_sets_differ(versions), versions.findings
    assert east.get(key, version_id=ids[0]) == b"one" and east.get(key, version_id=ids[1]) == b"two two"
    # ...but not always the "latest" pointer: measured here, in about half the runs the us-east-1 key's
    # current version stays the OLDER one ("one") although both version files arrived. The latest-version
    # diff the objects engine verifies with must name exactly that, and the guarded repair fix it.
    stale = east.head(key).version_id != ids[1]
    latest = diff(lister(west, f"t-{unique}/"), lister(east, f"t-{unique}/"))
    print(f"\n[measure] filer.sync versioned key: us-east-1 latest pointer {'STALE' if stale else 'current'}")
    assert latest.ok is (not stale), latest.findings
    if stale:
        assert latest.keys(DIFFERENT) == [key]
        for k in repair_plan(latest, include_different=True):
            west.copy_to(east, k)
        assert east.get(key) == b"two two"
        assert diff(lister(west, f"t-{unique}/"), lister(east, f"t-{unique}/")).ok


def diff_versions(west, east, prefix):
    from lifeboat.objects.diff import versions_lister

    def pages(bucket):
        return versions_lister(lambda marker, limit: bucket.list_versions_page(marker, limit, prefix=prefix))

    return diff(pages(west), pages(east), compare_versions=True)

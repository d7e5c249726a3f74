"""Elasticsearch against the real local node: snapshots, verification, restore tests, retention, bad inputs."""

from __future__ import annotations

import contextlib
import json
import time
import urllib.request
from datetime import timedelta
from pathlib import Path

import pytest

from lifeboat import jobs
from lifeboat.catalog import Catalog
from lifeboat.drills import DrillRecorder
from lifeboat.errors import CommandFailed, InventoryError, Refused, RestoreFailed
from lifeboat.inventory import Objectives
from tests.damage import flipped

pytestmark = pytest.mark.integration


def drill_for(engine, tag: str) -> DrillRecorder:
    return DrillRecorder(datastore=engine.name, type_=f"restore_test_{tag}", objectives=Objectives(),
                         repo=engine.ctx.repo, run={"dag_id": "pytest", "run_id": tag})


def restored_left(es) -> list[str]:
    return sorted(es.indices.get(index="restored-*", expand_wildcards="all"))


def rest(method: str, url: str, body: dict | None = None) -> dict:
    """Plain HTTP, no client library: what an operator with curl would do."""
    req = urllib.request.Request(url, method=method, data=None if body is None else json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(req, timeout=60) as r:
        return json.loads(r.read() or b"{}")


def test_elasticsearch_restore_test_restores_exactly_the_snapshot_docs(es_engine_with, es, unique):
    """index -> snapshot -> delete/alter documents -> restore test: the renamed indices hold exactly
    the snapshot's documents (every document of community-users is hashed), the live ones keep the edits."""
    eng = es_engine_with(sample_docs=1000)
    hb = jobs.heartbeat("elasticsearch")
    m = eng.backup("snapshot", f"elasticsearch-snapshot-exact-{unique}")
    assert m.counts["community-users"] == 200 and m.counts["community-posts"] == 600
    assert m.native["changed_during_snapshot"] == [], "nobody writes during the test: counts must be exact"
    assert len(m.native["samples"]["community-users"]) == 200
    assert m.native["index_shards"] == {"community-posts": 2, "community-users": 1, "lifeboat-heartbeat": 1}
    assert m.native["state"] == "SUCCESS" and m.position["snapshot"] == m.id.lower()

    es.delete(index="community-users", id="community-users-7", refresh=True)
    es.index(index="community-users", id="community-users-8", document={"n": -1, "title": "altered"}, refresh=True)
    es.index(index="community-posts", id="extra", document={"n": 9999}, refresh=True)
    try:
        drill = drill_for(eng, unique)
        eng.restore_test(m, "latest", drill)
        d = drill.finish()
        assert d.verdict == "pass", d.reasons
        steps = {s.name: s for s in d.steps}
        assert steps["doc counts"].detail == "community-posts=600, community-users=200, lifeboat-heartbeat=" \
            + str(m.counts["lifeboat-heartbeat"])
        assert steps["sampled document hashes"].detail.startswith(
            f"{sum(len(v) for v in m.native['samples'].values())} documents identical")
        assert 0 < d.rto_seconds < 120
        assert d.newest_heartbeat_at.isoformat() >= hb["written_at"] and 0 <= d.rpo_seconds < 120
        assert restored_left(es) == [], "restored indices are deleted after the drill"
        assert es.count(index="community-users")["count"] == 199, "the live index was not touched"
        assert es.get(index="community-users", id="community-users-8")["_source"]["title"] == "altered"
    finally:
        from tests.fixtures import es_seed

        es_seed()

    # The restore test catches a snapshot that does not hold what its manifest says.
    bad = m.model_copy(update={"counts": {**m.counts, "community-users": 201}})
    drill = drill_for(eng, unique + "b")
    with pytest.raises(RestoreFailed, match="community-users: snapshot had 201, restored 200"):
        eng.restore_test(bad, "latest", drill)
    assert drill.finish(RestoreFailed("x")).verdict == "fail"
    assert restored_left(es) == []


def test_elasticsearch_snapshot_restorable_with_plain_rest_api(es_engine, es_url, unique):
    """No project code: register the repository read-only under another name, restore, count."""
    m = es_engine.backup("snapshot", f"elasticsearch-snapshot-plain-{unique}")
    repo = f"plain-{unique}"
    location = m.native["repository_location"]
    rest("PUT", f"{es_url}/_snapshot/{repo}", {"type": "fs", "settings": {"location": location, "readonly": True}})
    try:
        snaps = rest("GET", f"{es_url}/_snapshot/{repo}/_all")["snapshots"]
        assert m.native["snapshot"] in [s["snapshot"] for s in snaps]
        rest("POST", f"{es_url}/_snapshot/{repo}/{m.native['snapshot']}/_restore?wait_for_completion=true",
             {"indices": "community-*", "include_global_state": False, "rename_pattern": "(.+)",
              "rename_replacement": f"plain-{unique}-$1"})
        health = rest("GET", f"{es_url}/_cluster/health/plain-{unique}-*?wait_for_status=yellow&timeout=60s")
        assert health["status"] in ("green", "yellow") and not health["timed_out"]
        for index in ("community-posts", "community-users"):
            got = rest("GET", f"{es_url}/plain-{unique}-{index}/_count")["count"]
            assert got == m.counts[index]
    finally:
        for index in ("community-posts", "community-users"):
            with contextlib.suppress(urllib.error.HTTPError):
                rest("DELETE", f"{es_url}/plain-{unique}-{index}")
        rest("DELETE", f"{es_url}/_snapshot/{repo}")  # unregisters only; the snapshots stay


def test_elasticsearch_verify_passes_and_names_a_flipped_byte(es_engine, unique):
    m = es_engine.backup("snapshot", f"elasticsearch-snapshot-flip-{unique}")
    (quick,) = es_engine.verify_new([m])  # right after the backup: only the blobs this snapshot wrote
    assert quick.ok and "new blobs" in next(c.detail for c in quick.checks if c.name == "repository blob checksums")
    (v,) = es_engine.verify([m])
    assert v.ok, v.problems
    assert {c.name for c in v.checks} >= {"repository verify", "snapshot state", "shard metadata", "covered indices",
                                          "manifest counts", "repository blob checksums", "artifact checksums"}
    root = Path(m.native["repository_location"])
    data = json.loads((root / f"index-{int.from_bytes((root / 'index.latest').read_bytes(), 'big')}").read_bytes())
    folder = root / "indices" / data["indices"]["community-posts"]["id"]
    victim = max((p for p in folder.rglob("__*") if p.is_file()), key=lambda p: p.stat().st_size)
    with flipped(victim):
        (v,) = es_engine.verify([m])
    assert not v.ok
    (bad,) = [c for c in v.checks if not c.ok]
    assert bad.name == "repository blob checksums" and str(victim) in bad.detail and "CRC32" in bad.detail
    assert Catalog(es_engine.ctx.repo).last_verification("elasticsearch", m.id).ok is False


def test_elasticsearch_retried_backup_reuses_manifest_and_replaces_unfinished_attempt(es_engine, es, unique):
    backup_id = f"elasticsearch-snapshot-retry-{unique}"
    snap = es_engine.snapshot_name(backup_id)
    # A previous attempt of the same task got as far as a snapshot but never wrote its manifest.
    es.snapshot.create(repository="lifeboat", snapshot=snap, indices="community-users", wait_for_completion=True,
                       metadata={"lifeboat_backup_id": backup_id})
    m = es_engine.backup("snapshot", backup_id)
    assert set(m.native["indices"]) >= {"community-posts", "community-users"}, "the attempt was replaced"
    again = es_engine.backup("snapshot", backup_id)
    assert again.native["uuid"] == m.native["uuid"], "a retried task returns the committed backup"
    assert [s["snapshot"] for s in es.snapshot.get(repository="lifeboat", snapshot=snap)["snapshots"]] == [snap]
    # A same-named snapshot Lifeboat did not take is never touched.
    other = f"elasticsearch-snapshot-foreign-{unique}"
    es.snapshot.create(repository="lifeboat", snapshot=es_engine.snapshot_name(other), indices="community-users",
                       wait_for_completion=True)
    with pytest.raises(Refused, match="did not take"):
        es_engine.backup("snapshot", other)
    es.snapshot.delete(repository="lifeboat", snapshot=es_engine.snapshot_name(other))


def test_elasticsearch_slm_retention_removes_only_what_its_rules_allow(es_engine_with, es, unique):
    name = f"es_ret_{unique}"  # its own catalog folder, so other tests' backups do not count
    eng = es_engine_with(name=name, indices=["community-users"], sample_docs=2,
                         slm_retention={"expire_after": "7d", "min_count": 2, "max_count": 3})
    made = [eng.backup("snapshot", f"{name}-snapshot-{i}") for i in range(4)]  # oldest first
    snaps = {m.native["snapshot"] for m in made}

    plan = eng.retention_plan()
    assert [m.id for m in plan.delete] == [made[0].id], "beyond max_count=3 only the oldest goes"
    assert plan.keep[made[3].id] == ["min_count=2"] and "expire_after=7d" in plan.keep[made[1].id]

    (v,) = eng.verify([made[1]])
    assert v.ok, v.problems
    later = eng.retention_plan(now=made[-1].finished_at + timedelta(days=8))
    # min_count keeps the newest two although expired; the newest verified backup is kept too.
    assert {m.id for m in later.delete} == {made[0].id}
    assert "newest verified" in later.keep[made[1].id]

    for m in plan.delete:
        eng.delete_backup(m)
    left = {s["snapshot"] for s in es.snapshot.get(repository="lifeboat", snapshot=",".join(snaps),
                                                    ignore_unavailable=True)["snapshots"]}
    assert left == snaps - {made[0].native["snapshot"]}
    assert [m.id for m in Catalog(eng.ctx.repo).backups(name)] == [m.id for m in made[1:]]
    for m in made[1:]:
        eng.delete_backup(m)
    assert Catalog(eng.ctx.repo).backups(name) == []


def test_elasticsearch_unknown_repository_fails_naming_it_and_restores_nothing(es_engine, es, unique):
    m = es_engine.backup("snapshot", f"elasticsearch-snapshot-unknown-{unique}")
    bad = m.model_copy(update={"native": {**m.native, "repository": f"nope-{unique}"}})
    drill = drill_for(es_engine, unique)
    with pytest.raises(RestoreFailed, match=f"unknown snapshot repository 'nope-{unique}'"):
        es_engine.restore_test(bad, "latest", drill)
    assert restored_left(es) == []
    (v,) = es_engine.verify([bad])
    assert not v.ok and f"unknown repository 'nope-{unique}'" in v.problems[0]


def test_elasticsearch_missing_index_fails_naming_the_inventory_field(es_engine_with, es_engine, es, unique):
    with pytest.raises(InventoryError, match=r"options\.indices: no index matches 'nope-index'"):
        es_engine_with(indices=["community-users", "nope-index"]).backup(
            "snapshot", f"elasticsearch-snapshot-mi-{unique}")
    m = es_engine.backup("snapshot", f"elasticsearch-snapshot-mi2-{unique}")
    bad = m.model_copy(update={"native": {**m.native, "indices": [*m.native["indices"], "gone-index"]}})
    with pytest.raises(RestoreFailed, match="missing index: gone-index not in snapshot"):
        es_engine.restore_test(bad, "latest", drill_for(es_engine, unique))
    assert restored_left(es) == []


def test_elasticsearch_repository_path_not_whitelisted_is_refused(es_engine_with, es, tmp_path, unique):
    eng = es_engine_with(repository={"name": f"outside-{unique}", "type": "fs", "location": str(tmp_path / "repo")})
    with pytest.raises(Refused, match=r"options\.repository\.location: .* not under the nodes' path\.repo"):
        eng.backup("snapshot", f"elasticsearch-snapshot-wl-{unique}")
    assert f"outside-{unique}" not in es.snapshot.get_repository()
    s3 = es_engine_with(repository={"name": f"s3-{unique}", "type": "s3", "bucket": "b"})
    with pytest.raises(Refused, match=r"options\.repository\.type: .* repository-s3"):
        s3.backup("snapshot", f"elasticsearch-snapshot-s3-{unique}")


def test_elasticsearch_red_index_refuses_the_snapshot(es_engine_with, es, unique):
    index = f"red-{unique}"
    es.indices.create(index=index, settings={"number_of_shards": 1, "number_of_replicas": 0,
                                             "index.routing.allocation.require._name": "no-such-node"},
                      wait_for_active_shards="0")
    try:
        eng = es_engine_with(indices=["community-users", index])
        deadline = time.time() + 30
        while es.cluster.health(index=index)["status"] != "red":
            assert time.time() < deadline
            time.sleep(0.2)
        with pytest.raises(Refused, match=f"red for covered indices: {index}"):
            eng.backup("snapshot", f"elasticsearch-snapshot-red-{unique}")
    finally:
        es.indices.delete(index=index)


def test_elasticsearch_restore_into_red_cluster_fails_fast_and_cleans_up(es_engine, es, unique):
    m = es_engine.backup("snapshot", f"elasticsearch-snapshot-redrestore-{unique}")
    es.cluster.put_settings(persistent={"cluster.routing.allocation.enable": "none"})
    try:
        drill = drill_for(es_engine, unique)
        t = time.monotonic()
        with pytest.raises(RestoreFailed, match="is red and cannot be allocated") as err:
            es_engine.restore_test(m, "latest", drill)
        assert time.monotonic() - t < 60, "red is detected, not waited out"
        assert "allocation" in str(err.value)
        assert drill.drill.steps[-1].name == "delete restored indices" and drill.drill.steps[-1].ok
    finally:
        es.cluster.put_settings(persistent={"cluster.routing.allocation.enable": None})
    assert restored_left(es) == []


def test_elasticsearch_snapshot_still_in_progress_at_timeout_is_aborted(es_engine_with, es, unique):
    """A repository throttled to 1 kB/s cannot finish within snapshot_timeout: clear failure, snapshot aborted."""
    from tests.fixtures import es_seed

    es_seed({f"slow-{unique}": 3000})
    repo = f"slow-{unique}"
    location = str(Path(es_engine_with().options.repository.location).parent / repo)
    eng = es_engine_with(indices=[f"slow-{unique}"], snapshot_timeout="2s", poll_interval="0.5s",
                         repository={"name": repo, "type": "fs", "location": location,
                                     "settings": {"max_snapshot_bytes_per_sec": "1kb"}})
    try:
        with pytest.raises(CommandFailed, match=r"still IN_PROGRESS after snapshot_timeout=2s .* aborted"):
            eng.backup("snapshot", f"elasticsearch-snapshot-slow-{unique}")
        assert es.snapshot.get(repository=repo, snapshot="_all")["snapshots"] == []
        assert eng.ctx.repo.manifest(eng.name, f"elasticsearch-snapshot-slow-{unique}") is None
    finally:
        es.indices.delete(index=f"slow-{unique}")
        es.snapshot.delete_repository(name=repo)


def test_elasticsearch_restore_test_through_jobs_records_a_drill(es_engine, unique):
    """The path the monthly DAG takes: jobs.backup -> jobs.verify -> jobs.restore_test (newest verified)."""
    from datetime import UTC, datetime

    jobs.heartbeat("elasticsearch")
    b = jobs.backup("elasticsearch", "snapshot", datetime.now(UTC), run={"dag_id": "pytest", "run_id": unique})
    v = jobs.verify("elasticsearch", [b["backup_id"]])
    assert v["verified"] == [b["backup_id"]]
    r = jobs.restore_test("elasticsearch", run={"dag_id": "pytest", "run_id": unique})
    assert r["verdict"] == "pass" and r["backup_id"] == b["backup_id"], r
    d = es_engine.ctx.repo.drill(r["drill_id"])
    assert d.rpo_seconds is not None and d.rto_seconds is not None


def test_elasticsearch_counts_are_exact_when_quiet_and_ranges_when_written(es_engine, es, unique):
    """A writer keeps indexing into community-posts while the snapshot runs: that index gets a range
    (no exact count exists), the untouched one an exact count, and the restore test still passes."""
    import threading

    stop = threading.Event()
    written = []

    def writer():
        while not stop.is_set():
            es.index(index="community-posts", id=f"w-{unique}-{len(written)}", document={"n": len(written)})
            written.append(1)

    t = threading.Thread(target=writer, daemon=True)
    t.start()
    try:
        while len(written) < 5:
            time.sleep(0.01)
        m = es_engine.backup("snapshot", f"elasticsearch-snapshot-busy-{unique}")
    finally:
        stop.set()
        t.join(timeout=30)
    try:
        assert "community-posts" in m.native["changed_during_snapshot"] and "community-posts" not in m.counts
        lo, hi = m.native["count_ranges"]["community-posts"]
        assert 600 < lo <= hi <= 600 + len(written)
        assert m.counts["community-users"] == 200, "an index nobody wrote to keeps its exact count"
        drill = drill_for(es_engine, unique)
        es_engine.restore_test(m, "latest", drill)
        d = drill.finish()
        assert d.verdict == "pass", d.reasons
        assert restored_left(es) == []
    finally:
        from tests.fixtures import es_seed

        es_seed()

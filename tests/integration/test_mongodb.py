"""MongoDB against the real local MongoDB-wire server (FerretDB v1.24 on SQLite, with its OpLog).

Each test uses its own database `t_<unique>` and its own datastore name `mongodb_<unique>` (= its own
catalog folder), so tests neither see each other's backups nor the demo's.

What FerretDB proves and what it cannot: see docs/datastores/mongodb.md. The one place with
synthetic input is test_mongodb_replay_applies_every_mongodb_update_form: FerretDB's OpLog writes
only i/d entries and whole-document updates, so the update forms MongoDB 6.0+ writes ($v:2 diffs,
$v:1 modifiers, replacements, transactions, commands) are given as literal oplog entries in
MongoDB's format and replayed into scratch databases on the real server.
"""

from __future__ import annotations

import gzip
import json
import os
import re
import shutil
import time
from datetime import timedelta

import bson
import pytest
from bson import Binary, Int64, ObjectId, Timestamp
from bson.json_util import loads

from lifeboat import jobs
from lifeboat.datastores.mongodb import SCRATCH_PREFIX, OplogApplier, ScratchDatabases, apply_diff
from lifeboat.drills import DrillRecorder
from lifeboat.errors import ConnectionConfigError, Refused, RestoreFailed
from lifeboat.inventory import Objectives
from lifeboat.records import utcnow
from tests.damage import flip_byte

pytestmark = pytest.mark.integration
MINUTELY = {"full": "0 * * * *", "oplog": "* * * * *"}


# ----------------------------------------------------------------------------------------- helpers

@pytest.fixture
def iso(mongo_engine_with, mongo, unique):
    """An isolated engine: its own datastore name (catalog folder) and its own database. The test
    stack's oplog is small (2 MiB, see devstack) and test traffic fills it in minutes, so the
    headroom alert margin is a minute here and oplog backups run every minute, not the inventory's
    hours and quarter hours (the alert itself is tested with explicit settings below)."""
    db = f"t_{unique}"
    eng = mongo_engine_with(name=f"mongodb_{unique}", databases=[db], heartbeat_database=db,
                            oplog_alert_margin="1m", schedules=MINUTELY)
    yield eng, mongo[db]
    eng.ctx.repo.primary.delete_prefix(f"{eng.name}/")  # this test's own catalog folder
    mongo.drop_database(db)
    for name in mongo.list_database_names():
        if name.startswith(SCRATCH_PREFIX) and name.endswith(f"_{db}"):
            mongo.drop_database(name)


def state(db) -> dict[str, list]:
    """Every document of every collection, in _id order, fields in stored order."""
    out = {}
    for name in sorted(db.list_collection_names()):
        out[name] = [list(d.items()) for d in db[name].find().sort("_id", 1)]
    return out


def recorder(eng, target="latest") -> DrillRecorder:
    return DrillRecorder(datastore=eng.name, type_="restore_test", objectives=Objectives(), repo=eng.ctx.repo,
                         target=target)


def restore_state(eng, full, target: str, tag: str) -> tuple[dict, object]:
    """Restore into scratch databases, read the restored state, drop the scratch databases."""
    plan = eng.plan_replay(full, target)
    with eng._session() as c:
        scratch = eng.scratch_for(c, tag)
        try:
            eng.restore_into(c, plan, scratch, recorder(eng, target))
            src = full.native["databases"][0]
            return state(c[scratch.name_for(src)]), plan
        finally:
            scratch.drop_all()


def seed(db, n=60):
    db.items.create_index("k", unique=True, name="k_unique")
    db.items.insert_many([{"_id": i, "k": f"key-{i}", "n": i, "tags": ["a", "b"], "nested": {"x": i, "y": [1, 2]},
                           "big": Int64(i) * 1_000_000_000} for i in range(n)])
    db.other.insert_many([{"_id": ObjectId(), "v": i} for i in range(10)])


# ----------------------------------------------------------------------------------------- PITR

def test_mongodb_pitr_between_two_writes_restores_exact_state(iso, unique):
    """insert/update/delete across a full and two oplog backups; PITR to a time between two writes."""
    eng, db = iso
    seed(db)
    full = eng.backup("full", f"pitr-full-{unique}")
    assert full.position["counts_exact"] and full.counts[f"{db.name}.items"] == 60

    db.items.insert_many([{"_id": 100 + i, "k": f"new-{i}", "n": -i} for i in range(5)])
    db.items.update_one({"_id": 1}, {"$set": {"n": 1001, "nested.x": "changed"}, "$unset": {"tags": ""}})
    db.items.update_many({"_id": {"$lt": 10}}, {"$inc": {"n": 5}})
    db.items.delete_many({"_id": {"$in": [20, 21, 22]}})
    db.items.replace_one({"_id": 30}, {"k": "key-30", "replaced": True})
    db.other.delete_one({})
    i1 = eng.backup("oplog", f"pitr-i1-{unique}")

    db.items.update_one({"_id": 2}, {"$push": {"tags": "c"}, "$set": {"nested.y.0": 99}})
    db.items.delete_one({"_id": 100})
    db.fresh.insert_one({"_id": "made-after-i1", "v": 1})  # a collection created after the full
    db.items.update_one({"_id": 3}, {"$set": {"w": "first write"}})  # W1
    expected = state(db)
    time.sleep(0.05)
    target = utcnow()
    time.sleep(0.05)
    db.items.update_one({"_id": 3}, {"$set": {"w": "second write"}})  # W2: after the target
    db.items.delete_many({"_id": {"$gte": 40}})
    db.fresh.insert_one({"_id": "late", "v": 2})
    final = state(db)
    i2 = eng.backup("oplog", f"pitr-i2-{unique}")
    assert i1.parent == full.id and i2.parent == i1.id
    assert i2.position["from_ts"] == i1.position["until_ts"] and i2.position["entries"] > 0

    restored, plan = restore_state(eng, full, target.isoformat(), f"pitr-{unique}")
    assert [m.id for m in plan.slices] == [i1.id, i2.id]
    assert restored == expected, "the restored database must be exactly the state at the target time"
    assert restored["items"] != final["items"]

    restored_latest, _ = restore_state(eng, full, "latest", f"pitr-latest-{unique}")
    assert restored_latest == final


def test_mongodb_restore_test_drill_measures_rto_rpo_and_drops_scratch(iso, mongo, unique):
    eng, db = iso
    seed(db, 80)
    full = eng.backup("full", f"drill-full-{unique}")
    db.items.update_many({}, {"$set": {"touched": True}})
    hb = eng.heartbeat()
    i1 = eng.backup("oplog", f"drill-i1-{unique}")
    assert i1.position["counts_exact"] and i1.counts[f"{db.name}.lifeboat_heartbeat"] >= 1

    rec = recorder(eng)
    eng.restore_test(full, "latest", rec)
    d = rec.finish()
    assert d.verdict == "pass", d.reasons
    names = [s.name for s in d.steps]
    assert "load full dump" in names and "documents match the dump" in names
    assert f"counts at {full.position['until_ts']}" in names and f"counts at {i1.position['until_ts']}" in names
    assert all(s.ok for s in d.steps), [(s.name, s.detail) for s in d.steps if not s.ok]
    assert d.newest_heartbeat_at == hb
    assert 0 < d.rto_seconds < 120 and 0 <= d.rpo_seconds < 60
    assert not [n for n in mongo.list_database_names() if n.startswith(SCRATCH_PREFIX) and n.endswith(db.name)], \
        "the scratch databases are dropped"



@pytest.mark.parametrize("mode", ["loaded", "read_back"])
def test_mongodb_restore_test_fails_when_the_documents_differ_from_the_dump(iso, unique, mode):
    """The content check can fail, in both modes: one document of the dump file changed (valid gzip and
    BSON, same count: only the content hash can tell) fails 'documents match the dump' naming the collection."""
    from lifeboat.datastores.mongodb.bsonio import iter_raw_bson

    eng, db = iso
    eng.options = eng.options.model_copy(update={"restore_content_check": mode})
    seed(db, 50)
    full = eng.backup("full", f"differ-{mode}-{unique}")
    path = eng.ctx.repo.primary.local_path(f"{eng.name}/backups/{full.id}/"
                                           f"{full.native['collections'][f'{db.name}.items']['file']}")
    with gzip.open(path) as fh:
        raws = list(iter_raw_bson(fh))
    doc = bson.decode(raws[7])
    doc["n"] = -7
    raws[7] = bson.encode(doc)
    path.write_bytes(gzip.compress(b"".join(raws)))
    rec = recorder(eng)
    with pytest.raises(RestoreFailed, match=rf"differ from the dump: {db.name}\.items: .*hash"):
        eng.restore_test(full, "latest", rec)
    failed = [s for s in rec.drill.steps if s.ok is False]
    assert [s.name for s in failed] == ["documents match the dump"], [(s.name, s.detail) for s in rec.drill.steps]
    assert rec.drill.ready_at is None, "the RTO clock never stops on a restore that differs from the dump"

def test_mongodb_inventory_datastore_backs_up_verifies_and_drills(stack_env, mongo):
    """The inventory's `mongodb` datastore through the jobs the DAG families call."""
    jobs.heartbeat("mongodb")
    stamp = utcnow()
    f = jobs.backup("mongodb", "full", stamp)
    jobs.heartbeat("mongodb")
    o = jobs.backup("mongodb", "oplog", stamp + timedelta(minutes=1))
    assert o["parent"] is not None
    summary = jobs.verify("mongodb", [f["backup_id"], o["backup_id"]], raise_on_failure=False)
    # The test stack's small oplog under test traffic may legitimately raise the headroom alert;
    # everything about the backups themselves must pass.
    problems = [p for ps in summary["failed"].values() for p in ps]
    assert all(p.startswith("oplog window headroom") for p in problems), problems
    result = jobs.restore_test("mongodb", f["backup_id"], "latest", run={"dag_id": "pytest", "run_id": "inv"})
    assert result["verdict"] == "pass" and result["rpo_seconds"] < 60


# ----------------------------------------------------------------------------------------- verification

def test_mongodb_missing_oplog_backup_fails_verification_naming_range(iso, unique, tmp_path):
    eng, db = iso
    seed(db, 20)
    full = eng.backup("full", f"gap-full-{unique}")
    db.items.insert_one({"_id": 500})
    i1 = eng.backup("oplog", f"gap-i1-{unique}")
    db.items.insert_one({"_id": 501})
    i2 = eng.backup("oplog", f"gap-i2-{unique}")
    (v,) = eng.verify([i2])
    assert v.ok, v.problems

    manifest = eng.ctx.repo.primary.local_path(f"{eng.name}/backups/{i1.id}/manifest.json")
    shutil.move(manifest, tmp_path / "manifest.json")
    try:
        (v,) = eng.verify([i2])
        with pytest.raises(Refused, match="outside the chain") as err:
            eng.plan_replay(full, i2.position["until_ts"])
    finally:
        shutil.move(tmp_path / "manifest.json", manifest)
    chain = next(c for c in v.checks if c.name == "oplog chain")
    assert not v.ok and not chain.ok
    assert i1.id in chain.detail
    assert full.position["until_ts"] in chain.detail and i2.position["from_ts"] in chain.detail, chain.detail
    assert i1.position["from_ts"] in str(err.value)


def test_mongodb_corrupted_bson_file_fails_verification_naming_file(iso, unique):
    eng, db = iso
    seed(db, 300)
    full = eng.backup("full", f"corrupt-full-{unique}")
    (v,) = eng.verify([full])
    assert v.ok, v.problems
    victim = full.native["collections"][f"{db.name}.items"]["file"]
    flip_byte(eng.ctx.repo.primary.local_path(f"{eng.name}/backups/{full.id}/{victim}"))
    (v,) = eng.verify([full])
    assert not v.ok
    parse = next(c for c in v.checks if c.name == "BSON files parse")
    assert not parse.ok and f"{full.id}/{victim}" in parse.detail, parse.detail
    assert victim in next(c for c in v.checks if c.name == "artifact checksums").detail

    with pytest.raises(RestoreFailed, match="cannot read it back") as err:  # a restore fails loudly, naming it
        eng.restore_test(full, "latest", recorder(eng))
    assert victim in str(err.value)


def test_mongodb_layout_restores_with_plain_pymongo(iso, mongo, unique):
    """Restorable without this project: the dump directory read with pymongo/bson and gzip only.

    The real mongorestore cannot be built here: the Go module proxy refuses every version of
    github.com/mongodb/mongo-tools ("403 Forbidden: This module version is not available") and
    Debian 12 has no mongo-tools package. So this reader does what `mongorestore --gzip
    --oplogReplay dump/` does with the files (its name rules: <db>/<coll>.bson.gz,
    <coll>.metadata.json.gz, a top-level oplog.bson that is gzip-compressed under --gzip)."""
    eng, db = iso
    seed(db, 120)
    full = eng.backup("full", f"plain-full-{unique}")
    dump = eng.ctx.repo.primary.local_path(f"{eng.name}/backups/{full.id}/dump")
    target = mongo[f"{SCRATCH_PREFIX}plain_{unique}"]
    try:
        restored = {}
        for bson_gz in sorted((dump / db.name).glob("*.bson.gz")):
            coll = bson_gz.name[: -len(".bson.gz")]
            meta = loads(gzip.decompress((dump / db.name / f"{coll}.metadata.json.gz").read_bytes()).decode())
            assert meta["collectionName"] == coll and meta["type"] == "collection"
            with gzip.open(bson_gz) as fh:
                docs = list(bson.decode_file_iter(fh))
            if docs:
                target[coll].insert_many(docs)
            for ix in meta["indexes"]:
                if ix["name"] != "_id_":
                    target[coll].create_index(list(ix["key"].items()), name=ix["name"], unique=ix.get("unique", False))
            restored[coll] = target[coll].count_documents({})
        assert restored["items"] == 120 and restored["other"] == 10
        assert {f"{db.name}.{k}": v for k, v in restored.items()} == {
            ns: info["documents"] for ns, info in full.native["collections"].items()}
        assert "k_unique" in target.items.index_information()
        with gzip.open(dump / "oplog.bson") as fh:
            oplog = list(bson.decode_file_iter(fh))
        assert len(oplog) == full.native["oplog"]["entries"]
        assert all(e["ns"].startswith(db.name + ".") for e in oplog)
        json.dumps(full.model_dump(mode="json"))  # the manifest is plain JSON
        assert "mongorestore --gzip --oplogReplay" in full.restore_hint
    finally:
        mongo.drop_database(target.name)


# ----------------------------------------------------------------------------------------- replay formats

def test_mongodb_replay_applies_every_mongodb_update_form(mongo, unique):
    """Oplog entries exactly as MongoDB 6.0+ writes them, replayed into scratch dbs on the real server."""
    scratch = ScratchDatabases(mongo, f"forms-{unique}", live={"community"})
    applier = OplogApplier(scratch, lambda d: d == "app")
    ts = iter(Timestamp(1_800_000_000, i) for i in range(1, 100))

    def e(op, o, o2=None, ns="app.c", **extra):
        d = {"op": op, "ns": ns, "ts": next(ts), "o": o, **extra}
        if o2 is not None:
            d["o2"] = o2
        return d

    lsid = {"id": Binary(b"s" * 16, 4)}

    def txn(n, o):
        return e("c", o, ns="admin.$cmd", lsid=lsid, txnNumber=Int64(n))

    entries = [
        e("c", {"create": "c"}, ns="app.$cmd"),
        e("i", {"_id": 1, "a": 1, "b": {"x": 1, "y": 2}, "arr": [1, 2, 3, 4], "gone": True}),
        e("i", {"_id": 2, "v": 1}),
        e("i", {"_id": 3, "v": 1}),
        # $v:2 diff: update a, delete gone, insert new, nested sub-diff, array: set [1], truncate to 3
        e("u", {"$v": 2, "diff": {"u": {"a": 2}, "d": {"gone": False}, "i": {"new": "n"},
                                  "sb": {"u": {"x": 10}, "i": {"z": 3}},
                                  "sarr": {"a": True, "l": 3, "u1": 20}}}, {"_id": 1}),
        e("u", {"$v": 2, "diff": {"sarr": {"a": True, "u4": "grown"}}}, {"_id": 1}),  # pads with null
        e("u", {"$v": 1, "$set": {"v": 5, "m.n": 1}, "$unset": {"gone": ""}}, {"_id": 2}),  # $v:1 modifiers
        e("u", {"_id": 3, "replaced": True}, {"_id": 3}),  # replacement
        e("u", {"$v": 1, "$set": {"_id": 4, "whole": "doc"}}, {"_id": 4}),  # FerretDB's whole-document $set
        e("i", {"_id": 5, "v": 1}),
        e("d", {"_id": 5}),
        e("c", {"applyOps": [{"op": "i", "ns": "app.c", "o": {"_id": 6, "txn": 1}},
                             {"op": "u", "ns": "app.c", "o": {"$v": 2, "diff": {"u": {"txn": True}}},
                              "o2": {"_id": 2}}]}, ns="admin.$cmd"),
        # a large transaction: partialTxn entries, applied only with the final applyOps
        txn(1, {"applyOps": [{"op": "i", "ns": "app.c", "o": {"_id": 7}}], "partialTxn": True}),
        txn(1, {"applyOps": [{"op": "i", "ns": "app.c", "o": {"_id": 8}}], "count": 2}),
        # prepared transactions: one committed, one aborted
        txn(2, {"applyOps": [{"op": "i", "ns": "app.c", "o": {"_id": 9}}], "prepare": True}),
        txn(2, {"commitTransaction": 1, "commitTimestamp": Timestamp(1_800_000_000, 50)}),
        txn(3, {"applyOps": [{"op": "i", "ns": "app.c", "o": {"_id": 10}}], "prepare": True}),
        txn(3, {"abortTransaction": 1}),
        e("c", {"createIndexes": "c", "v": 2, "key": {"a": 1}, "name": "a_1"}, ns="app.$cmd"),
        e("i", {"_id": 1}, ns="elsewhere.c"),  # out of scope: not applied
        e("n", {"msg": "periodic noop"}),
    ]
    try:
        for entry in entries:
            applier.apply(entry)
        applier.flush()
        got = {d["_id"]: list(d.items()) for d in scratch.db("app").c.find()}
        assert got[1] == [("_id", 1), ("a", 2), ("b", {"x": 10, "y": 2, "z": 3}), ("arr", [1, 20, 3, None, "grown"]),
                          ("new", "n")]
        assert dict(got[2]) == {"_id": 2, "v": 5, "m": {"n": 1}, "txn": True}
        assert got[3] == [("_id", 3), ("replaced", True)]
        assert got[4] == [("_id", 4), ("whole", "doc")]
        assert 5 not in got and got[6] == [("_id", 6), ("txn", 1)]
        assert {7, 8, 9} <= set(got) and 10 not in got, sorted(got)
        assert "a_1" in scratch.db("app").c.index_information()
        assert applier.stats["out of scope"] == 1 and applier.stats["noop"] == 1
        with pytest.raises(RestoreFailed, match="not supported"):
            applier.apply(e("c", {"convertToCapped": "c", "size": 1}, ns="app.$cmd"))
    finally:
        scratch.drop_all()
    assert apply_diff({"a": {"b": [1, {"c": 1}]}}, {"sa": {"sb": {"a": True, "s1": {"u": {"c": 2}}}}}) == \
        {"a": {"b": [1, {"c": 2}]}}


# ----------------------------------------------------------------------------------------- bad inputs

def test_mongodb_restore_never_writes_to_a_live_database(iso, mongo, unique):
    eng, db = iso
    seed(db, 30)
    full = eng.backup("full", f"guard-full-{unique}")
    before = state(db)
    with eng._session() as c:
        scratch = eng.scratch_for(c, f"guard-{unique}")
        scratch.names[db.name] = db.name  # a bug that maps the scratch target onto the live database
        with pytest.raises(Refused, match="refusing to write to database"):
            eng.restore_into(c, eng.plan_replay(full, "latest"), scratch, recorder(eng))
        for live in ("admin", "local", "community", db.name):
            with pytest.raises(Refused):
                ScratchDatabases(c, "x", {"community", db.name}).guard(live)
    assert state(db) == before


def test_mongodb_not_a_replica_set_is_refused(iso, ferretdb_instance, monkeypatch):
    eng, _ = iso
    monkeypatch.setenv("AIRFLOW_CONN_LIFEBOAT_MONGO_US_WEST_2", ferretdb_instance(replset=None))
    with pytest.raises(Refused, match="not a replica set member"):
        eng.backup("full", "never-written")
    assert eng.ctx.repo.manifest(eng.name, "never-written") is None


def test_mongodb_missing_oplog_is_refused(iso, ferretdb_instance, monkeypatch):
    eng, _ = iso
    monkeypatch.setenv("AIRFLOW_CONN_LIFEBOAT_MONGO_US_WEST_2", ferretdb_instance(replset="rs-without-oplog"))
    with pytest.raises(Refused, match=re.escape("no oplog: local.oplog.rs does not exist")):
        eng.backup("oplog", "never-written")


def test_mongodb_oplog_rolled_past_last_capture_is_refused_and_alerted(iso, unique):
    """Simulated: the chain's last captured point is moved before the server's oldest oplog entry,
    which is what a too-short oplog window leaves behind."""
    eng, db = iso
    seed(db, 5)
    full = eng.backup("full", f"rolled-full-{unique}")
    old = full.model_copy(update={"position": {**full.position, "until_ts": "1000:1",
                                               "until_at": "1970-01-01T00:16:40+00:00"}})
    eng.ctx.repo.commit(old)
    with pytest.raises(Refused, match="oplog window too short") as err:
        eng.backup("oplog", f"rolled-i1-{unique}")
    assert "1000:1" in str(err.value) and full.id in str(err.value)
    (v,) = eng.verify([old])
    head = next(c for c in v.checks if c.name == "oplog window headroom")
    assert not head.ok and "ALERT" in head.detail and "already rolled past" in head.detail


def test_mongodb_headroom_alert_when_window_is_too_short_for_the_margin(iso, mongo_engine_with, unique):
    eng, db = iso
    seed(db, 5)
    full = eng.backup("full", f"headroom-full-{unique}")
    (v,) = eng.verify([full])
    head = next(c for c in v.checks if c.name == "oplog window headroom")
    assert head.ok, head.detail
    strict = mongo_engine_with(name=eng.name, databases=[db.name], heartbeat_database=db.name,
                               oplog_alert_margin="3650d", headroom_min_history="1s", schedules=MINUTELY)
    (v,) = strict.verify([full])
    head = next(c for c in v.checks if c.name == "oplog window headroom")
    assert not head.ok and head.detail.startswith("ALERT") and "alert margin" in head.detail


def test_mongodb_target_outside_the_chain_is_refused(iso, unique):
    eng, db = iso
    seed(db, 5)
    full = eng.backup("full", f"range-full-{unique}")
    with pytest.raises(Refused, match="outside the chain"):
        eng.plan_replay(full, (utcnow() + timedelta(hours=1)).isoformat())
    with pytest.raises(Refused, match="before the consistent point"):
        eng.plan_replay(full, "2020-01-01T00:00:00+00:00")
    with pytest.raises(Refused, match="no time zone"):
        eng.plan_replay(full, "2030-01-01T00:00:00")


def test_mongodb_unauthorized_user_gets_clear_error(iso, monkeypatch, mongo_uri):
    eng, _ = iso
    password = mongo_uri.split(":")[2].split("@")[0]
    monkeypatch.setenv("AIRFLOW_CONN_LIFEBOAT_MONGO_US_WEST_2", mongo_uri.replace(f":{password}@", ":wrong-pw@"))
    with pytest.raises(ConnectionConfigError, match="authentication failed") as err:
        eng.heartbeat()
    assert "lifeboat_mongo_us_west_2" in str(err.value) and "wrong-pw" not in str(err.value)
    monkeypatch.setenv("AIRFLOW_CONN_LIFEBOAT_MONGO_US_WEST_2", mongo_uri.replace(f"lifeboat:{password}@", ""))
    with pytest.raises(ConnectionConfigError, match="not authorized"):
        eng.backup("full", "never-written")


def test_mongodb_backup_is_idempotent_for_a_retried_task(iso, unique):
    eng, db = iso
    seed(db, 5)
    a = eng.backup("full", f"idem-{unique}")
    db.items.insert_one({"_id": 999})
    b = eng.backup("full", f"idem-{unique}")
    assert a == b
    assert os.path.exists(eng.ctx.repo.primary.local_path(f"{eng.name}/backups/{a.id}/manifest.json"))


def test_mongodb_dump_files_upload_during_the_consistent_point_and_a_failure_there_is_incomplete(
        iso, unique, monkeypatch):
    """The dump files are final before the counts: they upload in a helper thread while the consistent
    point is read; the oplog window file (written after it) uploads last. A failure at the consistent
    point leaves artifacts without a manifest: an interrupted (incomplete) backup, never a complete one."""
    import threading

    from lifeboat.datastores.mongodb.server import LiveServer
    from lifeboat.repository import Repository

    eng, db = iso
    seed(db, 20)
    where: dict[str, str] = {}
    put = Repository.put_artifact

    def recording_put(self, datastore, backup_id, rel, local, *a, **kw):
        where[rel] = threading.current_thread().name
        return put(self, datastore, backup_id, rel, local, *a, **kw)

    monkeypatch.setattr(Repository, "put_artifact", recording_put)
    m = eng.backup("full", f"overlap-{unique}")
    paths = [a.path for a in m.artifacts]
    assert paths == sorted(paths) and "dump/oplog.bson" in paths
    assert f"dump/t_{unique}/items.bson.gz" in paths and f"dump/t_{unique}/other.metadata.json.gz" in paths
    assert where.pop("dump/oplog.bson") == threading.current_thread().name
    assert set(where) == set(paths) - {"dump/oplog.bson"}
    assert all(name.startswith("lifeboat-mongodb-upload") for name in where.values()), where
    assert m.counts == {f"t_{unique}.items": 20, f"t_{unique}.other": 10}

    def refused(self, databases, read=None):
        raise Refused("injected: the consistent point failed")

    monkeypatch.setattr(LiveServer, "consistent_point", refused)
    with pytest.raises(Refused, match="injected"):
        eng.backup("full", f"cut-{unique}")
    assert eng.ctx.repo.manifest(eng.name, f"cut-{unique}") is None
    assert f"cut-{unique}" in eng.ctx.repo.incomplete(eng.name)


def test_mongodb_full_dump_is_its_own_consistent_point_only_when_nothing_was_written_during_it(
        iso, unique, monkeypatch):
    """A dump during which the oplog did not move (a quiet settle after it) is exact at its start: its
    own document counts are the manifest's, no second count read. A write after a collection was read,
    or a collection created during the dump (FerretDB logs no create), makes the counts be read at a
    consistent point after the dump: exact there, and the restore (dump + oplog window) equals the state."""
    from lifeboat.datastores.mongodb import engine as engine_mod
    from lifeboat.datastores.mongodb.server import LiveServer

    eng, db = iso
    seed(db, 30)
    counted: list[str] = []
    real_count = LiveServer.count

    def counting(self, database, name):
        counted.append(name)
        return real_count(self, database, name)

    monkeypatch.setattr(LiveServer, "count", counting)
    quiet = eng.backup("full", f"quiet-{unique}")
    assert counted == [], "a quiet dump needs no count read"
    assert quiet.position["counts_exact"] and quiet.position["until_ts"] == quiet.position["start_ts"]
    assert quiet.counts == {f"{db.name}.items": 30, f"{db.name}.other": 10}

    real_dump = engine_mod.dump_collections
    during = {"write": lambda: db.items.insert_many([{"_id": 1000 + i, "k": f"late-{i}"} for i in range(4)])}

    def dump_then_write(*a, **kw):
        out = real_dump(*a, **kw)
        during["write"]()  # lands after every collection was read, before the consistent point
        return out

    monkeypatch.setattr(engine_mod, "dump_collections", dump_then_write)
    busy = eng.backup("full", f"busy-{unique}")
    assert sorted(set(counted)) == ["items", "other"]
    assert busy.position["counts_exact"] and busy.position["until_ts"] != busy.position["start_ts"]
    assert busy.native["collections"][f"{db.name}.items"]["documents"] == 30  # what the dump itself read
    assert busy.counts == {f"{db.name}.items": 34, f"{db.name}.other": 10}
    final = state(db)
    restored, _ = restore_state(eng, busy, "latest", f"busy-{unique}")
    assert restored == final

    counted.clear()
    during["write"] = lambda: db.create_collection("made_during")
    created = eng.backup("full", f"created-{unique}")
    assert "made_during" in counted, "a collection created during the dump is counted, not assumed"
    assert created.counts == {f"{db.name}.items": 34, f"{db.name}.made_during": 0, f"{db.name}.other": 10}

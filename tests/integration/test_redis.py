"""Redis against the real local stack: RDB over the replication protocol, AOF copies, scratch restores.

The test stack's Redis primary/replica belong to these tests (they FLUSHALL it). Every check of the
restored data that matters is made here with plain Redis commands, not with the engine's own digest.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import threading
import time
from pathlib import Path

import pytest
import redis

from lifeboat import jobs
from lifeboat.catalog import Catalog
from lifeboat.datastores.base import EngineContext
from lifeboat.datastores.redis import RedisDatastore, ScratchRedis
from lifeboat.datastores.redis import host as redis_host
from lifeboat.datastores.redis.scratch import compare_sample
from lifeboat.drills import DrillRecorder
from lifeboat.errors import CommandFailed, ConnectionConfigError, Refused, RestoreFailed
from lifeboat.inventory import Objectives

pytestmark = pytest.mark.integration


# ----------------------------------------------------------------------------------------- helpers

def engine_with(engine: RedisDatastore, workdir: Path | None = None, **options) -> RedisDatastore:
    """The same datastore with other options / another workdir (inventory objects are frozen)."""
    inv = engine.ctx.inventory if workdir is None else engine.ctx.inventory.model_copy(update={"workdir": str(workdir)})
    spec = engine.spec.model_copy(update={"options": {**engine.spec.options, **options}})
    return RedisDatastore(EngineContext(inventory=inv, spec=spec, repo=engine.ctx.repo, run=engine.ctx.run))


def db_url(url: str, db: int) -> str:
    return url.rsplit("/", 1)[0] + f"/{db}"  # the path's db wins over from_url(db=...)


def write_every_type(url: str) -> dict:
    """Keys of every type in db 0 and db 3, some with TTLs. Returns what a restore must bring back."""
    r0, r3 = redis.Redis.from_url(db_url(url, 0)), redis.Redis.from_url(db_url(url, 3))
    r0.set("t:str", "hello \x00 binary \xff".encode("latin-1"))
    r0.set("t:int", 42)
    r0.hset("t:hash", mapping={"a": "1", "b": "two", "empty": ""})
    r0.hset("t:bighash", mapping={f"f{i}": "x" * (i % 7) for i in range(300)})  # hashtable encoding
    r0.rpush("t:list", "a", "b", "a", "c")
    r0.sadd("t:set", "x", "y", "z")
    r0.sadd("t:intset", 1, 2, 3, 1000)
    r0.zadd("t:zset", {"m1": 1.5, "m2": -2, "m3": 1e10})
    for i in range(3):
        r0.xadd("t:stream", {"n": str(i), "k": "v"})
    r0.xgroup_create("t:stream", "grp", id="0")
    r0.xreadgroup("grp", "consumer-1", {"t:stream": ">"}, count=2)  # 2 pending entries
    r0.set("t:ttl-str", "soon", ex=3600)
    r0.hset("t:ttl-hash", mapping={"k": "v"})
    r0.pexpire("t:ttl-hash", 7_200_000)
    r3.set("db3:str", "in another db")
    r3.zadd("db3:zset", {"a": 1})
    r3.expire("db3:zset", 5400)
    return {
        "written_at_ms": int(time.time() * 1000),
        "ttl_ms": {(0, "t:ttl-str"): 3_600_000, (0, "t:ttl-hash"): 7_200_000, (3, "db3:zset"): 5_400_000},
        "pexpiretime": {(0, "t:ttl-str"): r0.pexpiretime("t:ttl-str"), (0, "t:ttl-hash"): r0.pexpiretime("t:ttl-hash"),
                        (3, "db3:zset"): r3.pexpiretime("db3:zset")},
        "db0_keys": r0.dbsize(), "db3_keys": r3.dbsize(),
    }


def assert_same_data(c0: redis.Redis, c3: redis.Redis, exp: dict) -> None:
    assert c0.get("t:str") == "hello \x00 binary \xff".encode("latin-1")
    assert c0.get("t:int") == b"42"
    assert c0.hgetall("t:hash") == {b"a": b"1", b"b": b"two", b"empty": b""}
    assert c0.hgetall("t:bighash") == {f"f{i}".encode(): b"x" * (i % 7) for i in range(300)}
    assert c0.lrange("t:list", 0, -1) == [b"a", b"b", b"a", b"c"]
    assert c0.smembers("t:set") == {b"x", b"y", b"z"}
    assert c0.smembers("t:intset") == {b"1", b"2", b"3", b"1000"}
    assert c0.zrange("t:zset", 0, -1, withscores=True) == [(b"m2", -2.0), (b"m1", 1.5), (b"m3", 1e10)]
    entries = c0.xrange("t:stream")
    assert [e[1] for e in entries] == [{b"n": str(i).encode(), b"k": b"v"} for i in range(3)]
    (group,) = c0.xinfo_groups("t:stream")
    assert group["name"] == b"grp" and group["pending"] == 2 and group["last-delivered-id"] == entries[1][0]
    assert c0.xpending("t:stream", "grp")["consumers"] == [{"name": b"consumer-1", "pending": 2}]
    assert c3.get("db3:str") == b"in another db"
    assert c3.zrange("db3:zset", 0, -1, withscores=True) == [(b"a", 1.0)]
    # TTL bounds: the absolute expiry is what the RDB stores; the remaining TTL can only have shrunk.
    now_ms = int(time.time() * 1000)
    for (db, key), ttl in exp["ttl_ms"].items():
        c = c0 if db == 0 else c3
        assert c.pexpiretime(key) == exp["pexpiretime"][(db, key)], key
        assert ttl - (now_ms - exp["written_at_ms"]) - 1000 <= c.pttl(key) <= ttl, key
    assert c0.ttl("t:str") == -1 and c0.ttl("t:stream") == -1, "keys without TTL stay without TTL"
    assert c0.dbsize() == exp["db0_keys"] + 1  # + the heartbeat key
    assert c3.dbsize() == exp["db3_keys"]


def wait_port(port: int, timeout: float = 20) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        r = subprocess.run(["redis-cli", "-p", str(port), "PING"], capture_output=True, text=True, check=False)
        if r.stdout.strip() == "PONG":
            return
        time.sleep(0.05)
    raise AssertionError(f"plain redis-server on :{port} did not answer")


@contextlib.contextmanager
def plain_redis_server(*args: str):
    """redis-server started by hand, as an operator would: no project code involved."""
    port = RedisDatastore.free_port()
    proc = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                             "--daemonize", "no", *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        wait_port(port)
        yield port
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def cli(port: int, *args: str, db: int = 0) -> str:
    return subprocess.run(["redis-cli", "-p", str(port), "-n", str(db), *args], capture_output=True, text=True,
                          check=True).stdout.strip()


def wait_no_fork(rds: redis.Redis, timeout: float = 60) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        p = rds.info("persistence")
        if not (p["rdb_bgsave_in_progress"] or p["aof_rewrite_in_progress"] or p["aof_rewrite_scheduled"]):
            return
        time.sleep(0.1)
    raise AssertionError("a BGSAVE/BGREWRITEAOF did not finish")


# ----------------------------------------------------------------------------------------- tests

def test_redis_every_type_survives_backup_flush_and_restore_test(redis_engine, rds, redis_url, unique):
    rds.flushall()
    exp = write_every_type(redis_url)
    hb = jobs.heartbeat("redis")
    m = redis_engine.backup("rdb", f"test-types-{unique}")
    assert m.counts == {"db0.keys": exp["db0_keys"] + 1, "db0.expires": 2, "db3.keys": 2, "db3.expires": 1}
    assert m.position["heartbeat_at"] == hb["written_at"]
    assert m.native["sample"]["size"] == exp["db0_keys"] + 1 + exp["db3_keys"], "sample_size covers every key"
    assert m.position["repl_id"] and m.position["repl_offset"] is not None and m.native["used_mem"] > 0
    assert redis_engine.backup("rdb", m.id) == m, "a retried task finds its finished backup"
    jobs.verify("redis", [m.id])

    rds.flushall()  # the disaster
    result = jobs.restore_test("redis", run={"dag_id": "pytest", "run_id": unique})  # newest verified rdb
    drill = redis_engine.ctx.repo.drill(result["drill_id"])
    assert drill.verdict == "pass", drill.reasons
    assert drill.backup_id == m.id
    assert 0 < drill.rto_seconds < 60
    assert drill.newest_heartbeat_at.isoformat() == hb["written_at"]
    assert 0 <= drill.rpo_seconds < 120
    names = [s.name for s in drill.steps]
    assert {"key counts", "sampled keys digest", "newest heartbeat", "tear down scratch redis-server"} <= set(names)
    assert all(s.ok for s in drill.steps), [(s.name, s.detail) for s in drill.steps if not s.ok]
    assert not (redis_engine.ctx.workdir / "scratch" / drill.id).exists(), "scratch target torn down"
    assert rds.dbsize() == 0, "the restore test never touches the live server"

    # The same backup, checked key by key with plain commands (not the engine's digest).
    scratch = ScratchRedis(redis_engine, redis_engine.ctx.workdir / "scratch" / f"types-{unique}")
    try:
        scratch.root.mkdir(parents=True)
        redis_engine.ctx.repo.fetch(m, scratch.root)
        scratch.start("rdb")
        assert_same_data(scratch.client(0), scratch.client(3), exp)
    finally:
        scratch.destroy()


def test_redis_restore_test_detects_a_changed_value(redis_engine, rds, unique):
    """The sampled digest is not decoration: a backup whose data differs from its manifest fails."""
    rds.flushall()
    for i in range(50):
        rds.set(f"k{i}", i)
    m = redis_engine.backup("rdb", f"test-tamper-{unique}")
    scratch = ScratchRedis(redis_engine, redis_engine.ctx.workdir / "scratch" / f"tamper-{unique}")
    try:
        scratch.root.mkdir(parents=True)
        redis_engine.ctx.repo.fetch(m, scratch.root)
        scratch.start("rdb")
        scratch.client().set("k7", "changed")
        with pytest.raises(RestoreFailed, match=r"1 of 50 sampled keys differ.*value differs"):
            compare_sample(m, scratch.root, scratch)
    finally:
        scratch.destroy()


def test_redis_sample_of_a_large_keyspace_is_read_back_by_name_and_an_old_hashed_sample_still_checks(
        redis_engine, rds, redis_url, unique):
    """More keys than SCAN_ALL_UP_TO x sample_size: the sample is RANDOMKEY draws from every database in
    proportion, stored with the key names (v2), so the restore test reads exactly those keys; a changed
    one fails. A v1 sample (names hashed only, older backups) is still found by its full SCAN."""
    import base64
    import json

    from lifeboat.datastores.redis.sample import SAMPLE_FORMAT_V1, key_hash

    rds.flushall()
    p = rds.pipeline(transaction=False)
    for i in range(900):
        p.set(f"user:{i}", i)
    p.execute()
    db2 = redis.Redis.from_url(db_url(redis_url, 2))
    for i in range(100):
        db2.set(f"s:{i}", i)
    eng = engine_with(redis_engine, sample_size=20)
    m = eng.backup("rdb", f"test-sample-{unique}")
    doc = json.loads(eng.ctx.repo.read_artifact(m, "sample.json"))
    assert doc["format"] == "lifeboat.redis-sample/v2"
    by_db = {e["db"]: 0 for e in doc["entries"]}
    for e in doc["entries"]:
        by_db[e["db"]] += 1
        assert e["k"] == key_hash(e["db"], base64.b64decode(e["n"])), "the name is the sampled key's"
    assert by_db == {0: 18, 2: 2} and m.native["sample"]["size"] == 20
    scratch = ScratchRedis(eng, eng.ctx.workdir / "scratch" / f"sample-{unique}")
    try:
        scratch.root.mkdir(parents=True)
        eng.ctx.repo.fetch(m, scratch.root)
        scratch.start("rdb")
        assert compare_sample(m, scratch.root, scratch).startswith("20 sampled keys identical")
        v1 = {**doc, "format": SAMPLE_FORMAT_V1,
              "entries": [{k: v for k, v in e.items() if k not in ("n", "db")} for e in doc["entries"]]}
        (scratch.root / "sample.json").write_text(json.dumps(v1))
        assert compare_sample(m, scratch.root, scratch).startswith("20 sampled keys identical"), "v1: by SCAN"
        (scratch.root / "sample.json").write_text(json.dumps(doc))
        first = doc["entries"][0]
        scratch.client(first["db"]).set(base64.b64decode(first["n"]), "changed")
        with pytest.raises(RestoreFailed, match=r"1 of 20 sampled keys differ.*value differs"):
            compare_sample(m, scratch.root, scratch)
    finally:
        scratch.destroy()
        db2.flushdb()


def test_redis_truncated_rdb_fails_verification_naming_the_file(redis_engine, rds, unique):
    rds.flushall()
    rds.mset({f"key:{i}": "v" * 100 for i in range(200)})
    m = redis_engine.backup("rdb", f"test-trunc-rdb-{unique}")
    path = redis_engine.ctx.repo.primary.local_path(f"redis/backups/{m.id}/dump.rdb")
    with open(path, "r+b") as fh:
        fh.truncate(path.stat().st_size // 2)
    (v,) = redis_engine.verify([m])
    assert not v.ok
    check = next(c for c in v.checks if c.name == "redis-check-rdb")
    assert not check.ok
    assert f"redis/backups/{m.id}/dump.rdb" in check.detail and "Unexpected EOF" in check.detail, check.detail
    assert any(f"redis/backups/{m.id}/dump.rdb" in p for p in v.problems if p.startswith("artifact checksums"))
    assert Catalog(redis_engine.ctx.repo).last_verification("redis", m.id).ok is False


def test_redis_rdb_restores_with_plain_redis_server(redis_engine, rds, redis_url, scratch_dir, unique):
    rds.flushall()
    exp = write_every_type(redis_url)
    m = redis_engine.backup("rdb", f"test-plain-rdb-{unique}")
    assert "redis-server --dir D --dbfilename dump.rdb" in m.restore_hint
    scratch_dir.mkdir(parents=True)
    shutil.copy(redis_engine.ctx.repo.primary.local_path(f"redis/backups/{m.id}/dump.rdb"), scratch_dir / "dump.rdb")
    with plain_redis_server("--dir", str(scratch_dir), "--dbfilename", "dump.rdb", "--appendonly", "no") as port:
        assert cli(port, "DBSIZE") == str(exp["db0_keys"])
        assert cli(port, "HGET", "t:hash", "b") == "two"
        assert cli(port, "LRANGE", "t:list", "0", "-1").split() == ["a", "b", "a", "c"]
        assert cli(port, "XLEN", "t:stream") == "3"
        assert 0 < int(cli(port, "TTL", "t:ttl-str")) <= 3600
        assert cli(port, "GET", "db3:str", db=3) == "in another db"


def test_redis_aof_backup_under_writes_is_consistent_and_loads_with_plain_redis_server(
        redis_engine, rds, redis_url, scratch_dir, unique):
    """A writer keeps appending (MULTI: INCR counter + RPUSH log) while the AOF is copied: the copy is a
    consistent prefix (counter == length of the log), passes redis-check-aof, and plain redis-server
    loads it."""
    rds.flushall()
    stop = threading.Event()
    done = []

    def writer():
        c = redis.Redis.from_url(redis_url)
        n = 0
        while not stop.is_set():
            with c.pipeline(transaction=True) as p:
                p.incr("w:counter").rpush("w:log", "x" * (n % 300))
                p.execute()
            n += 1
        done.append(n)

    t = threading.Thread(target=writer)
    t.start()
    try:
        time.sleep(0.3)
        m = redis_engine.backup("aof", f"test-aof-{unique}")
    finally:
        stop.set()
        t.join()
    assert done[0] > 50
    assert m.kind == "aof" and m.series == "aof" and m.position["aof_files"][-1].endswith(".incr.aof")
    (v,) = redis_engine.verify([m])
    assert v.ok, v.problems
    src = redis_engine.ctx.repo.primary.local_path(f"redis/backups/{m.id}/appendonlydir")
    shutil.copytree(src, scratch_dir / "appendonlydir")
    with plain_redis_server("--dir", str(scratch_dir), "--appendonly", "yes", "--appenddirname", "appendonlydir",
                            "--appendfilename", m.native["aof_filename"]) as port:
        counter, length = int(cli(port, "GET", "w:counter")), int(cli(port, "LLEN", "w:log"))
    assert counter == length > 0, "the AOF copy ends between two transactions"
    assert counter <= done[0] and m.counts == {"db0.keys": 2, "db0.expires": 0}


def test_redis_aof_copy_starts_over_when_a_rewrite_slips_in(redis_engine, rds, unique, monkeypatch, caplog):
    rds.flushall()
    rds.mset({f"a:{i}": i for i in range(100)})
    real = redis_host.copy_prefix
    calls = []

    def racing_copy(src, dest, limit):
        if not calls:  # first file of the first attempt: a BGREWRITEAOF starts and finishes meanwhile
            rds.bgrewriteaof()
            wait_no_fork(rds)
        calls.append(src.name)
        return real(src, dest, limit)

    monkeypatch.setattr(redis_host, "copy_prefix", racing_copy)
    before = rds.info("persistence")["aof_rewrites"]
    with caplog.at_level("WARNING", logger="lifeboat.datastores.redis"):
        m = redis_engine.backup("aof", f"test-aof-race-{unique}")
    assert rds.info("persistence")["aof_rewrites"] == before + 1
    assert any("copying again" in r.message or "vanished" in r.message for r in caplog.records)
    (v,) = redis_engine.verify([m])
    assert v.ok, v.problems
    assert m.counts["db0.keys"] == 100


def test_redis_truncated_aof_fails_verification_naming_the_file(redis_engine, rds, unique):
    rds.flushall()
    for i in range(100):
        rds.set(f"k:{i}", "v" * 50)
    m = redis_engine.backup("aof", f"test-trunc-aof-{unique}")
    incr = m.position["aof_files"][-1]
    path = redis_engine.ctx.repo.primary.local_path(f"redis/backups/{m.id}/appendonlydir/{incr}")
    size = path.stat().st_size
    assert size > 1000, "the incremental AOF holds the writes"
    with open(path, "r+b") as fh:
        fh.truncate(size - 17)  # mid-command
    (v,) = redis_engine.verify([m])
    check = next(c for c in v.checks if c.name == "redis-check-aof")
    assert not v.ok and not check.ok
    assert f"redis/backups/{m.id}/appendonlydir/{incr}" in check.detail, check.detail
    # and a restore test of it fails too (sha256 checked while loading), naming the file
    rec = DrillRecorder(datastore="redis", type_="restore_test", objectives=Objectives())
    with pytest.raises(RestoreFailed, match=f"appendonlydir/{incr}: sha256 differs"):
        redis_engine.restore_test(m, "latest", rec)
    assert not (redis_engine.ctx.workdir / "scratch" / rec.drill.id).exists()


@pytest.mark.parametrize(("kind", "start_fork", "field"), [
    ("rdb", "bgsave", "rdb_bgsave_in_progress:1"),
    ("aof", "bgrewriteaof", "aof_rewrite_in_progress:1"),
])
def test_redis_refuses_while_a_fork_is_running(redis_engine, rds, unique, kind, start_fork, field):
    rds.flushall()
    rds.mset({f"slow:{i}": i for i in range(20)})
    wait_no_fork(rds)
    eng = engine_with(redis_engine, busy_wait="1s")
    backup_id = f"test-busy-{kind}-{unique}"
    rds.config_set("rdb-key-save-delay", 100_000)  # 0.1 s per key: the fork runs ~2 s
    try:
        getattr(rds, start_fork)()
        with pytest.raises(Refused) as err:
            eng.backup(kind, backup_id)
    finally:
        rds.config_set("rdb-key-save-delay", 0)
        wait_no_fork(rds)
    msg = str(err.value)
    assert "lifeboat_redis_us_west_2" in msg and field in msg and "Nothing was changed" in msg
    assert not list(eng.ctx.repo.primary.list(f"redis/backups/{backup_id}/")), "nothing stored"
    assert not (eng.ctx.workdir / "staging" / backup_id).exists()


def test_redis_auth_failure_names_the_connection_without_the_password(redis_engine, monkeypatch, unique):
    uri = os.environ["AIRFLOW_CONN_LIFEBOAT_REDIS_US_WEST_2"]
    monkeypatch.setenv("AIRFLOW_CONN_LIFEBOAT_REDIS_US_WEST_2", uri.replace("redis://:", "redis://:Wr0ngSecret", 1))
    for call in (lambda: redis_engine.backup("rdb", f"test-auth-{unique}"), redis_engine.heartbeat):
        with pytest.raises(ConnectionConfigError) as err:
            call()
        msg = str(err.value)
        assert "'lifeboat_redis_us_west_2'" in msg, msg
        assert "invalid username-password pair" in msg and "check the password" in msg, msg
        assert "Wr0ngSecret" not in msg and uri.split(":")[2].split("@")[0] not in msg
    assert not list(redis_engine.ctx.repo.primary.list(f"redis/backups/test-auth-{unique}/"))


def test_redis_cli_gets_the_password_from_the_environment_not_argv(redis_engine, monkeypatch, unique, rds):
    seen = []
    real = redis_engine.ctx.runner.run

    def spy(argv, **kw):
        seen.append((list(map(str, argv)), dict(kw.get("env") or {})))
        return real(argv, **kw)

    real_stream = redis_engine.ctx.runner.open_stdout

    def spy_stream(argv, **kw):
        seen.append((list(map(str, argv)), dict(kw.get("env") or {})))
        return real_stream(argv, **kw)

    monkeypatch.setattr(redis_engine.ctx.runner, "run", spy)
    monkeypatch.setattr(redis_engine.ctx.runner, "open_stdout", spy_stream)
    rds.set("x", 1)
    redis_engine.backup("rdb", f"test-argv-{unique}")
    live = redis.Redis.from_url(os.environ["AIRFLOW_CONN_LIFEBOAT_REDIS_US_WEST_2"])
    password = live.connection_pool.connection_kwargs["password"]
    (argv, env), = [(a, e) for a, e in seen if "--rdb" in a]
    assert password not in " ".join(argv) and env == {"REDISCLI_AUTH": password}
    manifest_text = redis_engine.ctx.repo.primary.get_bytes(f"redis/backups/test-argv-{unique}/manifest.json").decode()
    assert password not in manifest_text


@contextlib.contextmanager
def tiny_tmpfs(path: Path, size: str):
    path.mkdir(parents=True, exist_ok=True)
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                       capture_output=True, text=True, check=False)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({r.stderr.strip()}); disk-full needs a real small filesystem")
    try:
        yield path
    finally:
        subprocess.run(["umount", str(path)], check=False)
        shutil.rmtree(path, ignore_errors=True)


def test_redis_disk_full_scratch_is_refused_or_fails_clearly(redis_engine, rds, unique, tmp_path, monkeypatch):
    rds.flushall()
    rds.mset({f"big:{i}": os.urandom(4096) for i in range(800)})  # ~3 MiB RDB, incompressible
    m = redis_engine.backup("rdb", f"test-diskfull-{unique}")
    with tiny_tmpfs(tmp_path / "tiny", "1m") as tiny:
        eng = engine_with(redis_engine, workdir=tiny)
        # 1. the pre-check: the copy is never even started
        rec = DrillRecorder(datastore="redis", type_="restore_test", objectives=Objectives())
        with pytest.raises(Refused, match=r"scratch folder .*tiny/scratch/.*MiB free on its filesystem.*needs"):
            eng.restore_test(m, "latest", rec)
        assert [s.name for s in rec.drill.steps if s.ok is False] == ["pre-checks: scratch disk space and memory"]
        # 2. the disk fills anyway (the pre-check fooled): ENOSPC while copying is reported as such
        monkeypatch.setattr(redis_host, "free_bytes", lambda path: 1 << 40)
        rec = DrillRecorder(datastore="redis", type_="restore_test", objectives=Objectives())
        with pytest.raises(RestoreFailed, match=r"no space left on device while copying .*dump\.rdb"):
            eng.restore_test(m, "latest", rec)
        assert not any((tiny / "scratch").glob("*")), "the scratch folder was cleaned up"
        # 3. a backup whose staging folder fills up: redis-cli's write error, named as such
        with pytest.raises(CommandFailed, match=r"staging folder .*tiny/staging/.* ran out of space"):
            eng.backup("rdb", f"test-diskfull-staging-{unique}")
        assert not (tiny / "staging" / f"test-diskfull-staging-{unique}").exists()
        assert not list(eng.ctx.repo.primary.list(f"redis/backups/test-diskfull-staging-{unique}/"))
    assert rds.dbsize() == 800, "the live server was not touched"


def test_redis_scratch_never_uses_the_live_data_directory(redis_engine, stack_env):
    live = Path(stack_env["LIFEBOAT_REDIS_PRIMARY_DIR"])
    ours = {"scratch.conf", "redis.log", "stdout.log", "redis.pid", "scratch"}
    s = ScratchRedis(redis_engine, live)
    with pytest.raises(Refused, match=r"is not inside .*/scratch"):
        s.start("rdb")
    s.destroy()  # must not delete anything outside <workdir>/scratch
    assert (live / "appendonlydir").is_dir() and not ours & {p.name for p in live.iterdir()}
    # a mis-configured inventory (wrong data_dir, workdir inside the live dir): the server's own
    # `CONFIG GET dir` still catches it
    eng = engine_with(redis_engine, workdir=live, data_dir="/nonexistent/redis")
    with pytest.raises(Refused, match=r"overlaps the live Redis data directory .*CONFIG GET dir"):
        ScratchRedis(eng, eng.ctx.workdir / "scratch" / "x").guard()
    assert not ours & {p.name for p in live.iterdir()}


def test_redis_replica_follows_the_primary(stack_env, rds, unique):
    """The stack's us-east-1 replica is a real replica (what a regional failover would promote)."""
    rds.set(f"repl:{unique}", "1")
    rep = redis.Redis.from_url(stack_env["AIRFLOW_CONN_LIFEBOAT_REDIS_US_EAST_1"])
    rds.wait(1, 5000)
    assert rep.get(f"repl:{unique}") == b"1"
    assert rep.info("replication")["role"] == "slave"


def test_redis_backup_and_heartbeat_work_with_a_least_privilege_acl_user(redis_engine, rds, monkeypatch, unique):
    """The ACL documented in docs/datastores/redis.md is enough: no admin rights, and the username
    goes to redis-cli as --user while the password stays in REDISCLI_AUTH."""
    password = f"acl-{unique}"
    rds.acl_setuser("lifeboat_backup", enabled=True, reset=True, passwords=[f"+{password}"],
                    commands=["+ping", "+info", "+replconf", "+sync", "+psync", "+set"], keys=["lifeboat:heartbeat"])
    try:
        port = os.environ["LIFEBOAT_REDIS_PRIMARY_PORT"]
        monkeypatch.setenv("AIRFLOW_CONN_LIFEBOAT_REDIS_US_WEST_2",
                           f"redis://lifeboat_backup:{password}@127.0.0.1:{port}/0")
        hb = redis_engine.heartbeat()
        m = redis_engine.backup("rdb", f"test-acl-{unique}")
        assert m.position["heartbeat_at"] == hb.isoformat()
        assert "lifeboat_backup@" in m.source and password not in m.source
    finally:
        rds.acl_deluser("lifeboat_backup")


def test_redis_memory_precheck_refuses_before_loading_on_a_small_worker(redis_engine, rds, unique, monkeypatch):
    """/proc/meminfo is faked (a small worker cannot be made here); the refusals are real."""
    rds.flushall()
    rds.mset({f"m:{i}": "x" * 1000 for i in range(500)})
    m = redis_engine.backup("rdb", f"test-mem-{unique}")
    monkeypatch.setattr(redis_host, "mem_available", lambda: 256 * 1024)  # 256 KiB "available"
    with pytest.raises(Refused, match=r"loading backup .* for its manifest: a scratch redis-server needs about .* "
                                      r"this worker has 0\.2 MiB available.*memory_check: false"):
        redis_engine.backup("rdb", f"test-mem-refused-{unique}")
    assert not list(redis_engine.ctx.repo.primary.list(f"redis/backups/test-mem-refused-{unique}/"))
    rec = DrillRecorder(datastore="redis", type_="restore_test", objectives=Objectives())
    with pytest.raises(Refused, match=f"restoring {m.id}: a scratch redis-server needs"):
        redis_engine.restore_test(m, "latest", rec)
    assert engine_with(redis_engine, memory_check=False).prechecks(m, redis_engine.ctx.workdir / "scratch" / "x")

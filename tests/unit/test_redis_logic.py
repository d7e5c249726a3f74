"""Redis engine: the pure pieces (RDB header, canonical values, sampling, comparisons, AOF tails)."""

from __future__ import annotations

import random
import struct

import pytest

from lifeboat.datastores.redis.aof import parse_aof_manifest, resp_tail_is_partial
from lifeboat.datastores.redis.options import RedisOptions
from lifeboat.datastores.redis.rdb import lzf_decompress, read_rdb_aux
from lifeboat.datastores.redis.sample import (
    bottom_k,
    canonical_parts,
    compare_counts,
    compare_samples,
    key_hash,
    sample_digest,
    value_digest,
)
from lifeboat.errors import InventoryError
from lifeboat.inventory import parse_inventory


def _s(b: bytes) -> bytes:
    assert len(b) < 64
    return bytes([len(b)]) + b


def test_redis_rdb_aux_fields_with_int_and_lzf_encodings(tmp_path):
    lzf = b"\x02abc\x20\x02"  # literal "abc", then a 3-byte back reference -> "abcabc"
    raw = (b"REDIS0010"
           + b"\xfa" + _s(b"redis-ver") + _s(b"7.0.15")
           + b"\xfa" + _s(b"ctime") + b"\xc2" + struct.pack("<i", 1795750161)
           + b"\xfa" + _s(b"redis-bits") + b"\xc0" + struct.pack("<b", 64)
           + b"\xfa" + _s(b"repl-id") + b"\xc3" + bytes([len(lzf)]) + bytes([6]) + lzf
           + b"\xfe\x00")
    p = tmp_path / "x.rdb"
    p.write_bytes(raw)
    assert read_rdb_aux(p) == {"rdb-version": "10", "redis-ver": "7.0.15", "ctime": "1795750161",
                               "redis-bits": "64", "repl-id": "abcabc"}
    p.write_bytes(b"NOTREDIS!")
    with pytest.raises(ValueError, match="not an RDB file"):
        read_rdb_aux(p)


def test_redis_lzf_long_back_reference():
    # literal "ab", then length 7+2 -> 9+2 = 11 bytes copied from offset 1 back ("abababababa")
    assert lzf_decompress(b"\x01ab\xe0\x02\x01", 13) == b"ab" + b"ababababab" + b"a"


def test_redis_canonical_values_ignore_internal_order():
    h1 = value_digest(canonical_parts("hash", {b"a": b"1", b"b": b"2"}))
    h2 = value_digest(canonical_parts("hash", {b"b": b"2", b"a": b"1"}))
    assert h1 == h2
    assert value_digest(canonical_parts("set", [b"x", b"y"])) == value_digest(canonical_parts("set", [b"y", b"x"]))
    assert value_digest(canonical_parts("list", [b"x", b"y"])) != value_digest(canonical_parts("list", [b"y", b"x"]))
    # length-prefixed parts: no ambiguity between ["ab","c"] and ["a","bc"]
    assert value_digest(canonical_parts("list", [b"ab", b"c"])) != value_digest(canonical_parts("list", [b"a", b"bc"]))
    # a string and a one-element list with the same bytes differ
    assert value_digest(canonical_parts("string", b"x")) != value_digest(canonical_parts("list", [b"x"]))
    z1 = canonical_parts("zset", [(b"a", 1.0), (b"b", 1.0)])
    z2 = canonical_parts("zset", [(b"b", 1.0), (b"a", 1.0)])
    assert z1 == z2


def test_redis_bottom_k_sample_does_not_depend_on_scan_order():
    keys = [(key_hash(db, f"key:{i}".encode()), (db, i)) for db in (0, 1) for i in range(500)]
    first = bottom_k(keys, 20)
    random.Random(7).shuffle(keys)
    assert bottom_k(keys, 20) == first
    assert len(first) == 20 and first == sorted(first)
    assert key_hash(0, b"k") != key_hash(1, b"k"), "the db is part of the identity"


def test_redis_count_comparison_allows_only_expiry():
    exp = {"db0.keys": 10, "db0.expires": 4, "db2.keys": 1, "db2.expires": 0}
    assert compare_counts(exp, {"db0.keys": 8, "db0.expires": 2, "db2.keys": 1, "db2.expires": 0}) == (
        [], ["db0: 2 of 4 keys with TTL expired since the backup"])
    problems, _ = compare_counts(exp, {"db0.keys": 9, "db0.expires": 4, "db2.keys": 1, "db2.expires": 0})
    assert problems == ["db0: 5 keys without TTL restored, backup has 6"]
    problems, _ = compare_counts(exp, {"db0.keys": 10, "db0.expires": 4})
    assert problems == ["db2: 0 keys without TTL restored, backup has 1"]


def test_redis_sample_comparison_tolerates_only_keys_past_their_expiry():
    e = [{"k": "a" * 32, "t": "string", "x": -1, "v": "1"},
         {"k": "b" * 32, "t": "hash", "x": 1000, "v": "2"},
         {"k": "c" * 32, "t": "set", "x": 5000, "v": "3"}]
    got = {"a" * 32: dict(e[0])}
    problems, expired = compare_samples(e, got, now_ms=2000)
    assert expired == 1 and problems == [f"key #{'c' * 12} (set) is missing"]
    got = {x["k"]: dict(x) for x in e}
    got["a" * 32]["v"] = "changed"
    got["c" * 32]["x"] = 6000
    problems, _ = compare_samples(e, got, now_ms=0)
    assert problems == [f"key #{'a' * 12} (string): value differs from the backup",
                        f"key #{'c' * 12} (set): expires at 6000 ms, backup says 5000 ms"]
    assert sample_digest(e) == sample_digest(list(reversed(e)))


@pytest.mark.parametrize(("tail", "partial"), [
    (b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nval", True),   # cut inside a bulk string
    (b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nvalue\r", True),
    (b"*3\r\n$3\r\nSET\r\n$", True),
    (b"*3\r", True),
    (b"*1\r\n$5\r\nMULTI\r\n*2\r\n$4\r\nINCR\r\n$1\r\nc\r\n", True),  # a MULTI block cut before EXEC
    (b"#TS:1795750161\r\n*2\r\n$3\r\nGET", True),
    (b"*3\r\n$3\r\nSET\r\nGARBAGE", False),               # a bulk length that is not a number
    (b"*3\r\n$3\r\nSETXX$1\r\nk\r\n", False),               # missing CRLF after a bulk string
    (b"hello world", False),
    (b"", False),
])
def test_redis_aof_partial_tail_detection(tail, partial):
    assert resp_tail_is_partial(tail) is partial


def test_redis_aof_manifest_parsing():
    text = ("file appendonly.aof.5.base.rdb seq 5 type b\n"
            "file appendonly.aof.4.incr.aof seq 4 type h\n"
            "file appendonly.aof.7.incr.aof seq 7 type i\n")
    parsed = parse_aof_manifest(text)
    assert [(e["file"], e["type"]) for e in parsed] == [
        ("appendonly.aof.5.base.rdb", "b"), ("appendonly.aof.4.incr.aof", "h"), ("appendonly.aof.7.incr.aof", "i")]


def test_redis_options_errors_name_the_field():
    assert RedisOptions().sample_size == 1000
    text = """
version: 1
platform: p
regions: {primary: a, standby: b}
repository: {a: {url: "file:///tmp/a"}, b: {url: "file:///tmp/b"}}
datastores:
  cache:
    engine: redis
    connections: {a: c}
    backups: {rdb: {schedule: "0 * * * *"}}
    options: {busy_wait: soon}
"""
    with pytest.raises(InventoryError, match=r"datastores\.cache\.options\.busy_wait: not a duration"):
        parse_inventory(text, "inv.yaml")
    with pytest.raises(InventoryError, match=r"datastores\.cache\.options\.aof_dirname"):
        parse_inventory(text.replace("busy_wait: soon", "aof_dirname: ../etc"), "inv.yaml")


def test_redis_sample_quotas_follow_database_sizes():
    from lifeboat.datastores.redis.sample import db_quotas

    assert db_quotas({0: 9000, 3: 1000}, 1000) == {0: 900, 3: 100}
    assert db_quotas({0: 100000, 5: 3, 7: 0}, 1000) == {0: 1000, 5: 1}, "every non-empty database is sampled"
    assert db_quotas({0: 10, 1: 10}, 1000) == {0: 10, 1: 10}, "never more than a database holds"
    assert db_quotas({}, 1000) == {} and db_quotas({0: 5}, 0) == {}

"""The sampled-key digest (pure): which keys are sampled, their canonical values, and the comparisons
a restore test makes against the manifest.

The sample: `sample_size` keys, each reduced to a canonical, DUMP-independent encoding of its type
and value plus its absolute expiry (PEXPIRETIME, ms), identified by sha256("<db>:" + key)[:32].
- v2 (written today): the key names are in sample.json too (base64, with their database), so a
  restore test reads exactly those keys (O(sample), no SCAN of the whole keyspace). The names are
  no more exposed than in dump.rdb beside it in the same repository; logs and drill details name
  keys by hash only. Which keys: every key when the snapshot holds at most SCAN_ALL_UP_TO times the
  sample size (the bottom-k by hash: deterministic), else RANDOMKEY draws spread over the databases
  in proportion to their sizes.
- v1 (older backups): names stored hashed only -- the bottom-k by hash, found again by a full SCAN.
"""

from __future__ import annotations

import hashlib
import heapq
from collections.abc import Iterable
from typing import Any

SAMPLE_FORMAT_V1 = "lifeboat.redis-sample/v1"
SAMPLE_FORMAT = "lifeboat.redis-sample/v2"
SAMPLE_FILE = "sample.json"
SAMPLE_METHOD = ("every key (bottom-k of sha256('<db>:' + key)) up to {n} keys, else RANDOMKEY draws per database "
                 "in proportion to its size; k = sha256('<db>:' + key)[:32], db + n = the key (base64); "
                 "v = sha256 of the canonical value; x = PEXPIRETIME ms")
SCAN_ALL_UP_TO = 4  # snapshots of at most 4 x sample_size keys are sampled by a full SCAN (cheap at that size)


def key_hash(db: int, key: bytes) -> str:
    """Stable, order-free identity of a key (the name itself never leaves the scratch server)."""
    return hashlib.sha256(b"%d:" % db + key).hexdigest()[:32]


def db_quotas(sizes: dict[int, int], k: int) -> dict[int, int]:
    """How many of the k sampled keys each database gets: in proportion to its size, at least one
    from every non-empty database, never more than it holds."""
    total = sum(sizes.values())
    if total <= 0 or k <= 0:
        return {}
    out = {db: min(n, max(1, round(k * n / total))) for db, n in sizes.items() if n > 0}
    return out


def _b(v: Any) -> bytes:
    if isinstance(v, bytes):
        return v
    if isinstance(v, float):
        return repr(v).encode()
    return str(v).encode()


def value_digest(parts: Iterable[Any]) -> str:
    h = hashlib.sha256()
    for part in parts:
        p = _b(part)
        h.update(len(p).to_bytes(8, "big"))
        h.update(p)
    return h.hexdigest()[:32]


def canonical_parts(type_: str, value: Any) -> list[Any]:
    """A DUMP-independent canonical form of one value: same data -> same parts, whatever the server's
    internal encoding (listpack, hashtable, quicklist ...) or RDB version."""
    if type_ == "string":
        return ["string", value]
    if type_ == "hash":
        out: list[Any] = ["hash"]
        for f, v in sorted(value.items()):
            out += [f, v]
        return out
    if type_ == "list":
        return ["list", *value]
    if type_ == "set":
        return ["set", *sorted(value)]
    if type_ == "zset":  # (member, score) pairs; sort by member for a canonical order
        out = ["zset"]
        for m, s in sorted(value, key=lambda ms: ms[0]):
            out += [m, float(s)]
        return out
    if type_ == "stream":
        out = ["stream", "last-generated-id", value["last_id"]]
        for eid, fields in value["entries"]:
            out += ["entry", eid, len(fields)]
            for f, v in fields.items():
                out += [f, v]
        for g in sorted(value["groups"], key=lambda g: g["name"]):
            out += ["group", g["name"], g["last-delivered-id"], g["pending"]]
            for c in sorted(g["consumers"], key=lambda c: c[0]):
                out += ["consumer", c[0], c[1]]
        return out
    return [f"dump:{type_}", value]


def sample_digest(entries: list[dict]) -> str:
    h = hashlib.sha256()
    for e in sorted(entries, key=lambda e: e["k"]):
        h.update(f"{e['k']} {e['t']} {e['x']} {e['v']}\n".encode())
    return h.hexdigest()


def bottom_k(items: Iterable[tuple[str, Any]], k: int) -> list[tuple[str, Any]]:
    """The k items with the smallest hash (hex string), whatever order they arrive in."""
    heap: list[tuple[int, str, Any]] = []
    for h, payload in items:
        v = int(h, 16)
        if len(heap) < k:
            heapq.heappush(heap, (-v, h, payload))
        elif -heap[0][0] > v:
            heapq.heapreplace(heap, (-v, h, payload))
    return sorted(((h, p) for _, h, p in heap), key=lambda t: t[0])


def compare_counts(expected: dict[str, int], got: dict[str, int]) -> tuple[list[str], list[str]]:
    """(problems, notes). Persistent keys must match exactly; volatile keys may only be fewer
    (expired since the backup), never more."""
    problems, notes = [], []
    dbs = sorted({k.split(".")[0] for k in (*expected, *got)}, key=lambda d: int(d[2:]))
    for db in dbs:
        ek, ee = expected.get(f"{db}.keys", 0), expected.get(f"{db}.expires", 0)
        gk, ge = got.get(f"{db}.keys", 0), got.get(f"{db}.expires", 0)
        if ek - ee != gk - ge:
            problems.append(f"{db}: {gk - ge} keys without TTL restored, backup has {ek - ee}")
        if ge > ee:
            problems.append(f"{db}: {ge} keys with TTL restored, backup has only {ee}")
        elif ge < ee:
            notes.append(f"{db}: {ee - ge} of {ee} keys with TTL expired since the backup")
    return problems, notes


def compare_samples(expected: list[dict], got: dict[str, dict], now_ms: int) -> tuple[list[str], int]:
    """(problems, n_expired). A sampled key may be missing only if its expiry has passed."""
    problems: list[str] = []
    expired = 0
    for e in expected:
        g = got.get(e["k"])
        if g is None:
            if e["x"] >= 0 and e["x"] <= now_ms:
                expired += 1
                continue
            problems.append(f"key #{e['k'][:12]} ({e['t']}{', no TTL' if e['x'] < 0 else ''}) is missing")
        elif g["t"] != e["t"]:
            problems.append(f"key #{e['k'][:12]}: type {g['t']}, backup has {e['t']}")
        elif g["v"] != e["v"]:
            problems.append(f"key #{e['k'][:12]} ({e['t']}): value differs from the backup")
        elif g["x"] != e["x"]:
            problems.append(f"key #{e['k'][:12]} ({e['t']}): expires at {g['x']} ms, backup says {e['x']} ms")
    return problems, expired

"""MongoDB: consistent full dumps plus oplog incrementals, point-in-time restore into scratch databases.

Backups are written in the layout `mongodump --gzip --oplog` writes, so `mongorestore --gzip
--oplogReplay` restores them without this code (docs/datastores/mongodb.md has the commands):

    <backup>/dump/<db>/<collection>.bson.gz            standard BSON stream, gzip
    <backup>/dump/<db>/<collection>.metadata.json.gz   options + indexes (mongodump's extended JSON)
    <backup>/dump/oplog.bson                           oplog entries of the dump window, gzip-compressed
                                                       (mongorestore --gzip reads this exact name gzipped)

* **full** (series "full"): the newest oplog position is recorded before the dump, every collection
  of the configured databases is streamed (raw BSON straight from the cursor into gzip: memory stays
  flat whatever the collection size), then a *consistent point* is found -- an oplog position at
  which the per-collection counts were read with no write in between -- and the oplog entries from
  the dump's start to that point are captured into `dump/oplog.bson` (what `mongodump --oplog`
  does). Dump + replay of that window = the database exactly at the consistent point, where the
  manifest's counts are exact. Each collection also gets an order-independent content hash
  (sum of sha256 of every raw document), compared after a restore.
* **oplog** (series "oplog"): a slice of the oplog from the last captured position (exclusive) to a
  new consistent point (inclusive), gzip, parent = the previous link of the chain. The manifest
  records the window (`from_ts`, `until_ts`) and the first/last entries' timestamps.
* **verify**: artifact sha256, every BSON file parsed end to end (a corrupted file is named),
  metadata parsed, the chain back to a full without gap (a missing range is named), and for the
  chain's tip an alert-worthy check that the server's oplog will not roll past the last captured
  point before the next backups (or has already).
* **restore_test**: into scratch databases on the same server, named `lifeboat_scratch_<tag>_<db>`
  (a guard refuses any other name, and any live database's name): load the dump, compare counts and
  content hashes with the dump, replay the dump window, compare the exact counts, replay the oplog
  slices up to the target (inserts, updates in every form the server writes -- `$v:2` diffs,
  `$v:1` modifiers, replacements, FerretDB's whole-document `$set` -- deletes, commands and
  transactions), compare counts at every exact checkpoint, measure RTO/RPO from the heartbeat
  collection, drop the scratch databases in `finally`.

Against real MongoDB the backup user needs the `backup` role (and `restore`-like rights on
`lifeboat_scratch_*` for restore tests); the local stack runs FerretDB v1.24 (see devstack).
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import json
import logging
import os
import re
import shutil
import struct
import time
import zlib
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import quote, quote_plus, urlencode

from pydantic import Field, field_validator, model_validator

from lifeboat.datastores.base import Datastore, EngineOptions
from lifeboat.drills import DrillRecorder
from lifeboat.errors import BackupNotFound, ConnectionConfigError, Refused, RestoreFailed
from lifeboat.inventory import DurationStr, format_duration, parse_duration
from lifeboat.records import Check, Manifest, Verification, utcnow

log = logging.getLogger("lifeboat.mongodb")

SCRATCH_PREFIX = "lifeboat_scratch_"
SYSTEM_DATABASES = frozenset({"admin", "local", "config"})
HEARTBEAT_COLLECTION = "lifeboat_heartbeat"
OPLOG_FILE = "dump/oplog.bson"
_DB_NAME = re.compile(r"^[A-Za-z0-9_-]{1,63}$")


# ------------------------------------------------------------------------------------------- options

class MongoOptions(EngineOptions):
    databases: list[str] = Field(default=[], description="databases to back up; empty = every database "
                                 "except admin, local, config and lifeboat_scratch_*")
    heartbeat_database: str | None = Field(default=None, description="where lifeboat_heartbeat lives "
                                           "(default: the first of `databases`, else 'lifeboat')")
    batch_size: int = Field(default=1000, ge=1, le=100_000)
    gzip_level: int = Field(default=6, ge=1, le=9)
    oplog_alert_margin: DurationStr = Field(default="6h", description="alert when the server's oplog would roll past "
                                    "the last captured point in less than this")
    headroom_min_history: DurationStr = Field(default="1h", description="extrapolate a not-yet-full oplog's window only "
                                      "from at least this much history")
    consistent_point_attempts: int = Field(default=10, ge=1, le=100)
    settle: DurationStr = Field(default="0.25s", description="quiet time that makes a count read exact")
    hash_documents: bool = Field(default=True, description="compare content hashes after a restore")
    server_timeout: DurationStr = "20s"

    @field_validator("databases")
    @classmethod
    def _dbs(cls, v: list[str]) -> list[str]:
        for name in v:
            if not _DB_NAME.match(name):
                raise ValueError(f"{name!r} is not a valid database name")
            if name in SYSTEM_DATABASES or name.startswith(SCRATCH_PREFIX):
                raise ValueError(f"{name!r}: system and scratch databases are not backed up")
        return v

    @model_validator(mode="after")
    def _heartbeat_in_scope(self) -> MongoOptions:
        if self.heartbeat_database and self.databases and self.heartbeat_database not in self.databases:
            raise ValueError(f"heartbeat_database: {self.heartbeat_database!r} is not one of databases "
                             f"{self.databases}: its heartbeats would never reach a backup")
        return self

    @property
    def heartbeat_db(self) -> str:
        return self.heartbeat_database or (self.databases[0] if self.databases else "lifeboat")


# ------------------------------------------------------------------------------------------- timestamps

def ts_str(ts) -> str:
    """An oplog Timestamp as 'seconds:increment' (the form mongorestore --oplogLimit takes)."""
    return f"{ts.time}:{ts.inc}"


def parse_ts(value):
    from bson import Timestamp

    if isinstance(value, Timestamp):
        return value
    try:
        t, _, i = str(value).removeprefix("ts:").partition(":")
        return Timestamp(int(t), int(i or 0))
    except ValueError:
        raise Refused(f"{value!r} is not an oplog timestamp (write <seconds>:<increment>)") from None


def _key(ts) -> tuple[int, int]:
    return (ts.time, ts.inc)


def _ts_time(ts) -> datetime:
    return datetime.fromtimestamp(ts.time, UTC)


def _entry_time(entry) -> datetime:
    """When an oplog entry was written: `wall` (ms) where the server records it, else ts seconds."""
    wall = entry.get("wall")
    if isinstance(wall, datetime):
        return wall if wall.tzinfo else wall.replace(tzinfo=UTC)
    return _ts_time(entry["ts"])


def _fmt(ts, at: datetime | None = None) -> str:
    return f"{ts_str(ts)} ({(at or _ts_time(ts)).isoformat(timespec='milliseconds')})"


# ------------------------------------------------------------------------------------------- BSON files

def iter_raw_bson(fh: BinaryIO) -> Iterator[bytes]:
    """Raw documents of a BSON stream (what mongodump writes), one at a time."""
    while True:
        head = fh.read(4)
        if not head:
            return
        if len(head) < 4:
            raise ValueError("truncated document length at end of stream")
        (size,) = struct.unpack("<i", head)
        if size < 5 or size > 48 * 1024 * 1024:
            raise ValueError(f"invalid document length {size}")
        body = fh.read(size - 4)
        if len(body) != size - 4:
            raise ValueError(f"truncated document: expected {size} bytes, got {len(body) + 4}")
        if body[-1:] != b"\x00":
            raise ValueError("document does not end with a NUL byte")
        yield head + body


def _doc_hash(raw: bytes) -> int:
    return int.from_bytes(hashlib.sha256(raw).digest(), "big")


_HASH_MOD = 1 << 256


def _escape_collection(name: str) -> str:
    """File name for a collection (mongodump escapes '/' and '%'; '$' and '.' stay readable)."""
    return quote(name, safe="$.-_~!@+=,;'()[]{} ")


def _gzip_writer(path: Path, level: int):
    path.parent.mkdir(parents=True, exist_ok=True)
    raw = open(path, "wb")
    # mtime=0 and no file name in the header: the same data gives the same bytes.
    return contextlib.closing(gzip.GzipFile(filename="", mode="wb", compresslevel=level, fileobj=raw, mtime=0)), raw


# ------------------------------------------------------------------------------------------- oplog application

def _classify_update(o: dict) -> str:
    if o.get("$v") == 2 and "diff" in o:
        return "diff"
    keys = [k for k in o if k != "$v"]
    if keys and all(k.startswith("$") for k in keys):
        if keys == ["$set"] and isinstance(o["$set"], dict) and "_id" in o["$set"]:
            # FerretDB v1's OpLog writes the whole new document as {$v: 1, $set: <doc incl. _id>}.
            # A MongoDB $set never carries _id (it is immutable), so this is a replacement.
            return "whole-document $set"
        return "modifier"
    if any(k.startswith("$") for k in keys):
        raise RestoreFailed(f"update entry mixes operators and fields: {sorted(keys)}")
    return "replacement"


def apply_diff(doc: Any, diff: dict) -> dict:
    """Apply a MongoDB `$v: 2` document diff (oplog update format since 5.0) to a document.

    Sections: d (delete fields), u (update fields in place), i (insert fields, appended), s<field>
    (sub-diff of an embedded document, or of an array when the sub-diff carries `a: true`).
    """
    out = dict(doc) if isinstance(doc, dict) else {}
    for key, val in diff.items():
        if key == "d":
            for f in val:
                out.pop(f, None)
        elif key == "u":
            for f, v in val.items():
                out[f] = v
        elif key == "i":
            for f, v in val.items():
                out.pop(f, None)
                out[f] = v
        elif key.startswith("s"):
            f = key[1:]
            cur = out.get(f)
            out[f] = apply_array_diff(cur, val) if val.get("a") is True else apply_diff(cur, val)
        else:
            raise RestoreFailed(f"unknown $v:2 diff section {key!r}")
    return out


def apply_array_diff(arr: Any, diff: dict) -> list:
    """Array part of a `$v: 2` diff: `a: true`, optional `l` (new length), u<i> (set element),
    s<i> (sub-diff of element i)."""
    out = list(arr) if isinstance(arr, list) else []
    if "l" in diff:
        n = int(diff["l"])
        out = out[:n] + [None] * max(0, n - len(out))
    for key, val in diff.items():
        if key in ("a", "l"):
            continue
        if key[:1] not in ("u", "s") or not key[1:].isdigit():
            raise RestoreFailed(f"unknown $v:2 array diff entry {key!r}")
        idx = int(key[1:])
        if idx >= len(out):
            out.extend([None] * (idx + 1 - len(out)))
        if key[0] == "u":
            out[idx] = val
        else:
            out[idx] = apply_array_diff(out[idx], val) if val.get("a") is True else apply_diff(out[idx], val)
    return out


def _index_spec(ix: dict) -> dict:
    """An index definition as createIndexes takes it: without the namespace and version fields a
    listIndexes/oplog entry carries (the server picks the current index version)."""
    return {k: v for k, v in ix.items() if k not in ("ns", "v", "createIndexes", "background")}


class ScratchDatabases:
    """The only databases a restore test writes to: `lifeboat_scratch_<tag>_<db>`.

    `db()` is the single way the restore code obtains a database to write into, and it refuses any
    name that does not start with the scratch prefix, that is a system database, or that is one of
    the live databases -- so a bug elsewhere cannot turn a drill into a write on production data.
    """

    def __init__(self, client, drill_id: str, live: set[str]):
        self.client = client
        self.tag = hashlib.sha1(drill_id.encode()).hexdigest()[:8]
        self.names: dict[str, str] = {}
        self.live = set(live)
        self.used: set[str] = set()

    def name_for(self, source_db: str) -> str:
        if source_db not in self.names:
            name = f"{SCRATCH_PREFIX}{self.tag}_{source_db}"
            if len(name) > 63:
                name = f"{SCRATCH_PREFIX}{self.tag}_{source_db[:28]}_{hashlib.sha1(source_db.encode()).hexdigest()[:8]}"
            self.names[source_db] = name
        return self.names[source_db]

    def guard(self, name: str) -> None:
        if not name.startswith(SCRATCH_PREFIX) or name in SYSTEM_DATABASES or name in self.live:
            raise Refused(f"refusing to write to database {name!r}: restore tests write only to scratch databases "
                          f"named {SCRATCH_PREFIX}<tag>_<db>, never to a live or system database")

    def db(self, source_db: str):
        name = self.name_for(source_db)
        self.guard(name)
        self.used.add(name)
        return self.client[name]

    def drop_all(self) -> list[str]:
        dropped = []
        for name in sorted(self.used):
            self.guard(name)
            self.client.drop_database(name)
            dropped.append(name)
        return dropped


@dataclass
class OplogApplier:
    """Replays oplog entries into scratch databases, idempotently (like a secondary catching up:
    inserts and updates upsert, deletes of missing documents are no-ops)."""

    scratch: ScratchDatabases
    in_scope: Any  # callable(db) -> bool
    batch: int = 1000
    stats: Counter = field(default_factory=Counter)
    _txns: dict = field(default_factory=dict)
    _pending: list = field(default_factory=list)
    _pending_coll: Any = None

    def _queue(self, coll, op) -> None:
        """Consecutive writes to one collection go out as one ordered bulk_write (order kept)."""
        if self._pending_coll is not None and self._pending_coll.full_name != coll.full_name:
            self.flush()
        self._pending_coll = coll
        self._pending.append(op)
        if len(self._pending) >= self.batch:
            self.flush()

    def flush(self) -> None:
        if self._pending:
            self._pending_coll.bulk_write(self._pending, ordered=True)
        self._pending, self._pending_coll = [], None

    def apply(self, e: dict) -> None:
        from pymongo import DeleteOne, ReplaceOne, UpdateOne

        op = e.get("op")
        if op == "n":
            self.stats["noop"] += 1
            return
        if op == "c":
            self.flush()
            self._command(e)
            return
        db, _, coll = e["ns"].partition(".")
        if not self.in_scope(db):
            self.stats["out of scope"] += 1
            return
        target = self.scratch.db(db)[coll]
        if op == "i":
            doc = e["o"]
            self._queue(target, ReplaceOne({"_id": doc["_id"]}, doc, upsert=True))
            self.stats["insert"] += 1
        elif op == "u":
            _id = (e.get("o2") or {}).get("_id", e["o"].get("_id"))
            kind = _classify_update(e["o"])
            if kind == "diff":
                self.flush()  # the diff applies to the document as the earlier entries left it
                cur = target.find_one({"_id": _id}) or {"_id": _id}
                self._queue(target, ReplaceOne({"_id": _id}, apply_diff(cur, e["o"]["diff"]), upsert=True))
            elif kind == "whole-document $set":
                self._queue(target, ReplaceOne({"_id": _id}, e["o"]["$set"], upsert=True))
            elif kind == "replacement":
                doc = {k: v for k, v in e["o"].items() if k != "$v"}
                self._queue(target, ReplaceOne({"_id": _id}, {"_id": _id, **doc}, upsert=True))
            else:
                mods = {k: v for k, v in e["o"].items() if k != "$v"}
                self._queue(target, UpdateOne({"_id": _id}, mods, upsert=True))
            self.stats[f"update ({kind})"] += 1
        elif op == "d":
            self._queue(target, DeleteOne({"_id": e["o"]["_id"]}))
            self.stats["delete"] += 1
        else:
            raise RestoreFailed(f"oplog entry {ts_str(e['ts']) if 'ts' in e else ''} has unknown op {op!r}")

    def _command(self, e: dict) -> None:
        o = e["o"]
        db = e["ns"].partition(".")[0]
        name = next(iter(o))
        if name == "applyOps":
            key = (repr(e.get("lsid")), e.get("txnNumber"))
            if o.get("partialTxn") or o.get("prepare"):
                self._txns.setdefault(key, []).extend(o["applyOps"])  # applied at the final/commit entry
                self.stats["transaction (buffered)"] += 1
                return
            for sub in self._txns.pop(key, []) + list(o["applyOps"]):
                self.apply(sub)
            self.stats["applyOps"] += 1
            return
        if name == "commitTransaction":
            for sub in self._txns.pop((repr(e.get("lsid")), e.get("txnNumber")), []):
                self.apply(sub)
            self.stats["commitTransaction"] += 1
            return
        if name == "abortTransaction":
            self._txns.pop((repr(e.get("lsid")), e.get("txnNumber")), None)
            self.stats["abortTransaction"] += 1
            return
        if name in ("startIndexBuild", "abortIndexBuild", "collMod", "createDatabase"):
            self.stats[f"command {name} (no data change)"] += 1
            return
        if name == "renameCollection":
            src_db, _, src = o["renameCollection"].partition(".")
            dst_db, _, dst = o["to"].partition(".")
            if self.in_scope(src_db) and self.in_scope(dst_db):
                if src_db == dst_db:
                    self.scratch.db(src_db)[src].rename(dst, dropTarget=bool(o.get("dropTarget")))
                else:
                    self._move(src_db, src, dst_db, dst)
                self.stats["renameCollection"] += 1
            return
        if not self.in_scope(db):
            self.stats["out of scope"] += 1
            return
        target_db = self.scratch.db(db)
        if name == "create":
            if o["create"] not in target_db.list_collection_names():
                opts = {k: v for k, v in o.items() if k in ("capped", "size", "max")}
                target_db.create_collection(o["create"], **opts)
        elif name == "drop":
            target_db.drop_collection(o["drop"])
        elif name == "dropDatabase":
            self.scratch.client.drop_database(self.scratch.name_for(db))
        elif name == "createIndexes":
            target_db.command("createIndexes", o["createIndexes"], indexes=[_index_spec(o)])
        elif name == "commitIndexBuild":
            target_db.command("createIndexes", o["commitIndexBuild"], indexes=[_index_spec(i) for i in o["indexes"]])
        elif name in ("dropIndexes", "deleteIndexes"):
            with contextlib.suppress(Exception):  # already gone
                target_db[o[name]].drop_index(o["index"])
        else:
            raise RestoreFailed(f"oplog command {name!r} at {ts_str(e['ts']) if 'ts' in e else '?'} on {e['ns']} "
                                "is not supported by the replay; the restored data would differ")
        self.stats[f"command {name}"] += 1

    def _move(self, src_db: str, src: str, dst_db: str, dst: str) -> None:
        docs = self.scratch.db(src_db)[src].find()
        tgt = self.scratch.db(dst_db)[dst]
        tgt.drop()
        batch = []
        for d in docs:
            batch.append(d)
            if len(batch) >= 1000:
                tgt.insert_many(batch)
                batch = []
        if batch:
            tgt.insert_many(batch)
        self.scratch.db(src_db)[src].drop()


# ------------------------------------------------------------------------------------------- the engine

@dataclass
class ReplayPlan:
    full: Manifest
    slices: list[Manifest]
    starts: list[Any]  # per slice: replay only its entries after this position (already reached)
    target: str
    target_time: datetime | None  # None: everything in the chain
    target_ts: Any | None
    end_ts: Any  # last position replayed

    def includes(self, entry) -> bool:
        if self.target_ts is not None:
            return _key(entry["ts"]) <= _key(self.target_ts)
        if self.target_time is not None:
            return _entry_time(entry) <= self.target_time
        return True

    def reaches(self, ts, at: datetime) -> bool:
        """True when the target is at or after this position (its exact counts are comparable)."""
        if self.target_ts is not None:
            return _key(ts) <= _key(self.target_ts)
        if self.target_time is not None:
            return at <= self.target_time
        return True


class MongoDatastore(Datastore):
    engine = "mongodb"
    Options = MongoOptions
    kinds = ("full", "oplog")
    restore_series = "full"  # series = kind: "full" and "oplog" (base class)
    continues = {"oplog": "full"}

    # -- connection --------------------------------------------------------------------------------
    def _conn_id(self) -> str:
        return self.spec.connection_for(self.region)

    def _uri(self) -> tuple[str, str]:
        ep = self.endpoint().require("host")
        extra = {k: v for k, v in (ep.extra or {}).items() if k not in ("srv",) and not isinstance(v, (dict, list))}
        srv = str((ep.extra or {}).get("srv", "")).lower() == "true"
        auth = f"{quote_plus(ep.login)}:{quote_plus(ep.password)}@" if ep.login else ""
        host = ep.host if (srv or not ep.port) else f"{ep.host}:{ep.port}"
        query = urlencode({k: (str(v).lower() if isinstance(v, bool) else v) for k, v in extra.items()})
        scheme = "mongodb+srv" if srv else "mongodb"
        uri = f"{scheme}://{auth}{host}/{quote(ep.schema or '')}{'?' + query if query else ''}"
        return uri, f"{host} (Airflow connection {self._conn_id()!r}, user {ep.login or '(none)'})"

    @contextlib.contextmanager
    def _session(self):
        import pymongo
        from pymongo import errors

        uri, where = self._uri()
        password = self.endpoint().password
        timeout_ms = int(parse_duration(self.options.server_timeout).total_seconds() * 1000)

        def scrub(text: str) -> str:
            return text.replace(password, "***") if password else text

        try:
            client = pymongo.MongoClient(uri, tz_aware=True, appname="lifeboat", serverSelectionTimeoutMS=timeout_ms,
                                         connectTimeoutMS=timeout_ms, socketTimeoutMS=None)
        except errors.ConfigurationError as exc:
            raise ConnectionConfigError(f"cannot use MongoDB connection {where}: {scrub(str(exc))}") from None
        try:
            try:
                client.admin.command("ping")
                client.admin.command("listDatabases", nameOnly=True)
                self._ferretdb = "ferretdbVersion" in client.admin.command("buildInfo")
            except errors.OperationFailure as exc:
                raise self._auth_error(exc, where, scrub) from None
            except errors.PyMongoError as exc:
                first = scrub(str(exc)).splitlines()[0][:300]
                raise ConnectionConfigError(f"cannot reach MongoDB at {where}: {first}") from None
            try:
                yield client
            except errors.OperationFailure as exc:
                if exc.code in (13, 18):
                    raise self._auth_error(exc, where, scrub) from None
                raise
        finally:
            client.close()

    @staticmethod
    def _auth_error(exc, where: str, scrub) -> ConnectionConfigError:
        msg = scrub((exc.details or {}).get("errmsg") or str(exc))
        if exc.code == 18:
            return ConnectionConfigError(f"MongoDB authentication failed for {where}: {msg} "
                                         "(check login/password/authSource of the Airflow connection)")
        if exc.code == 13:
            return ConnectionConfigError(f"MongoDB user is not authorized at {where}: {msg} (the backup user needs "
                                         "the `backup` role, restore tests also write lifeboat_scratch_* databases)")
        return ConnectionConfigError(f"MongoDB refused the connection at {where}: {msg}")

    def _require_oplog(self, c) -> dict:
        hello = c.admin.command("hello")
        _, where = self._uri()
        if hello.get("msg") == "isdbgrid":
            raise Refused(f"{where} is a mongos (sharded cluster): back up each shard's replica set and the config "
                          "servers; a mongos has no oplog")
        if not hello.get("setName"):
            raise Refused(f"{where} is not a replica set member (hello reports no setName): oplog backups and "
                          "point-in-time restore need a replica set's oplog (MongoDB: run even a single node as a "
                          "replica set; FerretDB: start with --repl-set-name and create the capped local.oplog.rs)")
        if not c.local.list_collection_names(filter={"name": "oplog.rs"}):
            raise Refused(f"{where} has no oplog: local.oplog.rs does not exist (replica set {hello['setName']!r}; "
                          "FerretDB writes its OpLog only into an existing capped local.oplog.rs)")
        return hello

    def _oplog(self, c, raw: bool = False):
        from bson.codec_options import CodecOptions
        from bson.raw_bson import RawBSONDocument

        opts = CodecOptions(document_class=RawBSONDocument, tz_aware=True) if raw else CodecOptions(tz_aware=True)
        return c.local.get_collection("oplog.rs", codec_options=opts)

    def _natural(self, cursor, direction: int):
        """Oplog order. FerretDB v1 already returns a capped collection in insertion order and pushes
        an unsorted `limit` down to SQLite, whereas an explicit $natural sort makes it read and sort
        the whole collection in memory; MongoDB serves both forms from the oplog's own order."""
        if getattr(self, "_ferretdb", False) and direction == 1:
            return cursor
        return cursor.sort("$natural", direction)

    def _edge(self, c, direction: int) -> dict | None:
        """Newest (direction=-1) or oldest (1) oplog entry's ts and wall."""
        return next(iter(self._natural(self._oplog(c).find({}, {"ts": 1, "wall": 1}), direction).limit(1)), None)

    def _oplog_stats(self, c) -> dict:
        try:
            s = c.local.command("collStats", "oplog.rs")
            return {"size": int(s.get("size", 0)), "maxSize": int(s.get("maxSize", 0) or 0),
                    "count": int(s.get("count", 0))}
        except Exception as exc:  # MongoDB 7+ may prefer $collStats; a missing stat only weakens the estimate
            log.debug("collStats local.oplog.rs failed: %s", exc)
            return {}

    def _databases(self, c) -> list[str]:
        if self.options.databases:
            return list(self.options.databases)
        return sorted(n for n in c.list_database_names()
                      if n not in SYSTEM_DATABASES and not n.startswith(SCRATCH_PREFIX))

    def _in_scope_fn(self, databases: list[str] | None):
        if databases:
            wanted = set(databases)
            return lambda db: db in wanted
        return lambda db: db not in SYSTEM_DATABASES and not db.startswith(SCRATCH_PREFIX)

    def _entry_in_scope(self, in_scope, raw) -> bool:
        ns = raw.get("ns", "")
        db = ns.partition(".")[0]
        op = raw.get("op")
        if op == "n":
            return False
        if op == "c" and ns == "admin.$cmd":  # transactions (applyOps/commit/abort) and renames
            return True
        return in_scope(db)

    def _count(self, db, name: str) -> int:
        """Exact document count. MongoDB answers `count` without a query from collection metadata;
        FerretDB v1 decodes every document for it but answers collStats with SQLite's count(*)."""
        if getattr(self, "_ferretdb", False):
            return int(db.command("collStats", name).get("count", 0))
        return int(db.command("count", name)["n"])

    def _consistent_point(self, c, databases: list[str]) -> tuple[dict[str, int], dict, bool]:
        """Counts read with no oplog entry written during the read (and a quiet `settle` after it):
        exact at the returned oplog position. Returns (counts, newest entry, exact)."""
        settle = parse_duration(self.options.settle).total_seconds()
        counts: dict[str, int] = {}
        newest = self._edge(c, -1)
        for attempt in range(self.options.consistent_point_attempts):
            before = newest
            counts = {}
            for db in databases:
                for name in sorted(c[db].list_collection_names()):
                    if not name.startswith("system."):
                        counts[f"{db}.{name}"] = self._count(c[db], name)
            time.sleep(settle)
            newest = self._edge(c, -1)
            if before is not None and newest is not None and _key(before["ts"]) == _key(newest["ts"]):
                return counts, newest, True
            log.info("writes during the count read (attempt %d): trying again", attempt + 1)
        return counts, newest, False

    # -- backup ------------------------------------------------------------------------------------
    def backup(self, kind: str, backup_id: str) -> Manifest:
        self.check_kind(kind)
        done = self.ctx.repo.manifest(self.name, backup_id)
        if done is not None:
            log.info("backup %s is already complete (retried task): nothing to do", backup_id)
            return done
        staging = self.ctx.workdir / "staging" / backup_id
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        try:
            with self._session() as c:
                hello = self._require_oplog(c)
                if kind == "full":
                    return self._backup_full(c, hello, backup_id, staging)
                return self._backup_oplog(c, hello, backup_id, staging)
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    def _tools(self, c) -> dict[str, str]:
        import pymongo

        info = c.admin.command("buildInfo")
        tools = {"pymongo": pymongo.version, "server": str(info.get("version", "?"))}
        if info.get("ferretdbVersion") or info.get("ferretdb"):
            tools["ferretdb"] = str(info.get("ferretdbVersion") or info["ferretdb"].get("version", "?"))
        return tools

    def _backup_full(self, c, hello: dict, backup_id: str, staging: Path) -> Manifest:
        from bson.codec_options import CodecOptions
        from bson.json_util import CANONICAL_JSON_OPTIONS, dumps
        from bson.raw_bson import RawBSONDocument

        started = utcnow()
        databases = self._databases(c)
        if not databases:
            raise BackupNotFound(f"datastores.{self.name}: no database to back up on the server")
        start = self._edge(c, -1)
        if start is None:  # an empty oplog (fresh server): one heartbeat gives the dump a real start position
            self.heartbeat(client=c)
            start = self._edge(c, -1)
        t0 = start["ts"]
        raw_opts = CodecOptions(document_class=RawBSONDocument, tz_aware=True)
        collections: dict[str, dict] = {}
        skipped: dict[str, str] = {}
        for db in databases:
            for info in c[db].list_collections():
                name, ctype = info["name"], info.get("type", "collection")
                ns = f"{db}.{name}"
                if name.startswith("system."):
                    skipped[ns] = "system collection"
                    continue
                if ctype != "collection":
                    skipped[ns] = f"{ctype}: not dumped (recreate from its definition)"
                    continue
                rel = f"dump/{db}/{_escape_collection(name)}"
                coll = c[db].get_collection(name, codec_options=raw_opts)
                n = nbytes = 0
                h = 0
                t = time.monotonic()
                closing, fh = _gzip_writer(staging / f"{rel}.bson.gz", self.options.gzip_level)
                try:
                    with closing as gz:
                        for doc in coll.find({}, batch_size=self.options.batch_size):
                            raw = doc.raw
                            gz.write(raw)
                            n += 1
                            nbytes += len(raw)
                            if self.options.hash_documents:
                                h = (h + _doc_hash(raw)) % _HASH_MOD
                finally:
                    fh.close()
                indexes = []
                for ix in c[db][name].list_indexes():
                    spec = dict(ix)
                    spec.pop("ns", None)
                    indexes.append(spec)
                uuid = (info.get("info") or {}).get("uuid")
                meta = {"options": info.get("options", {}), "indexes": indexes,
                        "uuid": uuid.hex() if isinstance(uuid, bytes) else "", "collectionName": name,
                        "type": "collection"}
                closing, fh = _gzip_writer(staging / f"{rel}.metadata.json.gz", self.options.gzip_level)
                try:
                    with closing as gz:
                        gz.write(dumps(meta, json_options=CANONICAL_JSON_OPTIONS).encode())
                finally:
                    fh.close()
                secs = time.monotonic() - t
                log.info("dumped %s: %d documents, %.1f MB in %.1fs", ns, n, nbytes / 1e6, secs)
                collections[ns] = {"file": f"{rel}.bson.gz", "metadata": f"{rel}.metadata.json.gz", "documents": n,
                                   "bytes": nbytes, "content_hash": f"{h:064x}" if self.options.hash_documents else "",
                                   "indexes": len(indexes), "options": json.loads(dumps(info.get("options", {})))}
        counts, until, exact = self._consistent_point(c, databases)
        oldest = self._edge(c, 1)
        if oldest is not None and _key(oldest["ts"]) > _key(t0):
            raise Refused(f"oplog window too short: the server's oplog rolled past the dump's start {_fmt(t0)} during "
                          f"the dump (oldest entry now {_fmt(oldest['ts'])}): the dump cannot be made consistent; "
                          "enlarge the oplog (replSetResizeOplog) or dump at a quieter time")
        window = self._write_oplog(c, staging / OPLOG_FILE, self._in_scope_fn(self.options.databases), after=t0,
                                   until=until["ts"], inclusive=True)
        stats = self._oplog_stats(c)
        artifacts = [self.ctx.repo.put_artifact(self.name, backup_id, p.relative_to(staging).as_posix(), p)
                     for p in sorted(q for q in staging.rglob("*") if q.is_file())]
        until_at = _entry_time(until)
        m = Manifest(
            id=backup_id, datastore=self.name, engine=self.engine, kind="full", series="full", region=self.region,
            started_at=started, finished_at=utcnow(), parent=None,
            position={
                "start_ts": ts_str(t0), "start_at": _entry_time(start).isoformat(),
                "from_ts": ts_str(t0), "from_inclusive": True,
                "until_ts": ts_str(until["ts"]), "until_at": until_at.isoformat(),
                "consistent_at": until_at.isoformat(), "counts_exact": exact,
                **window["position"],
                "server_oplog_oldest_ts": ts_str(oldest["ts"]) if oldest else None,
                "server_oplog_bytes": stats.get("size"), "server_oplog_max_bytes": stats.get("maxSize"),
            },
            artifacts=artifacts,
            counts=counts if exact else {},
            tools=self._tools(c),
            native={
                "tool": "lifeboat.mongodb", "layout": "mongodump --gzip --oplog directory (dump/)",
                "replset": hello.get("setName"), "databases": databases,
                "all_databases": not self.options.databases, "collections": collections,
                "skipped": skipped, "oplog": window["native"],
                "counts_at_consistent_point": counts,
            },
            source=self.endpoint().describe(), run=self.ctx.run,
            restore_hint=(f"mongorestore --gzip --oplogReplay --dir=<this backup>/dump  (then, in order, each oplog "
                          f"backup after it: mongorestore --gzip --oplogReplay [--oplogLimit=<seconds>:<inc>] "
                          f"--dir=<oplog backup>/dump); consistent at {ts_str(until['ts'])} ({until_at.isoformat()})"),
        )
        return self.ctx.repo.commit(m)

    def _write_oplog(self, c, path: Path, in_scope, *, after, until, inclusive: bool) -> dict:
        """Stream the oplog entries in (after, until] (or [after, until]) of the backed-up databases
        into a gzip BSON file, in the server's order. Returns manifest fields."""
        q = {"ts": {("$gte" if inclusive else "$gt"): after, "$lte": until}}
        n = skipped = nbytes = 0
        first = last = None
        first_at = last_at = None
        closing, fh = _gzip_writer(path, self.options.gzip_level)
        try:
            with closing as gz:
                for raw in self._natural(self._oplog(c, raw=True).find(q, batch_size=self.options.batch_size), 1):
                    if not self._entry_in_scope(in_scope, raw):
                        skipped += 1
                        continue
                    gz.write(raw.raw)
                    n += 1
                    nbytes += len(raw.raw)
                    ts = raw["ts"]
                    at = _entry_time(raw)
                    if first is None or _key(ts) < _key(first):
                        first, first_at = ts, at
                    if last is None or _key(ts) > _key(last):
                        last, last_at = ts, at
        finally:
            fh.close()
        position = {"first_ts": ts_str(first) if first else None, "last_ts": ts_str(last) if last else None,
                    "first_at": first_at.isoformat() if first_at else None,
                    "last_at": last_at.isoformat() if last_at else None, "entries": n}
        return {"position": position,
                "native": {"file": OPLOG_FILE, "entries": n,
                           "bytes": nbytes, "skipped_out_of_scope": skipped, "compression": "gzip"}}

    def _chain_tip(self, exclude: str | None = None) -> Manifest | None:
        ms = [m for m in self.ctx.repo.manifests(self.name) if m.id != exclude and m.position.get("until_ts")]
        if not ms:
            return None
        return max(ms, key=lambda m: (_key(parse_ts(m.position["until_ts"])), m.finished_at))

    def _backup_oplog(self, c, hello: dict, backup_id: str, staging: Path) -> Manifest:
        started = utcnow()
        parent = self._chain_tip(exclude=backup_id)
        if parent is None:
            raise BackupNotFound(f"{self.name}: no full backup yet: an oplog backup continues a chain that starts at a "
                                 "full backup; run the 'full' kind first")
        from_ts = parse_ts(parent.position["until_ts"])
        from_at = datetime.fromisoformat(parent.position["until_at"])
        oldest = self._edge(c, 1)
        if oldest is None or _key(oldest["ts"]) > _key(from_ts):
            raise Refused(self._rolled_past_message(parent, from_ts, from_at, oldest))
        databases = list(parent.native.get("databases") or self._databases(c))
        scope_dbs = self.options.databases or None
        counts, until, exact = self._consistent_point(c, databases)
        window = self._write_oplog(c, staging / OPLOG_FILE, self._in_scope_fn(scope_dbs), after=from_ts,
                                   until=until["ts"], inclusive=False)
        oldest_after = self._edge(c, 1)
        if oldest_after is None or _key(oldest_after["ts"]) > _key(from_ts):
            raise Refused(self._rolled_past_message(parent, from_ts, from_at, oldest_after)
                          + " (it rolled while reading)")
        stats = self._oplog_stats(c)
        artifacts = [self.ctx.repo.put_artifact(self.name, backup_id, p.relative_to(staging).as_posix(), p)
                     for p in sorted(q for q in staging.rglob("*") if q.is_file())]
        until_at = _entry_time(until)
        m = Manifest(
            id=backup_id, datastore=self.name, engine=self.engine, kind="oplog", series="oplog", region=self.region,
            started_at=started, finished_at=utcnow(), parent=parent.id,
            position={
                "from_ts": ts_str(from_ts), "from_at": from_at.isoformat(), "from_inclusive": False,
                "until_ts": ts_str(until["ts"]), "until_at": until_at.isoformat(), "counts_exact": exact,
                **window["position"],
                "server_oplog_oldest_ts": ts_str(oldest_after["ts"]),
                "server_oplog_bytes": stats.get("size"), "server_oplog_max_bytes": stats.get("maxSize"),
            },
            artifacts=artifacts, counts=counts if exact else {}, tools=self._tools(c),
            native={"tool": "lifeboat.mongodb", "layout": "mongodump --gzip directory with only oplog.bson (dump/)",
                    "replset": hello.get("setName"), "databases": databases, "oplog": window["native"],
                    "counts_at_consistent_point": counts},
            source=self.endpoint().describe(), run=self.ctx.run,
            restore_hint=(f"after restoring its full backup and every earlier oplog backup: mongorestore --gzip "
                          f"--oplogReplay [--oplogLimit=<seconds>:<inc>] --dir=<this backup>/dump  (entries after "
                          f"{ts_str(from_ts)} up to {ts_str(until['ts'])})"),
        )
        return self.ctx.repo.commit(m)

    @staticmethod
    def _rolled_past_message(parent: Manifest, from_ts, from_at: datetime, oldest) -> str:
        have = _fmt(oldest["ts"], _entry_time(oldest)) if oldest else "none (empty oplog)"
        return (f"oplog window too short: the last captured point is {_fmt(from_ts, from_at)} (backup {parent.id}) "
                f"but the server's oldest oplog entry is {have}: the entries in between were overwritten before an "
                "oplog backup read them, so the chain cannot continue. Take a full backup now, then enlarge the "
                "oplog (replSetResizeOplog) or run oplog backups more often")

    # -- verification ------------------------------------------------------------------------------
    def verify(self, manifests: list[Manifest]) -> list[Verification]:
        everything = self.ctx.repo.manifests(self.name)
        by_id = {m.id: m for m in everything}
        tip = self._chain_tip()
        out = []
        for m in manifests:
            checks = [self._check_checksums(m), *self._check_bson(m), self._check_chain(m, by_id, everything)]
            if tip is not None and m.id == tip.id:
                checks.append(self._check_headroom(m))
            out.append(self.record_verification(m, checks))
        return out

    def _key_of(self, m: Manifest, rel: str) -> str:
        return self.ctx.repo.backup_prefix(self.name, m.id) + rel

    def _check_checksums(self, m: Manifest) -> Check:
        return self.ctx.repo.check_artifacts(m)

    def _check_bson(self, m: Manifest) -> list[Check]:
        """Every BSON file decompresses and parses to its end, with the document counts recorded."""
        import bson
        from bson.errors import BSONError
        from bson.json_util import loads

        repo = self.ctx.repo.primary
        bad: list[str] = []
        parsed = 0
        expected = {info["file"]: info["documents"] for info in (m.native.get("collections") or {}).values()}
        expected[OPLOG_FILE] = (m.native.get("oplog") or {}).get("entries")
        lo = parse_ts(m.position["from_ts"]) if m.position.get("from_ts") else None
        hi = parse_ts(m.position["until_ts"]) if m.position.get("until_ts") else None
        for a in m.artifacts:
            key = self._key_of(m, a.path)
            if not (a.path.endswith(".bson.gz") or a.path == OPLOG_FILE or a.path.endswith(".metadata.json.gz")):
                continue
            n = 0
            try:
                with repo.open_read(key) as raw_fh, gzip.GzipFile(fileobj=raw_fh, mode="rb") as gz:
                    if a.path.endswith(".metadata.json.gz"):
                        meta = loads(gz.read().decode())
                        if not isinstance(meta.get("indexes"), list):
                            raise ValueError("no 'indexes' list")
                        parsed += 1
                        continue
                    for raw in iter_raw_bson(gz):
                        doc = bson.decode(raw)
                        n += 1
                        if a.path == OPLOG_FILE and lo is not None and hi is not None:
                            ts = doc.get("ts")
                            incl = m.position.get("from_inclusive", False)
                            outside = ts is None or not (_key(lo) <= _key(ts) <= _key(hi)) or (
                                not incl and _key(ts) == _key(lo))
                            if outside:
                                raise ValueError(f"entry {n} has ts {ts_str(ts) if ts else None} outside the backup's "
                                                 f"window {ts_str(lo)}..{ts_str(hi)}")
            except (OSError, EOFError, zlib.error, ValueError, BSONError, UnicodeDecodeError) as exc:
                bad.append(f"{repo.url}/{key}: does not parse after {n} documents: {type(exc).__name__}: {exc}")
                continue
            parsed += 1
            want = expected.get(a.path)
            if want is not None and want != n:
                bad.append(f"{repo.url}/{key}: {n} documents, the manifest recorded {want}")
        return [Check(name="BSON files parse", ok=not bad,
                      detail="; ".join(bad) if bad else f"{parsed} files decompress and parse end to end, "
                                                        "document counts as recorded")]

    def _check_chain(self, m: Manifest, by_id: dict[str, Manifest], everything: list[Manifest]) -> Check:
        links = [m.id]
        cur = m
        while cur.kind == "oplog":
            from_ts = parse_ts(cur.position["from_ts"])
            parent = by_id.get(cur.parent or "")
            if parent is not None and parent.position.get("until_ts") == cur.position["from_ts"]:
                cur = parent
                links.append(cur.id)
                continue
            # A gap: name the oplog range no backup in the catalog holds.
            older = [x for x in everything if x.id != cur.id and x.position.get("until_ts")
                     and _key(parse_ts(x.position["until_ts"])) < _key(from_ts)]
            prev = max(older, key=lambda x: _key(parse_ts(x.position["until_ts"])), default=None)
            if parent is not None:
                prev = parent
            start = (f"{_fmt(parse_ts(prev.position['until_ts']), datetime.fromisoformat(prev.position['until_at']))}"
                     f" (end of {prev.id})") if prev else "the start of the chain"
            end = _fmt(from_ts, datetime.fromisoformat(cur.position["from_at"]))
            why = (f"its parent {cur.parent} is not in the catalog" if parent is None else
                   f"its parent {parent.id} ends at {parent.position.get('until_ts')}, not where {cur.id} starts")
            return Check(name="oplog chain", ok=False,
                         detail=f"gap in the oplog chain at {cur.id}: {why}; missing oplog range {start} .. {end} "
                                f"is in no backup, so no restore can pass it")
        if cur.kind != "full":
            return Check(name="oplog chain", ok=False,
                         detail=f"chain of {m.id} ends at {cur.id} ({cur.kind}), not at a full")
        return Check(name="oplog chain", ok=True, detail=" <- ".join(reversed(links)) + " (no gap back to the full)")

    def _oplog_interval(self) -> timedelta | None:
        from croniter import croniter

        b = self.spec.backups.get("oplog")
        if b is None:
            return None
        it = croniter(b.schedule, datetime(2024, 1, 1, tzinfo=UTC))
        first = it.get_next(datetime)
        return it.get_next(datetime) - first

    def _check_headroom(self, tip: Manifest) -> Check:
        """Alert before the server's oplog rolls past the last captured point."""
        margin = parse_duration(self.options.oplog_alert_margin)
        try:
            with self._session() as c:
                self._require_oplog(c)
                oldest, newest, stats = self._edge(c, 1), self._edge(c, -1), self._oplog_stats(c)
        except Exception as exc:
            return Check(name="oplog window headroom", ok=False,
                         detail=f"ALERT: cannot read the server's oplog to check it: {exc}")
        last = parse_ts(tip.position["until_ts"])
        last_at = datetime.fromisoformat(tip.position["until_at"])
        if oldest is None or _key(oldest["ts"]) > _key(last):
            return Check(name="oplog window headroom", ok=False,
                         detail=f"ALERT: the server's oplog has already rolled past the last captured point "
                                f"{_fmt(last, last_at)} (oldest entry {_fmt(oldest['ts']) if oldest else 'none'}): the "
                                "next oplog backup will fail; take a full backup now and enlarge the oplog")
        span = max((_entry_time(newest) - _entry_time(oldest)).total_seconds(), 1.0)
        size, max_size = stats.get("size") or 0, stats.get("maxSize") or 0
        fill = (size / max_size) if max_size else 1.0
        base = (f"last captured {_fmt(last, last_at)}; server oplog {_fmt(oldest['ts'])} .. {_fmt(newest['ts'])}"
                f" ({format_duration(span)}, {fill:.1%} of {max_size // 2**20 if max_size else '?'} MiB)")
        if fill >= 0.9:
            window = span  # full: the oldest entry is overwritten as fast as new ones arrive
        elif span >= parse_duration(self.options.headroom_min_history).total_seconds():
            window = span / max(fill, 1e-6)  # not full yet: extrapolate the fill rate
        else:
            return Check(name="oplog window headroom", ok=True,
                         detail=f"{base}; the window is not measurable yet (less than "
                                f"{self.options.headroom_min_history} of history and not full): nothing rolls soon")
        left = (last_at + timedelta(seconds=window)) - utcnow()
        interval = self._oplog_interval()
        problems = []
        if left < margin:
            problems.append(f"the oldest oplog entry passes the last captured point in ~{format_duration(left)}, "
                            f"less than the alert margin {format_duration(margin)}")
        if interval is not None and window < 2 * interval.total_seconds():
            problems.append(f"the oplog window (~{format_duration(window)}) is shorter than twice the oplog backup "
                            f"interval ({format_duration(interval)})")
        detail = (f"{base}; estimated window ~{format_duration(window)}; rolls past the last captured point in "
                  f"~{format_duration(left)}")
        if problems:
            return Check(name="oplog window headroom", ok=False, detail="ALERT: " + "; ".join(problems) + ". " + detail)
        return Check(name="oplog window headroom", ok=True, detail=detail)

    # -- point-in-time restore ---------------------------------------------------------------------
    def plan_replay(self, full: Manifest, target: str) -> ReplayPlan:
        """The full backup plus the oplog backups that continue it without gap, up to `target`
        ('latest', an ISO-8601 time with zone, or an oplog timestamp '<seconds>:<inc>')."""
        if full.kind != "full":
            raise Refused(f"{full.id}: a point-in-time restore starts from a full backup, not a {full.kind} backup")
        target = (target or "latest").strip()
        target_time = target_ts = None
        if target != "latest":
            if re.fullmatch(r"(ts:)?\d+:\d+", target):
                target_ts = parse_ts(target)
            else:
                try:
                    target_time = datetime.fromisoformat(target.replace("Z", "+00:00"))
                except ValueError:
                    raise Refused(f"restore target {target!r} is neither 'latest', an ISO-8601 time nor an oplog "
                                  "timestamp <seconds>:<inc>") from None
                if target_time.tzinfo is None:
                    raise Refused(f"restore target {target!r} has no time zone; write e.g. {target}+00:00")
        start_ts = parse_ts(full.position["until_ts"])
        start_at = datetime.fromisoformat(full.position["until_at"])
        too_early = (target_ts is not None and _key(target_ts) < _key(start_ts)) or \
                    (target_time is not None and target_time < start_at)
        if too_early:
            older = [m.id for m in self.ctx.repo.manifests(self.name) if m.kind == "full"
                     and datetime.fromisoformat(m.position["until_at"]) <= (target_time or _ts_time(target_ts))]
            raise Refused(f"restore target {target} is before the consistent point {_fmt(start_ts, start_at)} of full "
                          f"backup {full.id}: it can only restore from there on"
                          + (f"; restore from an older full: {', '.join(older)}" if older else
                             "; no older full backup is in the catalog"))
        slices = sorted((m for m in self.ctx.repo.manifests(self.name) if m.kind == "oplog"),
                        key=lambda m: (_key(parse_ts(m.position["until_ts"])), m.finished_at))
        chain: list[Manifest] = []
        starts: list = []
        cur_ts, cur_at, cur_id = start_ts, start_at, full.id

        def reached() -> bool:
            if target_ts is not None:
                return _key(cur_ts) >= _key(target_ts)
            if target_time is not None:
                return cur_at >= target_time
            return False

        while not reached():
            nxt = [s for s in slices if _key(parse_ts(s.position["from_ts"])) <= _key(cur_ts)
                   < _key(parse_ts(s.position["until_ts"]))]
            if not nxt:
                break
            best = max(nxt, key=lambda s: (s.parent == cur_id, _key(parse_ts(s.position["until_ts"]))))
            chain.append(best)
            starts.append(cur_ts)
            cur_ts, cur_at, cur_id = parse_ts(best.position["until_ts"]), datetime.fromisoformat(
                best.position["until_at"]), best.id
        if target != "latest" and not reached():
            later = [s for s in slices if _key(parse_ts(s.position["from_ts"])) > _key(cur_ts)]
            gap = (f"; the next oplog backup {later[0].id} starts only at {later[0].position['from_ts']}: the range "
                   f"{ts_str(cur_ts)} .. {later[0].position['from_ts']} is missing") if later else ""
            raise Refused(f"restore target {target} is outside the chain: full backup {full.id} and its oplog backups "
                          f"reach {_fmt(cur_ts, cur_at)} (backup {cur_id}){gap}; take an oplog backup first or pick "
                          "an earlier target")
        return ReplayPlan(full=full, slices=chain, starts=starts, target=target, target_time=target_time,
                          target_ts=target_ts, end_ts=cur_ts)

    def _live_databases(self, c) -> set[str]:
        return {n for n in c.list_database_names() if not n.startswith(SCRATCH_PREFIX)} | set(self.options.databases)

    def scratch_for(self, c, drill_id: str) -> ScratchDatabases:
        return ScratchDatabases(c, drill_id, self._live_databases(c))

    def _open_artifact(self, m: Manifest, rel: str):
        return self.ctx.repo.primary.open_read(self._key_of(m, rel))

    def _iter_entries(self, m: Manifest) -> Iterator[dict]:
        from bson import decode
        from bson.codec_options import CodecOptions

        opts = CodecOptions(tz_aware=True)
        with self._reading(m, OPLOG_FILE) as gz:
            for raw in iter_raw_bson(gz):
                yield decode(raw, codec_options=opts)

    @contextlib.contextmanager
    def _reading(self, m: Manifest, rel: str):
        """A backup file, decompressed; a damaged file fails the restore naming the file."""
        from bson.errors import BSONError

        key = self._key_of(m, rel)
        try:
            with self._open_artifact(m, rel) as fh, gzip.GzipFile(fileobj=fh, mode="rb") as gz:
                yield gz
        except (OSError, EOFError, zlib.error, ValueError, BSONError) as exc:
            raise RestoreFailed(f"{self.ctx.repo.primary.url}/{key}: cannot read it back: {type(exc).__name__}: "
                                f"{exc} (run verification: the file is damaged)") from None

    def load_dump(self, c, full: Manifest, scratch: ScratchDatabases) -> dict[str, dict]:
        """Load every dumped collection into its scratch database; returns per-collection stats."""
        from bson.json_util import loads
        from bson.raw_bson import RawBSONDocument

        stats = {}
        for ns, info in full.native["collections"].items():
            db, _, name = ns.partition(".")
            target_db = scratch.db(db)
            with self._reading(full, info["metadata"]) as gz:
                meta = loads(gz.read().decode())
            opts = {k: v for k, v in (meta.get("options") or {}).items() if k in ("capped", "size", "max")}
            if name in target_db.list_collection_names():
                target_db.drop_collection(name)
            target_db.create_collection(name, **opts)
            coll = target_db[name]
            n = 0
            batch: list = []
            with self._reading(full, info["file"]) as gz:
                for raw in iter_raw_bson(gz):
                    batch.append(RawBSONDocument(raw))
                    if len(batch) >= self.options.batch_size:
                        coll.insert_many(batch, ordered=False)
                        n += len(batch)
                        batch = []
            if batch:
                coll.insert_many(batch, ordered=False)
                n += len(batch)
            specs = [_index_spec(ix) for ix in meta.get("indexes", []) if ix.get("name") != "_id_"]
            if specs:
                target_db.command("createIndexes", name, indexes=specs)
            stats[ns] = {"documents": n, "indexes": len(specs) + 1}
        return stats

    def _content(self, coll) -> tuple[int, str]:
        from bson.codec_options import CodecOptions
        from bson.raw_bson import RawBSONDocument

        raw_coll = coll.with_options(codec_options=CodecOptions(document_class=RawBSONDocument))
        n = h = 0
        for d in raw_coll.find({}, batch_size=self.options.batch_size):
            n += 1
            h = (h + _doc_hash(d.raw)) % _HASH_MOD
        return n, f"{h:064x}"

    def compare_with_dump(self, full: Manifest, scratch: ScratchDatabases) -> str:
        diffs, ok = [], 0
        for ns, info in full.native["collections"].items():
            db, _, name = ns.partition(".")
            coll = scratch.db(db)[name]
            if self.options.hash_documents and info.get("content_hash"):
                n, h = self._content(coll)
                if n != info["documents"] or h != info["content_hash"]:
                    diffs.append(f"{ns}: {n} documents hash {h[:12]}…, dump has {info['documents']} hash "
                                 f"{info['content_hash'][:12]}…")
                    continue
            else:
                n = coll.count_documents({})
                if n != info["documents"]:
                    diffs.append(f"{ns}: {n} documents, dump has {info['documents']}")
                    continue
            ok += 1
        if diffs:
            raise RestoreFailed("restored collections differ from the dump: " + "; ".join(diffs))
        return f"{ok} collections: counts and content hashes equal the dump's"

    def compare_counts(self, m: Manifest, scratch: ScratchDatabases) -> str:
        diffs = []
        for ns, want in sorted(m.counts.items()):
            db, _, name = ns.partition(".")
            got = self._count(scratch.db(db), name)
            if got != want:
                diffs.append(f"{ns}: expected {want}, restored {got}")
        if diffs:
            raise RestoreFailed(f"document counts at {m.position['until_ts']} ({m.id}) differ: " + "; ".join(diffs))
        return f"{len(m.counts)} collections match the exact counts of {m.id} at {m.position['until_ts']}"

    def restore_into(self, c, plan: ReplayPlan, scratch: ScratchDatabases, drill: DrillRecorder) -> OplogApplier:
        """Full dump, then oplog replay up to the plan's target, with checks at every exact point."""
        full = plan.full
        # FerretDB v1 keeps every statement's query open until a multi-statement update command ends
        # (a `defer` in a loop) and deadlocks once its SQLite pool (100) is used up: small batches there.
        batch = min(self.options.batch_size, 50) if getattr(self, "_ferretdb", False) else self.options.batch_size
        scope = None if full.native.get("all_databases") else full.native.get("databases")
        applier = OplogApplier(scratch, self._in_scope_fn(scope), batch=batch)
        with drill.step("load full dump") as s:
            t = time.monotonic()
            stats = self.load_dump(c, full, scratch)
            mb = sum(i["bytes"] for i in full.native["collections"].values()) / 1e6
            s.detail = (f"{len(stats)} collections, {sum(x['documents'] for x in stats.values())} documents "
                        f"({mb:.1f} MB) into {', '.join(sorted(scratch.used))} in {time.monotonic() - t:.1f}s")
        with drill.step("documents match the dump") as s:
            s.detail = self.compare_with_dump(full, scratch)
        for m, after in [(full, None), *zip(plan.slices, plan.starts, strict=True)]:
            label = "dump oplog window" if m.kind == "full" else f"oplog {m.id}"
            with drill.step(f"replay {label}") as s:
                before = sum(applier.stats.values())
                skipped = earlier = 0
                for e in self._iter_entries(m):
                    if after is not None and _key(e["ts"]) <= _key(after):
                        earlier += 1  # this slice starts before the point already reached
                    elif plan.includes(e):
                        applier.apply(e)
                    else:
                        skipped += 1
                applier.flush()
                s.detail = (f"{sum(applier.stats.values()) - before} entries applied, {skipped} after the target"
                            + (f", {earlier} before {ts_str(after)} skipped" if earlier else "")
                            + f" ({m.position.get('first_ts')} .. {m.position.get('last_ts')})")
            until_at = datetime.fromisoformat(m.position["until_at"])
            if m.counts and m.position.get("counts_exact") and plan.reaches(parse_ts(m.position["until_ts"]), until_at):
                with drill.step(f"counts at {m.position['until_ts']}") as s:
                    s.detail = self.compare_counts(m, scratch)
        return applier

    def restore_test(self, manifest: Manifest, target: str, drill: DrillRecorder) -> None:
        plan = self.plan_replay(manifest, target)
        with self._session() as c:
            scratch = self.scratch_for(c, drill.drill.id)
            try:
                drill.restore_started()
                applier = self.restore_into(c, plan, scratch, drill)
                drill.ready()
                with drill.step("newest heartbeat") as s:
                    hb = self.newest_heartbeat(scratch, manifest)
                    drill.heartbeat_found(hb)
                    s.detail = (hb.isoformat() if hb else "no heartbeat in the restored data") + \
                        f"; replay: {dict(applier.stats)}"
            finally:
                with drill.step("drop scratch databases") as s:
                    s.detail = ", ".join(scratch.drop_all()) or "none created"

    def newest_heartbeat(self, scratch: ScratchDatabases, full: Manifest) -> datetime | None:
        db = self.options.heartbeat_db
        if db not in (full.native.get("databases") or []):
            return None
        doc = scratch.db(db)[HEARTBEAT_COLLECTION].find_one({}, sort=[("written_at", -1)])
        if not doc:
            return None
        at = doc["written_at"]
        return at if at.tzinfo else at.replace(tzinfo=UTC)

    # -- heartbeat ---------------------------------------------------------------------------------
    def heartbeat(self, client=None) -> datetime:
        now = utcnow()
        now = now.replace(microsecond=now.microsecond // 1000 * 1000)  # BSON dates hold milliseconds
        ctx = contextlib.nullcontext(client) if client is not None else self._session()
        with ctx as c:
            c[self.options.heartbeat_db][HEARTBEAT_COLLECTION].insert_one(
                {"region": self.region, "written_at": now, "source": "lifeboat", "host": os.uname().nodename})
        return now

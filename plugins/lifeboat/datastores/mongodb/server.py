"""The live MongoDB server as the engine reads it: its oplog (edges, window, consistent points, slices)
and its databases. Nothing here writes to the server."""

from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, NamedTuple

from lifeboat.datastores.mongodb.bsonio import gzip_writer
from lifeboat.datastores.mongodb.oplog import entry_time, ts_key, ts_str
from lifeboat.datastores.mongodb.options import OPLOG_FILE, SCRATCH_PREFIX, SYSTEM_DATABASES, MongoOptions
from lifeboat.durations import seconds
from lifeboat.errors import Refused

log = logging.getLogger(__name__)
COUNT_THREADS = 4  # collections counted at once by a consistent point


class QuietRead(NamedTuple):
    """Counts read in full after the oplog's newest entry was `edge`; the read ended at monotonic `done_at`."""
    edge: dict | None
    counts: dict[str, int]
    done_at: float


class LiveServer:
    def __init__(self, client: Any, options: MongoOptions, where: str, ferretdb: bool):
        self.client = client
        self.options = options
        self.where = where
        # FerretDB v1 (the local stack) differs in a few costs and orders; see natural() and count()
        self.ferretdb = ferretdb

    def require_oplog(self) -> dict:
        c = self.client
        hello = c.admin.command("hello")
        where = self.where
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

    def oplog(self, raw: bool = False):
        from bson.codec_options import CodecOptions
        from bson.raw_bson import RawBSONDocument

        opts = CodecOptions(document_class=RawBSONDocument, tz_aware=True) if raw else CodecOptions(tz_aware=True)
        return self.client.local.get_collection("oplog.rs", codec_options=opts)

    def natural(self, cursor, direction: int):
        """Oplog order. FerretDB v1 already returns a capped collection in insertion order and pushes
        an unsorted `limit` down to SQLite, whereas an explicit $natural sort makes it read and sort
        the whole collection in memory; MongoDB serves both forms from the oplog's own order."""
        if self.ferretdb and direction == 1:
            return cursor
        return cursor.sort("$natural", direction)

    def edge(self, direction: int) -> dict | None:
        """Newest (direction=-1) or oldest (1) oplog entry's ts and wall."""
        return next(iter(self.natural(self.oplog().find({}, {"ts": 1, "wall": 1}), direction).limit(1)), None)

    def oplog_stats(self) -> dict:
        try:
            s = self.client.local.command("collStats", "oplog.rs")
            return {"size": int(s.get("size", 0)), "maxSize": int(s.get("maxSize", 0) or 0),
                    "count": int(s.get("count", 0))}
        except Exception as exc:  # MongoDB 7+ may prefer $collStats; a missing stat only weakens the estimate
            log.debug("collStats local.oplog.rs failed: %s", exc)
            return {}

    def databases(self) -> list[str]:
        if self.options.databases:
            return list(self.options.databases)
        return sorted(n for n in self.client.list_database_names()
                      if n not in SYSTEM_DATABASES and not n.startswith(SCRATCH_PREFIX))

    @staticmethod
    def entry_in_scope(in_scope, raw) -> bool:
        ns = raw.get("ns", "")
        db = ns.partition(".")[0]
        op = raw.get("op")
        if op == "n":
            return False
        if op == "c" and ns == "admin.$cmd":  # transactions (applyOps/commit/abort) and renames
            return True
        return in_scope(db)

    def count(self, db, name: str) -> int:
        """Exact document count. MongoDB answers `count` without a query from collection metadata;
        FerretDB v1 decodes every document for it but answers collStats with SQLite's count(*)."""
        if self.ferretdb:
            return int(db.command("collStats", name).get("count", 0))
        return int(db.command("count", name)["n"])

    def collections(self, databases: list[str]) -> list[tuple[str, str]]:
        """(database, collection) of every non-system collection of `databases`, in name order."""
        c = self.client
        return [(db, name) for db in databases for name in sorted(c[db].list_collection_names())
                if not name.startswith("system.")]

    def consistent_point(self, databases: list[str],
                         read: QuietRead | None = None) -> tuple[dict[str, int], dict, bool]:
        """Counts read with no oplog entry written during the read (and a quiet `settle` after it):
        exact at the returned oplog position. Returns (counts, newest entry, exact).

        `read`: counts the caller has already read in full (a full dump's own document counts) with the
        oplog's newest entry `read.edge` read before they were: when that is still the newest entry a
        `settle` after the read ended, no write happened since `edge` and those counts are exact there,
        without reading them again. The settle is waited from the end of that read, so work the caller
        does meanwhile (the dump files' upload) overlaps it. Otherwise the counts are read as above."""
        settle = seconds(self.options.settle)
        c = self.client
        counts: dict[str, int] = {}
        if read is not None:
            time.sleep(max(0.0, read.done_at + settle - time.monotonic()))
        newest = self.edge(-1)
        # (FerretDB logs no create/drop: the collections must also still be the ones that were read)
        if read is not None and read.edge is not None and newest is not None \
                and ts_key(read.edge["ts"]) == ts_key(newest["ts"]) \
                and {f"{db}.{name}" for db, name in self.collections(databases)} == set(read.counts):
            return dict(read.counts), newest, True
        if read is not None:
            log.info("writes during the dump: reading the counts at a consistent point")
        for attempt in range(self.options.consistent_point_attempts):
            before = newest
            names = self.collections(databases)
            # one round trip per collection, several in flight: the shorter the read, the fewer writes
            # land inside it (and force another attempt)
            with ThreadPoolExecutor(min(COUNT_THREADS, max(1, len(names))),
                                    thread_name_prefix="lifeboat-mongodb-count") as pool:
                got = list(pool.map(lambda dn: self.count(c[dn[0]], dn[1]), names))
            counts = {f"{db}.{name}": n for (db, name), n in zip(names, got, strict=True)}
            time.sleep(settle)
            newest = self.edge(-1)
            if before is not None and newest is not None and ts_key(before["ts"]) == ts_key(newest["ts"]):
                return counts, newest, True
            log.info("writes during the count read (attempt %d): trying again", attempt + 1)
        if newest is None:
            raise Refused(f"{self.where}: the oplog is empty, so no position can make the counts consistent")
        return counts, newest, False

    def tools(self) -> dict[str, str]:
        import pymongo

        info = self.client.admin.command("buildInfo")
        tools = {"pymongo": pymongo.version, "server": str(info.get("version", "?"))}
        if info.get("ferretdbVersion") or info.get("ferretdb"):
            tools["ferretdb"] = str(info.get("ferretdbVersion") or info["ferretdb"].get("version", "?"))
        return tools

    def write_oplog(self, path: Path, in_scope, *, after, until, inclusive: bool) -> dict:
        """Stream the oplog entries in (after, until] (or [after, until]) of the backed-up databases
        into a gzip BSON file, in the server's order. Returns manifest fields."""
        q = {"ts": {("$gte" if inclusive else "$gt"): after, "$lte": until}}
        n = skipped = nbytes = 0
        first = last = None
        first_at = last_at = None
        closing, fh = gzip_writer(path, self.options.gzip_level)
        try:
            with closing as gz:
                for raw in self.natural(self.oplog(raw=True).find(q, batch_size=self.options.batch_size), 1):
                    if not self.entry_in_scope(in_scope, raw):
                        skipped += 1
                        continue
                    gz.write(raw.raw)
                    n += 1
                    nbytes += len(raw.raw)
                    ts = raw["ts"]
                    at = entry_time(raw)
                    if first is None or ts_key(ts) < ts_key(first):
                        first, first_at = ts, at
                    if last is None or ts_key(ts) > ts_key(last):
                        last, last_at = ts, at
        finally:
            fh.close()
        position = {"first_ts": ts_str(first) if first else None, "last_ts": ts_str(last) if last else None,
                    "first_at": first_at.isoformat() if first_at else None,
                    "last_at": last_at.isoformat() if last_at else None, "entries": n}
        return {"position": position,
                "native": {"file": OPLOG_FILE, "entries": n,
                           "bytes": nbytes, "skipped_out_of_scope": skipped, "compression": "gzip"}}

    def live_databases(self) -> set[str]:
        names = {n for n in self.client.list_database_names() if not n.startswith(SCRATCH_PREFIX)}
        return names | set(self.options.databases)

"""MongoDB restores into scratch databases: load a full dump, compare it, replay the oplog to a target."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from lifeboat.datastores.base import ScratchTarget
from lifeboat.datastores.mongodb.apply import OplogApplier, index_spec
from lifeboat.datastores.mongodb.bsonio import HASH_MOD, doc_hash, oplog_entries, reading
from lifeboat.datastores.mongodb.oplog import ReplayPlan, parse_ts, ts_key, ts_str
from lifeboat.datastores.mongodb.options import HEARTBEAT_COLLECTION, MongoOptions, in_scope_fn
from lifeboat.datastores.mongodb.pipeline import BatchStats, prefetched, raw_batches
from lifeboat.datastores.mongodb.scratchdb import ScratchDatabases
from lifeboat.datastores.mongodb.server import LiveServer
from lifeboat.drills import DrillRecorder
from lifeboat.errors import RestoreFailed
from lifeboat.records import Manifest
from lifeboat.repository import Repository

if TYPE_CHECKING:  # the engine passes itself in; no import at run time
    from lifeboat.datastores.mongodb.engine import MongoDatastore


def load_dump(repo: Repository, options: MongoOptions, full: Manifest, scratch: ScratchDatabases) -> dict[str, dict]:
    """Load every dumped collection into its scratch database; returns per-collection stats."""
    from bson.json_util import loads
    from bson.raw_bson import RawBSONDocument

    stats = {}
    for ns, info in full.native["collections"].items():
        db, _, name = ns.partition(".")
        target_db = scratch.db(db)
        with reading(repo, full, info["metadata"]) as gz:
            meta = loads(gz.read().decode())
        opts = {k: v for k, v in (meta.get("options") or {}).items() if k in ("capped", "size", "max")}
        if name in target_db.list_collection_names():
            target_db.drop_collection(name)
        target_db.create_collection(name, **opts)
        coll = target_db[name]
        loaded = BatchStats(options.hash_documents)
        acked = 0
        with reading(repo, full, info["file"]) as gz:
            # the next batch is decompressed, split and hashed in a background thread while this one is inserted
            def batches(gz: Any = gz, loaded: BatchStats = loaded) -> Iterator[list]:
                for docs in raw_batches(gz, options.batch_size):
                    loaded.add_documents(docs)
                    yield [RawBSONDocument(raw) for raw in docs]

            for batch in prefetched(batches):
                result = coll.insert_many(batch, ordered=False)  # a failed insert raises BulkWriteError
                if not result.acknowledged:
                    raise RestoreFailed(f"{ns}: the server did not acknowledge the load (unacknowledged write "
                                        "concern): the restore cannot prove its documents landed")
                acked += len(batch)  # (pymongo lists no inserted_ids for raw documents)
        specs = [index_spec(ix) for ix in meta.get("indexes", []) if ix.get("name") != "_id_"]
        if specs:
            target_db.command("createIndexes", name, indexes=specs)
        stats[ns] = {"documents": acked, "indexes": len(specs) + 1, "read": loaded.documents,
                     "content_hash": loaded.hex if options.hash_documents else ""}
    return stats

def content(coll, batch_size: int) -> tuple[int, str]:
    from bson.codec_options import CodecOptions
    from bson.raw_bson import RawBSONDocument

    raw_coll = coll.with_options(codec_options=CodecOptions(document_class=RawBSONDocument))
    n = h = 0
    for d in raw_coll.find({}, batch_size=batch_size):
        n += 1
        h = (h + doc_hash(d.raw)) % HASH_MOD
    return n, f"{h:064x}"

def compare_with_dump(options: MongoOptions, full: Manifest, scratch: ScratchDatabases,
                      loaded: dict[str, dict] | None = None, server: LiveServer | None = None) -> str:
    """The restored collections equal the dump: with `loaded` (load_dump's stats) and a server, and the
    option restore_content_check 'loaded', the content hash of the documents the load sent equals the
    dump's, the server acknowledged every one and holds exactly the dump's count; otherwise (or with
    'read_back') every collection is read back from the server, counted and hashed."""
    read_back = options.restore_content_check == "read_back" or loaded is None or server is None
    diffs, ok = [], 0
    for ns, info in full.native["collections"].items():
        db, _, name = ns.partition(".")
        coll = scratch.db(db)[name]
        want_hash = info.get("content_hash") if options.hash_documents else None
        if not read_back:
            assert loaded is not None and server is not None
            got = loaded.get(ns) or {}
            held = server.count(scratch.db(db), name)
            if (got.get("read"), got.get("documents"), held) != (info["documents"],) * 3:
                diffs.append(f"{ns}: {got.get('read')} documents read from the dump file, {got.get('documents')} "
                             f"acknowledged by the server, {held} held by the server; the dump has {info['documents']}")
            elif want_hash and got.get("content_hash") != want_hash:
                diffs.append(f"{ns}: the loaded documents hash {str(got.get('content_hash'))[:12]}…, the dump has "
                             f"{want_hash[:12]}…")
            else:
                ok += 1
            continue
        if want_hash:
            n, h = content(coll, options.batch_size)
            if n != info["documents"] or h != want_hash:
                diffs.append(f"{ns}: {n} documents hash {h[:12]}…, dump has {info['documents']} hash "
                             f"{want_hash[:12]}…")
                continue
        else:
            n = coll.count_documents({})
            if n != info["documents"]:
                diffs.append(f"{ns}: {n} documents, dump has {info['documents']}")
                continue
        ok += 1
    if diffs:
        raise RestoreFailed("restored collections differ from the dump: " + "; ".join(diffs))
    if read_back:
        return f"{ok} collections read back from the server: counts and content hashes equal the dump's"
    return (f"{ok} collections: the content hashes of the documents loaded equal the dump's, every insert "
            "acknowledged, the server holds exactly the dump's counts")

def compare_counts(server: LiveServer, m: Manifest, scratch: ScratchDatabases) -> str:
    diffs = []
    for ns, want in sorted(m.counts.items()):
        db, _, name = ns.partition(".")
        got = server.count(scratch.db(db), name)
        if got != want:
            diffs.append(f"{ns}: expected {want}, restored {got}")
    if diffs:
        raise RestoreFailed(f"document counts at {m.position['until_ts']} ({m.id}) differ: " + "; ".join(diffs))
    return f"{len(m.counts)} collections match the exact counts of {m.id} at {m.position['until_ts']}"

def restore_into(repo: Repository, server: LiveServer, plan: ReplayPlan, scratch: ScratchDatabases,
                 drill: DrillRecorder) -> OplogApplier:
    """Full dump, then oplog replay up to the plan's target, with checks at every exact point."""
    full = plan.full
    # FerretDB v1 keeps every statement's query open until a multi-statement update command ends
    # (a `defer` in a loop) and deadlocks once its SQLite pool (100) is used up: small batches there.
    options = server.options
    batch = min(options.batch_size, 50) if server.ferretdb else options.batch_size
    scope = None if full.native.get("all_databases") else full.native.get("databases")
    applier = OplogApplier(scratch, in_scope_fn(scope), batch=batch)
    with drill.step("load full dump") as s:
        t = time.monotonic()
        stats = load_dump(repo, options, full, scratch)
        mb = sum(i["bytes"] for i in full.native["collections"].values()) / 1e6
        s.detail = (f"{len(stats)} collections, {sum(x['documents'] for x in stats.values())} documents "
                    f"({mb:.1f} MB) into {', '.join(sorted(scratch.used))} in {time.monotonic() - t:.1f}s")
    with drill.step("documents match the dump") as s:
        s.detail = compare_with_dump(options, full, scratch, stats, server)
    for m, after in [(full, None), *zip(plan.slices, plan.starts, strict=True)]:
        label = "dump oplog window" if m.kind == "full" else f"oplog {m.id}"
        with drill.step(f"replay {label}") as s:
            before = sum(applier.stats.values())
            skipped = earlier = 0
            for e in oplog_entries(repo, m):
                if after is not None and ts_key(e["ts"]) <= ts_key(after):
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
                s.detail = compare_counts(server, m, scratch)
    return applier

def newest_heartbeat(options: MongoOptions, scratch: ScratchDatabases, full: Manifest) -> datetime | None:
    db = options.heartbeat_db
    if db not in (full.native.get("databases") or []):
        return None
    doc = scratch.db(db)[HEARTBEAT_COLLECTION].find_one({}, sort=[("written_at", -1)])
    if not doc:
        return None
    at = doc["written_at"]
    return at if at.tzinfo else at.replace(tzinfo=UTC)


class MongoScratch(ScratchTarget):
    """Scratch databases on the live server (`lifeboat_scratch_<tag>_<db>`, guarded): the full dump
    loaded and compared with its content hashes, the oplog replayed to the target with the exact
    counts compared at every consistent point on the way (MongoDB's verification is part of the
    replay: counts are comparable only there)."""

    teardown_step = "drop scratch databases"

    def __init__(self, ds: MongoDatastore, m: Manifest, target: str, drill: DrillRecorder):
        self.ds, self.m, self.target, self.drill_id = ds, m, target, drill.drill.id
        self._session = contextlib.ExitStack()
        self.databases: ScratchDatabases | None = None
        self.applier: OplogApplier | None = None

    def precheck(self, drill: DrillRecorder) -> None:
        self.plan = self.ds.plan_replay(self.m, self.target)
        client = self._session.enter_context(self.ds._session())
        self.server = self.ds.live(client)
        self.databases = self.ds.scratch_for(client, self.drill_id)

    def restore(self, drill: DrillRecorder) -> None:
        assert self.databases is not None
        self.applier = restore_into(self.ds.ctx.repo, self.server, self.plan, self.databases, drill)

    def verify(self, drill: DrillRecorder) -> None:
        """Done during the replay: "documents match the dump" and "counts at <ts>" at each exact point."""

    def newest_heartbeat(self) -> datetime | None:
        assert self.databases is not None
        return newest_heartbeat(self.ds.options, self.databases, self.m)

    def heartbeat_detail(self, hb: datetime | None) -> str:
        stats = dict(self.applier.stats) if self.applier else {}
        return (hb.isoformat() if hb else "no heartbeat in the restored data") + f"; replay: {stats}"

    def teardown(self) -> str:
        try:
            return ", ".join(self.databases.drop_all() if self.databases else []) or "none created"
        finally:
            self._session.close()

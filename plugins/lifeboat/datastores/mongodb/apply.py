"""Oplog application (MongoDB 6.0+ entry formats), idempotent, into scratch databases only."""

from __future__ import annotations

import contextlib
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from lifeboat.datastores.mongodb.oplog import ts_str
from lifeboat.datastores.mongodb.scratchdb import ScratchDatabases
from lifeboat.errors import RestoreFailed


def classify_update(o: dict) -> str:
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


def index_spec(ix: dict) -> dict:
    """An index definition as createIndexes takes it: without the namespace and version fields a
    listIndexes/oplog entry carries (the server picks the current index version)."""
    return {k: v for k, v in ix.items() if k not in ("ns", "v", "createIndexes", "background")}



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
            kind = classify_update(e["o"])
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
            target_db.command("createIndexes", o["createIndexes"], indexes=[index_spec(o)])
        elif name == "commitIndexBuild":
            target_db.command("createIndexes", o["commitIndexBuild"], indexes=[index_spec(i) for i in o["indexes"]])
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

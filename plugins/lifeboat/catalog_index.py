"""The catalog index: what the records under one prefix hold, in a few objects, so reading a catalog of
10,000 backups is a handful of requests instead of one GET per record.

An *area* (`<datastore>.backups`, `<datastore>.verifications`, `drills`) indexes the records under one
prefix of the layout. Its index is a folder of immutable *segments* (`index/<area>/<stamp>-<nonce>.json`,
keys from `Layout`), each `{"put": {key: {"size", "record"}}, "del": [key, ...], "base": bool}`, applied
in name (= time) order. Writers add a segment AFTER the record itself is written (`Repository.commit`
writes the manifest, then its index entry), so a segment never names a record that was not yet stored;
deleting a backup writes the tombstone after the manifest is gone. When an area has more than
`COMPACT_AT` segments, the writer merges them into one (named after the OLDEST input, so a segment that
arrives late still applies after it) and deletes the inputs; two writers compacting at once write the
same merged state twice, which is harmless.

The index is a cache of *contents*, never the authority on what exists:

* where listing is cheap (file://), readers list the prefix as always and take each listed record from
  the index when its size matches, else GET it: the catalog shows exactly what the storage holds,
  including records written or removed behind Lifeboat's back;
* where listing is expensive (S3: 1,000 keys a request over every artifact), readers trust the index,
  and tolerate staleness: an entry whose manifest vanished outside Lifeboat is caught where a backup is
  acted on (`Catalog.get/latest/chain` read the manifest itself); a manifest without an entry (a crash
  between the two writes) is picked up by the retried task (it re-adds the entry) and by
  `Repository.reindex` (the mirror job runs it on the listing it makes anyway).

An area without a *base* segment (a repository from before the index) is read by listing, and the first
writer builds the base from a full listing.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import secrets
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from lifeboat.errors import RepositoryError
from lifeboat.layout import DRILLS, MANIFEST, Layout
from lifeboat.storage import Storage

log = logging.getLogger(__name__)

FORMAT = "lifeboat.index/v1"
COMPACT_AT = int(os.environ.get("LIFEBOAT_INDEX_COMPACT_AT", "32"))

Entry = tuple[int, Any]  # (size of the stored record, its parsed JSON)


class RecordIndex:
    def __init__(self, storage: Storage, area: str):
        self.storage = storage
        self.area = area
        self.prefix = Layout.index(area)

    # -- reading --------------------------------------------------------------------------------
    def segments(self) -> list[str]:
        return [o.key for o in self._listing()]

    def _listing(self):
        return [o for o in self.storage.list(self.prefix) if o.key.endswith(".json")]

    def load(self) -> dict[str, Entry] | None:
        """key -> (size, record) as the segments say; None when the area has no base yet (read by listing)."""
        for _attempt in range(3):
            keys = self.segments()
            try:
                state, based = self._apply(keys)
            except _Vanished:  # compacted away between the listing and the GET: list again
                continue
            return state if based else None
        return None

    def _apply(self, keys: list[str]) -> tuple[dict[str, Entry], bool]:
        state: dict[str, Entry] = {}
        based = False
        for key in keys:
            try:
                raw = self.storage.get_bytes(key)
            except RepositoryError as exc:
                if "not found" in str(exc) or "NoSuchKey" in str(exc):
                    raise _Vanished(key) from None
                raise
            try:
                seg = json.loads(raw)
                if seg.get("format") != FORMAT:
                    raise ValueError(f"format {seg.get('format')!r}")
            except ValueError as exc:
                log.warning("catalog index %s/%s is unreadable (%s): ignored", self.storage.url, key, exc)
                continue
            based = based or bool(seg.get("base"))
            for k in seg.get("del", ()):
                state.pop(k, None)
            for k, e in seg.get("put", {}).items():
                state[k] = (int(e["size"]), e["record"])
        return state, based

    # -- writing ----------------------------------------------------------------------------------
    def add(self, put: Mapping[str, bytes] | None = None, removed: Iterable[str] = (),
            scan: Callable[[], Mapping[str, bytes]] | None = None) -> None:
        """One segment: `put` (key -> the record's bytes as stored), `removed` keys. Best effort: the
        records themselves are already durable, so a failure here only leaves the index stale (logged).
        `scan` lists the area's records for the base when there is none yet."""
        try:
            self._write({k: (len(v), _text(v)) for k, v in (put or {}).items()}, list(removed))
            self.maintain(scan)
        except Exception as exc:  # the record is stored; only the cache is behind
            log.warning("catalog index %s%s not updated (%s); readers fall back to the records", self.storage.url,
                        f"/{self.prefix}", exc)

    def _write(self, put: Mapping[str, Entry], removed: list[str], base: bool = False, stamp: int | None = None
               ) -> str:
        nonce = secrets.token_hex(4) + ("-b" if base else "")  # "-b": holds a base (see _has_base)
        key = Layout.index_segment(self.area, stamp if stamp is not None else time.time_ns(), nonce)
        body = {"format": FORMAT, "area": self.area, "base": base,
                "put": {k: {"size": s, "record": r} for k, (s, r) in put.items()}, "del": removed}
        self.storage.put_bytes(key, json.dumps(body, separators=(",", ":")).encode())
        return key

    def maintain(self, scan: Callable[[], Mapping[str, bytes]] | None = None) -> None:
        """Build the base if there is none (from `scan`), merge the segments when there are too many."""
        listing = self._listing()
        keys = [o.key for o in listing]
        if scan is not None and not self._has_base(keys):
            self.rebuild(scan)
            return
        if len(keys) > COMPACT_AT:
            # Tiered: a big first segment (the base) is merged again only once the small ones behind it
            # add up to half its size, so a catalog of N records costs O(N log N) bytes of compaction,
            # not O(N^2). The merged run is always contiguous in name order.
            sizes = [o.size for o in listing]
            start = 1 if sizes[0] > 2 * sum(sizes[1:]) else 0
            self.compact(keys[start:])

    @staticmethod
    def _has_base(keys: list[str]) -> bool:
        # merged segments carry the base flag of their inputs, and say so in their name
        return any(k.endswith("-b.json") for k in keys)

    def compact(self, keys: list[str] | None = None) -> None:
        keys = keys if keys is not None else self.segments()
        if len(keys) < 2:
            return
        try:
            state, based = self._apply(keys)
        except _Vanished:  # another writer is compacting right now
            return
        oldest = int(keys[0].rsplit("/", 1)[1].split("-", 1)[0])
        self._write(state, [], base=based, stamp=oldest)
        for key in keys:
            self.storage.delete(key)

    def rebuild(self, scan: Callable[[], Mapping[str, bytes]]) -> None:
        """A base segment from a full listing (`scan`: key -> bytes of every record), then every older
        segment removed."""
        stamp = time.time_ns()  # segments written from now on apply after the base
        old = self.segments()
        records = scan()
        self._write({k: (len(v), _text(v)) for k, v in records.items()}, [], base=True, stamp=stamp)
        for key in old:
            self.storage.delete(key)
        log.info("catalog index %s/%s rebuilt: %d records", self.storage.url, self.prefix, len(records))


class _Vanished(Exception):
    pass


def _text(raw: bytes) -> str:
    """A record as the segment keeps it: its JSON text (checked to be JSON), parsed by the reader's
    model directly."""
    text = raw.decode()
    json.loads(text)
    return text


R = TypeVar("R", bound=BaseModel)


class IndexedRecords:
    """The part of `Repository` that reads records through the index and keeps it (a mixin: `primary`
    is the region's Storage, `url_of` names a key)."""

    primary: Storage

    def url_of(self, key: str) -> str:
        raise NotImplementedError

    _loaded: dict[str, dict[str, Entry] | None] | None = None  # inside one_read(): each area's index, read once

    # -- the catalog index (lifeboat.catalog_index) -------------------------------------------------
    def _index(self, area: str) -> RecordIndex:
        return RecordIndex(self.primary, area)

    def _load_index(self, area: str) -> dict[str, Entry] | None:
        memo = self._loaded
        if memo is None:
            return self._index(area).load()
        if area not in memo:
            memo[area] = self._index(area).load()
        return memo[area]

    @contextlib.contextmanager
    def one_read(self) -> Iterator[None]:
        """A read-only pass (the DR page): inside it each index area is loaded at most once, so reading a
        datastore's backups and then its interrupted ones costs one load, not two (on S3 a load of
        10,000 manifests is ~0.5 s). What it returns is the catalog as of the first read of each area."""
        outer = self._loaded
        self._loaded = {} if outer is None else outer
        try:
            yield
        finally:
            self._loaded = outer

    @staticmethod
    def _area_prefix(area: str) -> tuple[str, object]:
        """The prefix an index area covers and which keys under it are its records."""
        if area == DRILLS:
            return Layout.drills(), Layout.is_record
        datastore, what = area.rsplit(".", 1)
        if what == "backups":
            return Layout.backups(datastore), Layout.is_manifest
        return Layout.verifications(datastore), Layout.is_record

    def _scan(self, area: str) -> dict[str, bytes]:
        """Every record of `area` read from the storage (the slow path, for a base or a repair)."""
        prefix, wanted = self._area_prefix(area)
        listed = [o.key for o in self.primary.list(prefix)]
        keys = [k for k in listed if wanted(k)]  # type: ignore[operator]
        out = {k: raw for k, raw in zip(keys, self._get_many(keys), strict=True) if raw is not None}
        if area.endswith(".backups"):  # folders without a manifest: interrupted backups
            for k in filter(None, map(Layout.parse_backup_key, listed)):
                if Layout.manifest(k.datastore, k.backup_id) not in out:
                    out[Layout.backup(k.datastore, k.backup_id)] = b'{"started":true}'
        return out

    def _get_many(self, keys: list[str]) -> list[bytes | None]:
        """GET of each key (in parallel on remote storage); None for one that cannot be read (logged)."""
        def get(key: str) -> bytes | None:
            try:
                return self.primary.get_bytes(key)
            except (RepositoryError, OSError) as exc:
                log.warning("skipping %s", RepositoryError(f"{self.url_of(key)}: {exc}"))
                return None

        if self.primary.cheap_listing or len(keys) < 8:
            return [get(k) for k in keys]
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(16, thread_name_prefix="lifeboat-get") as pool:
            return list(pool.map(get, keys))

    def index_add(self, area: str, key: str, raw: bytes) -> None:
        self._index(area).add({key: raw}, scan=lambda: self._scan(area))

    def repair_index(self, areas: Iterable[str]) -> dict[str, dict[str, int]]:
        """Make each area's index match the storage: entries for records it lacks (a crash between a
        record and its entry), none for records that are gone. Lists each prefix once; GETs only what
        the index lacks or holds at another size."""
        report = {}
        for area in areas:
            idx_obj = self._index(area)
            idx = idx_obj.load()
            if idx is None:
                idx_obj.rebuild(lambda a=area: self._scan(a))  # type: ignore[misc]
                report[area] = {"rebuilt": 1}
                continue
            prefix, wanted = self._area_prefix(area)
            listed = {o.key: o.size for o in self.primary.list(prefix) if wanted(o.key)}  # type: ignore[operator]
            missing = [k for k, size in listed.items() if k not in idx or idx[k][0] != size]
            gone = [k for k in idx if k not in listed and not k.endswith("/")]
            if area.endswith(".backups"):  # folder notes of backups that are gone altogether
                folders = {Layout.backup(k.datastore, k.backup_id) for k in map(Layout.parse_backup_key, listed)
                           if k is not None}
                gone += [k for k in idx if k.endswith("/") and k not in folders and k + MANIFEST not in listed]
            raws = dict(zip(missing, self._get_many(missing), strict=True))
            put = {k: v for k, v in raws.items() if v is not None}
            if put or gone:
                idx_obj.add(put, removed=gone)
            report[area] = {"added": len(put), "removed": len(gone)}
        return report

    def index_areas(self) -> list[str]:
        """Every area of the index present in the storage (from the index folder's listing)."""
        return sorted({o.key.split("/")[1] for o in self.primary.list(f"{Layout.index('x').split('/')[0]}/")
                       if o.key.count("/") >= 2})

    def _records(self, prefix: str, model: type[R], wanted=Layout.is_record, area: str | None = None,
                 truth: Callable[[], Iterable[Any]] | None = None) -> Iterator[R]:
        """The records under `prefix`: contents from the catalog index of `area` where it has them,
        else one GET each. `truth` (a cheap listing: ObjectInfo of exactly the records that exist)
        decides what exists where it is given; otherwise the index does once it has a base, and the
        full listing before that (lifeboat.catalog_index)."""
        idx = self._load_index(area) if area else None
        found: list[tuple[str, object]] = []
        misses: list[str] = []
        if idx is not None and truth is None:
            found = [(k, rec) for k, (_size, rec) in sorted(idx.items()) if k.startswith(prefix) and wanted(k)]
        else:
            for o in truth() if truth is not None else self.primary.list(prefix):
                if not wanted(o.key) or not o.key.startswith(prefix):
                    continue
                e = idx.get(o.key) if idx else None
                if e is not None and e[0] == o.size:
                    found.append((o.key, e[1]))
                else:
                    misses.append(o.key)
        for key, raw in zip(misses, self._get_many(misses), strict=True):
            if raw is not None:
                found.append((key, raw))
        for key, rec in found:
            try:
                yield model.model_validate_json(rec) if isinstance(rec, bytes | str) else model.model_validate(rec)
            except ValidationError as exc:
                log.warning("skipping %s", RepositoryError(f"{self.url_of(key)}: unreadable record: "
                                                          f"{exc.errors()[0]['msg']}"))

"""The dump of a full backup: every collection streamed as raw BSON into mongodump's --gzip layout
(memory stays flat whatever the collection size), with its metadata and a content hash."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

from lifeboat.datastores.mongodb.bsonio import escape_collection, gzip_writer
from lifeboat.datastores.mongodb.options import MongoOptions
from lifeboat.datastores.mongodb.pipeline import BatchStats, prefetched

log = logging.getLogger(__name__)


def dump_collections(c: Any, databases: list[str], staging: Path,
                     options: MongoOptions) -> tuple[dict[str, dict], dict[str, str]]:
    """(collections: ns -> file, metadata, documents, bytes, content_hash, ...; skipped: ns -> why)."""
    from bson.codec_options import CodecOptions
    from bson.json_util import CANONICAL_JSON_OPTIONS, dumps
    from bson.raw_bson import RawBSONDocument

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
            rel = f"dump/{db}/{escape_collection(name)}"
            coll = c[db].get_collection(name, codec_options=raw_opts)
            stats = BatchStats(options.hash_documents)
            t = time.monotonic()
            closing, fh = gzip_writer(staging / f"{rel}.bson.gz", options.gzip_level)
            try:
                with closing as gz:
                    # the next batch is read from the server while this one is hashed and compressed
                    def read(coll: Any = coll) -> Any:
                        return coll.find_raw_batches({}, batch_size=options.batch_size)

                    for buf in prefetched(read):
                        stats.add(buf)  # count, bytes, per-document hashes; ValueError on a malformed reply
                        gz.write(buf)
            finally:
                fh.close()
            n, nbytes = stats.documents, stats.bytes
            indexes = []
            for ix in c[db][name].list_indexes():
                spec = dict(ix)
                spec.pop("ns", None)
                indexes.append(spec)
            uuid = (info.get("info") or {}).get("uuid")
            meta = {"options": info.get("options", {}), "indexes": indexes,
                    "uuid": uuid.hex() if isinstance(uuid, bytes) else "", "collectionName": name,
                    "type": "collection"}
            closing, fh = gzip_writer(staging / f"{rel}.metadata.json.gz", options.gzip_level)
            try:
                with closing as gz:
                    gz.write(dumps(meta, json_options=CANONICAL_JSON_OPTIONS).encode())
            finally:
                fh.close()
            secs = time.monotonic() - t
            log.info("dumped %s: %d documents, %.1f MB in %.1fs", ns, n, nbytes / 1e6, secs)
            collections[ns] = {"file": f"{rel}.bson.gz", "metadata": f"{rel}.metadata.json.gz", "documents": n,
                               "bytes": nbytes, "content_hash": stats.hex if options.hash_documents else "",
                               "indexes": len(indexes), "options": json.loads(dumps(info.get("options", {})))}
    return collections, skipped

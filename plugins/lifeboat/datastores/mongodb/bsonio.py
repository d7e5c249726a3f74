"""BSON streams and gzip files in mongodump's layout: reading, writing, hashing, and the check that
every stored file parses end to end."""

from __future__ import annotations

import contextlib
import hashlib
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import quote

from lifeboat.datastores.mongodb.codec import ERRORS as CODEC_ERRORS
from lifeboat.datastores.mongodb.codec import gzip_reader
from lifeboat.datastores.mongodb.gz import AdaptiveGzip
from lifeboat.datastores.mongodb.oplog import parse_ts, ts_key, ts_str
from lifeboat.datastores.mongodb.options import OPLOG_FILE
from lifeboat.errors import RestoreFailed
from lifeboat.records import Check, Manifest
from lifeboat.repository import Repository


class Readable(Protocol):
    def read(self, size: int = ..., /) -> bytes: ...


def iter_raw_bson(fh: Readable) -> Iterator[bytes]:
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


def doc_hash(raw: bytes) -> int:
    return int.from_bytes(hashlib.sha256(raw).digest(), "big")


HASH_MOD = 1 << 256


def escape_collection(name: str) -> str:
    """File name for a collection (mongodump escapes '/' and '%'; '$' and '.' stay readable)."""
    return quote(name, safe="$.-_~!@+=,;'()[]{} ")


def gzip_writer(path: Path, level: int):
    """(gzip writer context, raw file): the caller closes the raw file after the gzip stream. Data that
    does not compress is stored, not compressed (gz.py); mtime 0 and no file name in the headers: the
    same data gives the same bytes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    raw = open(path, "wb")  # noqa: SIM115 -- closed by the caller, after the gzip stream on top of it
    return contextlib.closing(AdaptiveGzip(raw, level)), raw


def _damaged_file_errors() -> tuple[type[Exception], ...]:
    """What reading a damaged dump file raises: I/O, truncation, the codec, a bad length or UTF-8
    (ValueError), BSON."""
    from bson.errors import BSONError

    return (OSError, EOFError, *CODEC_ERRORS, ValueError, BSONError)


@contextlib.contextmanager
def reading(repo: Repository, m: Manifest, rel: str) -> Iterator[Any]:
    """A backup file, decompressed; a damaged file fails the restore naming the file."""
    try:
        with repo.open_artifact(m, rel) as fh, gzip_reader(fh) as gz:
            yield gz
    except _damaged_file_errors() as exc:
        raise RestoreFailed(f"{repo.artifact_url(m, rel)}: cannot read it back: {type(exc).__name__}: "
                            f"{exc} (run verification: the file is damaged)") from None


def oplog_entries(repo: Repository, m: Manifest) -> Iterator[dict]:
    """The oplog entries a backup holds, decoded, in the server's order."""
    from bson import decode
    from bson.codec_options import CodecOptions

    opts: Any = CodecOptions(tz_aware=True)
    with reading(repo, m, OPLOG_FILE) as gz:
        for raw in iter_raw_bson(gz):
            yield decode(raw, codec_options=opts)


def check_bson(repo: Repository, m: Manifest) -> Check:
    """Every BSON file decompresses and parses to its end, with the document counts recorded."""
    import bson
    from bson.json_util import loads

    bad: list[str] = []
    parsed = 0
    expected = {info["file"]: info["documents"] for info in (m.native.get("collections") or {}).values()}
    expected[OPLOG_FILE] = (m.native.get("oplog") or {}).get("entries")
    lo = parse_ts(m.position["from_ts"]) if m.position.get("from_ts") else None
    hi = parse_ts(m.position["until_ts"]) if m.position.get("until_ts") else None
    for a in m.artifacts:
        if not (a.path.endswith(".bson.gz") or a.path == OPLOG_FILE or a.path.endswith(".metadata.json.gz")):
            continue
        name = repo.artifact_url(m, a.path)
        n = 0
        try:
            with repo.open_artifact(m, a.path) as raw_fh, gzip_reader(raw_fh) as gz:
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
                        outside = ts is None or not (ts_key(lo) <= ts_key(ts) <= ts_key(hi)) or (
                            not incl and ts_key(ts) == ts_key(lo))
                        if outside:
                            raise ValueError(f"entry {n} has ts {ts_str(ts) if ts else None} outside the backup's "
                                             f"window {ts_str(lo)}..{ts_str(hi)}")
        except _damaged_file_errors() as exc:
            bad.append(f"{name}: does not parse after {n} documents: {type(exc).__name__}: {exc}")
            continue
        parsed += 1
        want = expected.get(a.path)
        if want is not None and want != n:
            bad.append(f"{name}: {n} documents, the manifest recorded {want}")
    return Check(name="BSON files parse", ok=not bad,
                 detail="; ".join(bad) if bad else f"{parsed} files decompress and parse end to end, "
                                                   "document counts as recorded")

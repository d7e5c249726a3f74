"""Overlap for the dump and the load: one side of a transfer runs in a background thread while the
other works, and BSON handled a batch at a time instead of a document at a time.

The dump reads raw BSON batches from the server (`find_raw_batches`: the reply's bytes, no object per
document) in a background thread while the caller counts, hashes and compresses the previous batch
(zlib releases the GIL); the load decompresses and splits the next batch in a background thread while
the caller's insert_many waits for the server.
"""

from __future__ import annotations

import hashlib
import queue
import struct
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar

from lifeboat.datastores.mongodb.bsonio import HASH_MOD, Readable

T = TypeVar("T")
_UNPACK = struct.Struct("<i").unpack_from
MAX_DOCUMENT = 48 * 1024 * 1024
CHUNK = 1024 * 1024


class _End:
    def __init__(self, error: BaseException | None):
        self.error = error


def prefetched(make: Callable[[], Iterable[T]], depth: int = 2) -> Iterator[T]:
    """The items of `make()`, produced in a background thread up to `depth` ahead of the consumer.
    An exception in the producer is raised in the consumer at that point of the stream; a consumer
    that stops early (break, exception) stops the producer and closes its iterator."""
    q: queue.Queue[Any] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def offer(item: Any) -> bool:
        while not stop.is_set():
            try:
                q.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def run() -> None:
        it: Any = None
        try:
            it = iter(make())
            for item in it:
                if not offer(item):
                    return
            offer(_End(None))
        except BaseException as exc:  # handed to the consumer, raised there
            offer(_End(exc))
        finally:
            close = getattr(it, "close", None)
            if close is not None:
                close()

    worker = threading.Thread(target=run, name="lifeboat-mongodb-prefetch", daemon=True)
    worker.start()
    try:
        while True:
            item = q.get()
            if isinstance(item, _End):
                if item.error is not None:
                    raise item.error
                return
            yield item
    finally:
        stop.set()
        worker.join()


def split_batch(buf: bytes | memoryview) -> list[tuple[int, int]]:
    """(offset, size) of every document of a stream of concatenated BSON documents; ValueError when the
    lengths do not add up to the buffer or a document does not end with its NUL byte."""
    out = []
    off, end = 0, len(buf)
    while off < end:
        if end - off < 4:
            raise ValueError(f"truncated document length at byte {off}")
        (size,) = _UNPACK(buf, off)
        if size < 5 or size > MAX_DOCUMENT:
            raise ValueError(f"invalid document length {size} at byte {off}")
        if off + size > end:
            raise ValueError(f"truncated document at byte {off}: expected {size} bytes, got {end - off}")
        if buf[off + size - 1] != 0:
            raise ValueError(f"document at byte {off} does not end with a NUL byte")
        out.append((off, size))
        off += size
    return out


class BatchStats:
    """Documents, bytes and the order-independent content hash (sum of per-document SHA-256 mod 2^256,
    the same as bsonio.doc_hash summed) of the batches added."""

    def __init__(self, hashing: bool):
        self.hashing = hashing
        self.documents = self.bytes = 0
        self.hash = 0

    def add(self, buf: bytes) -> None:
        docs = split_batch(buf)
        self.documents += len(docs)
        self.bytes += len(buf)
        if self.hashing:
            mv = memoryview(buf)
            sha, frm = hashlib.sha256, int.from_bytes
            h = self.hash
            for off, size in docs:
                h += frm(sha(mv[off:off + size]).digest(), "big")
            self.hash = h % HASH_MOD

    def add_documents(self, docs: list[bytes]) -> None:
        """The same for a list of already split documents."""
        self.documents += len(docs)
        self.bytes += sum(map(len, docs))
        if self.hashing:
            sha, frm = hashlib.sha256, int.from_bytes
            self.hash = (self.hash + sum(frm(sha(d).digest(), "big") for d in docs)) % HASH_MOD

    @property
    def hex(self) -> str:
        return f"{self.hash:064x}"


def raw_batches(fh: Readable, max_docs: int, max_bytes: int = 16 * 1024 * 1024) -> Iterator[list[bytes]]:
    """Lists of up to `max_docs` raw documents (and about `max_bytes`) from a BSON stream, read in
    1 MiB chunks. Raises ValueError at a truncated or malformed document."""
    pending = b""
    batch: list[bytes] = []
    nbytes = 0
    while True:
        chunk = fh.read(CHUNK)
        if not chunk:
            break
        buf = pending + chunk if pending else chunk
        off, end = 0, len(buf)
        while end - off >= 4:
            (size,) = _UNPACK(buf, off)
            if size < 5 or size > MAX_DOCUMENT:
                raise ValueError(f"invalid document length {size}")
            if off + size > end:
                break
            doc = buf[off:off + size]
            if doc[-1] != 0:
                raise ValueError("document does not end with a NUL byte")
            batch.append(doc)
            nbytes += size
            off += size
            if len(batch) >= max_docs or nbytes >= max_bytes:
                yield batch
                batch, nbytes = [], 0
        pending = buf[off:]
    if pending:
        if len(pending) < 4:
            raise ValueError("truncated document length at end of stream")
        (size,) = _UNPACK(pending, 0)
        raise ValueError(f"truncated document: expected {size} bytes, got {len(pending)}")
    if batch:
        yield batch

"""The MongoDB dump/load pipeline without a server: batch splitting, content hashes equal to the
per-document ones, chunked reading across document boundaries, and the background prefetch."""

from __future__ import annotations

import gzip
import io
import threading
import time

import bson
import pytest

from lifeboat.datastores.mongodb.bsonio import HASH_MOD, doc_hash, iter_raw_bson
from lifeboat.datastores.mongodb.pipeline import BatchStats, prefetched, raw_batches, split_batch


def docs(n: int, size: int = 100) -> list[bytes]:
    return [bson.encode({"_id": i, "p": "x" * (size + i % 7)}) for i in range(n)]


def test_split_batch_and_stats_equal_the_per_document_hash():
    ds = docs(50)
    buf = b"".join(ds)
    assert [buf[o:o + s] for o, s in split_batch(buf)] == ds
    st = BatchStats(hashing=True)
    st.add(b"".join(ds[:20]))
    st.add(b"".join(ds[20:]))
    want = 0
    for d in ds:
        want = (want + doc_hash(d)) % HASH_MOD
    assert (st.documents, st.bytes, st.hex) == (50, len(buf), f"{want:064x}")
    listed = BatchStats(hashing=True)
    listed.add_documents(ds[:10])
    listed.add_documents(ds[10:])
    assert (listed.documents, listed.bytes, listed.hex) == (st.documents, st.bytes, st.hex)
    assert BatchStats(hashing=False).hex == "0" * 64


@pytest.mark.parametrize(("bad", "why"), [(b"\x03\x00\x00\x00", "invalid document length 3"),
                                      (b"\x10\x00\x00\x00abc", "truncated document"),
                                      (b"\x05\x00\x00\x00\x01", "NUL byte")])
def test_split_batch_rejects_malformed_streams(bad, why):
    with pytest.raises(ValueError, match=why):
        split_batch(b"".join(docs(3)) + bad)


def test_raw_batches_cross_chunk_boundaries_and_match_iter_raw_bson():
    ds = docs(3000, size=900)  # ~3 MB: documents straddle the 1 MiB read chunks
    stream = b"".join(ds)
    got = list(raw_batches(gzip.GzipFile(fileobj=io.BytesIO(gzip.compress(stream))), 1000))
    assert [len(b) for b in got] == [1000, 1000, 1000]
    assert [d for b in got for d in b] == list(iter_raw_bson(io.BytesIO(stream))) == ds
    assert next(len(b) for b in raw_batches(io.BytesIO(stream), 10_000, max_bytes=1_000_000)) < 1200


def test_raw_batches_names_a_truncated_stream():
    stream = b"".join(docs(10))
    with pytest.raises(ValueError, match="truncated document: expected"):
        list(raw_batches(io.BytesIO(stream[:-3]), 100))
    with pytest.raises(ValueError, match="truncated document length"):
        list(raw_batches(io.BytesIO(stream + b"\x01\x00"), 100))


def test_prefetched_keeps_order_raises_the_producers_error_and_stops_it_early():
    assert list(prefetched(lambda: iter(range(100)), depth=3)) == list(range(100))

    def failing():
        yield 1
        raise ValueError("boom in the producer")

    seen = []

    def consume():
        for x in prefetched(failing):
            seen.append(x)

    with pytest.raises(ValueError, match="boom in the producer"):
        consume()
    assert seen == [1]

    closed = threading.Event()

    def endless():
        try:
            i = 0
            while True:
                yield i
                i += 1
        finally:
            closed.set()

    before = threading.active_count()
    for x in prefetched(endless, depth=2):
        if x == 5:
            break
    assert closed.wait(2), "the producer's iterator was not closed"
    deadline = time.monotonic() + 2
    while threading.active_count() > before and time.monotonic() < deadline:
        time.sleep(0.01)
    assert threading.active_count() == before


def test_adaptive_gzip_stores_what_does_not_compress_and_stays_one_gzip_stream():
    """Random bytes are stored, text is compressed; the members read back as one stream with Python's
    gzip and with gunzip (what an operator uses), and the same input gives the same bytes."""
    import gzip
    import io
    import os
    import shutil
    import subprocess

    from lifeboat.datastores.mongodb.gz import PROBE_EVERY, AdaptiveGzip

    random_part, text_part = os.urandom(PROBE_EVERY + 5000), b'{"name": "user", "n": 1}' * 300_000
    data = random_part + text_part + random_part[:1000]

    def write(blob: bytes) -> tuple[bytes, float]:
        out = io.BytesIO()
        g = AdaptiveGzip(out, 1)
        for i in range(0, len(blob), 1 << 20):
            g.write(blob[i:i + (1 << 20)])
        g.close()
        return out.getvalue(), g.stored_fraction

    blob, stored = write(data)
    assert gzip.decompress(blob) == data
    assert 0.3 < stored < 0.9, "the random part stored, the text compressed"
    assert len(blob) < len(random_part) + len(text_part) // 10
    assert write(data)[0] == blob, "deterministic"
    if shutil.which("gunzip"):
        assert subprocess.run(["gunzip", "-c"], input=blob, capture_output=True, check=True).stdout == data
    empty = io.BytesIO()
    AdaptiveGzip(empty, 1).close()
    assert gzip.decompress(empty.getvalue()) == b""


def test_dump_codec_is_zlib_ng_and_reads_what_any_gzip_writes():
    """requirements.txt installs zlib-ng (a missing install step would silently dump at half the speed);
    its reader takes the standard library's multi-member gzip, and a damaged file raises a codec error."""
    import gzip
    import io

    import pytest

    from lifeboat.datastores.mongodb import codec

    assert codec.NAME == "zlib-ng"
    blob = gzip.compress(b"first member ") + gzip.compress(b"second member")
    assert codec.gzip_reader(io.BytesIO(blob)).read() == b"first member second member"
    damaged = bytearray(gzip.compress(b"x" * 10_000))
    damaged[12] ^= 0xFF
    with pytest.raises((*codec.ERRORS, OSError, EOFError)):
        codec.gzip_reader(io.BytesIO(bytes(damaged))).read()

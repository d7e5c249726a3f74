"""A gzip writer that does not spend CPU on data that does not compress.

A dump's documents are compressed at the configured level -- unless a probe shows that they do not
compress (already-compressed or encrypted payloads, random bytes): then they are *stored* (deflate
level 0: a copy plus the CRC) until the next probe. Each change of level starts a new gzip member;
a file of concatenated members is one gzip stream for every reader (RFC 1952 section 2.2: gunzip,
mongorestore --gzip, Python's gzip module), so the dump layout stays mongodump's. On a database host
with two cores, compressing incompressible documents at level 1 costs more CPU than reading them.
"""

from __future__ import annotations

import struct
from typing import Any, BinaryIO

from lifeboat.datastores.mongodb.codec import zlib

PROBE_EVERY = 4 * 1024 * 1024  # bytes of input between two probes
PROBE_BYTES = 32 * 1024  # how much of the data at a probe is test-compressed
STORE_ABOVE = 0.97  # compressed/plain ratio of a probe above which the data is stored
_HEADER = b"\x1f\x8b\x08\x00" + struct.pack("<I", 0) + b"\x00\xff"  # deflate, no name, mtime 0, OS unknown


class AdaptiveGzip:
    """File-like: write() compresses into `raw` as gzip members; close() ends the last member (it does
    not close `raw`). Same input, same level -> same bytes."""

    def __init__(self, raw: BinaryIO, level: int):
        self.raw, self.level = raw, level
        self._member_level: int | None = None
        self._deflate: Any = None
        self._crc = self._size = 0
        self._since_probe = PROBE_EVERY  # probe at the first write
        self._stored = self._compressed = 0  # input bytes written each way (for the log and tests)
        self.closed = False

    def _probe(self, data: bytes | memoryview) -> int:
        sample = bytes(data[:PROBE_BYTES])
        c = zlib.compressobj(self.level, zlib.DEFLATED, -15)
        out = len(c.compress(sample)) + len(c.flush())
        return 0 if out >= STORE_ABOVE * len(sample) else self.level

    def _end_member(self) -> None:
        if self._deflate is not None:
            self.raw.write(self._deflate.flush())
            self.raw.write(struct.pack("<II", self._crc & 0xFFFFFFFF, self._size & 0xFFFFFFFF))
            self._deflate = None

    def write(self, data: bytes | memoryview) -> int:
        if not data:
            return 0
        if self._since_probe >= PROBE_EVERY:
            level = self._probe(data)
            self._since_probe = 0
            if level != self._member_level:
                self._end_member()
                self._member_level = level
        if self._deflate is None:
            self.raw.write(_HEADER)
            self._deflate = zlib.compressobj(self._member_level or 0, zlib.DEFLATED, -15)
            self._crc = self._size = 0
        self.raw.write(self._deflate.compress(data))
        self._crc = zlib.crc32(data, self._crc)
        self._size += len(data)
        self._since_probe += len(data)
        if self._member_level:
            self._compressed += len(data)
        else:
            self._stored += len(data)
        return len(data)

    def close(self) -> None:
        if self.closed:
            return
        if self._deflate is None and self._member_level is None:  # nothing written: one empty member
            self.raw.write(_HEADER)
            self._deflate = zlib.compressobj(self.level, zlib.DEFLATED, -15)
        self._end_member()
        self.closed = True

    @property
    def stored_fraction(self) -> float:
        total = self._stored + self._compressed
        return self._stored / total if total else 0.0

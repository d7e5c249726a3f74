"""The head of an RDB file, read without Redis (pure): AUX fields, length and string encodings, LZF."""

from __future__ import annotations

import struct
from pathlib import Path
from typing import BinaryIO


def read_rdb_aux(path: Path | str) -> dict[str, str]:
    """The AUX fields at the head of an RDB file (redis-ver, ctime, used-mem, repl-id, repl-offset ...)
    plus 'rdb-version'. Raises ValueError if the file does not start like an RDB."""
    with open(path, "rb") as f:
        magic = f.read(9)
        if len(magic) != 9 or magic[:5] != b"REDIS" or not magic[5:].isdigit():
            raise ValueError(f"{path}: not an RDB file (starts with {magic[:9]!r})")
        aux = {"rdb-version": str(int(magic[5:]))}
        while True:
            op = f.read(1)
            if op != b"\xfa":
                return aux
            key = _rdb_string(f)
            aux[key.decode(errors="replace")] = _rdb_string(f).decode(errors="replace")


def _rdb_len(f: BinaryIO) -> tuple[int, bool]:
    head = f.read(1)
    if not head:
        raise ValueError("unexpected end of file in RDB header")
    b = head[0]
    kind = b >> 6
    if kind == 0:
        return b & 0x3F, False
    if kind == 1:
        return ((b & 0x3F) << 8) | f.read(1)[0], False
    if kind == 3:
        return b & 0x3F, True
    if b == 0x80:
        return struct.unpack(">I", f.read(4))[0], False
    if b == 0x81:
        return struct.unpack(">Q", f.read(8))[0], False
    raise ValueError(f"bad RDB length byte 0x{b:02x}")


def _rdb_string(f: BinaryIO) -> bytes:
    n, special = _rdb_len(f)
    if not special:
        return f.read(n)
    if n == 0:
        return str(struct.unpack("<b", f.read(1))[0]).encode()
    if n == 1:
        return str(struct.unpack("<h", f.read(2))[0]).encode()
    if n == 2:
        return str(struct.unpack("<i", f.read(4))[0]).encode()
    if n == 3:
        clen, _ = _rdb_len(f)
        ulen, _ = _rdb_len(f)
        return lzf_decompress(f.read(clen), ulen)
    raise ValueError(f"unknown RDB string encoding {n}")


def lzf_decompress(data: bytes, expected: int) -> bytes:
    out = bytearray()
    i = 0
    while i < len(data):
        ctrl = data[i]
        i += 1
        if ctrl < 32:
            out += data[i:i + ctrl + 1]
            i += ctrl + 1
        else:
            length = ctrl >> 5
            if length == 7:
                length += data[i]
                i += 1
            ref = len(out) - ((ctrl & 0x1F) << 8) - data[i] - 1
            i += 1
            for _ in range(length + 2):
                out.append(out[ref])
                ref += 1
    if len(out) != expected:
        raise ValueError(f"LZF: expected {expected} bytes, got {len(out)}")
    return bytes(out)

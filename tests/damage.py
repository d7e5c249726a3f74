"""Damage done on purpose by the tests that prove verification catches it."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path


def flip_byte(path: Path) -> Callable[[], None]:
    """Flip one byte in the middle of `path`; returns the function that puts it back."""
    original = path.read_bytes()
    raw = bytearray(original)
    raw[len(raw) // 2] ^= 0xFF
    path.write_bytes(bytes(raw))
    return lambda: path.write_bytes(original)


@contextlib.contextmanager
def flipped(path: Path) -> Iterator[Path]:
    """`path` with one byte flipped while the block runs, repaired afterwards."""
    undo = flip_byte(path)
    try:
        yield path
    finally:
        undo()

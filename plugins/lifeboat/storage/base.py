"""The storage driver interface (after pgBackRest's src/storage/): one class per driver beside it."""

from __future__ import annotations

import abc
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    size: int
    modified: float | None = None  # when it was last written (epoch seconds), where the store says


class Storage(abc.ABC):
    url: str
    # how coarse ObjectInfo.modified is (S3's LastModified: whole seconds); the mirror allows for it
    mtime_resolution: float = 1.0

    @abc.abstractmethod
    def put_bytes(self, key: str, data: bytes) -> None: ...

    @abc.abstractmethod
    def put_file(self, key: str, local: Path) -> None: ...

    @abc.abstractmethod
    def get_bytes(self, key: str) -> bytes: ...

    @abc.abstractmethod
    def open_read(self, key: str) -> BinaryIO: ...

    @abc.abstractmethod
    def get_file(self, key: str, local: Path) -> None: ...

    @abc.abstractmethod
    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        """Every object whose key starts with prefix, recursively, sorted by key."""

    @abc.abstractmethod
    def exists(self, key: str) -> bool: ...

    @abc.abstractmethod
    def delete(self, key: str) -> None: ...

    def delete_prefix(self, prefix: str) -> int:
        n = 0
        for obj in list(self.list(prefix)):
            self.delete(obj.key)
            n += 1
        return n

    def local_path(self, key: str = "") -> Path | None:
        """A POSIX path for the key when the storage is a local filesystem, else None."""
        return None

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.url})"

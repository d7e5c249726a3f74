"""Object storage drivers: one interface, one module per driver (after pgBackRest's src/storage/).

A repository URL picks the driver: `file:///path` -> LocalStorage, `s3://bucket/prefix` -> S3Storage.
Keys are '/'-separated and relative to the URL. Every write of a single key is atomic: a reader sees
the old object, the new object, or nothing -- never a torn one (rename on POSIX, single PUT on S3).
"""

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


class Storage(abc.ABC):
    url: str

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


def open_storage(url: str, connection_id: str | None = None) -> Storage:
    if url.startswith("file://"):
        from lifeboat.storage.local import LocalStorage

        return LocalStorage(url)
    if url.startswith("s3://"):
        from lifeboat.storage.s3 import S3Storage

        return S3Storage(url, connection_id)
    from lifeboat.errors import RepositoryError

    raise RepositoryError(f"unsupported repository url {url!r} (use file:// or s3://)")

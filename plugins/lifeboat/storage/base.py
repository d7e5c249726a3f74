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


Children = tuple[list["ObjectInfo"], list[str]]  # (manifests found, folders without one)


class Storage(abc.ABC):
    url: str
    # how coarse ObjectInfo.modified is (S3's LastModified: whole seconds); the mirror allows for it
    mtime_resolution: float = 1.0
    # True where listing a prefix costs about as much as reading a directory (file://): the catalog then
    # lists as the authority and takes only contents from its index (lifeboat.catalog_index)
    cheap_listing: bool = False

    @abc.abstractmethod
    def put_bytes(self, key: str, data: bytes) -> None: ...

    @abc.abstractmethod
    def put_file(self, key: str, local: Path) -> None: ...

    def move_file(self, key: str, local: Path) -> None:
        """put_file of a file the caller no longer needs (a staging file): a storage that can take the
        file over instead of copying it does (a rename on the same filesystem); `local` may be gone after."""
        self.put_file(key, local)

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

    def answers(self, prefix: str = "") -> None:
        """Raises what a listing of `prefix` would raise: the "can this copy be read at all" check. This
        default lists the prefix; a store whose listing is costly (S3) overrides it to read one key at most."""
        next(iter(self.list(prefix)), None)

    @abc.abstractmethod
    def delete(self, key: str) -> None: ...

    def delete_prefix(self, prefix: str) -> int:
        n = 0
        for obj in list(self.list(prefix)):
            self.delete(obj.key)
            n += 1
        return n

    def children_with(self, prefix: str, name: str) -> Children:
        """For each child folder C of `prefix`: the object `<prefix>C/<name>` if it exists, else C when
        the folder holds other objects. (The manifests of a backups folder, and its interrupted backups.)"""
        have: dict[str, ObjectInfo] = {}
        others: set[str] = set()
        for o in self.list(prefix):
            child, _, rest = o.key[len(prefix):].partition("/")
            if rest == name:
                have[child] = o
            elif rest:
                others.add(child)
        return [have[c] for c in sorted(have)], sorted(others - set(have))

    def local_path(self, key: str = "") -> Path | None:
        """A POSIX path for the key when the storage is a local filesystem, else None."""
        return None

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.url})"

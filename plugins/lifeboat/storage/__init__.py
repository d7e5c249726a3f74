"""Object storage drivers: one interface, one module per driver (after pgBackRest's src/storage/).

A repository URL picks the driver: `file:///path` -> LocalStorage, `s3://bucket/prefix` -> S3Storage.
Keys are '/'-separated and relative to the URL. Every write of a single key is atomic: a reader sees
the old object, the new object, or nothing -- never a torn one (rename on POSIX, single PUT on S3).
"""

from __future__ import annotations

from lifeboat.storage.base import ObjectInfo, Storage

__all__ = ["ObjectInfo", "Storage", "open_storage"]


def open_storage(url: str, connection_id: str | None = None, *, create_root: bool = True) -> Storage:
    """`create_root=False` for another region's copy: a file:// root that is not there is not created."""
    if url.startswith("file://"):
        from lifeboat.storage.local import LocalStorage

        return LocalStorage(url, create_root=create_root)
    if url.startswith("s3://"):
        from lifeboat.storage.s3 import S3Storage

        return S3Storage(url, connection_id)
    from lifeboat.errors import RepositoryError

    raise RepositoryError(f"unsupported repository url {url!r} (use file:// or s3://)")

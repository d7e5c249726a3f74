"""s3:// storage through boto3, credentials from an Airflow `aws` connection.

The connection's extra may carry `endpoint_url` (S3-compatible stores, the local moto endpoint) and
`region_name`. A single PUT is atomic on S3, so manifests written last are never seen half-written.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO
from urllib.parse import urlparse

from lifeboat.errors import LifeboatError, RepositoryError
from lifeboat.storage.base import ObjectInfo, Storage


class S3Storage(Storage):
    def __init__(self, url: str, connection_id: str | None):
        p = urlparse(url)
        if not p.netloc:
            raise RepositoryError(f"s3 url needs a bucket: {url!r}")
        self.url = url
        self.bucket = p.netloc
        self.prefix = p.path.strip("/")
        self.connection_id = connection_id
        self._client = None

    @property
    def client(self):
        if self._client is None:
            from lifeboat.clients import aws

            # An unreachable endpoint (the other region gone) must fail in seconds, not minutes.
            self._client = aws.client("s3", self.connection_id, connect_timeout=5, attempts=2)
        return self._client

    def _key(self, key: str) -> str:
        key = key.lstrip("/")
        return f"{self.prefix}/{key}" if self.prefix else key

    def _err(self, key: str, exc: Exception) -> Exception:
        if isinstance(exc, LifeboatError):  # e.g. the connection itself is missing: already explained
            return exc
        return RepositoryError(f"{self.url}/{key}: {type(exc).__name__}: {exc}")

    def put_bytes(self, key: str, data: bytes) -> None:
        try:
            self.client.put_object(Bucket=self.bucket, Key=self._key(key), Body=data)
        except Exception as exc:
            raise self._err(key, exc) from None

    def put_file(self, key: str, local: Path) -> None:
        try:
            self.client.upload_file(str(local), self.bucket, self._key(key))
        except Exception as exc:
            raise self._err(key, exc) from None

    def get_bytes(self, key: str) -> bytes:
        try:
            return self.client.get_object(Bucket=self.bucket, Key=self._key(key))["Body"].read()
        except Exception as exc:
            raise self._err(key, exc) from None

    def open_read(self, key: str) -> BinaryIO:
        try:
            body = self.client.get_object(Bucket=self.bucket, Key=self._key(key))["Body"]
        except Exception as exc:
            raise self._err(key, exc) from None
        return io.BufferedReader(body._raw_stream) if hasattr(body, "_raw_stream") else body

    def get_file(self, key: str, local: Path) -> None:
        local.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.client.download_file(self.bucket, self._key(key), str(local))
        except Exception as exc:
            raise self._err(key, exc) from None

    def _list_prefix(self, prefix: str) -> str:
        """The bucket key prefix a listing of `prefix` asks for (the whole repository for "")."""
        return self._key(prefix) if prefix else (f"{self.prefix}/" if self.prefix else "")

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        full = self._list_prefix(prefix)
        strip = len(self.prefix) + 1 if self.prefix else 0
        try:
            pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=full)
            out = [ObjectInfo(o["Key"][strip:], o["Size"], o["LastModified"].timestamp() if o.get("LastModified")
                              else None) for page in pages for o in page.get("Contents", [])]
        except Exception as exc:
            raise self._err(prefix, exc) from None
        return iter(sorted(out, key=lambda o: o.key))

    def answers(self, prefix: str = "") -> None:
        full = self._list_prefix(prefix)
        try:
            self.client.list_objects_v2(Bucket=self.bucket, Prefix=full, MaxKeys=1)
        except Exception as exc:
            raise self._err(prefix, exc) from None

    def exists(self, key: str) -> bool:
        try:
            self.client.head_object(Bucket=self.bucket, Key=self._key(key))
            return True
        except Exception as exc:
            code = getattr(exc, "response", {}).get("Error", {}).get("Code")
            if code in ("404", "NoSuchKey", "NotFound"):
                return False
            raise self._err(key, exc) from None

    def delete(self, key: str) -> None:
        try:
            self.client.delete_object(Bucket=self.bucket, Key=self._key(key))
        except Exception as exc:
            raise self._err(key, exc) from None

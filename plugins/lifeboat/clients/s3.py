"""A platform S3 bucket (the upload bucket of one region) behind an Airflow `aws` connection.

The connection holds the access key (login) and secret (password), or extra `aws_access_key_id` /
`aws_secret_access_key`; extra `endpoint_url` (an S3-compatible endpoint: SeaweedFS locally),
`region_name` and `config_kwargs` (botocore Config, e.g. `{"s3": {"addressing_style": "path"}}`),
as the amazon provider reads them. Errors name the bucket, key and connection -- never the secret.

    b = Bucket.from_connection("lifeboat_uploads_us_west_2", "community-uploads-us-west-2")
    b.put("avatars/1.png", data); b.head("avatars/1.png").etag
    page, more = b.list_page(start_after="", limit=1000)         # objects/diff.py's listers
    b.copy_to(Bucket.from_connection(...), "avatars/1.png")       # the guarded repair's copy
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from lifeboat.connections import Endpoint, resolve
from lifeboat.errors import LifeboatError, ServiceError, ServiceUnsupported

_NOT_FOUND = ("404", "NoSuchKey", "NotFound", "NoSuchVersion")


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    etag: str  # without quotes
    size: int
    last_modified: datetime | None = None
    version_id: str | None = None
    is_latest: bool = True
    replication_status: str | None = None  # HEAD only: PENDING / COMPLETED / FAILED / REPLICA

    def to_json(self) -> dict[str, Any]:
        return {"key": self.key, "etag": self.etag, "size": self.size, "version_id": self.version_id,
                "last_modified": self.last_modified.isoformat() if self.last_modified else None}


def client_kwargs(ep: Endpoint) -> dict[str, Any]:
    extra = ep.extra or {}
    kwargs: dict[str, Any] = {
        "aws_access_key_id": ep.login or extra.get("aws_access_key_id"),
        "aws_secret_access_key": ep.password or extra.get("aws_secret_access_key"),
        "aws_session_token": extra.get("aws_session_token"),
        "region_name": extra.get("region_name"),
        "endpoint_url": extra.get("endpoint_url"),
    }
    if extra.get("config_kwargs"):
        from botocore.config import Config

        kwargs["config"] = Config(**extra["config_kwargs"])
    return {k: v for k, v in kwargs.items() if v}


def s3_client(conn_id: str):
    """boto3 S3 client for an Airflow aws connection (inside or outside an Airflow task)."""
    import boto3

    return boto3.client("s3", **client_kwargs(resolve(conn_id)))


def _code(exc: Exception) -> str:
    return str(getattr(exc, "response", {}).get("Error", {}).get("Code") or "")


def _etag(raw: str | None) -> str:
    return (raw or "").strip('"')


class Bucket:
    def __init__(self, bucket: str, conn_id: str = "", client=None):
        if not bucket:
            raise ServiceError(f"no bucket name given (connection {conn_id!r})")
        self.bucket = bucket
        self.conn_id = conn_id
        self._client = client
        self._endpoint: str | None = None

    @classmethod
    def from_connection(cls, conn_id: str, bucket: str) -> Bucket:
        return cls(bucket, conn_id)

    @property
    def client(self):
        if self._client is None:
            self._client = s3_client(self.conn_id)
        return self._client

    @property
    def endpoint(self) -> str:
        """The endpoint URL (AWS' regional one when the connection names none)."""
        if self._endpoint is None:
            self._endpoint = str(getattr(self.client.meta, "endpoint_url", "") or "")
        return self._endpoint

    def describe(self, key: str = "") -> str:
        where = f"s3://{self.bucket}/{key}" if key else f"s3://{self.bucket}"
        return f"{where} (connection {self.conn_id}, {self.endpoint})" if self.conn_id else where

    def _err(self, what: str, exc: Exception, key: str = "") -> Exception:
        if isinstance(exc, LifeboatError):
            return exc
        code = _code(exc)
        msg = f"{self.describe(key)}: {what} failed: {code or type(exc).__name__}: {exc}"
        if code in ("NotImplemented", "501"):
            return ServiceUnsupported(msg)
        return ServiceError(msg)

    # ---- bucket configuration -----------------------------------------------------------------
    def exists(self) -> bool:
        try:
            self.client.head_bucket(Bucket=self.bucket)
            return True
        except Exception as exc:
            if _code(exc) in ("404", "NoSuchBucket", "NotFound"):
                return False
            raise self._err("HeadBucket", exc) from None

    def create(self, region: str | None = None) -> None:
        kwargs: dict[str, Any] = {"Bucket": self.bucket}
        if region and region != "us-east-1":
            kwargs["CreateBucketConfiguration"] = {"LocationConstraint": region}
        try:
            self.client.create_bucket(**kwargs)
        except Exception as exc:
            if _code(exc) not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                raise self._err("CreateBucket", exc) from None

    def versioning(self) -> str:
        """"Enabled", "Suspended" or "" (never enabled). ServiceUnsupported when the API is missing."""
        try:
            return str(self.client.get_bucket_versioning(Bucket=self.bucket).get("Status") or "")
        except Exception as exc:
            raise self._err("GetBucketVersioning", exc) from None

    def set_versioning(self, enabled: bool = True) -> None:
        try:
            self.client.put_bucket_versioning(Bucket=self.bucket, VersioningConfiguration={
                "Status": "Enabled" if enabled else "Suspended"})
        except Exception as exc:
            raise self._err("PutBucketVersioning", exc) from None

    def replication(self) -> dict[str, Any] | None:
        """The bucket's ReplicationConfiguration (Role, Rules), None when it has none.
        ServiceUnsupported when the store does not implement the API (SeaweedFS)."""
        try:
            return self.client.get_bucket_replication(Bucket=self.bucket).get("ReplicationConfiguration")
        except Exception as exc:
            if _code(exc) == "ReplicationConfigurationNotFoundError":
                return None
            raise self._err("GetBucketReplication", exc) from None

    def put_replication(self, configuration: dict[str, Any]) -> None:
        """PutBucketReplication (Role + Rules). ServiceUnsupported where the store lacks it (SeaweedFS)."""
        try:
            self.client.put_bucket_replication(Bucket=self.bucket, ReplicationConfiguration=configuration)
        except Exception as exc:
            raise self._err("PutBucketReplication", exc) from None

    # ---- objects --------------------------------------------------------------------------------
    def _list(self, op: str, method: str, limit: int, prefix: str, **markers: str) -> dict[str, Any]:
        """One page of a List* call: MaxKeys clamped to 1..1000, the markers and the prefix where given."""
        kwargs: dict[str, Any] = {"Bucket": self.bucket, "MaxKeys": max(1, min(limit, 1000)),
                                  **{k: v for k, v in markers.items() if v}}
        if prefix:
            kwargs["Prefix"] = prefix
        try:
            return getattr(self.client, method)(**kwargs)
        except Exception as exc:
            raise self._err(op, exc, prefix) from None

    def list_page(self, start_after: str = "", limit: int = 1000, prefix: str = "") -> tuple[list[ObjectInfo], bool]:
        """One ListObjectsV2 page of current objects after `start_after`, in key order; (objects, more)."""
        resp = self._list("ListObjectsV2", "list_objects_v2", limit, prefix, StartAfter=start_after)
        objs = [ObjectInfo(key=o["Key"], etag=_etag(o.get("ETag")), size=int(o.get("Size") or 0),
                           last_modified=o.get("LastModified")) for o in resp.get("Contents") or []]
        return objs, bool(resp.get("IsTruncated"))

    def list_versions_page(self, key_marker: str = "", limit: int = 1000,
                           prefix: str = "") -> tuple[list[ObjectInfo], bool, str]:
        """One ListObjectVersions page: (versions, more, next key marker). Only whole keys are returned:
        a key whose versions continue on the next page is left for the next call, so pages can be cut
        by key (what a resumable diff needs)."""
        resp = self._list("ListObjectVersions", "list_object_versions", limit, prefix, KeyMarker=key_marker)
        out = [ObjectInfo(key=v["Key"], etag=_etag(v.get("ETag")), size=int(v.get("Size") or 0),
                          last_modified=v.get("LastModified"), version_id=v.get("VersionId"),
                          is_latest=bool(v.get("IsLatest"))) for v in resp.get("Versions") or []]
        more = bool(resp.get("IsTruncated"))
        if more and out:
            split = resp.get("NextKeyMarker") or out[-1].key
            if resp.get("NextVersionIdMarker"):  # the last key continues: leave it whole for the next page
                kept = [o for o in out if o.key != split]
                if kept:
                    return kept, True, kept[-1].key
            return out, True, split
        return out, more, out[-1].key if out else key_marker

    def head(self, key: str, version_id: str | None = None) -> ObjectInfo | None:
        kwargs: dict[str, Any] = {"Bucket": self.bucket, "Key": key}
        if version_id:
            kwargs["VersionId"] = version_id
        try:
            r = self.client.head_object(**kwargs)
        except Exception as exc:
            if _code(exc) in _NOT_FOUND:
                return None
            raise self._err("HeadObject", exc, key) from None
        return ObjectInfo(key=key, etag=_etag(r.get("ETag")), size=int(r.get("ContentLength") or 0),
                          last_modified=r.get("LastModified"), version_id=r.get("VersionId"),
                          replication_status=r.get("ReplicationStatus"))

    def put(self, key: str, body: bytes, *, content_type: str | None = None,
            metadata: dict[str, str] | None = None) -> ObjectInfo:
        kwargs: dict[str, Any] = {"Bucket": self.bucket, "Key": key, "Body": body}
        if content_type:
            kwargs["ContentType"] = content_type
        if metadata:
            kwargs["Metadata"] = metadata
        try:
            r = self.client.put_object(**kwargs)
        except Exception as exc:
            raise self._err("PutObject", exc, key) from None
        return ObjectInfo(key=key, etag=_etag(r.get("ETag")), size=len(body), version_id=r.get("VersionId"))

    def get(self, key: str, version_id: str | None = None) -> bytes:
        kwargs: dict[str, Any] = {"Bucket": self.bucket, "Key": key}
        if version_id:
            kwargs["VersionId"] = version_id
        try:
            return self.client.get_object(**kwargs)["Body"].read()
        except Exception as exc:
            raise self._err("GetObject", exc, key) from None

    def delete(self, key: str, version_id: str | None = None) -> None:
        kwargs: dict[str, Any] = {"Bucket": self.bucket, "Key": key}
        if version_id:
            kwargs["VersionId"] = version_id
        try:
            self.client.delete_object(**kwargs)
        except Exception as exc:
            raise self._err("DeleteObject", exc, key) from None

    def copy_to(self, dest: Bucket, key: str, version_id: str | None = None) -> ObjectInfo:
        """Copy one object to `dest` under the same key: a server-side CopyObject when both buckets are
        behind the same endpoint and credentials (AWS copies across regions server-side), else streamed
        through a spooled temporary file (two S3-compatible endpoints). Returns the copy's HEAD."""
        same = (self.conn_id and self.conn_id == dest.conn_id) or (
            self.endpoint == dest.endpoint and client_kwargs_of(self) == client_kwargs_of(dest))
        try:
            if same:
                src: dict[str, Any] = {"Bucket": self.bucket, "Key": key}
                if version_id:
                    src["VersionId"] = version_id
                dest.client.copy(src, dest.bucket, key)
            else:
                kwargs: dict[str, Any] = {"Bucket": self.bucket, "Key": key}
                if version_id:
                    kwargs["VersionId"] = version_id
                obj = self.client.get_object(**kwargs)
                extra = {k: obj[v] for k, v in (("ContentType", "ContentType"), ("Metadata", "Metadata"))
                         if obj.get(v)}
                with tempfile.SpooledTemporaryFile(max_size=64 << 20) as spool:
                    for chunk in iter(lambda: obj["Body"].read(1 << 20), b""):
                        spool.write(chunk)
                    spool.seek(0)
                    # one PUT up to 5 GiB, so a single-part source keeps its ETag (the MD5) on the copy
                    from boto3.s3.transfer import TransferConfig

                    dest.client.upload_fileobj(spool, dest.bucket, key, ExtraArgs=extra or None,
                                               Config=TransferConfig(multipart_threshold=5 << 30))
        except Exception as exc:
            raise self._err(f"copying {key} to {dest.describe(key)}", exc, key) from None
        head = dest.head(key)
        if head is None:
            raise ServiceError(f"{dest.describe(key)}: not found right after copying it from {self.describe(key)}")
        return head


def client_kwargs_of(b: Bucket) -> tuple:
    """What identifies a bucket's credentials, for "same account and endpoint?" (no secrets kept)."""
    if not b.conn_id:
        return (id(b._client),)
    ep = resolve(b.conn_id)
    return (ep.login, hash(ep.password), (ep.extra or {}).get("endpoint_url"))

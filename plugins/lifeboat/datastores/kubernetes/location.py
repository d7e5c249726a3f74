"""A Velero BackupStorageLocation's bucket as Lifeboat reads it (to copy, re-read and check backups).

The location is read from the cluster (`BackupStorageLocation` spec: bucket, prefix, config.region), the
credentials from the inventory: `options.bucket_connections[<bucket's region>]`, an Airflow aws
connection (lifeboat.clients.s3). Every error names the object by its s3:// URL.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from lifeboat.clients.s3 import Bucket, ObjectInfo
from lifeboat.datastores.kubernetes.tarball import backup_prefix, restore_prefix
from lifeboat.errors import InventoryError


@dataclass
class Location:
    name: str  # the BackupStorageLocation's name in the cluster it was read from
    cluster_region: str
    bucket_region: str
    bucket: Bucket
    prefix: str = ""
    access_mode: str = "ReadWrite"

    @classmethod
    def from_spec(cls, name: str, spec: Mapping, cluster_region: str, connections: Mapping[str, str],
                  where: str) -> Location:
        storage = spec.get("objectStorage") or {}
        bucket_region = (spec.get("config") or {}).get("region") or cluster_region
        conn = connections.get(bucket_region)
        if not conn:
            raise InventoryError(f"{where}.bucket_connections: no connection for region {bucket_region!r} (the "
                                 f"bucket {storage.get('bucket')!r} of BackupStorageLocation {name} in "
                                 f"{cluster_region}; have: {', '.join(connections) or 'none'})")
        return cls(name=name, cluster_region=cluster_region, bucket_region=bucket_region,
                   bucket=Bucket.from_connection(conn, storage.get("bucket", "")), prefix=storage.get("prefix") or "",
                   access_mode=spec.get("accessMode") or "ReadWrite")

    def url(self, key: str) -> str:
        return f"s3://{self.bucket.bucket}/{key}"

    def backup_folder(self, name: str) -> str:
        return backup_prefix(self.prefix, name)

    def tarball_key(self, name: str) -> str:
        return f"{self.backup_folder(name)}{name}.tar.gz"

    def resource_list_key(self, name: str) -> str:
        return f"{self.backup_folder(name)}{name}-resource-list.json.gz"

    def results_key(self, name: str) -> str:
        return f"{self.backup_folder(name)}{name}-results.gz"

    def restore_results_key(self, restore: str) -> str:
        """Velero writes a restore's results into the location of the backup it restored (also when that
        location is read-only for the cluster that restored)."""
        return f"{restore_prefix(self.prefix, restore)}restore-{restore}-results.gz"

    def backup_files(self, name: str) -> list[ObjectInfo]:
        """Every object of backup `name` (the tarball, its metadata files, velero-backup.json)."""
        out: list[ObjectInfo] = []
        after = ""
        while True:
            page, more = self.bucket.list_page(start_after=after, prefix=self.backup_folder(name))
            out += page
            if not more or not page:
                return out
            after = page[-1].key

    def get(self, key: str) -> bytes:
        return self.bucket.get(key)

"""S3 cross-region replication of the platform's upload bucket: checked, not replaced.

Backup kind `inventory` (docs/datastores/objects.md): the source bucket's inventory (key, ETag, size,
version ids) merge-joined with the replica's (lifeboat.objects.diff: paged, flat memory, its cursor
saved in the catalog so a retried task continues where it stopped), stored as `inventory/*.jsonl`
and `diff.json`. Verification: replication rule and versioning on both buckets, and every key the diff
named missing or different checked again in the replica. Restore test: the replica's objects read back
and compared with the inventory (size, ETag, sha256). Heartbeat: a canary object in the source, its
arrival in the replica timed (lifeboat.objects.canary): the lag the monitor compares with the RPO.
Repair (repair.py, DAG lifeboat_repair_<datastore>): copies only the missing keys, dry run by default.
"""

from lifeboat.datastores.objects.engine import ObjectsDatastore
from lifeboat.datastores.objects.options import ObjectsOptions

__all__ = ["ObjectsDatastore", "ObjectsOptions"]

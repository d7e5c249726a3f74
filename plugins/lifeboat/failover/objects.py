"""S3 upload bucket failover: not automated. The standby region's bucket is a full replica (S3 CRR); the
platform in the standby region reads and writes it. By hand: copy what the replica lacks if the source is
still readable (the guarded repair, lifeboat_repair_<datastore>), then point the uploads at the replica."""

from __future__ import annotations

from lifeboat.failover.base import NotAutomated


class ObjectsFailover(NotAutomated):
    engine = "objects"
    manual = ("the standby bucket is the replica: run lifeboat_repair_<datastore> (dry run, then confirm) while "
              "the source is readable, point the platform's uploads at the standby bucket; reverse the "
              "replication rule after a failback (docs/datastores/objects.md)")

"""MongoDB failover: NOT AUTOMATED in Lifeboat (the preflight and the plan say so).

What it would do, and what the on-call engineer does by hand today (docs/failover.md):
a MongoDB replica set spanning both regions fails over by itself when a majority of voting members
survives; when the primary region held the majority, the standby region's members must be forced:
`rs.reconfig(cfg, {force: true})` with only the surviving members, their `priority` raised so a
member in the standby region is elected (`rs.stepDown()` on a still-reachable old primary for a
planned switchover), then a write with `w: "majority"` and a read back as verification. The local
devstack runs one FerretDB server for both regions, so there is nothing to fail over locally.
"""

from __future__ import annotations

from lifeboat.failover.base import NotAutomated


class MongoFailover(NotAutomated):
    engine = "mongodb"
    manual = ("force a replica-set reconfiguration with only the standby region's members and raise their "
              "priority (rs.reconfig(cfg, {force: true})); rs.stepDown() first if the old primary is still up; "
              "verify with a w:majority write and read -- see docs/failover.md")

"""Elasticsearch failover: NOT AUTOMATED in Lifeboat (the preflight and the plan say so).

What it would do, and what the on-call engineer does by hand today (docs/failover.md): the standby
region runs its own cluster with the snapshot repository registered read-only (the bucket is
replicated cross-region). Failing over means restoring the newest snapshot that covers the
inventory's indices there (`POST _snapshot/<repo>/<snapshot>/_restore` with
`include_global_state: false`, after closing or deleting same-named indices), waiting for green,
comparing document counts with the snapshot's manifest, and switching the application's search
endpoint. The local devstack runs one node for both regions, so there is nothing to fail over locally.
"""

from __future__ import annotations

from lifeboat.failover.base import NotAutomated


class ElasticsearchFailover(NotAutomated):
    engine = "elasticsearch"
    manual = ("restore the newest verified snapshot into the standby region's cluster "
              "(POST _snapshot/<repo>/<snapshot>/_restore, include_global_state=false), wait for green, compare "
              "document counts with the manifest, point the application at it -- see docs/failover.md")

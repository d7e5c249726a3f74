"""
### lifeboat_repair_&lt;datastore&gt; — copy to an S3 replica exactly what it lacks (manual, guarded)

One DAG per `objects` datastore of `include/inventory.yaml` (the upload bucket's cross-region
replication). Lifeboat does not replace S3 CRR; when the inventory diff (`lifeboat_backup_<datastore>`,
its verification, the monitor's lag alert) shows keys the replica lacks -- a replication outage, a rule
switched off -- this DAG copies **only those keys** from the source bucket to the replica:

1. **repair** — runs the inventory diff now, names every missing key, and copies them only when
   `dry_run` is off **and** `confirm` is `repair <datastore>`. The default run is a dry run that
   lists what it would copy. It never deletes anything (keys only in the replica stay) and copies
   keys whose ETag differs only with `include_different`.

Runbook: docs/datastores/objects.md ("Repair").
"""

from __future__ import annotations

from airflow.sdk import Param

from lifeboat.dagkit import dag
from lifeboat.inventory import load_inventory
from lifeboat.operators import RepairReplicaOperator

inventory = load_inventory()

for spec in inventory.enabled_datastores():
    if spec.engine != "objects":
        continue
    with dag(
        f"lifeboat_repair_{spec.name}", __doc__, schedule=None, retries=1, tag=("repair", spec.engine),
        params={
            "dry_run": Param(True, type="boolean", title="Dry run",
                             description="only name the keys that would be copied"),
            "confirm": Param("", type="string", title="Confirmation",
                             description=f"type: repair {spec.name} (needed when dry run is off)"),
            "include_different": Param(False, type="boolean", title="Also copy keys whose ETag differs"),
        },
    ) as repair_dag:
        RepairReplicaOperator(task_id="repair", datastore=spec.name, dry_run="{{ params.dry_run }}",
                              confirm="{{ params.confirm }}", include_different="{{ params.include_different }}")
    globals()[repair_dag.dag_id] = repair_dag

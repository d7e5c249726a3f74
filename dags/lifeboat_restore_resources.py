"""
### lifeboat_restore_resources — bring deleted Kubernetes objects back into a live namespace (manual only)

**Runbook: docs/datastores/kubernetes.md, section 2c.** Never scheduled: a live namespace is restored
only by a person. Trigger it with **namespace** and **resources** (`<resource>/<name>`, e.g.
`deployments/api-gateway`). Without **confirm** = the namespace's name it is a **dry run**: the task's
XCom shows what is missing (would come back) and what is present (left as it is). With it, a Velero
Restore limited to the missing objects (`existingResourcePolicy: none`) from the newest verified backup
(or **backup**), every restored object compared with the backed-up one, restored Deployments Ready.
Same job as `python -m lifeboat restore-resources`.
"""

from __future__ import annotations

from airflow.sdk import Param, task

from lifeboat.dagkit import dag
from lifeboat.inventory import load_inventory

inventory = load_inventory()
names = [ds.name for ds in inventory.enabled_datastores() if ds.engine == "kubernetes"]
regions = [inventory.regions.primary, inventory.regions.standby]

if names:
    with dag("lifeboat_restore_resources", __doc__, schedule=None, retries=0, tag=("restore", "kubernetes"),
             params={
                 "datastore": Param(names[0], enum=names, title="Datastore (kubernetes engine)"),
                 "namespace": Param("community", type="string", title="Live namespace"),
                 "resources": Param([], type="array", items={"type": "string"}, minItems=1,
                                    title="Objects to bring back", description="<resource>/<name>, e.g. "
                                                                               "deployments/api-gateway"),
                 "backup": Param("latest", type="string", title="Backup id, or latest (newest verified)"),
                 "region": Param(regions[0], enum=regions, title="Cluster to restore into"),
                 "confirm": Param("", type="string", title="Confirm",
                                  description="The namespace's name; anything else is a dry run"),
             }):

        @task(task_id="restore")
        def restore(**context) -> dict:
            from lifeboat.datastores.kubernetes.recover import restore_resources

            p, dr = context["params"], context["dag_run"]
            return restore_resources(p["datastore"], namespace=p["namespace"], resources=p["resources"],
                                     backup=p["backup"], region=p["region"], confirm=p["confirm"] or None,
                                     run={"dag_id": dr.dag_id, "run_id": dr.run_id, "task_id": "restore"})

        restore()

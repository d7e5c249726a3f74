"""Kubernetes resources: no datastore failover of their own.

The standby cluster already holds the platform's objects at 0 replicas; `lifeboat_failover` scales them
(failover.services, lifeboat.failover.services) and waits until they are Ready. What is missing or damaged
there comes back from the newest Velero backup: `python -m lifeboat restore-resources <datastore>
--namespace community --resource deployments/<name> --region <standby> --confirm community`, or the whole
namespace with `velero restore create --from-backup <name>` (docs/datastores/kubernetes.md).
"""

from __future__ import annotations

from lifeboat.failover.base import NotAutomated


class KubernetesFailover(NotAutomated):
    engine = "kubernetes"
    manual = ("the failover's `services` step scales the standby's Deployments; restore missing objects there "
              "with `python -m lifeboat restore-resources <datastore> --namespace <ns> --resource <kind>/<name> "
              "--region <standby> --confirm <ns>` or `velero restore create --from-backup <newest backup>` -- see "
              "docs/datastores/kubernetes.md")

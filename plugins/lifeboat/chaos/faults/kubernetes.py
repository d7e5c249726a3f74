"""Service faults in a Kubernetes cluster (DR plan 2.1): the target Deployment's pods deleted (the
ReplicaSet recreates them: the platform heals itself), or the Deployment scaled to 0 (the recovery step
scales it back, as the runbook does). Through the cncf-kubernetes provider's hook (lifeboat.clients)."""

from __future__ import annotations

from lifeboat.chaos.faults.base import Fault
from lifeboat.chaos.probes import DeploymentProbe
from lifeboat.errors import Refused


def _client(conn: str):
    from lifeboat.clients.kubernetes import KubernetesClient

    return KubernetesClient(conn)


class _DeploymentFault(Fault):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if not self.env.kubernetes:
            raise Refused(f"chaos experiment {self.spec.name}: the environment has no kubernetes connection")
        self.client = _client(self.env.kubernetes)
        self.namespace = str(self.spec.target.get("namespace") or self.env.namespace)
        self.deployment = str(self.spec.target["deployment"])
        doc = self.client.get(f"/apis/apps/v1/namespaces/{self.namespace}/deployments/{self.deployment}")
        if doc is None:
            raise Refused(f"chaos experiment {self.spec.name}: deployment {self.namespace}/{self.deployment} not found "
                          f"(connection {self.env.kubernetes!r})")
        self.replicas = int((doc.get("spec") or {}).get("replicas") or 0)
        self.selector = ",".join(f"{k}={v}" for k, v in
                                 ((doc.get("spec") or {}).get("selector") or {}).get("matchLabels", {}).items())
        if self.replicas < 1:
            raise Refused(f"chaos experiment {self.spec.name}: {self.namespace}/{self.deployment} has 0 replicas -- "
                          "nothing to fail (is this the active region?)")

    def probes(self):
        return [DeploymentProbe(f"ready-{self.deployment}", self.client, self.namespace, self.deployment,
                                self.replicas, weight=3)]

    def revert_info(self) -> dict:
        return {"connection": self.env.kubernetes, "namespace": self.namespace, "deployment": self.deployment,
                "replicas": self.replicas}


class PodDelete(_DeploymentFault):
    kind = "pod_delete"
    self_healing = True

    def inject(self) -> str:
        pods = self.client.core.list_namespaced_pod(self.namespace, label_selector=self.selector).items
        count = int(self.spec.target.get("count") or len(pods))
        victims = sorted(p.metadata.name for p in pods)[:count]
        for name in victims:
            self.client.core.delete_namespaced_pod(name, self.namespace, grace_period_seconds=0)
        return f"deleted {len(victims)} of {len(pods)} pods ({self.selector}): {', '.join(victims)}"

    @staticmethod
    def revert(info: dict) -> str:
        return "nothing to revert: the ReplicaSet recreates deleted pods"


class ScaleZero(_DeploymentFault):
    kind = "scale_zero"

    def inject(self) -> str:
        self.client.apps.patch_namespaced_deployment_scale(self.deployment, self.namespace, {"spec": {"replicas": 0}})
        return f"{self.namespace}/{self.deployment} scaled {self.replicas} -> 0"

    @staticmethod
    def revert(info: dict) -> str:
        c = _client(info["connection"])
        scale = c.apps.read_namespaced_deployment_scale(info["deployment"], info["namespace"])
        now = int(scale.spec.replicas or 0)
        if now >= int(info["replicas"]):
            return f"{info['namespace']}/{info['deployment']} already at {now} replicas"
        c.apps.patch_namespaced_deployment_scale(info["deployment"], info["namespace"],
                                                 {"spec": {"replicas": int(info["replicas"])}})
        return f"{info['namespace']}/{info['deployment']} scaled {now} -> {info['replicas']}"

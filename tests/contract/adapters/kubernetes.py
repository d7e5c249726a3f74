"""Kubernetes: ConfigMaps in a namespace of this test only (`contract-<unique>`, which the engine backs up
instead of `community`), a catalog folder of its own; the scratch target is the standby cluster's drill
namespace the Velero Restore maps it to. The records: ConfigMaps labelled with the test's id."""

from __future__ import annotations

from typing import Any

from lifeboat.records import Manifest
from tests.contract.adapters import Adapter, N

LABEL = "lifeboat.io/contract"


class KubernetesAdapter(Adapter):
    fixtures, kind = ("kube", "velero_env"), "full"
    first_restore_step, last_verify_step = "velero restore into drill-", "restored objects equal the backup"

    def make_engine(self) -> Any:
        from lifeboat import inventory
        from lifeboat.datastores.base import EngineContext
        from lifeboat.datastores.kubernetes.engine import KubernetesDatastore
        from lifeboat.repository import Repository

        inventory._CACHE.clear()
        inv = inventory.load_inventory()
        spec = inv.datastore("kubernetes")
        spec = spec.model_copy(update={"name": f"k8s_contract_{self.unique}",
                                       "options": {**spec.options, "namespaces": [self.scope]}})
        ctx = EngineContext(inventory=inv, spec=spec, repo=Repository.from_inventory(inv),
                            run={"dag_id": "pytest", "run_id": "contract"})
        return KubernetesDatastore(ctx)

    @property
    def live(self) -> Any:
        return self.fixture("kube")[self.engine.region]

    def _put(self, name: str) -> None:
        self.live.put_configmap(self.scope, name, {"n": name}, labels={LABEL: self.unique})

    def _count(self, client: Any, namespace: str) -> int:
        doc = client.get(f"/api/v1/namespaces/{namespace}/configmaps", {"labelSelector": f"{LABEL}={self.unique}"})
        return len((doc or {}).get("items", []))

    def insert(self, n: int) -> None:
        self.live.core.create_namespace({"apiVersion": "v1", "kind": "Namespace",
                                         "metadata": {"name": self.scope, "labels": {LABEL: self.unique}}})
        for i in range(n):
            self._put(f"record-{i}")

    def count_live(self) -> int:
        return self._count(self.live, self.scope)

    def mutate(self) -> None:
        for i in range(0, N, 2):
            self.live.core.delete_namespaced_config_map(f"record-{i}", self.scope)
        self._put("after-the-backup")

    def count_restored(self, scratch: Any) -> int:
        return self._count(scratch.client, scratch.namespaces[self.scope])

    def target(self, m: Manifest) -> str:
        return "latest"

    def forget(self, backup_id: str) -> None:
        from lifeboat.datastores.kubernetes.tarball import velero_name

        name = velero_name(backup_id)
        if self.live.backup_object(name) is not None:
            self.live.delete_backup(name, wait=120)
        super().forget(backup_id)

    def cleanup(self) -> None:
        if self._engine is None:
            return
        self.forget_engine(delete_backups=True)
        try:
            self.live.core.delete_namespace(self.scope)
        except Exception as exc:
            if getattr(exc, "status", None) != 404:
                raise

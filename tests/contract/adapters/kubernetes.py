"""Kubernetes: ConfigMaps in a namespace of this test only (`contract-<unique>`, which the engine backs up
instead of `community`), a catalog folder of its own; the scratch target is the standby cluster's drill
namespace the Velero Restore maps it to. The records: ConfigMaps labelled with the test's id."""

from __future__ import annotations

from typing import Any

from lifeboat.records import Manifest
from tests.contract.adapters import Adapter, N

LABEL = "lifeboat.io/contract"


class KubernetesAdapter(Adapter):
    fixtures = ("kube", "velero_env")
    kind = "full"
    first_restore_step = "velero restore into drill-"
    last_verify_step = "restored objects equal the backup"

    def __init__(self, request, unique):
        super().__init__(request, unique)
        self.namespace = f"contract-{unique}"
        self._engine = None

    @property
    def engine(self) -> Any:
        if self._engine is None:
            from lifeboat import inventory
            from lifeboat.datastores.base import EngineContext
            from lifeboat.datastores.kubernetes.engine import KubernetesDatastore
            from lifeboat.repository import Repository

            inventory._CACHE.clear()
            inv = inventory.load_inventory()
            spec = inv.datastore("kubernetes")
            spec = spec.model_copy(update={"name": f"k8s_contract_{self.unique}",
                                           "options": {**spec.options, "namespaces": [self.namespace]}})
            ctx = EngineContext(inventory=inv, spec=spec, repo=Repository.from_inventory(inv),
                                run={"dag_id": "pytest", "run_id": "contract"})
            self._engine = KubernetesDatastore(ctx)
        return self._engine

    @property
    def live(self) -> Any:
        return self.fixture("kube")[self.engine.region]

    def _put(self, name: str) -> None:
        self.live.put_configmap(self.namespace, name, {"n": name}, labels={LABEL: self.unique})

    def _count(self, client: Any, namespace: str) -> int:
        doc = client.get(f"/api/v1/namespaces/{namespace}/configmaps", {"labelSelector": f"{LABEL}={self.unique}"})
        return len((doc or {}).get("items", []))

    def insert(self, n: int) -> None:
        self.live.core.create_namespace({"apiVersion": "v1", "kind": "Namespace",
                                         "metadata": {"name": self.namespace, "labels": {LABEL: self.unique}}})
        for i in range(n):
            self._put(f"record-{i}")

    def count_live(self) -> int:
        return self._count(self.live, self.namespace)

    def mutate(self) -> None:
        for i in range(0, N, 2):
            self.live.core.delete_namespaced_config_map(f"record-{i}", self.namespace)
        self._put("after-the-backup")

    def count_restored(self, scratch: Any) -> int:
        return self._count(scratch.client, scratch.namespaces[self.namespace])

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
        from lifeboat.catalog import Catalog

        for m in Catalog(self._engine.ctx.repo).backups(self._engine.name):
            self._engine.delete_backup(m)
        self._engine.ctx.repo.primary.delete_prefix(f"{self._engine.name}/")
        try:
            self.live.core.delete_namespace(self.namespace)
        except Exception as exc:
            if getattr(exc, "status", None) != 404:
                raise

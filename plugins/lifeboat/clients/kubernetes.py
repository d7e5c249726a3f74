"""Kubernetes: the one place Lifeboat builds Kubernetes API clients, plus the Velero calls on top.

Clients come from the cncf-kubernetes provider's `KubernetesHook(conn_id=...)` (its connection carries
the kubeconfig: extra `kube_config` inline or `kube_config_path`), one per Airflow connection id; the
inventory names one connection per region. On top of the hook's official-client APIs:

* Velero custom objects (velero.io/v1 in the `velero` namespace): create a Backup or a Restore, read
  its status (`BackupStatus` / `RestoreStatus`: phase, item counts, warnings, errors), wait until it
  reaches a final phase; wait until a backup is visible in another cluster (its read-only location);
* the resources of a namespace as plain dicts (what spec hashes and the readiness audit compare:
  lifeboat.clients.kubernetes_specs), Deployment readiness, waiting for Deployments to be Ready;
* deleting a drill namespace (refused for any namespace that is not a drill namespace).

Every API failure is raised as KubernetesError naming the connection, the namespace and the object.
Never connect to addresses found in status fields (pod and service IPs): only the API server is used.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar

from lifeboat.errors import KubernetesError, Refused
from lifeboat.waiting import WaitTimeout, wait_until

log = logging.getLogger(__name__)

VELERO_GROUP, VELERO_VERSION, VELERO_NAMESPACE = "velero.io", "v1", "velero"
BACKUP_FINAL = frozenset({"Completed", "PartiallyFailed", "Failed", "FailedValidation"})
RESTORE_FINAL = frozenset({"Completed", "PartiallyFailed", "Failed", "FailedValidation"})
DRILL_PREFIX = "drill-"
# Namespaced kinds a backup of an application namespace holds and a restore is compared on; objects the
# cluster generates (pods, replica sets, endpoints, events, leases) are left out.
RESOURCES: tuple[tuple[str, str, str], ...] = (
    ("v1", "ConfigMap", "configmaps"), ("v1", "Secret", "secrets"), ("v1", "Service", "services"),
    ("v1", "ServiceAccount", "serviceaccounts"), ("v1", "PersistentVolumeClaim", "persistentvolumeclaims"),
    ("apps/v1", "Deployment", "deployments"), ("apps/v1", "StatefulSet", "statefulsets"),
    ("apps/v1", "DaemonSet", "daemonsets"), ("batch/v1", "CronJob", "cronjobs"),
    ("autoscaling/v2", "HorizontalPodAutoscaler", "horizontalpodautoscalers"),
    ("networking.k8s.io/v1", "NetworkPolicy", "networkpolicies"), ("networking.k8s.io/v1", "Ingress", "ingresses"),
    ("policy/v1", "PodDisruptionBudget", "poddisruptionbudgets"),
    ("rbac.authorization.k8s.io/v1", "Role", "roles"), ("rbac.authorization.k8s.io/v1", "RoleBinding", "rolebindings"),
)
# Resources Velero should leave out of an application backup: the controllers recreate them.
GENERATED_RESOURCES = ("pods", "replicasets", "endpoints", "endpointslices.discovery.k8s.io", "events",
                       "events.events.k8s.io", "controllerrevisions.apps", "leases.coordination.k8s.io")


# =========================================================================== pure: bodies and statuses

def _name_ok(name: str) -> str:
    if not re.fullmatch(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?", name or ""):
        raise ValueError(f"{name!r} is not a valid Kubernetes name (lower-case DNS label, at most 63 characters)")
    return name


def drill_namespace(source: str, drill_id: str) -> str:
    """`drill-<source>-<drill id>` cut to a valid DNS label (deterministic: a retried task finds its own)."""
    slug = re.sub(r"[^a-z0-9-]+", "-", f"{DRILL_PREFIX}{source}-{drill_id}".lower()).strip("-")
    if len(slug) > 63:
        import hashlib

        slug = slug[:54].rstrip("-") + "-" + hashlib.sha256(slug.encode()).hexdigest()[:8]
    return _name_ok(slug)


def _meta(name: str, namespace: str, labels: Mapping[str, str] | None,
          annotations: Mapping[str, str] | None) -> dict:
    return {"name": _name_ok(name), "namespace": namespace, "labels": dict(labels or {}),
            "annotations": dict(annotations or {})}


def backup_body(name: str, *, namespaces: Iterable[str], include_resources: Iterable[str] = (),
                exclude_resources: Iterable[str] | None = None, storage_location: str = "default",
                ttl: str = "720h0m0s", labels: Mapping[str, str] | None = None,
                annotations: Mapping[str, str] | None = None, include_cluster_resources: bool = False,
                velero_namespace: str = VELERO_NAMESPACE) -> dict:
    """A velero.io/v1 Backup of whole namespaces, without volume snapshots."""
    spec: dict[str, Any] = {"includedNamespaces": list(namespaces), "storageLocation": storage_location,
                            "ttl": ttl, "snapshotVolumes": False, "defaultVolumesToFsBackup": False,
                            "includeClusterResources": include_cluster_resources,
                            "excludedResources": list(GENERATED_RESOURCES if exclude_resources is None
                                                      else exclude_resources)}
    if not spec["includedNamespaces"]:
        raise ValueError("a Backup needs at least one namespace")
    if include_resources:
        spec["includedResources"] = list(include_resources)
    return {"apiVersion": f"{VELERO_GROUP}/{VELERO_VERSION}", "kind": "Backup",
            "metadata": _meta(name, velero_namespace, labels, annotations), "spec": spec}


def restore_body(name: str, *, backup: str, namespace_mappings: Mapping[str, str] | None = None,
                 include_namespaces: Iterable[str] = (), include_resources: Iterable[str] = (),
                 exclude_resources: Iterable[str] | None = None, labels: Mapping[str, str] | None = None,
                 annotations: Mapping[str, str] | None = None, or_label_selectors: Iterable[Mapping] = (),
                 existing_resource_policy: str = "none", velero_namespace: str = VELERO_NAMESPACE) -> dict:
    """A velero.io/v1 Restore of a backup (optionally into other namespaces: `namespaceMapping`; only
    objects matching one of `or_label_selectors` ({matchLabels: ...})). `existing_resource_policy`
    "none" leaves objects that already exist as they are (Velero warns "already exists")."""
    if existing_resource_policy not in ("none", "update"):
        raise ValueError(f"existing_resource_policy {existing_resource_policy!r}: none or update")
    spec: dict[str, Any] = {"backupName": backup, "restorePVs": False,
                            "existingResourcePolicy": existing_resource_policy,
                            "excludedResources": list(("nodes", "events", "events.events.k8s.io")
                                                      if exclude_resources is None else exclude_resources)}
    if namespace_mappings:
        spec["namespaceMapping"] = {_name_ok(k): _name_ok(v) for k, v in namespace_mappings.items()}
    if include_namespaces:
        spec["includedNamespaces"] = list(include_namespaces)
    if include_resources:
        spec["includedResources"] = list(include_resources)
    selectors = [dict(sel) for sel in or_label_selectors]
    if selectors:
        spec["orLabelSelectors"] = selectors
    return {"apiVersion": f"{VELERO_GROUP}/{VELERO_VERSION}", "kind": "Restore",
            "metadata": _meta(name, velero_namespace, labels, annotations), "spec": spec}


@dataclass(frozen=True, kw_only=True)
class _VeleroPhase:
    """What Backup and Restore statuses share: a final phase ends the wait; only Completed without
    errors is a success (PartiallyFailed is not); progress, counts, times and why it failed."""

    FINAL: ClassVar[frozenset[str]]
    phase: str
    total_items: int = 0
    warnings: int = 0
    errors: int = 0
    started: str | None = None
    completed: str | None = None
    failure_reason: str = ""
    validation_errors: list[str] = field(default_factory=list)

    @staticmethod
    def shared_fields(st: Mapping) -> dict[str, Any]:
        """The fields above from a Backup's or Restore's `status`."""
        return {"total_items": int((st.get("progress") or {}).get("totalItems") or 0),
                "warnings": int(st.get("warnings") or 0), "errors": int(st.get("errors") or 0),
                "started": st.get("startTimestamp"), "completed": st.get("completionTimestamp"),
                "failure_reason": st.get("failureReason", ""),
                "validation_errors": list(st.get("validationErrors") or [])}

    @property
    def why(self) -> str:
        return self.failure_reason or "; ".join(self.validation_errors)

    @property
    def done(self) -> bool:
        return self.phase in self.FINAL

    @property
    def ok(self) -> bool:
        return self.phase == "Completed" and self.errors == 0

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class BackupStatus(_VeleroPhase):
    FINAL = BACKUP_FINAL
    name: str
    phase: str  # "" until Velero picked it up
    items_backed_up: int = 0
    expiration: str | None = None
    storage_location: str = ""
    version: str = ""  # the tarball's format version (status.formatVersion)

    @classmethod
    def from_object(cls, obj: Mapping) -> BackupStatus:
        st, spec = obj.get("status") or {}, obj.get("spec") or {}
        prog = st.get("progress") or {}
        return cls(name=obj["metadata"]["name"], phase=st.get("phase", ""),
                   items_backed_up=int(prog.get("itemsBackedUp") or 0), expiration=st.get("expiration"),
                   storage_location=spec.get("storageLocation", ""), version=st.get("formatVersion", ""),
                   **cls.shared_fields(st))

    def describe(self) -> str:
        why = self.why
        return (f"Backup {self.name}: {self.phase or 'New'}, {self.items_backed_up}/{self.total_items} items, "
                f"{self.warnings} warning(s), {self.errors} error(s)" + (f" ({why})" if why else ""))


@dataclass(frozen=True)
class RestoreStatus(_VeleroPhase):
    FINAL = RESTORE_FINAL
    name: str
    backup: str
    phase: str
    items_restored: int = 0

    @classmethod
    def from_object(cls, obj: Mapping) -> RestoreStatus:
        st, spec = obj.get("status") or {}, obj.get("spec") or {}
        prog = st.get("progress") or {}
        return cls(name=obj["metadata"]["name"], backup=spec.get("backupName", ""), phase=st.get("phase", ""),
                   items_restored=int(prog.get("itemsRestored") or 0), **cls.shared_fields(st))

    def describe(self) -> str:
        why = self.why
        return (f"Restore {self.name} of {self.backup}: {self.phase or 'New'}, {self.items_restored}/"
                f"{self.total_items} items, {self.warnings} warning(s), {self.errors} error(s)"
                + (f" ({why})" if why else ""))


@dataclass(frozen=True)
class DeploymentReadiness:
    name: str
    replicas: int  # spec.replicas
    ready: int
    updated: int
    available: int
    observed: bool  # status.observedGeneration caught up with metadata.generation

    @classmethod
    def from_object(cls, obj: Mapping) -> DeploymentReadiness:
        st, spec, meta = obj.get("status") or {}, obj.get("spec") or {}, obj.get("metadata") or {}
        return cls(name=meta.get("name", ""), replicas=int(spec.get("replicas", 1) or 0),
                   ready=int(st.get("readyReplicas") or 0), updated=int(st.get("updatedReplicas") or 0),
                   available=int(st.get("availableReplicas") or 0),
                   observed=int(st.get("observedGeneration") or 0) >= int(meta.get("generation") or 0))

    def is_ready(self, replicas: int | None = None) -> bool:
        """Rolled out: the controller saw the newest spec and `replicas` (default: spec) pods are Ready."""
        want = self.replicas if replicas is None else replicas
        return self.observed and self.replicas >= want and self.ready >= want and self.updated >= want \
            and self.available >= want

    def describe(self) -> str:
        return f"{self.name} {self.ready}/{self.replicas} ready ({self.updated} updated, {self.available} available)"


def wait_for(what: str, probe: Callable[[], Any], done: Callable[[Any], bool], *, timeout: float,
             interval: float = 0.5, on_timeout: Callable[[Any], Exception] | None = None) -> Any:
    """lifeboat.waiting.wait_until, raising on_timeout(last) (default KubernetesError) after timeout seconds."""
    try:
        return wait_until(what, probe, timeout, interval, done=done)
    except WaitTimeout as exc:
        raise (on_timeout(exc.last) if on_timeout else KubernetesError(str(exc))) from None


# =========================================================================== clients

def hook(conn_id: str):
    """The cncf-kubernetes provider's hook for an Airflow kubernetes connection."""
    from airflow.providers.cncf.kubernetes.hooks.kubernetes import KubernetesHook

    return KubernetesHook(conn_id=conn_id)


def apps_client(conn_id: str):
    """AppsV1Api of a connection (what the failover scales Deployments with)."""
    return hook(conn_id).apps_v1_client


class KubernetesClient:
    """One Airflow kubernetes connection (= one cluster) and the calls Lifeboat makes on it."""

    def __init__(self, conn_id: str, *, region: str = "", kube_hook=None, velero_namespace: str = VELERO_NAMESPACE):
        self.conn_id = conn_id
        self.region = region
        self._hook = kube_hook
        self.velero_namespace = velero_namespace

    @property
    def hook(self):
        if self._hook is None:
            self._hook = hook(self.conn_id)
        return self._hook

    @property
    def core(self):
        return self.hook.core_v1_client

    @property
    def apps(self):
        return self.hook.apps_v1_client

    @property
    def custom(self):
        return self.hook.custom_object_client

    def _where(self) -> str:
        return f"connection {self.conn_id!r}" + (f", {self.region}" if self.region else "")

    def _fail(self, what: str, exc: Exception) -> KubernetesError:
        status = getattr(exc, "status", None)
        reason = getattr(exc, "reason", None) or (str(exc).splitlines() or [""])[0][:300]
        body = getattr(exc, "body", None)
        if isinstance(body, bytes | str) and '"message"' in str(body):
            m = re.search(r'"message"\s*:\s*"((?:[^"\\]|\\.)*)"', str(body))
            reason = m.group(1) if m else reason
        return KubernetesError(f"Kubernetes {what} ({self._where()}): {status or type(exc).__name__} {reason}")

    def get(self, path: str, query: Mapping[str, Any] | None = None) -> dict | None:
        """GET an API path as a dict (None on 404)."""
        try:
            return self.hook.api_client.call_api(path, "GET", query_params=list((query or {}).items()),
                                                 header_params={"Accept": "application/json"},
                                                 response_types_map={200: "object"}, auth_settings=["BearerToken"],
                                                 _return_http_data_only=True, _request_timeout=30)
        except Exception as exc:
            if getattr(exc, "status", None) == 404:
                return None
            raise self._fail(f"GET {path}", exc) from None

    # -- velero ----------------------------------------------------------------------------------
    def _velero(self, verb: str, plural: str, name: str = "", body: dict | None = None):
        api = self.custom
        args = (VELERO_GROUP, VELERO_VERSION, self.velero_namespace, plural)
        try:
            if verb == "create":
                return api.create_namespaced_custom_object(*args, body)
            if verb == "get":
                return api.get_namespaced_custom_object(*args, name)
            if verb == "list":
                return api.list_namespaced_custom_object(*args).get("items", [])
            if verb == "delete":
                return api.delete_namespaced_custom_object(*args, name)
        except Exception as exc:
            if verb == "get" and getattr(exc, "status", None) == 404:
                return None
            raise self._fail(f"{verb} {plural} {self.velero_namespace}/{name}".rstrip("/"), exc) from None
        raise ValueError(verb)

    def create_backup(self, name: str, **kwargs) -> BackupStatus:
        """Create a Backup (see backup_body); an existing Backup of that name is returned as it is."""
        existing = self._velero("get", "backups", name)
        if existing is None:
            existing = self._velero("create", "backups",
                                    body=backup_body(name, velero_namespace=self.velero_namespace, **kwargs))
            log.info("created Velero Backup %s (%s)", name, self._where())
        return BackupStatus.from_object(existing)

    def backup(self, name: str) -> BackupStatus | None:
        obj = self._velero("get", "backups", name)
        return BackupStatus.from_object(obj) if obj else None

    def backups(self) -> list[BackupStatus]:
        return [BackupStatus.from_object(o) for o in self._velero("list", "backups")]

    def wait_backup(self, name: str, timeout: float = 1800, interval: float = 1.0) -> BackupStatus:
        """Wait until the Backup reaches a final phase (Completed, PartiallyFailed, Failed, FailedValidation)."""
        return wait_for(f"Velero Backup {name} ({self._where()})", lambda: self.backup(name),
                        lambda s: s is not None and s.done, timeout=timeout, interval=interval)

    def wait_backup_visible(self, name: str, timeout: float = 300, interval: float = 1.0) -> BackupStatus:
        """Wait until this cluster's Velero has synced the backup from a (read-only) location."""
        return wait_for(f"Velero Backup {name} to be synced into this cluster ({self._where()})",
                        lambda: self.backup(name), lambda s: s is not None and s.phase == "Completed",
                        timeout=timeout, interval=interval)

    def backup_object(self, name: str) -> dict | None:
        """The Backup object itself (metadata, spec, status), None if absent."""
        return self._velero("get", "backups", name)

    def delete_backup(self, name: str, wait: float = 0) -> dict:
        """Ask Velero to delete a backup, its Backup object and its data in the location (DeleteBackupRequest);
        with `wait`, wait that many seconds for the Backup object to disappear."""
        body = {"apiVersion": f"{VELERO_GROUP}/{VELERO_VERSION}", "kind": "DeleteBackupRequest",
                "metadata": {"generateName": f"{name}-", "namespace": self.velero_namespace,
                             "labels": {"velero.io/backup-name": name[:63]}},
                "spec": {"backupName": name}}
        req = self._velero("create", "deletebackuprequests", body=body)
        if wait:
            wait_for(f"Velero Backup {name} to be deleted ({self._where()})", lambda: self.backup(name),
                     lambda s: s is None, timeout=wait, interval=0.5)
        return req

    def storage_location(self, name: str) -> dict:
        """A BackupStorageLocation's spec (provider, objectStorage.bucket/prefix, config, accessMode)."""
        obj = self._velero("get", "backupstoragelocations", name)
        if obj is None:
            raise KubernetesError(f"no BackupStorageLocation {self.velero_namespace}/{name} ({self._where()})")
        return obj.get("spec") or {}

    def create_restore(self, name: str, **kwargs) -> RestoreStatus:
        existing = self._velero("get", "restores", name)
        if existing is None:
            existing = self._velero("create", "restores",
                                    body=restore_body(name, velero_namespace=self.velero_namespace, **kwargs))
            log.info("created Velero Restore %s of %s (%s)", name, kwargs.get("backup"), self._where())
        return RestoreStatus.from_object(existing)

    def restore(self, name: str) -> RestoreStatus | None:
        obj = self._velero("get", "restores", name)
        return RestoreStatus.from_object(obj) if obj else None

    def wait_restore(self, name: str, timeout: float = 1800, interval: float = 1.0) -> RestoreStatus:
        return wait_for(f"Velero Restore {name} ({self._where()})", lambda: self.restore(name),
                        lambda s: s is not None and s.done, timeout=timeout, interval=interval)

    # -- namespaces and their resources --------------------------------------------------------------
    def namespace_exists(self, namespace: str) -> bool:
        return self.get(f"/api/v1/namespaces/{namespace}") is not None

    def list_namespace(self, namespace: str, resources: Iterable[tuple[str, str, str]] = RESOURCES) -> list[dict]:
        """Every object of the given kinds in a namespace, each with apiVersion and kind set."""
        out = []
        for api_version, kind, plural in resources:
            base = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
            doc = self.get(f"{base}/namespaces/{namespace}/{plural}")
            for item in (doc or {}).get("items", []):
                out.append({"apiVersion": api_version, "kind": kind, **item})
        return out

    def deployments(self, namespace: str) -> dict[str, DeploymentReadiness]:
        doc = self.get(f"/apis/apps/v1/namespaces/{namespace}/deployments") or {}
        return {d["metadata"]["name"]: DeploymentReadiness.from_object(d) for d in doc.get("items", [])}

    def wait_deployments_ready(self, namespace: str, names: Iterable[str] | None = None, timeout: float = 300,
                               interval: float = 0.5) -> dict[str, DeploymentReadiness]:
        """Wait until the Deployments (default: all in the namespace) are rolled out with all pods Ready."""
        wanted = list(names) if names is not None else None

        def probe():
            deps = self.deployments(namespace)
            return {n: deps.get(n) for n in (wanted if wanted is not None else deps)}

        def done(deps):
            return bool(deps) and all(d is not None and d.is_ready() for d in deps.values())

        def late(deps):
            return KubernetesError(f"Deployments in {namespace} ({self._where()}) not Ready after {timeout:.0f}s: "
                                   + "; ".join(d.describe() if d else f"{n} missing" for n, d in deps.items()))

        return wait_for(f"Deployments in {namespace}", probe, done, timeout=timeout, interval=interval,
                        on_timeout=late)

    def put_configmap(self, namespace: str, name: str, data: Mapping[str, str],
                      labels: Mapping[str, str] | None = None) -> None:
        """Create or replace a ConfigMap (the heartbeat)."""
        body = {"apiVersion": "v1", "kind": "ConfigMap", "data": dict(data),
                "metadata": {"name": _name_ok(name), "namespace": namespace, "labels": dict(labels or {})}}
        try:
            try:
                self.core.replace_namespaced_config_map(name, namespace, body)
            except Exception as exc:
                if getattr(exc, "status", None) != 404:
                    raise
                self.core.create_namespaced_config_map(namespace, body)
        except Exception as exc:
            raise self._fail(f"write ConfigMap {namespace}/{name}", exc) from None

    def delete_drill_namespace(self, namespace: str, wait: bool = True, timeout: float = 180) -> bool:
        """Delete a drill namespace (and wait until it is gone). Refuses any other namespace."""
        if not namespace.startswith(DRILL_PREFIX):
            raise Refused(f"refusing to delete namespace {namespace!r} ({self._where()}): only drill namespaces "
                          f"({DRILL_PREFIX}*) are deleted by Lifeboat")
        try:
            self.core.delete_namespace(namespace)
        except Exception as exc:
            if getattr(exc, "status", None) == 404:
                return False
            raise self._fail(f"delete namespace {namespace}", exc) from None
        if wait:
            wait_for(f"namespace {namespace} to be deleted", lambda: self.namespace_exists(namespace),
                     lambda exists: not exists, timeout=timeout, interval=0.5)
        return True


def client_for(connections: Mapping[str, str], region: str) -> KubernetesClient:
    """The client of a region from an inventory's {region: connection id} (error naming the region)."""
    conn = connections.get(region)
    if not conn:
        raise KubernetesError(f"no kubernetes connection for region {region!r} "
                              f"(have: {', '.join(connections) or 'none'})")
    return KubernetesClient(conn, region=region)

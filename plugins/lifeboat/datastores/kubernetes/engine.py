"""The Kubernetes engine: Velero backups with deterministic names, copied into the Lifeboat repository,
verified in the bucket and through the other region's Velero, restore-tested into drill namespaces of
the standby cluster, deleted through Velero's DeleteBackupRequest, and the platform's readiness audit."""

from __future__ import annotations

import hashlib
import logging
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from lifeboat.clients.kubernetes import BackupStatus, KubernetesClient
from lifeboat.clients.kubernetes_specs import HEARTBEAT_CONFIGMAP
from lifeboat.datastores.base import MonitorFinding, Taken
from lifeboat.datastores.kubernetes import verify as kverify
from lifeboat.datastores.kubernetes.location import Location
from lifeboat.datastores.kubernetes.options import KubernetesOptions
from lifeboat.datastores.kubernetes.tarball import (
    COPY,
    OWNER,
    TarballError,
    flatten_results,
    list_difference,
    read_gzip_json,
    read_tarball,
    velero_name,
)
from lifeboat.datastores.regional import RegionalDatastore, per_region
from lifeboat.drills import DrillRecorder
from lifeboat.durations import seconds
from lifeboat.errors import KubernetesError, Refused
from lifeboat.records import Check, Manifest, utcnow

log = logging.getLogger(__name__)



class KubernetesDatastore(RegionalDatastore[KubernetesOptions]):
    engine = "kubernetes"
    restore_series = "full"

    # -- clients ---------------------------------------------------------------------------------
    @per_region
    def client(self, region: str) -> KubernetesClient:
        """The region's cluster through its Airflow kubernetes connection (cached)."""
        return KubernetesClient(self.conn_id(region), region=region, velero_namespace=self.options.velero_namespace)

    def location(self, cluster_region: str, name: str | None = None) -> Location:
        """A BackupStorageLocation of the cluster of `cluster_region` (default: options.storage_location)."""
        name = name or self.options.storage_location
        spec = self.client(cluster_region).storage_location(name)
        return Location.from_spec(name, spec, cluster_region, self.options.bucket_connections,
                                  f"datastores.{self.name}.options")

    def timeout(self, option: str) -> float:
        return seconds(getattr(self.options, option))

    # -- backup ----------------------------------------------------------------------------------
    def _take(self, kind: str, backup_id: str, staging: Path) -> Taken:
        o, c = self.options, self.client()
        name = velero_name(backup_id)
        prior = c.backup_object(name)
        if prior is not None:
            owner = ((prior.get("metadata") or {}).get("annotations") or {}).get(OWNER)
            if owner != backup_id:
                raise Refused(f"Velero already has a Backup {o.velero_namespace}/{name} in {self.region} that Lifeboat "
                              f"did not take for backup {backup_id} ({OWNER}={owner!r}); not touching it")
            st = BackupStatus.from_object(prior)
            if st.done and not st.ok:  # an earlier attempt of this very task failed: take it again
                log.info("deleting the failed earlier attempt of %s: %s", backup_id, st.describe())
                c.delete_backup(name, wait=self.timeout("sync_timeout"))
                prior = None
            else:
                log.info("Velero Backup %s exists (an earlier attempt of this task): %s", name, st.describe())
        t0 = time.monotonic()
        if prior is None:
            c.create_backup(name, namespaces=o.namespaces, include_resources=o.include_resources,
                            exclude_resources=o.exclude_resources, storage_location=o.storage_location,
                            ttl=o.velero_ttl, labels={"app.kubernetes.io/managed-by": "lifeboat"},
                            annotations={OWNER: backup_id, "lifeboat.io/datastore": self.name})
        st = c.wait_backup(name, timeout=self.timeout("backup_timeout"), interval=seconds(o.poll_interval))
        wall = time.monotonic() - t0
        if not st.ok:
            raise KubernetesError(f"{st.describe()} in {self.region}: not a usable backup (kept for inspection: "
                                  f"`velero backup describe {name} --details`, `velero backup logs {name}`); a retry "
                                  "deletes it and takes it again")
        loc = self.location(self.region, st.storage_location or o.storage_location)
        files = loc.backup_files(name)
        folder = staging / COPY / "backups" / name
        folder.mkdir(parents=True)
        for f in files:  # the whole Velero folder: the copy is a Velero location of its own
            (folder / f.key.rsplit("/", 1)[-1]).write_bytes(loc.get(f.key))
        tar_key = loc.tarball_key(name)
        tar_file = folder / f"{name}.tar.gz"
        if not tar_file.exists():
            raise KubernetesError(f"{loc.url(tar_key)}: missing after Velero reported {st.describe()}")
        data = tar_file.read_bytes()
        try:
            tarball = read_tarball(data, loc.url(tar_key))
            listed = read_gzip_json((folder / f"{name}-resource-list.json.gz").read_bytes(),
                                    loc.url(loc.resource_list_key(name)))
            results = read_gzip_json((folder / f"{name}-results.gz").read_bytes(), loc.url(loc.results_key(name)))
        except (TarballError, FileNotFoundError) as exc:
            raise KubernetesError(f"backup {name} in {self.region}: {exc}") from None
        if listed != tarball.resource_list:
            raise KubernetesError(f"{loc.url(tar_key)}: the tarball's objects differ from Velero's resource list: "
                                  + "; ".join(list_difference(listed, tarball.resource_list)))
        obj = c.backup_object(name) or {}
        annotations = (obj.get("metadata") or {}).get("annotations") or {}
        native: dict[str, Any] = {
            "tool": "velero", "velero_backup": name, "velero_namespace": o.velero_namespace, "phase": st.phase,
            "items_backed_up": st.items_backed_up, "total_items": st.total_items, "warnings": st.warnings,
            "errors": st.errors, "warning_messages": flatten_results(results, "warnings"),
            "error_messages": flatten_results(results, "errors"), "format_version": st.version,
            "started": st.started, "completed": st.completed, "expiration": st.expiration, "ttl": o.velero_ttl,
            "storage_location": loc.name, "bucket": loc.bucket.bucket, "bucket_region": loc.bucket_region,
            "prefix": loc.prefix, "namespaces": list(o.namespaces),
            "tarball": {"key": tar_key, "url": loc.url(tar_key), "sha256": hashlib.sha256(data).hexdigest(),
                        "size": len(data)},
            "resources": tarball.resource_list, "copy": COPY, "heartbeat_configmap": HEARTBEAT_CONFIGMAP,
            "wall_seconds": round(wall, 3),
        }
        mapping = ",".join(f"{ns}:drill-{ns}-<date>" for ns in o.namespaces)
        return Taken(
            position={"velero_backup": name, "started": st.started, "completed": st.completed},
            counts=tarball.counts,
            tools={"velero backup format": st.version or tarball.format_version,
                   "kubernetes": annotations.get("velero.io/source-cluster-k8s-gitversion", "")},
            native=native,
            source=f"{self.conn_id()} ({self.region}, namespaces {', '.join(o.namespaces)})",
            restore_hint=(f"velero restore create --from-backup {name} --namespace-mappings {mapping} --wait "
                          f"(in the standby cluster: listed through its read-only location; without the bucket: copy "
                          f"{COPY} of this backup into a bucket and add a read-only BackupStorageLocation on it, "
                          "docs/datastores/kubernetes.md)"),
        )

    # -- verification ----------------------------------------------------------------------------
    def checks(self, m: Manifest, batch: Any, deep: bool) -> list[Check]:
        return kverify.checks(self, m)

    # -- restore test ----------------------------------------------------------------------------
    def scratch_target(self, manifest: Manifest, target: str, drill: DrillRecorder):
        from lifeboat.datastores.kubernetes.scratch import DrillNamespaces

        self.latest_only(target, "a Velero backup restores the state it was taken at; pick the "
                         "backup (backup id) instead and use target 'latest'")
        return DrillNamespaces(self, manifest, drill)

    # -- heartbeat, monitor ------------------------------------------------------------------------
    def heartbeat(self) -> datetime:
        """ConfigMap lifeboat-heartbeat in every backed-up namespace: a restored copy's timestamp is the RPO."""
        now = utcnow()
        for ns in self.options.namespaces:
            self.client().put_configmap(ns, HEARTBEAT_CONFIGMAP, {"written_at": now.isoformat(), "region": self.region,
                                                                  "source": "lifeboat"},
                                        labels={"app.kubernetes.io/managed-by": "lifeboat"})
        return now

    def monitor_findings(self) -> list[MonitorFinding]:
        """The platform's readiness audit (audit.py), one finding per object and check."""
        from lifeboat.datastores.kubernetes.audit import readiness_findings

        if not self.options.audit.enabled:
            return []
        return [MonitorFinding(check=f["check"], severity=f["severity"], value=str(f.get("value", "")),
                               threshold=str(f.get("threshold", "")), message=f["message"])
                for f in readiness_findings(self)]

    # -- retention -------------------------------------------------------------------------------
    def delete_backup(self, manifest: Manifest) -> None:
        """Velero's DeleteBackupRequest (the Backup object and its files in the bucket), then the catalog
        entry. If Velero cannot delete it, the manifest stays and the next retention run tries again."""
        name = manifest.native.get("velero_backup") or velero_name(manifest.id)
        c = self.client(manifest.region)
        obj = c.backup_object(name)
        if obj is not None:
            owner = ((obj.get("metadata") or {}).get("annotations") or {}).get(OWNER)
            if owner != manifest.id:
                raise Refused(f"Velero Backup {name} in {manifest.region} belongs to {owner!r}, not to backup "
                              f"{manifest.id}: not deleting someone else's backup")
            try:
                c.delete_backup(name, wait=self.timeout("sync_timeout"))
            except KubernetesError as exc:
                raise Refused(f"cannot delete Velero Backup {name} of {manifest.id}: {exc}; the catalog entry is "
                              "kept, retention will retry") from None
        else:
            log.warning("Velero Backup %s of %s was already gone; removing the catalog entry", name, manifest.id)
        self.ctx.repo.delete_backup(self.name, manifest.id)

"""Kubernetes engine options (`datastores.<name>.options`): pydantic only, cheap at DAG-parse time."""

from __future__ import annotations

import re

from pydantic import Field, field_validator, model_validator

from lifeboat.clients.kubernetes import DRILL_PREFIX, GENERATED_RESOURCES  # stdlib only: cheap at parse time
from lifeboat.datastores.options import EngineOptions
from lifeboat.durations import DurationStr, seconds
from lifeboat.names import names_matching

_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_RESOURCE = re.compile(r"^[a-z0-9*][a-z0-9.\-*]*$")


def velero_duration(value: str) -> str:
    """'90d' -> '2160h0m0s' (a Go duration, what Velero's spec.ttl takes)."""
    s = int(seconds(value))
    return f"{s // 3600}h{s % 3600 // 60}m{s % 60}s"


class HpaPlan(EngineOptions):
    """A HorizontalPodAutoscaler the DR plan requires (readiness audit)."""

    name: str
    target: str = Field(description="the Deployment it scales")
    min_replicas: int = Field(ge=1)
    max_replicas: int = Field(ge=1)
    cpu_utilization: int = Field(ge=1, le=100)

    @model_validator(mode="after")
    def _bounds(self) -> HpaPlan:
        if self.max_replicas < self.min_replicas:
            raise ValueError(f"max_replicas: {self.max_replicas} is less than min_replicas {self.min_replicas}")
        return self


class AuditOptions(EngineOptions):
    """The readiness audit in lifeboat_monitor: the Deployments of the inventory's `failover.services`
    against the DR plan's probes and replicas, these HPAs, and the standby cluster against the newest
    verified backup (by spec hash, replicas left out)."""

    enabled: bool = True
    hpas: list[HpaPlan] = Field(default=[])
    # region -> {placeholder: value}: strings that differ between the regions by design (registry host,
    # region name), replaced by <placeholder> on both sides before specs are compared.
    region_values: dict[str, dict[str, str]] = Field(default={})


class KubernetesOptions(EngineOptions):
    namespaces: list[str] = Field(min_length=1, description="namespaces every backup holds (whole namespaces)")
    include_resources: list[str] = Field(default=[], description="only these resources (Velero includedResources); "
                                                                 "empty: every resource")
    exclude_resources: list[str] = Field(default=list(GENERATED_RESOURCES),
                                         description="left out (Velero excludedResources)")
    velero_namespace: str = "velero"
    storage_location: str = Field(default="default", description="the BackupStorageLocation backups are written to")
    ttl: DurationStr = Field(default="90d", description="Velero's own expiry of a backup (spec.ttl): set it beyond "
                                                         "the longest retention rule, Lifeboat's retention deletes "
                                                         "earlier through DeleteBackupRequest")
    # region -> Airflow aws connection that can read that region's backup storage location bucket
    bucket_connections: dict[str, str] = Field(min_length=1)
    # objects a restore may warn about ("already exists": every namespace gets its own), as Kind/name
    expected_restore_warnings: list[str] = Field(default=["ConfigMap/kube-root-ca.crt"])
    backup_timeout: DurationStr = "30m"
    restore_timeout: DurationStr = "30m"
    sync_timeout: DurationStr = "5m"  # until the other region's Velero lists a backup (its read-only location)
    ready_timeout: DurationStr = "10m"  # restored Deployments Ready
    poll_interval: DurationStr = "1s"
    audit: AuditOptions = AuditOptions()

    @field_validator("namespaces")
    @classmethod
    def _namespaces(cls, v: list[str]) -> list[str]:
        names_matching(v, _LABEL, "{!r}: not a Kubernetes namespace name (lower-case DNS label)",
                       lambda ns: f"{ns!r}: {DRILL_PREFIX}* namespaces are restore-test targets, never backed up"
                       if ns.startswith(DRILL_PREFIX) else None)
        if len(set(v)) != len(v):
            raise ValueError("a namespace is listed twice")
        return v

    @field_validator("include_resources", "exclude_resources")
    @classmethod
    def _resources(cls, v: list[str]) -> list[str]:
        for r in v:
            if not _RESOURCE.match(r):
                raise ValueError(f"{r!r}: not a resource name (e.g. deployments, deployments.apps, configmaps)")
        return v

    @field_validator("velero_namespace", "storage_location")
    @classmethod
    def _name(cls, v: str) -> str:
        if not _LABEL.match(v):
            raise ValueError(f"{v!r}: not a Kubernetes object name (lower-case DNS label)")
        return v

    @property
    def velero_ttl(self) -> str:
        return velero_duration(self.ttl)

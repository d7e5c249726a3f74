"""Thin Airflow operators over `lifeboat.jobs`: keyword-only constructors that do no I/O, explicit
template fields, JSON-safe return values. One operator per verb, any datastore (the engine comes from
the inventory), so DAG families iterate over the inventory instead of special-casing datastores."""

from lifeboat.operators.core import (
    BackupOperator,
    HeartbeatOperator,
    MirrorOperator,
    MonitorOperator,
    RepairReplicaOperator,
    RestoreTestOperator,
    RetentionOperator,
    VerifyOperator,
    backups_asset,
)

__all__ = [
    "BackupOperator",
    "HeartbeatOperator",
    "MirrorOperator",
    "MonitorOperator",
    "RepairReplicaOperator",
    "RestoreTestOperator",
    "RetentionOperator",
    "VerifyOperator",
    "backups_asset",
]

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow.sdk import Asset, BaseOperator

from lifeboat.ui.links import DrillRecordLink


def backups_asset(datastore: str) -> Asset:
    """The Asset a datastore's backups update; verification follows it."""
    return Asset(name=f"lifeboat_backups_{datastore}", uri=f"lifeboat://backups/{datastore}")


def _run(context) -> dict[str, str]:
    """Where a record came from: the DR page links back to this (mapped) task instance."""
    dr, ti = context["dag_run"], context["ti"]
    run = {"dag_id": dr.dag_id, "run_id": dr.run_id, "task_id": ti.task_id}
    if getattr(ti, "map_index", -1) not in (None, -1):
        run["map_index"] = str(ti.map_index)
    return run


def _when(context):
    return context.get("logical_date") or context["dag_run"].run_after


class _LifeboatOperator(BaseOperator):
    """`region`: where the job acts; empty (the default) = resolved when the task runs: LIFEBOAT_REGION of
    the deployment, else the active region (lifeboat.regions). A job on the primaries in a region that is
    not active is skipped, saying which region is."""

    ui_color = "#d8ecf7"

    def __init__(self, *, region: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.region = region

    def call(self, fn, *args: Any, **kwargs: Any) -> Any:
        from airflow.sdk.exceptions import AirflowSkipException

        from lifeboat.regions import NotActiveRegion

        try:
            return fn(*args, region=self.region or None, **kwargs)
        except NotActiveRegion as exc:
            raise AirflowSkipException(str(exc)) from None


class BackupOperator(_LifeboatOperator):
    """Take one backup of `kind` for inventory datastore `datastore`; emit an asset event with its id.

    The backup id is derived from the run's logical date, so a retried task finds its own finished
    backup instead of taking a second one."""

    template_fields: Sequence[str] = ("datastore", "kind", "region")

    def __init__(self, *, datastore: str, kind: str, **kwargs: Any) -> None:
        kwargs.setdefault("outlets", [backups_asset(datastore)])
        super().__init__(**kwargs)
        self.datastore = datastore
        self.kind = kind

    def execute(self, context) -> dict:
        from lifeboat import jobs

        result = self.call(jobs.backup, self.datastore, self.kind, _when(context), run=_run(context))
        for asset in self.outlets:
            context["outlet_events"][asset].extra = {"datastore": self.datastore, "backup_id": result["backup_id"],
                                                    "kind": result["kind"]}
        return result


class VerifyOperator(_LifeboatOperator):
    """Verify backups of a datastore (default: every backup in the catalog); fail naming each problem."""

    template_fields: Sequence[str] = ("datastore", "backup_ids", "region")

    def __init__(self, *, datastore: str, backup_ids: list[str] | None = None, deep: bool = True,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.datastore = datastore
        self.backup_ids = backup_ids
        self.deep = deep

    def execute(self, context) -> dict:
        from lifeboat import jobs

        return self.call(jobs.verify, self.datastore, list(self.backup_ids or []) or None, run=_run(context),
                         deep=self.deep)


class RestoreTestOperator(_LifeboatOperator):
    """Restore into a scratch target, verify, measure RTO/RPO, record the drill.

    The verdict is shown in Airflow itself: `drill_summary` is a rendered field (re-sent after
    execution), used as the mapped task's label in the grid, and the task's extra link opens the
    drill's record on the DR page."""

    template_fields: Sequence[str] = ("datastore", "backup_id", "target", "drill_summary", "region")
    overwrite_rtif_after_execution = True

    def __init__(self, *, datastore: str, backup_id: str | None = None, target: str = "latest",
                 drill_type: str = "restore_test", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.datastore = datastore
        self.backup_id = backup_id
        self.target = target
        self.drill_type = drill_type
        self.drill_summary = ""
        self.drill_id: str | None = None

    operator_extra_links = (DrillRecordLink(),)

    def execute(self, context) -> dict:
        from lifeboat import jobs

        try:
            outcome = self.call(jobs.restore_drill, self.datastore, self.backup_id or None, self.target or "latest",
                                run=_run(context), drill_type=self.drill_type)
        except Exception as exc:  # no drill at all (e.g. the inventory or the engine cannot be loaded)
            self.drill_summary = f"FAIL: {type(exc).__name__}: {exc}"[:406]
            raise
        d = outcome.summary
        self.drill_id = d["drill_id"]
        if d["verdict"] == "pass" and outcome.error is None:
            self.drill_summary = f"PASS: RTO {d['rto']}, RPO {d['rpo']}"
        else:
            self.drill_summary = ("FAIL: " + "; ".join(d["reasons"]))[:406]
        return outcome.raise_for_verdict()


class _DatastoreJobOperator(_LifeboatOperator):
    """Runs `lifeboat.jobs.<job>(datastore, run=...)` (plus `job_kwargs()`) and returns its result."""

    job: str
    template_fields: Sequence[str] = ("datastore", "region")

    def __init__(self, *, datastore: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.datastore = datastore

    def job_kwargs(self) -> dict[str, Any]:
        return {}

    def execute(self, context) -> dict:
        from lifeboat import jobs

        return self.call(getattr(jobs, self.job), self.datastore, run=_run(context), **self.job_kwargs())


class HeartbeatOperator(_DatastoreJobOperator):
    """Write the heartbeat every RPO measurement reads."""

    job = "heartbeat"


class MirrorOperator(_LifeboatOperator):
    """Mirror the acting region's catalog copy to the other region (manifests last); never fails because
    the other region is gone (the result says `pending`, recorded in this region's catalog)."""

    template_fields: Sequence[str] = ("region",)

    def execute(self, context) -> dict:
        from lifeboat import jobs

        return self.call(jobs.mirror, run=_run(context))


class RetentionOperator(_DatastoreJobOperator):
    """Plan retention; delete only when `apply` is true (inventory `retention.enforce`)."""

    job = "retention"

    def __init__(self, *, datastore: str, apply: bool = False, **kwargs: Any) -> None:
        super().__init__(datastore=datastore, **kwargs)
        self.apply = apply

    def job_kwargs(self) -> dict[str, Any]:
        return {"apply": bool(self.apply)}


class MonitorOperator(_DatastoreJobOperator):
    """Compare a datastore's live exposure, backup ages, verification and drills with its objectives;
    route findings by severity. Never fails on findings (alerts are the output); fails only when the
    check itself cannot run."""

    job = "monitor"

    def __init__(self, *, datastore: str, send_alerts: bool = True, **kwargs: Any) -> None:
        super().__init__(datastore=datastore, **kwargs)
        self.send_alerts = send_alerts  # False: an IncidentsOperator downstream turns findings into incidents

    def job_kwargs(self) -> dict[str, Any]:
        return {"send_alerts": self.send_alerts}


class RepairReplicaOperator(_DatastoreJobOperator):
    """Copy to an S3 replica exactly the keys it lacks (lifeboat.datastores.objects.repair): a dry run
    unless `dry_run` is false AND `confirm` is "repair <datastore>". The flags may be templates
    ("{{ params.dry_run }}"); anything but an explicit false keeps the dry run."""

    job = "repair_replica"
    template_fields: Sequence[str] = ("datastore", "dry", "confirm", "include_different")

    def __init__(self, *, datastore: str, dry_run: Any = True, confirm: str = "", include_different: Any = False,
                 **kwargs: Any) -> None:
        super().__init__(datastore=datastore, **kwargs)
        # not self.dry_run: BaseOperator.dry_run is a method
        self.dry, self.confirm, self.include_different = dry_run, confirm, include_different

    def job_kwargs(self) -> dict[str, Any]:
        return {"dry_run": _flag(self.dry, default=True), "confirm": str(self.confirm or ""),
                "include_different": _flag(self.include_different, default=False)}


def _flag(v: Any, *, default: bool) -> bool:
    """A boolean param that may arrive rendered as a string; unrecognised or empty -> the (safe) default."""
    if isinstance(v, bool):
        return v
    s = str(v).strip().lower()
    return True if s in ("true", "1", "yes") else False if s in ("false", "0", "no") else default

"""Thin Airflow operators over `lifeboat.recovery.jobs` for lifeboat_recover / lifeboat_recover_service,
and the DAG pieces both share (trigger form, opening and closing tasks). Constructors do no I/O.

`RecoveryStepOperator(step=..., kind=...)` runs one job function with the run's params; a guard refusal
(`Refused`) fails the task without retries. `RecoveryApprovalOperator` is the human-in-the-loop approval
(Airflow's `ApprovalOperator`) showing the plan; a dry run passes straight through.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import BaseOperator

from lifeboat.operators.failover import FailoverApprovalOperator, _run, run_step, step_inputs

XCOM_TASKS = ("guard", "plan", "verify")


class RecoveryStepOperator(BaseOperator):
    ui_color = "#d8e8f7"

    def __init__(self, *, step: str, kind: str = "recover", datastore: str | None = None, **kwargs: Any) -> None:
        from lifeboat.recovery.jobs import step as lookup

        lookup(kind, step)  # an unknown step fails at parse time
        super().__init__(**kwargs)
        self.step, self.kind, self.datastore = step, kind, datastore

    def execute(self, context) -> Any:
        from lifeboat.recovery.jobs import step as lookup

        ti = context["ti"]
        if self.step == "restore":
            kwargs = {"preflights": (ti.xcom_pull(task_ids="plan") or {}).get("preflights") or {}}
        elif self.step == "plan" and self.kind != "recover":
            kwargs = {}
        else:
            kwargs = step_inputs(self.step, ti, self.datastore, XCOM_TASKS)
        return run_step(lookup(self.kind, self.step), self.kind, dict(context["params"]), context, kwargs)


class RecoveryApprovalOperator(FailoverApprovalOperator):
    """The second person's approval of a recovery plan. Reject or timeout: nothing downstream changes."""

    def execute(self, context):
        params = context["params"]
        if params.get("dry_run", True):
            return super().execute(context)  # the dry-run pass-through
        plan = context["ti"].xcom_pull(task_ids="plan") or {}
        kind = plan.get("kind", "recover").replace("_", " ")
        self.subject = (f"{kind.upper()} {', '.join(params.get('scope') or [])} in {plan.get('region')}: approve "
                        f"the plan? (reason: {params.get('reason')})")
        self.body = plan.get("text") or "(the plan task returned no plan)"
        from airflow.providers.standard.operators.hitl import ApprovalOperator

        return ApprovalOperator.execute(self, context)


def trigger_params(inventory, kind: str) -> dict:
    from airflow.sdk import Param

    from lifeboat.recovery.operation import scope_choices

    choices = scope_choices(inventory) if kind == "recover" else list(inventory.services)
    regions = ["active", inventory.regions.primary, inventory.regions.standby]
    common = {
        "scope": Param([], type="array", minItems=1, items={"type": "string", "enum": choices}, examples=choices,
                       title="Scope", description="The affected services (their datastores and the services they "
                       "depend on come from `services:` in the inventory and go first) or datastores."),
        "region": Param("active", type="string", enum=regions, title="Region",
                        description="Where to act: 'active' = $LIFEBOAT_REGION / the active region, else the primary. "
                                    "Runs from the standby region alone."),
    }
    if kind == "recover":
        extra = {
            "target": Param("latest", type="string", title="Recovery target",
                            description="'latest' or an ISO-8601 time with zone (PostgreSQL PITR, MongoDB oplog "
                                        "replay; "
                                        "snapshot engines take their newest backup at or before it)."),
            "targets": Param({}, type="object", title="Per-datastore targets",
                             description="Overrides, e.g. {\"mongodb\": \"1764633600:7\"} (an oplog timestamp)."),
            "into": Param("new", type="string", enum=["new", "live"], title="Into",
                          description="'new' (default): a NEW instance / port / database / index, kept, the services "
                                      "repointed at it. 'live': the live target, fenced (stopped) first -- needs "
                                      "confirm_live."),
            "failed_at": Param("", type="string", title="Failure time",
                               description="When the datastore failed (ISO-8601); data loss is measured from it. "
                                           "Empty: the trigger time."),
        }
    else:
        extra = {
            "restart": Param(True, type="boolean", title="Rollout restart",
                             description="kubectl rollout restart of the services' Deployments (and local processes)."),
            "replicas": Param(None, type=["null", "integer"], minimum=0, title="Replicas",
                              description="Scale the services' Deployments to this many replicas."),
            "hpa_min": Param(None, type=["null", "integer"], minimum=1, title="HPA minReplicas"),
            "hpa_max": Param(None, type=["null", "integer"], minimum=1, title="HPA maxReplicas"),
        }
    tail = {
        "dry_run": Param(True, type="boolean", title="Dry run",
                         description="Report what would happen; change nothing. Untick for a real run."),
        "reason": Param(type="string", minLength=3, title="Reason", description="Why (incident id...). Required."),
        "confirm": Param("", type="string", title="Confirmation",
                         description="For a real run: type the acting region's name exactly."),
    }
    if kind == "recover":
        tail["confirm_live"] = Param("", type="string", title="Second confirmation (into=live)",
                                     description="For into=live: type the datastores restored into their live "
                                                 "targets, comma-separated in restore order (e.g. 'postgres').")
    return {**common, **extra, **tail}


def recovery_dag(inventory, kind: str, doc: str | None):
    from lifeboat.dagkit import dag

    return dag(f"lifeboat_{kind}", doc, schedule=None, severity="critical", retries=0, tag=("recovery",),
               params=trigger_params(inventory, kind))


def approval_gate(inventory) -> RecoveryApprovalOperator:
    rs = inventory.recovery
    return RecoveryApprovalOperator(task_id="approval", subject="Recovery: approve the plan?",
                                    body="(filled in from the plan)", response_timeout=rs.approval_timeout,
                                    assigned_users=[{"id": u, "name": u} for u in rs.approvers] or None)


def closing_tasks(kind: str):
    from datetime import timedelta

    record, notify = (RecoveryStepOperator(task_id=s, step=s, kind=kind, trigger_rule="all_done", retries=1,
                                           retry_delay=timedelta(seconds=10)) for s in ("record", "notify"))
    record >> notify
    return record, notify


class QuarterlyDrillOperator(BaseOperator):
    """The quarterly full-system drill (lifeboat.recovery.quarterly.run): one task, because the drill
    environment (restored stores, services) lives for the length of the drill and is torn down by it."""

    ui_color = "#e8f0d8"

    def __init__(self, *, region: str = "active", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.region = region

    template_fields = ("region",)

    def execute(self, context) -> Any:
        from lifeboat.recovery import quarterly

        return quarterly.run(_run(context), None if self.region in ("", "active") else self.region)

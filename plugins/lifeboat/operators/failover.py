"""Thin Airflow operators over `lifeboat.failover.jobs` for lifeboat_failover / lifeboat_failback.

`FailoverStepOperator(step=...)` runs one job function with the run's params; a guard refusal
(`Refused`) fails the task without retries. `FailoverApprovalOperator` is Airflow's human-in-the-loop
`ApprovalOperator` showing the plan; in a dry run it approves nothing and passes straight through.
Constructors do no I/O; nothing here reads the inventory at import time.
"""

from __future__ import annotations

from typing import Any

from airflow.providers.standard.operators.hitl import ApprovalOperator
from airflow.sdk import BaseOperator

STEPS = ("guard", "preflight", "plan", "fence", "promote", "rebuild_target", "caught_up", "rebuild_source",
         "scale_services", "switch_traffic", "drain_source", "verify", "record", "notify")
XCOM_TASKS = ("guard", "plan", "caught_up", "verify")


def trigger_params(inventory, *, target: str, target_title: str, target_description: str,
                   extra: dict | None = None) -> dict:
    """The trigger form both DAGs share: target region, scope, [extra], dry run (default true), reason
    (required), confirmation (the target region's name, for a real run)."""
    from airflow.sdk import Param

    from lifeboat.failover import scope_choices

    choices = scope_choices(inventory)
    return {
        "target_region": Param(target, type="string", enum=[inventory.regions.primary, inventory.regions.standby],
                               title=target_title, description=target_description),
        "scope": Param(["region"], type="array", items={"type": "string", "enum": choices}, examples=choices,
                       title="Scope", description="'region' = every datastore, service and DNS record; or pick "
                                                  "datastores / services."),
        **(extra or {}),
        "dry_run": Param(True, type="boolean", title="Dry run",
                         description="Report what would happen; change nothing. Untick for a real run."),
        "reason": Param(type="string", minLength=3, title="Reason",
                        description="Why (incident id, drill...). Required."),
        "confirm": Param("", type="string", title="Confirmation",
                         description="For a real run: type the target region's name exactly."),
    }


def _run(context) -> dict[str, str]:
    dr = context["dag_run"]
    started = getattr(dr, "start_date", None) or getattr(dr, "run_after", None)
    return {"dag_id": dr.dag_id, "run_id": dr.run_id, "task_id": context["ti"].task_id,
            "run_started_at": started.isoformat() if started else ""}


class FailoverStepOperator(BaseOperator):
    """One step of a failover (`kind="failover"`) or failback (`kind="failback"`).

    `needs_switch_back=True` skips the step unless the run's `switch_back` param is true."""

    ui_color = "#f7d8d8"

    def __init__(self, *, step: str, kind: str = "failover", datastore: str | None = None,
                 needs_switch_back: bool = False, **kwargs: Any) -> None:
        if step not in STEPS:
            raise ValueError(f"unknown failover step {step!r} (known: {', '.join(STEPS)})")
        super().__init__(**kwargs)
        self.step = step
        self.kind = kind
        self.datastore = datastore
        self.needs_switch_back = needs_switch_back

    def execute(self, context) -> Any:
        from airflow.sdk.exceptions import AirflowSkipException

        from lifeboat.failover import jobs

        params = dict(context["params"])
        if self.needs_switch_back and not params.get("switch_back"):
            raise AirflowSkipException("switch_back is false: the standbys were rebuilt, traffic stays where it is")
        kwargs = step_inputs(self.step, context["ti"], self.datastore, XCOM_TASKS)
        return run_step(getattr(jobs, self.step), self.kind, params, context, kwargs)


class FailoverApprovalOperator(ApprovalOperator):
    """The second person's approval, showing the plan. Reject or timeout: nothing downstream changes.
    A dry run needs no approval and passes through (its steps only report)."""

    ui_color = "#fbe5b6"

    def execute(self, context):
        params = context["params"]
        if params.get("dry_run", True):
            self.log.info("dry run: no approval needed -- the following steps only report what they would do")
            decision = {"chosen_options": ["Approve"], "dry_run": True,
                        "responded_by_user": {"id": "dry-run", "name": "dry run (no approval)"}}
            context["ti"].xcom_push(key="decision", value=decision)
            return decision
        plan = context["ti"].xcom_pull(task_ids="plan") or {}
        kind = plan.get("kind", "failover")
        self.subject = (f"{kind.upper()} to {params.get('target_region')}: approve the plan? "
                        f"(reason: {params.get('reason')})")
        self.body = plan.get("text") or "(the plan task returned no plan)"
        return super().execute(context)

    def execute_complete(self, context, event):
        # A rejection skips the downstream tasks by raising, so the return value never reaches XCom:
        # the decision is pushed first, for the record and notify tasks.
        if "error" not in event:
            user = event.get("responded_by_user") or {}
            context["ti"].xcom_push(key="decision", value={
                "chosen_options": list(event.get("chosen_options") or []),
                "responded_by_user": {"id": user.get("id"), "name": user.get("name")},
                "responded_at": str(event.get("responded_at") or "")})
        return super().execute_complete(context, event)


def approval_gate(inventory, kind: str) -> FailoverApprovalOperator:
    """The `approval` task: timeout and approvers from the inventory's failover section."""
    fo = inventory.failover
    return FailoverApprovalOperator(
        task_id="approval", subject=f"{kind.capitalize()}: approve the plan?", body="(filled in from the plan)",
        response_timeout=fo.approval_timeout,
        assigned_users=[{"id": u, "name": u} for u in fo.approvers] or None,
    )


def failover_dag(inventory, kind: str, doc: str | None, **trigger: Any):
    """The DAG of a failover or failback: manual (no schedule), one run at a time, no retries of its
    own (risky steps never retry), critical alerts; its trigger form from `trigger_params(**trigger)`."""
    from lifeboat.dagkit import dag

    tag = ("failover",) if kind == "failover" else ("failover", "failback")
    return dag(f"lifeboat_{kind}", doc, schedule=None, severity="critical", retries=0, tag=tag,
               region=trigger.get("target"), params=trigger_params(inventory, **trigger))


def opening_tasks(inventory, kind: str):
    """guard -> preflight (one per datastore) -> plan -> approval, as both DAGs start."""
    from datetime import timedelta

    from lifeboat.failover import failover_datastores

    guard = FailoverStepOperator(task_id="guard", step="guard", kind=kind)
    preflight = FailoverStepOperator.partial(
        task_id="preflight", step="preflight", kind=kind, retries=1, retry_delay=timedelta(seconds=10),
        map_index_template="{{ task.datastore }}",
    ).expand(datastore=failover_datastores(inventory))
    plan = FailoverStepOperator(task_id="plan", step="plan", kind=kind, trigger_rule="none_failed_min_one_success")
    approval = approval_gate(inventory, kind)
    guard >> preflight >> plan
    guard >> plan
    plan >> approval
    return approval


def closing_tasks(kind: str):
    """record -> notify: they run whatever happened before (trigger rule all_done)."""
    from datetime import timedelta

    record, notify = (FailoverStepOperator(task_id=step, step=step, kind=kind, trigger_rule="all_done", retries=1,
                                           retry_delay=timedelta(seconds=10)) for step in ("record", "notify"))
    record >> notify
    return record, notify


def checked_inventory():
    """The inventory with its `failover:` section checked (errors name the file and the field)."""
    from lifeboat.failover import check_inventory
    from lifeboat.inventory import load_inventory

    inv = load_inventory()
    check_inventory(inv)
    return inv


def step_inputs(step: str, ti: Any, datastore: str | None, xcom_tasks: tuple[str, ...]) -> dict[str, Any]:
    """The keyword arguments a failover or recovery step's job function takes from the run's XComs
    (a preflight outside the run's scope is skipped)."""
    from airflow.sdk.exceptions import AirflowSkipException

    kwargs: dict[str, Any] = {}
    if step == "preflight":
        if datastore not in ((ti.xcom_pull(task_ids="guard") or {}).get("datastores") or []):
            raise AirflowSkipException(f"{datastore} is not in this run's scope")
        kwargs["datastore"] = datastore
    elif step == "plan":
        pulled = ti.xcom_pull(task_ids="preflight")
        kwargs["preflights"] = [pulled] if isinstance(pulled, dict) else [p for p in (pulled or []) if p]
    elif step == "record":
        kwargs["xcoms"] = {t: ti.xcom_pull(task_ids=t) for t in xcom_tasks}
        kwargs["xcoms"]["approval"] = ti.xcom_pull(task_ids="approval", key="decision")
    elif step == "notify":
        kwargs["summary"] = ti.xcom_pull(task_ids="record")
    return kwargs


def run_step(job: Any, kind: str, params: dict[str, Any], context: Any, kwargs: dict[str, Any]) -> Any:
    """Run one job function; a guard's refusal fails the task without retries (retrying cannot help)."""
    from airflow.sdk.exceptions import AirflowFailException

    from lifeboat.errors import Refused

    try:
        return job(kind, params, _run(context), **kwargs)
    except Refused as exc:
        raise AirflowFailException(str(exc)) from None

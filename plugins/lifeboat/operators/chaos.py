"""Thin Airflow operators over `lifeboat.chaos.jobs` for lifeboat_chaos_<family> and lifeboat_chaos_cleanup.

`ChaosGuardOperator` validates the run's params (environment, experiments, confirmation); `ChaosApprovalOperator`
is Airflow's human-in-the-loop approval for a production target and passes straight through in the drill
environment; `ChaosExperimentOperator` runs one experiment when guard and approval allowed it (it runs with
trigger rule all_done so one failed experiment does not stop the next -- experiments never overlap).
Constructors do no I/O.
"""

from __future__ import annotations

from typing import Any

from airflow.providers.standard.operators.hitl import ApprovalOperator
from airflow.sdk import BaseOperator


def _run(context) -> dict[str, str]:
    dr = context["dag_run"]
    at = getattr(dr, "logical_date", None) or getattr(dr, "run_after", None) or getattr(dr, "start_date", None)
    return {"dag_id": dr.dag_id, "run_id": dr.run_id, "task_id": context["ti"].task_id,
            "logical_date": at.isoformat() if at else ""}


def trigger_params(inventory) -> dict:
    from airflow.sdk import Param

    chaos = inventory.chaos
    return {
        "environment": Param(chaos.environment, type="string", enum=sorted(chaos.environments), title="Environment",
                             description="Where the faults go. Anything but the drill environment needs confirmation "
                                         "and approval."),
        "experiments": Param([], type="array", items={"type": "string"}, title="Experiments",
                             description="Empty: every experiment of this family."),
        "reason": Param("", type="string", title="Reason", description="Required for production."),
        "confirm": Param("", type="string", title="Confirmation",
                         description="For production: type the environment's name exactly."),
    }


class ChaosGuardOperator(BaseOperator):
    ui_color = "#f7d8d8"

    def __init__(self, *, family: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.family = family

    def execute(self, context) -> dict:
        from airflow.sdk.exceptions import AirflowFailException

        from lifeboat.chaos import jobs
        from lifeboat.errors import Refused

        try:
            return jobs.guard(dict(context["params"]), self.family)
        except Refused as exc:
            raise AirflowFailException(str(exc)) from None


class ChaosApprovalOperator(ApprovalOperator):
    """A second person approves a production experiment; the drill environment needs no approval."""

    ui_color = "#fbe5b6"

    def execute(self, context):
        g = context["ti"].xcom_pull(task_ids="guard") or {}
        if not g.get("production"):
            decision = {"chosen_options": ["Approve"],
                        "responded_by_user": {"id": "drill", "name": "drill environment"}}
            context["ti"].xcom_push(key="decision", value=decision)
            self.log.info("environment %s: no approval needed", g.get("environment"))
            return decision
        self.subject = f"Failure simulation in {g['environment']}: approve? (reason: {g.get('reason')})"
        self.body = "Experiments: " + ", ".join(g.get("experiments") or [])
        return super().execute(context)

    def execute_complete(self, context, event):
        if "error" not in event:
            context["ti"].xcom_push(key="decision", value={"chosen_options": list(event.get("chosen_options") or [])})
        return super().execute_complete(context, event)


class ChaosExperimentOperator(BaseOperator):
    ui_color = "#e8d8f7"

    def __init__(self, *, experiment: str, **kwargs: Any) -> None:
        kwargs.setdefault("trigger_rule", "all_done")
        kwargs.setdefault("retries", 0)  # an experiment is never repeated on its own
        super().__init__(**kwargs)
        self.experiment = experiment

    def execute(self, context) -> dict:
        from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

        from lifeboat.chaos import jobs
        from lifeboat.errors import Refused

        ti = context["ti"]
        g = ti.xcom_pull(task_ids="guard")
        decision = ti.xcom_pull(task_ids="approval", key="decision") or {}
        if not g:
            raise AirflowSkipException("the guard refused this run: nothing injected")
        if "Approve" not in (decision.get("chosen_options") or []):
            raise AirflowSkipException("not approved: nothing injected")
        if self.experiment not in g["experiments"]:
            raise AirflowSkipException(f"{self.experiment} is not among this run's experiments")
        try:
            rec = jobs.run_experiment(self.experiment, dict(context["params"]), _run(context))
        except Refused as exc:
            raise AirflowFailException(str(exc)) from None
        self.log.info("%s: %s; detect %ss, recover %ss, score %s, data lost %s", rec["id"], rec["verdict"],
                      rec["detect_seconds"], rec["recover_seconds"], rec["score"],
                      [(d["datastore"], d["lost"]) for d in rec["data_loss"]])
        if rec["verdict"] != "pass":
            raise AirflowFailException(f"{rec['id']}: " + "; ".join(rec["reasons"]))
        return {k: rec[k] for k in ("id", "verdict", "score", "detect_seconds", "recover_seconds", "steady_after")}


class ChaosCleanupOperator(BaseOperator):
    ui_color = "#d8f0f7"

    def execute(self, context) -> dict:
        from lifeboat.chaos import jobs

        return jobs.cleanup(dict(context["params"]))

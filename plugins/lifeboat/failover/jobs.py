"""The failover and failback jobs: one function per DAG task (thin operators call them by step name).

Every function takes the DAG run's params and a `run` dict, re-validates the params (a task marked
successful by hand does not bypass the guard), checks the current state before acting, and returns a
JSON-safe dict (the task's XCom). With `dry_run` nothing is changed anywhere: each step reads the
current state and says what it would do.

Failover (to `target_region`, from the other region):
    guard -> preflight (per datastore) -> plan -> approval -> fence -> promote -> scale_services
          -> switch_traffic -> verify -> record -> notify
Failback (restore `target_region`, the original primary, from the current primary):
    guard -> preflight -> plan -> approval -> rebuild_target -> caught_up
          -> [switch_back: fence -> promote -> rebuild_source -> scale_services -> switch_traffic
              -> drain_source -> verify] -> record -> notify

    operation.py   the validated trigger parameters (the guard's refusals)
    planning.py    guard, preflight, plan (what the approver reads)
    steps.py       the steps that act (or, in a dry run, report)
    recording.py   outcome, drill record, notification
"""

from __future__ import annotations

from lifeboat.failover.operation import KINDS, Operation, operation
from lifeboat.failover.planning import guard, plan, preflight
from lifeboat.failover.recording import FAILED_OUTCOMES, SEVERITY, notify, outcome, record
from lifeboat.failover.steps import (
    CAUGHT_UP_TIMEOUT,
    caught_up,
    drain_source,
    fence,
    promote,
    rebuild_source,
    rebuild_target,
    scale_services,
    switch_traffic,
    verify,
)

__all__ = [
    "CAUGHT_UP_TIMEOUT", "FAILED_OUTCOMES", "KINDS", "SEVERITY", "Operation", "caught_up", "drain_source", "fence",
    "guard", "notify", "operation", "outcome", "plan", "preflight", "promote", "rebuild_source", "rebuild_target",
    "record", "scale_services", "switch_traffic", "verify",
]

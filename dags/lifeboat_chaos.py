"""
### lifeboat_chaos_&lt;family&gt; — failure simulations on the DR plan's calendar (Airflow DAGs)

One DAG per `chaos.schedules` entry of the inventory: **service** (monthly: api-gateway pods deleted,
Deployment scaled to 0), **network** (monthly: latency / timeout / outage on the platform API's path to
its datastores, toxiproxy), **database** (quarterly: PostgreSQL, Redis, MongoDB server processes killed).
Each task is one experiment: steady-state probes (`/health`, `/ready`, a write/read on the datastore,
Ready replicas) → the fault → probes polled → recovery (the platform's self-healing or the runbook step)
→ steady state again → a record in both catalogs (`chaos/experiments/`) with time to detect, time to
recover, data lost (heartbeats read back) and the resilience score. Runbook: docs/chaos.md.

Params: **environment** (default: the drill environment), **experiments** (empty = all of the family),
and for production **confirm** (the environment's name) + **reason**; production also waits in
`approval` for a second person. A probe failing longer than an experiment's `abort_after` ends the fault
at once; every fault is reverted in a `finally`, and `lifeboat_chaos_cleanup` reverts what a killed task left.
"""

from __future__ import annotations

from lifeboat.dagkit import cron, dag, gate
from lifeboat.inventory import load_inventory
from lifeboat.operators import chaos as ops

inventory = load_inventory()
chaos = inventory.chaos

for family, schedule in (chaos.schedules.items() if chaos else ()):
    experiments = chaos.family(family)
    if not experiments:
        continue
    with dag(f"lifeboat_chaos_{family}", __doc__, schedule=cron(schedule), severity="high", retries=0,
             tag=("chaos", family), params=ops.trigger_params(inventory)) as d:
        guard = ops.ChaosGuardOperator(task_id="guard", family=family, retries=1)  # a refusal never retries
        approval = ops.ChaosApprovalOperator(task_id="approval", subject="Failure simulation: approve?",
                                             body="(filled in from the guard)",
                                             response_timeout=inventory.failover.approval_timeout
                                             if inventory.failover else None)
        guard >> approval
        previous = approval
        tasks = []
        for e in experiments:
            t = ops.ChaosExperimentOperator(task_id=e.name.replace("-", "_"), experiment=e.name,
                                            doc_md=f"{e.kind} on {e.target}: {e.duration}, abort after {e.abort_after}")
            previous >> t
            previous = t
            tasks.append(t)
        gate("done", *tasks)
    globals()[d.dag_id] = d

if chaos:
    with dag("lifeboat_chaos_cleanup", """
### lifeboat_chaos_cleanup — revert faults a killed experiment left injected

Every experiment writes a marker (`chaos/injected/<id>.json`, both catalogs) before it injects and deletes
it after the revert. This DAG (hourly, and by hand) reverts every marker past its `stale_at`: a task that
was killed before its `finally` ran. `force` reverts younger markers too (only when no experiment runs).
""", schedule=cron("17 * * * *"), severity="critical", retries=1, tag=("chaos",),
             params={"force": False}) as cleanup_dag:
        ops.ChaosCleanupOperator(task_id="cleanup")

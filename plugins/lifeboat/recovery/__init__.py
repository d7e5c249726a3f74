"""Recovery, not only rehearsal: the DR plan's scenario 2 (a datastore failed: restore from backup,
validate, restart the services) and scenario 3 (a service failed: restart, adjust capacity, check
monitoring), both for a scope of services resolved through the dependency map (partial recovery,
dependencies first). Runbook: docs/recovery.md.

    operation.py   the validated trigger parameters (the guard's refusals), the scope in restore order
    timeline.py    the persisted timeline of one run (resumable; becomes the drill record)
    planning.py    guard, preflight (per datastore), plan with the estimated duration (estimate.py)
    steps.py       fence (live targets only), restore + validate, repoint + restart, verify
    runtime.py     how a service is repointed and restarted: its Kubernetes Secret + `rollout restart`
                   (the provider hook), or a local process (the devstack's platform API stand-in)
    recording.py   the `recovery` / `service_recovery` drill (RTO trigger -> verified, data loss from
                   heartbeats), the notification
    service.py     lifeboat_recover_service's steps (restart, replicas / HPA bounds, error-rate probe)
    jobs.py        the step names the operators call, in one place

Like the failover package, modules import drivers inside functions (the DAG files import this
package at parse time).
"""

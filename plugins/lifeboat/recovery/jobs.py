"""The recovery jobs: one function per DAG task of lifeboat_recover and lifeboat_recover_service
(thin operators call them by step name). Each takes the run's params and a `run` dict, re-validates
the params, checks the timeline before acting and returns a JSON-safe dict (the task's XCom).

lifeboat_recover:          guard -> preflight (per datastore) -> plan -> approval -> fence -> restore
                           -> repoint -> verify -> record -> notify
lifeboat_recover_service:  guard -> plan -> approval -> restart -> verify -> record -> notify
"""

from __future__ import annotations

from lifeboat.recovery import planning, recording, service, steps

RECOVER = {"guard": planning.guard, "preflight": planning.preflight, "plan": planning.plan, "fence": steps.fence,
           "restore": steps.restore, "repoint": steps.repoint, "verify": steps.verify, "record": recording.record,
           "notify": recording.notify}
RECOVER_SERVICE = {"guard": planning.guard, "plan": service.plan, "restart": service.restart,
                   "verify": service.verify, "record": recording.record, "notify": recording.notify}


def step(kind: str, name: str):
    table = RECOVER if kind == "recover" else RECOVER_SERVICE
    try:
        return table[name]
    except KeyError:
        raise ValueError(f"{kind} has no step {name!r} (steps: {', '.join(table)})") from None

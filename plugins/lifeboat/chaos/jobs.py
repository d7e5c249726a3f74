"""What lifeboat_chaos_<family> and lifeboat_chaos_cleanup run (and `python -m lifeboat chaos`): plain
functions over the inventory, JSON-safe results.

Guards: experiments run in `chaos.environment` (the drill environment) unless the run's `environment`
param names another; `production` (or any environment named so) needs `confirm` = the environment's name
and a `reason`, and the DAG's approval gate then waits for a second person. A refusal raises Refused
before anything is touched.
"""

from __future__ import annotations

import logging
from datetime import datetime

from lifeboat.chaos.records import utcnow
from lifeboat.chaos.settings import PRODUCTION
from lifeboat.errors import Refused

log = logging.getLogger(__name__)


def _chaos(inv):
    if inv.chaos is None or not inv.chaos.experiments:
        raise Refused(f"{inv.source}: chaos: section missing or without experiments")
    return inv.chaos


def guard(params: dict, family: str | None = None, inv=None) -> dict:
    """Validate a run's params: {environment, experiments, production, reason}. Raises Refused."""
    from lifeboat.inventory import load_inventory

    inv = inv or load_inventory()
    chaos = _chaos(inv)
    env = str(params.get("environment") or chaos.environment)
    if env not in chaos.environments:
        raise Refused(f"environment {env!r}: not under chaos.environments (has: {', '.join(chaos.environments)}). "
                      "Nothing was injected.")
    wanted = list(params.get("experiments") or [])
    pool = chaos.family(family) if family else chaos.experiments
    names = [e.name for e in pool]
    unknown = [w for w in wanted if w not in names]
    if unknown:
        raise Refused(f"experiments: unknown {', '.join(map(repr, unknown))} (this DAG runs: {', '.join(names)}). "
                      "Nothing was injected.")
    production = env == PRODUCTION
    reason = str(params.get("reason") or "").strip()
    if production:
        confirm = str(params.get("confirm") or "").strip()
        if confirm != env:
            said = "is missing" if not confirm else f"is {confirm!r}"
            raise Refused(f"confirm: a failure simulation in {env!r} needs the environment's name typed exactly; "
                          f"the confirmation {said}. Nothing was injected.")
        if len(reason) < 3:
            raise Refused("reason: required for a production experiment (it goes into the record). "
                          "Nothing was injected.")
    return {"environment": env, "experiments": wanted or names, "production": production, "reason": reason}


def record_id(experiment: str, run: dict | None) -> str:
    """Deterministic per DAG run (a retried task overwrites its own record): <experiment>-<stamp>."""
    stamp = (run or {}).get("logical_date") or (run or {}).get("run_started_at") or ""
    try:
        at = datetime.fromisoformat(stamp) if stamp else utcnow()
    except ValueError:
        at = utcnow()
    return f"{experiment}-{at.strftime('%Y%m%dT%H%M%SZ')}"


def run_experiment(name: str, params: dict, run: dict | None = None, inv=None, repo=None) -> dict:
    """Run one experiment (after guard) and record it in both catalogs; the record as a dict."""
    from lifeboat.chaos.experiment import Experiment
    from lifeboat.chaos.store import ChaosStore
    from lifeboat.inventory import load_inventory
    from lifeboat.repository import Repository

    inv = inv or load_inventory()
    g = guard(params, None, inv)
    if name not in g["experiments"] and params.get("experiments"):
        raise Refused(f"experiment {name!r} is not among this run's experiments ({', '.join(g['experiments'])})")
    spec = _chaos(inv).experiment(name)
    from lifeboat import regions

    # the records go where DR acts now (the active region after a failover), never into a lost region's copy
    repo = repo or Repository.from_inventory(inv, regions.acting_region(inv))
    rid = record_id(name, run)
    exp = Experiment(inv, spec, g["environment"], record_id=rid, store=ChaosStore(repo),
                     run={k: str(v) for k, v in (run or {}).items()} | ({"reason": g["reason"]} if g["reason"] else {}))
    rec = exp.run()
    return rec.model_dump(mode="json")


def cleanup(params: dict | None = None, inv=None, repo=None) -> dict:
    """Revert every fault whose marker is still in either catalog past its `stale_at` (a killed task's
    leftovers; a running experiment's marker is younger), or every marker with params.force."""
    from lifeboat.chaos.faults import revert
    from lifeboat.chaos.store import ChaosStore
    from lifeboat.inventory import load_inventory
    from lifeboat.repository import Repository

    inv = inv or load_inventory()
    from lifeboat import regions

    store = ChaosStore(repo or Repository.from_inventory(inv, regions.acting_region(inv)))
    force = bool((params or {}).get("force"))
    done, failed, running = [], [], []
    now = utcnow()
    for m in store.injected():
        if not force and m.stale_at > now:
            running.append(m.id)
            continue
        try:
            detail = revert(m.kind, m.revert)
            store.clear_injected(m.id)
            done.append({"id": m.id, "kind": m.kind, "injected_at": m.injected_at.isoformat(), "reverted": detail})
            log.warning("chaos cleanup: reverted leftover %s (%s): %s", m.id, m.kind, detail)
        except Exception as exc:  # the marker stays for the next run; the task fails below
            failed.append({"id": m.id, "kind": m.kind, "error": f"{type(exc).__name__}: {exc}"})
    if failed:
        raise RuntimeError(f"chaos cleanup: {len(failed)} leftover fault(s) could not be reverted: {failed}")
    return {"reverted": done, "left_to_running_experiments": running}


def summary(inv=None, region: str | None = None) -> dict:
    from lifeboat.chaos.store import ChaosStore
    from lifeboat.chaos.store import summary as make
    from lifeboat.inventory import load_inventory
    from lifeboat.repository import Repository

    inv = inv or load_inventory()
    repo, used, note = Repository.readable(inv, region)
    out = make(ChaosStore(repo).records())
    out["injected"] = [m.model_dump(mode="json") for m in ChaosStore(repo).injected()]
    return {"region": used, "fallback": note, **out}


def score_samples(inv, now) -> list[tuple[dict[str, str], float]]:
    """The metrics hook `chaos_scores`: the newest score of each experiment, 0..1 (lifeboat_chaos_score)."""
    from lifeboat.chaos.store import ChaosStore
    from lifeboat.repository import Repository

    if inv.chaos is None:
        return []
    repo, _, _ = Repository.readable(inv)
    newest: dict[str, float] = {}
    for r in ChaosStore(repo).records():  # oldest first: the newest wins
        if r.score is not None and r.verdict != "running":
            newest[r.experiment] = r.score
    return [({"scenario": name}, round(score / 100.0, 4)) for name, score in sorted(newest.items())]

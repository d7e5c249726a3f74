"""The yearly region failure (DR plan 1.2): the failover drill, run for real in the drill environment.

The fault *is* the failover drill (lifeboat.failover's jobs, the lifeboat_failover task graph as plain
calls): the lost region's datastores fenced, the standby's promoted, its services scaled, the traffic
record switched, verified and recorded as a `failover` drill. The probes follow the platform the way a
user does -- through the traffic record (Route 53): the active region's `/health` and `/ready`, and a
heartbeat write/read on each datastore of the active region -- so detection is the fence making the
platform fail and recovery is the platform answering from the standby region. The revert is the failback
with switch_back (lifeboat_failback's task graph): the lost region rebuilt as a standby, switched back
without data loss; the heartbeats read back from it afterwards are the data lost over the whole cycle.

Guards (drill targets only): every connection the failover would act on in the failed region (each
datastore's connection, each service's kubernetes connection) must be the chaos environment's own one,
else Refused naming the field -- so a drill environment whose connections differ from the inventory's
regions cannot fail over the real platform. Production additionally needs the chaos guard's
confirmation and approval (lifeboat.chaos.jobs), which stands in for the failover's own approval gate.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from lifeboat.chaos.faults.base import Fault
from lifeboat.chaos.probes import DatastoreProbe, HttpProbe, Probe
from lifeboat.errors import Refused

log = logging.getLogger(__name__)
FAILOVER_STEPS = ("fence", "promote", "scale_services", "switch_traffic", "verify")
FAILBACK_STEPS = ("rebuild_target", "caught_up", "fence", "promote", "rebuild_source", "scale_services",
                  "switch_traffic", "drain_source", "verify")
AUTOMATED = ("postgres", "redis")  # engines the failover promotes (and the heartbeat probes can write)
_RUNNING: dict[str, threading.Thread] = {}  # record id -> the failover drill still running (revert waits for it)
DRILL_JOIN_TIMEOUT_S = 600.0


def _approval(env_name: str) -> dict[str, Any]:
    return {"chosen_options": ["Approve"],
            "responded_by_user": {"id": "lifeboat-chaos", "name": f"chaos experiment (environment {env_name}; "
                                                                 "guarded by lifeboat.chaos.jobs.guard)"}}


def run_drill(kind: str, params: dict, run: dict, approval: dict) -> dict:
    """guard -> preflight -> plan -> [approved] -> the steps -> record, as lifeboat_failover / lifeboat_failback
    run them; the record (the drill) is written whatever happened, then a failed step is raised."""
    from lifeboat.failover import jobs

    g = jobs.guard(kind, params, run)
    xcoms: dict[str, Any] = {"guard": g, "approval": approval}
    error: Exception | None = None
    try:
        pre = [jobs.preflight(kind, params, run, ds) for ds in g["datastores"]]
        xcoms["plan"] = jobs.plan(kind, params, run, pre)
        for step in FAILOVER_STEPS if kind == "failover" else FAILBACK_STEPS:
            xcoms[step] = getattr(jobs, step)(kind, params, run)
    except Exception as exc:  # recorded by `record` below (outcome failed/blocked), then raised
        error = exc
    summary = jobs.record(kind, params, run, xcoms)
    if error is not None:
        raise RuntimeError(f"{kind} to {g['target_region']} failed ({summary.get('outcome')}): {error}") from error
    return summary


def _describe(summary: dict) -> str:
    parts = [f"{summary.get('kind')} {summary.get('outcome')}"]
    if summary.get("drill_id"):
        parts.append(f"drill {summary['drill_id']} {summary.get('verdict')}, RTO {summary.get('rto_seconds')}s, "
                     f"data loss {summary.get('rpo_seconds')}s")
    return "; ".join(parts)


class ActiveRegion:
    """Which region the traffic record points at now (Route 53, read on every call)."""

    def __init__(self, spec, record: str):
        from lifeboat.failover.traffic import Traffic

        self.traffic, self.record = Traffic(spec), record

    def __call__(self) -> str:
        value = self.traffic.current()[self.record]
        region = self.traffic.region_of(self.record, value)
        if region is None:
            raise RuntimeError(f"traffic record {self.record} = {value!r} points at no inventory region")
        return region


class TrafficProbe(HttpProbe):
    """GET the active region's URL (the one the traffic record points at)."""

    def __init__(self, name: str, active: ActiveRegion, urls: dict[str, str], *, weight: int, **kw):
        super().__init__(name, "", weight=weight, **kw)
        self.active, self.urls = active, urls

    def _check(self) -> tuple[bool, str]:
        region = self.active()
        self.url = self.urls.get(region, "")
        if not self.url:
            return False, f"traffic points at {region}: no URL for it"
        ok, detail = super()._check()
        return ok, f"{region}: {detail}"


class ActiveDatastoreProbe(DatastoreProbe):
    """The heartbeat write/read on the active region's server; read back (data lost) where traffic ends."""

    def __init__(self, name: str, engine: str, connections: dict[str, str], active: ActiveRegion,
                 experiment_id: str, *, weight: int):
        super().__init__(name, engine, next(iter(connections.values())), experiment_id, weight=weight)
        self.connections, self.active = connections, active

    def _follow(self) -> str:
        region = self.active()
        self.connection = self.connections[region]
        return region

    def _check(self) -> tuple[bool, str]:
        region = self._follow()
        ok, detail = super()._check()
        return ok, f"{region}: {detail}"

    def present(self) -> set[int]:
        self._follow()
        return super().present()


class RegionFailover(Fault):
    kind = "region"
    self_healing = True  # the failover drill is the healing: no separate recovery step
    api_probes = False  # the environment's own /health, /ready stay on the lost region: traffic probes instead

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        inv, name = self.inv, self.spec.name
        if inv.failover is None or inv.failover.traffic is None:
            raise Refused(f"chaos experiment {name}: a region experiment needs the inventory's failover: section "
                          "with traffic: (the drill is lifeboat_failover)")
        regions = [inv.regions.primary, inv.regions.standby]
        self.source = str(self.spec.target.get("region") or inv.regions.primary)
        if self.source not in regions:
            raise Refused(f"chaos experiment {name}: target.region: {self.source!r} is not an inventory region "
                          f"({', '.join(regions)})")
        self.target = regions[1] if self.source == regions[0] else regions[0]
        scope = self.spec.target.get("scope") or ["region"]
        self.scope = [s.strip() for s in scope.split(",")] if isinstance(scope, str) else list(scope)
        from lifeboat.failover.operation import operation

        op = operation("failover", self._params(), check_confirm=False)  # the failover's own param checks
        self.datastores, self.services = op.automated(), op.services  # manual engines: listed, not touched
        self._check_drill_targets()
        records = inv.failover.traffic.records
        self.record = str(self.spec.target.get("record") or records[0].name)
        if self.record not in [r.name for r in records]:
            raise Refused(f"chaos experiment {name}: target.record: {self.record!r} is not in "
                          "failover.traffic.records")
        svc_name = str(self.spec.target.get("service") or "api-gateway")
        svc = next((s for s in inv.failover.services if s.name == svc_name), None)
        if svc is None or not svc.ready:
            raise Refused(f"chaos experiment {name}: target.service: {svc_name!r} is not a failover.services entry "
                          "with health/ready URLs (the probes follow it through the traffic record)")
        self.svc = svc
        self._out: list = []
        self.active = ActiveRegion(inv.failover.traffic, self.record)
        if self.active() != self.source:
            raise Refused(f"chaos experiment {name}: traffic record {self.record} does not point at {self.source} "
                          "(already failed over?): nothing to fail")

    def _check_drill_targets(self) -> None:
        """Every connection the failover acts on in the failed region is the chaos environment's own."""
        name, env, inv = self.spec.name, self.env, self.inv
        where = "chaos.environments.<env>"
        for ds in self.datastores:
            conn = inv.datastores[ds].connections.get(self.source)
            own = env.datastores.get(ds)
            if own is None or own.connection != conn:
                raise Refused(f"chaos experiment {name}: the failover drill would act on {conn!r} "
                              f"(datastores.{ds}.connections.{self.source}) but {where}.datastores.{ds}.connection is "
                              f"{own.connection if own else 'not set'!r}: region experiments run only against the "
                              "drill environment's own targets")
        for svc in inv.failover.services:
            conn = svc.kubernetes.get(self.source)
            if svc.name in self.services and conn != env.kubernetes:
                raise Refused(f"chaos experiment {name}: the failover drill would scale {svc.name} through {conn!r} "
                              f"(failover.services.{svc.name}.kubernetes.{self.source}) but {where}.kubernetes is "
                              f"{env.kubernetes!r}: region experiments run only against the drill environment's "
                              "own targets")

    def _params(self, kind: str = "failover") -> dict:
        target = self.target if kind == "failover" else self.source
        return {"target_region": target, "scope": self.scope, "dry_run": False, "confirm": target,
                "reason": f"chaos experiment {self.spec.name} ({self.record_id}): yearly region failure drill",
                **({"switch_back": True} if kind == "failback" else {})}

    def probes(self) -> list[Probe]:
        out: list[Probe] = [TrafficProbe("platform-health", self.active, self.svc.health, weight=1),
                            TrafficProbe("platform-ready", self.active, self.svc.ready, weight=3, timeout=5.0)]
        for ds in self.datastores:
            spec = self.inv.datastores[ds]
            if spec.engine in AUTOMATED and ds in self.env.datastores:
                out.append(ActiveDatastoreProbe(f"write-read-{ds}", spec.engine, dict(spec.connections),
                                                self.active, self.record_id, weight=2))
        return out

    def revert_info(self) -> dict:
        return {"id": self.record_id, "source": self.source, "target": self.target, "scope": self.scope,
                "datastores": self.datastores, "environment": "chaos", "failback": self._params("failback"),
                "approval": _approval("chaos")}

    def inject(self) -> str:
        run = {"dag_id": "lifeboat_chaos_region", "run_id": f"{self.record_id}-failover"}

        def drill() -> None:
            try:
                self._out.append(("ok", run_drill("failover", self._params(), run, _approval("chaos"))))
            except Exception as exc:  # reported by recover()
                log.exception("failover drill of %s failed", self.record_id)
                self._out.append(("error", exc))

        t = threading.Thread(target=drill, name=f"chaos-failover-{self.record_id}", daemon=True)
        _RUNNING[self.record_id] = t
        t.start()
        return (f"failover drill {self.source} -> {self.target} started (scope {', '.join(self.scope)}; "
                f"datastores {', '.join(self.datastores)}; services {', '.join(self.services)})")

    def ended(self) -> bool:
        return bool(self._out and self._out[0][0] == "error")

    def recover(self) -> str:
        t = _RUNNING.get(self.record_id)
        if t is not None:
            t.join(self.spec.recover_timeout.total_seconds())
        if not self._out:
            return "failover drill still running after recover_timeout"
        kind, value = self._out[0]
        return f"failover drill FAILED: {value}" if kind == "error" else _describe(value)

    @staticmethod
    def revert(info: dict) -> str:
        """Fail back (switch_back) when the standby was promoted; else undo the fence of the lost region.
        Waits for a failover drill of this experiment still running in this process first."""
        from lifeboat.failover import open_failover

        t = _RUNNING.pop(info["id"], None)
        if t is not None and t.is_alive():
            t.join(DRILL_JOIN_TIMEOUT_S)
            if t.is_alive():
                raise RuntimeError(f"the failover drill of {info['id']} is still running after "
                                   f"{DRILL_JOIN_TIMEOUT_S:.0f}s: not failing back under it")
        source, target = info["source"], info["target"]
        promoted = [ds for ds in info["datastores"] if open_failover(ds).role(target).live_primary]
        if promoted:
            run = {"dag_id": "lifeboat_chaos_region", "run_id": f"{info['id']}-failback"}
            return f"failed back to {source} ({', '.join(promoted)} promoted in {target}): " + \
                _describe(run_drill("failback", info["failback"], run, info["approval"]))
        return f"nothing promoted in {target}: " + _unfence(info["datastores"], source)


def _unfence(datastores: list[str], region: str) -> str:
    """Undo the failover's fence of `region` (a failover that stopped between fence and promote)."""
    from lifeboat.failover import open_failover

    done = []
    for ds in datastores:
        eng = open_failover(ds)
        role = eng.role(region)
        if not role.live_primary:
            done.append(f"{ds}: {role.describe()} in {region}, left alone")
            continue
        if eng.spec.engine == "postgres":
            with eng._connect(region) as c:
                c.execute("ALTER SYSTEM RESET default_transaction_read_only")
                c.execute("SELECT pg_reload_conf()")
            done.append(f"{ds}: default_transaction_read_only reset")
        elif eng.spec.engine == "redis":
            c = eng._client(region)
            try:
                c.execute_command("CLIENT", "UNPAUSE")
            finally:
                c.close()
            done.append(f"{ds}: CLIENT UNPAUSE")
    return "; ".join(done) or "nothing fenced"

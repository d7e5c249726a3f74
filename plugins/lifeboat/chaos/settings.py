"""The inventory's `chaos:` section: failure simulations on the DR plan's calendar (validated models only;
imported by lifeboat.inventory at DAG-parse time, so nothing here does I/O).

    chaos:
      environment: drill                 # where experiments run unless a run says otherwise
      schedules: {service: "...", database: "...", network: "..."}   # one lifeboat_chaos_<family> DAG each
      environments:
        drill: {kubernetes, namespace, api, toxiproxy, datastores: {<name>: {connection, pidfile, restart, proxy}}}
        production: {...}                # optional; a run against it needs confirmation and approval
      experiments:
        - {name, kind, family, target: {...}, duration, abort_after, objectives: {detect, recover}}
"""

from __future__ import annotations

import shlex
from datetime import timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from lifeboat.durations import Duration, check_cron
from lifeboat.names import must_match

KINDS = ("pod_delete", "scale_zero", "process_kill", "network", "region", "dns", "packet")
FAMILIES = ("service", "database", "network", "region")
PRODUCTION = "production"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ChaosDatastore(_Model):
    """A datastore of an environment, as its faults reach it."""

    connection: str = Field(description="Airflow connection id: write/read probes and heartbeats")
    pidfile: str = ""  # host access: the server's pid file (process faults)
    program: str = ""  # what the pid file's process must be (its /proc comm/cmdline contains it)
    restart: str = ""  # the runbook's restart step, run by Lifeboat after a process fault (a command line)
    proxy: str = ""  # the toxiproxy proxy on the platform's path to it (network faults)
    hostname: str = ""  # the name the platform resolves to reach it (dns faults: removed from the resolver)

    def restart_argv(self) -> list[str]:
        return shlex.split(self.restart)


class ChaosEnvironment(_Model):
    kubernetes: str = ""  # Airflow kubernetes connection of the cluster
    namespace: str = "default"
    api: str = ""  # base URL of the platform API (GET /health, /ready)
    toxiproxy: str = ""  # toxiproxy's HTTP API (network faults)
    resolver: str = ""  # hosts file the platform resolves its datastores' names through (dns faults)
    datastores: dict[str, ChaosDatastore] = {}


class ChaosObjectives(_Model):
    detect: Duration = timedelta(minutes=1)  # a fault must be seen by a probe this soon
    recover: Duration = timedelta(minutes=30)  # DR plan: a service failure is recovered in 30 min - 1 h


class ChaosExperiment(_Model):
    name: str
    kind: Literal["pod_delete", "scale_zero", "process_kill", "network", "region", "dns", "packet"]
    family: Literal["service", "database", "network", "region"]
    target: dict[str, Any] = {}  # per kind: deployment / datastore / toxic
    duration: Duration = timedelta(seconds=10)  # how long the fault stays injected (self-healing may end it sooner)
    abort_after: Duration = timedelta(minutes=2)  # a probe failing longer than this ends the fault at once
    recover_timeout: Duration = timedelta(minutes=5)  # from the end of the fault to steady state again
    objectives: ChaosObjectives = ChaosObjectives()
    probe_weights: dict[str, int] = {}  # probe name -> weight (defaults per probe kind)

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        return must_match(r"[a-z][a-z0-9-]{0,50}", v,
                          "experiment name {!r} must match [a-z][a-z0-9-]* (it becomes a task id and record key)")

    @model_validator(mode="after")
    def _target(self) -> ChaosExperiment:
        need = {"pod_delete": ("deployment",), "scale_zero": ("deployment",), "process_kill": ("datastore",),
                "network": ("datastore", "toxic"), "region": (), "dns": ("datastore",),
                "packet": ("datastore",)}[self.kind]
        missing = [k for k in need if not self.target.get(k)]
        if missing:
            raise ValueError(f"target.{missing[0]}: required for a {self.kind} experiment")
        if self.kind == "network" and self.target["toxic"] not in ("latency", "timeout", "down"):
            raise ValueError(f"target.toxic: {self.target['toxic']!r} is not one of latency, timeout, down")
        if self.kind == "dns" and self.target.get("mode", "nxdomain") != "nxdomain":
            raise ValueError(f"target.mode: {self.target['mode']!r} is not nxdomain (the name removed from the "
                             "resolver)")
        if self.kind == "packet":
            packet_target(self.target)
        if self.kind == "region":
            scope = self.target.get("scope", ["region"])
            if not isinstance(scope, (str, list)) or not scope:
                raise ValueError(f"target.scope: {scope!r} must be 'region' or a list of datastores / services")
        return self


def packet_target(target: dict[str, Any]) -> tuple[float, bool]:
    """(loss probability, partition) of a packet fault's target, or ValueError naming the field."""
    partition, loss = target.get("partition", False), target.get("loss")
    if not isinstance(partition, bool):
        raise ValueError(f"target.partition: must be true or false, got {partition!r}")
    if partition == (loss is not None):
        raise ValueError("target.loss / target.partition: give exactly one (loss: 0 < p <= 1, or partition: true)")
    if partition:
        return 1.0, True
    if isinstance(loss, bool) or not isinstance(loss, (int, float)) or not 0 < float(loss) <= 1:
        raise ValueError(f"target.loss: {loss!r} is not a probability 0 < p <= 1 (the share of packets dropped)")
    return float(loss), False


class ChaosSpec(_Model):
    environment: str = "drill"
    schedules: dict[Literal["service", "database", "network", "region"], str] = {}
    environments: dict[str, ChaosEnvironment] = {}
    experiments: list[ChaosExperiment] = []
    poll_seconds: float = Field(default=0.25, gt=0, le=60)  # probe rounds this often
    steady_polls: int = Field(default=3, ge=1)  # consecutive all-pass probe rounds that make a steady state

    @field_validator("schedules")
    @classmethod
    def _crons(cls, v: dict[str, str]) -> dict[str, str]:
        for family, expr in v.items():
            try:
                check_cron(expr)
            except ValueError as exc:
                raise ValueError(f"{family}: {exc}") from None
        return v

    @model_validator(mode="after")
    def _refs(self) -> ChaosSpec:
        if self.environment not in self.environments:
            raise ValueError(f"environment: {self.environment!r} is not under chaos.environments "
                             f"(has: {', '.join(self.environments) or 'none'})")
        if self.environment == PRODUCTION:
            raise ValueError("environment: the default target must not be production (runs name it explicitly)")
        names = [e.name for e in self.experiments]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"experiments: name {dup[0]!r} given twice")
        for i, e in enumerate(self.experiments):
            ds = e.target.get("datastore")
            for env_name, env in self.environments.items():
                if ds and ds not in env.datastores:
                    raise ValueError(f"experiments.{i}.target.datastore: {ds!r} is not under "
                                     f"chaos.environments.{env_name}.datastores")
        return self

    def experiment(self, name: str) -> ChaosExperiment:
        for e in self.experiments:
            if e.name == name:
                return e
        names = ", ".join(x.name for x in self.experiments)
        raise KeyError(f"chaos.experiments: no experiment {name!r} (has: {names})")

    def family(self, family: str) -> list[ChaosExperiment]:
        return [e for e in self.experiments if e.family == family]

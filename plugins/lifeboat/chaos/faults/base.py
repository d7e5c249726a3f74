"""The interface of a fault kind (one module per kind beside this one)."""

from __future__ import annotations

from lifeboat.chaos.probes import Probe
from lifeboat.chaos.settings import ChaosEnvironment, ChaosExperiment


class Fault:
    """One fault kind. Subclasses: `revert_info()` (before injecting: all that undoing needs, JSON-safe),
    `inject()`, and the static `revert(info)` (idempotent; the cleanup DAG calls it from a marker alone)."""

    kind = ""
    self_healing = False  # the platform recovers without Lifeboat acting (a recovery step is then not run)

    def __init__(self, spec: ChaosExperiment, env: ChaosEnvironment, inv, record_id: str):
        self.spec, self.env, self.inv, self.record_id = spec, env, inv, record_id
        self.info: dict = {}

    def probes(self) -> list[Probe]:
        return []

    def revert_info(self) -> dict:
        raise NotImplementedError

    def inject(self) -> str:
        raise NotImplementedError

    def recover(self) -> str:
        """The recovery step after the fault's duration: by default, undo it (the runbook's step)."""
        return "nothing to do: the platform heals itself" if self.self_healing else self.revert(self.info)

    @staticmethod
    def revert(info: dict) -> str:
        raise NotImplementedError

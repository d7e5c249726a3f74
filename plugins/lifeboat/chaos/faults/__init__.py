"""One module per fault kind; FAULTS maps the inventory's `kind` to its Fault class."""

from __future__ import annotations

from lifeboat.chaos.faults.kubernetes import PodDelete, ScaleZero
from lifeboat.chaos.faults.network import NetworkFault
from lifeboat.chaos.faults.process import ProcessKill

FAULTS = {c.kind: c for c in (PodDelete, ScaleZero, ProcessKill, NetworkFault)}


def revert(kind: str, info: dict) -> str:
    """Undo a fault from its marker alone (lifeboat_chaos_cleanup)."""
    return FAULTS[kind].revert(info)

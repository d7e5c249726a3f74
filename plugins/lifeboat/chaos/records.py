"""Records of failure simulations, kept in both regions' catalogs (plain JSON, readable with `jq`).

Resilience score (after LitmusChaos): score = sum(weight * probe success) / sum(weight), where a probe's success
is the share of its polls that passed over the whole experiment (steady state before, the fault, the
recovery, steady state after); 0..100. An aborted experiment keeps its measured score; its verdict fails.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import Field

from lifeboat.records import JsonRecord as _Record
from lifeboat.records import utcnow

__all__ = ["ChaosRecord", "Injected", "ProbeStats", "quarter", "resilience_score", "utcnow"]


class ProbeStats(_Record):
    name: str
    kind: str  # http / datastore / kubernetes
    weight: int
    polls: int = 0
    passes: int = 0
    first_failure_at: datetime | None = None
    last_failure_at: datetime | None = None
    last_detail: str = ""

    @property
    def success(self) -> float:
        return self.passes / self.polls if self.polls else 0.0


class DataLoss(_Record):
    datastore: str
    acknowledged: int  # heartbeat writes the datastore acknowledged during the experiment
    lost: int  # of those, missing when read back after recovery
    lost_window_seconds: float  # first lost -> last lost acknowledged write (0 when none)
    objective_rpo_seconds: float | None = None


class Injected(_Record):
    """What is injected right now: written (both regions) before the fault, deleted after its revert. A
    marker still present means a revert never ran (task killed): lifeboat_chaos_cleanup reverts it."""

    format: Literal["lifeboat.chaos-injected/v1"] = "lifeboat.chaos-injected/v1"
    id: str
    experiment: str
    kind: str
    environment: str
    injected_at: datetime
    stale_at: datetime  # the experiment would have reverted it by now: a marker older than this is a leftover
    revert: dict[str, Any]  # everything the fault module needs to undo it, without the inventory's help


class ChaosRecord(_Record):
    format: Literal["lifeboat.chaos/v1"] = "lifeboat.chaos/v1"
    id: str
    experiment: str
    kind: str
    family: str
    environment: str
    target: dict[str, Any] = Field(default_factory=dict)
    started_at: datetime
    injected_at: datetime | None = None
    detected_at: datetime | None = None
    fault_ended_at: datetime | None = None  # duration over, self-healed, or aborted: the recovery step starts
    recovered_at: datetime | None = None  # first poll of the steady state that lasted
    reverted_at: datetime | None = None
    finished_at: datetime | None = None
    detect_seconds: float | None = None  # injected -> first failing probe
    recover_seconds: float | None = None  # injected -> steady state again
    aborted: bool = False
    abort_reason: str = ""
    abort_revert_seconds: float | None = None  # abort decided -> fault reverted
    steady_before: bool = False
    steady_after: bool = False
    probes: list[ProbeStats] = Field(default_factory=list)
    data_loss: list[DataLoss] = Field(default_factory=list)
    score: float | None = None
    poll_interval_seconds: float = 0.0
    objective_detect_seconds: float = 0.0
    objective_recover_seconds: float = 0.0
    verdict: Literal["pass", "fail", "running"] = "running"
    reasons: list[str] = Field(default_factory=list)
    steps: list[dict[str, Any]] = Field(default_factory=list)  # {name, at, detail}
    run: dict[str, str] = Field(default_factory=dict)

    def step(self, name: str, detail: str = "") -> None:
        self.steps.append({"name": name, "at": utcnow().isoformat(), "detail": detail})


def resilience_score(probes: list[ProbeStats]) -> float | None:
    total = sum(p.weight for p in probes)
    if not total:
        return None
    return round(100.0 * sum(p.weight * p.success for p in probes) / total, 1)


def quarter(at: datetime) -> str:
    return f"{at.year}-Q{(at.month - 1) // 3 + 1}"

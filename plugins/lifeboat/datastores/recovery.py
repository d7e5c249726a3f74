"""What a recovery (lifeboat_recover, the quarterly drill) needs from an engine, beside the scratch
targets of restore tests: `RecoveryRange` (what the catalog can restore a datastore to), `RecoveryTarget`
(a restore target that is KEPT: a new instance / port / database / index, or the fenced live one),
`Recovered` (where a finished recovery is), `check_continuity` (heartbeats without gaps). Driven by
`Datastore.recover` (lifeboat.datastores.base)."""

from __future__ import annotations

import abc
import itertools
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from lifeboat.errors import RestoreFailed


@dataclass
class RecoveryRange:
    """What the catalog can restore a datastore to. `until`: the newest instant (continuous engines:
    any instant in [since, until]); `snapshots`: the discrete instants of snapshot engines, each with
    its backup id, oldest first. `detail` says where the numbers come from."""

    datastore: str
    continuous: bool
    until: datetime | None
    since: datetime | None = None
    snapshots: list[tuple[datetime, str]] = field(default_factory=list)
    detail: str = ""

    def at_or_before(self, t: datetime) -> tuple[datetime, str] | None:
        """The newest snapshot at or before `t` (snapshot engines)."""
        best = [s for s in self.snapshots if s[0] <= t]
        return best[-1] if best else None


@dataclass
class Recovered:
    """A finished recovery of one datastore: where it is now (JSON-safe), its newest heartbeat."""

    datastore: str
    into: str
    backup_id: str
    locator: dict[str, Any]
    newest_heartbeat: datetime | None
    continuity: str

    def dump(self) -> dict[str, Any]:
        return {"datastore": self.datastore, "into": self.into, "backup_id": self.backup_id, "locator": self.locator,
                "newest_heartbeat": self.newest_heartbeat.isoformat() if self.newest_heartbeat else None,
                "continuity": self.continuity}


class RecoveryTarget(abc.ABC):
    """A restore target that is KEPT (never torn down after success), driven by `Datastore.recover`:
    a new instance / port / database / index / namespace (`into="new"`), or the live target itself
    after it was fenced (`into="live"`). Each method records its own steps on `steps` (anything with a
    `step(name)` context manager yielding a DrillStep: a DrillRecorder, a recovery timeline)."""

    into: str = "new"

    def precheck(self, steps: Any) -> None:  # noqa: B027 -- optional step, nothing by default
        """Guards (a new target never overlaps the live one) and pre-checks (space, the backup)."""

    @abc.abstractmethod
    def restore(self, steps: Any) -> None:
        """Create the target (or reuse the fenced live one), restore into it, wait until it serves."""

    @abc.abstractmethod
    def verify(self, steps: Any) -> None:
        """Counts against the manifest and the engine's integrity checks; raise on a difference."""

    @abc.abstractmethod
    def heartbeats(self, since: datetime) -> list[datetime]:
        """Heartbeat times in the recovered data at or after `since`, oldest first."""

    @abc.abstractmethod
    def newest_heartbeat(self) -> datetime | None: ...

    def continuity(self, window: float, max_gap: float) -> tuple[datetime | None, str]:
        """(newest heartbeat, detail): the heartbeats of the last `window` seconds before the newest one
        have no gap over `max_gap` seconds (RestoreFailed otherwise)."""
        from datetime import timedelta

        newest = self.newest_heartbeat()
        if newest is None:
            raise RestoreFailed("heartbeat continuity: no heartbeat in the recovered data")
        return check_continuity(self.heartbeats(newest - timedelta(seconds=window)), window, max_gap)

    @abc.abstractmethod
    def locator(self) -> dict[str, Any]:
        """Where the recovered data is now (JSON-safe, no secret): host/port, folder, database, index, namespace."""

    def abandon(self) -> str:
        """After a failed restore into a NEW target: stop and remove what it created (never the live one)."""
        return "nothing to remove"


def check_continuity(hbs: list[datetime], window: float, max_gap: float) -> tuple[datetime | None, str]:
    """Pure: the heartbeats within `window` seconds before the newest have no gap over `max_gap`."""
    if not hbs:
        raise RestoreFailed("heartbeat continuity: no heartbeat in the recovered data")
    hbs = sorted(hbs)
    newest = hbs[-1]
    recent = [t for t in hbs if (newest - t).total_seconds() <= window]
    if len(recent) < 2:
        raise RestoreFailed(f"heartbeat continuity: only {len(recent)} heartbeat in the {window:.0f}s before the "
                            f"newest ({newest.isoformat()}): nothing shows the data is continuous")
    gaps = [((b - a).total_seconds(), a, b) for a, b in itertools.pairwise(recent)]
    worst = max(gaps)
    if worst[0] > max_gap:
        raise RestoreFailed(f"heartbeat continuity: a gap of {worst[0]:.0f}s between {worst[1].isoformat()} and "
                            f"{worst[2].isoformat()} (allowed {max_gap:.0f}s): data is missing in between")
    return newest, (f"{len(recent)} heartbeats in the {window:.0f}s up to {newest.isoformat()}, largest gap "
                    f"{worst[0]:.0f}s (allowed {max_gap:.0f}s)")

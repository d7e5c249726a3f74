"""Oplog positions and chains (pure: no server): timestamps, the chain of a full backup and the oplog
slices that continue it, and the replay plan of a point-in-time restore."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from lifeboat.errors import Refused
from lifeboat.records import Check, Manifest


def ts_str(ts) -> str:
    """An oplog Timestamp as 'seconds:increment' (the form mongorestore --oplogLimit takes)."""
    return f"{ts.time}:{ts.inc}"


def parse_ts(value):
    from bson import Timestamp

    if isinstance(value, Timestamp):
        return value
    try:
        t, _, i = str(value).removeprefix("ts:").partition(":")
        return Timestamp(int(t), int(i or 0))
    except ValueError:
        raise Refused(f"{value!r} is not an oplog timestamp (write <seconds>:<increment>)") from None


def ts_key(ts) -> tuple[int, int]:
    return (ts.time, ts.inc)


def ts_time(ts) -> datetime:
    return datetime.fromtimestamp(ts.time, UTC)


def entry_time(entry) -> datetime:
    """When an oplog entry was written: `wall` (ms) where the server records it, else ts seconds."""
    wall = entry.get("wall")
    if isinstance(wall, datetime):
        return wall if wall.tzinfo else wall.replace(tzinfo=UTC)
    return ts_time(entry["ts"])


def fmt(ts, at: datetime | None = None) -> str:
    return f"{ts_str(ts)} ({(at or ts_time(ts)).isoformat(timespec='milliseconds')})"



@dataclass
class ReplayPlan:
    full: Manifest
    slices: list[Manifest]
    starts: list[Any]  # per slice: replay only its entries after this position (already reached)
    target: str
    target_time: datetime | None  # None: everything in the chain
    target_ts: Any | None
    end_ts: Any  # last position replayed

    def includes(self, entry) -> bool:
        if self.target_ts is not None:
            return ts_key(entry["ts"]) <= ts_key(self.target_ts)
        if self.target_time is not None:
            return entry_time(entry) <= self.target_time
        return True

    def reaches(self, ts, at: datetime) -> bool:
        """True when the target is at or after this position (its exact counts are comparable)."""
        if self.target_ts is not None:
            return ts_key(ts) <= ts_key(self.target_ts)
        if self.target_time is not None:
            return at <= self.target_time
        return True



def plan_replay(full: Manifest, target: str, manifests: list[Manifest]) -> ReplayPlan:
    """The full backup plus the oplog backups that continue it without gap, up to `target`
    ('latest', an ISO-8601 time with zone, or an oplog timestamp '<seconds>:<inc>')."""
    if full.kind != "full":
        raise Refused(f"{full.id}: a point-in-time restore starts from a full backup, not a {full.kind} backup")
    target = (target or "latest").strip()
    target_time = target_ts = None
    if target != "latest":
        if re.fullmatch(r"(ts:)?\d+:\d+", target):
            target_ts = parse_ts(target)
        else:
            try:
                target_time = datetime.fromisoformat(target.replace("Z", "+00:00"))
            except ValueError:
                raise Refused(f"restore target {target!r} is neither 'latest', an ISO-8601 time nor an oplog "
                              "timestamp <seconds>:<inc>") from None
            if target_time.tzinfo is None:
                raise Refused(f"restore target {target!r} has no time zone; write e.g. {target}+00:00")
    start_ts = parse_ts(full.position["until_ts"])
    start_at = datetime.fromisoformat(full.position["until_at"])
    too_early = (target_ts is not None and ts_key(target_ts) < ts_key(start_ts)) or \
                (target_time is not None and target_time < start_at)
    if too_early:
        older = [m.id for m in manifests if m.kind == "full"
                 and datetime.fromisoformat(m.position["until_at"]) <= (target_time or ts_time(target_ts))]
        raise Refused(f"restore target {target} is before the consistent point {fmt(start_ts, start_at)} of full "
                      f"backup {full.id}: it can only restore from there on"
                      + (f"; restore from an older full: {', '.join(older)}" if older else
                         "; no older full backup is in the catalog"))
    slices = sorted((m for m in manifests if m.kind == "oplog"),
                    key=lambda m: (ts_key(parse_ts(m.position["until_ts"])), m.finished_at))
    chain: list[Manifest] = []
    starts: list = []
    cur_ts, cur_at, cur_id = start_ts, start_at, full.id

    def reached() -> bool:
        if target_ts is not None:
            return ts_key(cur_ts) >= ts_key(target_ts)
        if target_time is not None:
            return cur_at >= target_time
        return False

    while not reached():
        nxt = [s for s in slices if ts_key(parse_ts(s.position["from_ts"])) <= ts_key(cur_ts)
               < ts_key(parse_ts(s.position["until_ts"]))]
        if not nxt:
            break
        best = max(nxt, key=lambda s: (s.parent == cur_id, ts_key(parse_ts(s.position["until_ts"]))))
        chain.append(best)
        starts.append(cur_ts)
        cur_ts, cur_at, cur_id = parse_ts(best.position["until_ts"]), datetime.fromisoformat(
            best.position["until_at"]), best.id
    if target != "latest" and not reached():
        later = [s for s in slices if ts_key(parse_ts(s.position["from_ts"])) > ts_key(cur_ts)]
        gap = (f"; the next oplog backup {later[0].id} starts only at {later[0].position['from_ts']}: the range "
               f"{ts_str(cur_ts)} .. {later[0].position['from_ts']} is missing") if later else ""
        raise Refused(f"restore target {target} is outside the chain: full backup {full.id} and its oplog backups "
                      f"reach {fmt(cur_ts, cur_at)} (backup {cur_id}){gap}; take an oplog backup first or pick "
                      "an earlier target")
    return ReplayPlan(full=full, slices=chain, starts=starts, target=target, target_time=target_time,
                      target_ts=target_ts, end_ts=cur_ts)


def chain_tip(manifests: list[Manifest], exclude: str | None = None) -> Manifest | None:
    ms = [m for m in manifests if m.id != exclude and m.position.get("until_ts")]
    if not ms:
        return None
    return max(ms, key=lambda m: (ts_key(parse_ts(m.position["until_ts"])), m.finished_at))


def chain_check(m: Manifest, by_id: dict[str, Manifest], everything: list[Manifest]) -> Check:
    links = [m.id]
    cur = m
    while cur.kind == "oplog":
        from_ts = parse_ts(cur.position["from_ts"])
        parent = by_id.get(cur.parent or "")
        if parent is not None and parent.position.get("until_ts") == cur.position["from_ts"]:
            cur = parent
            links.append(cur.id)
            continue
        # A gap: name the oplog range no backup in the catalog holds.
        older = [x for x in everything if x.id != cur.id and x.position.get("until_ts")
                 and ts_key(parse_ts(x.position["until_ts"])) < ts_key(from_ts)]
        prev = max(older, key=lambda x: ts_key(parse_ts(x.position["until_ts"])), default=None)
        if parent is not None:
            prev = parent
        start = (f"{fmt(parse_ts(prev.position['until_ts']), datetime.fromisoformat(prev.position['until_at']))}"
                 f" (end of {prev.id})") if prev else "the start of the chain"
        end = fmt(from_ts, datetime.fromisoformat(cur.position["from_at"]))
        why = (f"its parent {cur.parent} is not in the catalog" if parent is None else
               f"its parent {parent.id} ends at {parent.position.get('until_ts')}, not where {cur.id} starts")
        return Check(name="oplog chain", ok=False,
                     detail=f"gap in the oplog chain at {cur.id}: {why}; missing oplog range {start} .. {end} "
                            f"is in no backup, so no restore can pass it")
    if cur.kind != "full":
        return Check(name="oplog chain", ok=False,
                     detail=f"chain of {m.id} ends at {cur.id} ({cur.kind}), not at a full")
    return Check(name="oplog chain", ok=True, detail=" <- ".join(reversed(links)) + " (no gap back to the full)")

"""WAL segment arithmetic and continuity (pure: no server)."""

from __future__ import annotations

import re
from datetime import datetime

from lifeboat.errors import Refused
from lifeboat.records import Check


def seg_no(walname: str) -> tuple[int, int]:
    """(timeline, segment number) of a 24-hex-digit WAL file name (16 MiB segments)."""
    return int(walname[:8], 16), int(walname[8:16], 16) * 0x100 + int(walname[16:24], 16)


def seg_name(tli: int, segno: int) -> str:
    return f"{tli:08X}{segno // 0x100:08X}{segno % 0x100:08X}"


def prev_segment(walname: str) -> str:
    tli, no = seg_no(walname)
    return seg_name(tli, max(no - 1, 0))


def ranges(nums: list[int]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for n in sorted(nums):
        if out and n == out[-1][1] + 1:
            out[-1] = (out[-1][0], n)
        else:
            out.append((n, n))
    return out


def continuity(wal_start: str, restore_point_wal: str, archive: dict[int, set[int]]) -> Check:
    """Every segment from the backup's start to its restore point, and on to the newest archived
    segment (what a restore to 'latest' replays), must be in the archive; a gap is named."""
    tli, first = seg_no(wal_start)
    _, rp = seg_no(restore_point_wal)
    have = archive.get(tli, set())
    newest = max(have) if have else first
    missing = [n for n in range(first, max(rp, newest) + 1) if n not in have]
    if not missing:
        return Check(name="WAL continuity", ok=True,
                     detail=f"timeline {tli}: {seg_name(tli, first)} .. {seg_name(tli, newest)} complete")
    critical = [n for n in missing if n <= rp]
    return Check(name="WAL continuity", ok=False,
                 detail=f"timeline {tli}: missing WAL "
                        + ", ".join(f"{seg_name(tli, a)}..{seg_name(tli, b)}" for a, b in ranges(missing))
                        + (" (needed to restore this backup at all)" if critical else
                           " (a restore to 'latest' would stop at the gap)"))


def parse_target(target: str) -> datetime | None:
    """None for 'latest', else the ISO-8601 time (with zone) to recover to."""
    if target in ("latest", "", None):
        return None
    try:
        t = datetime.fromisoformat(target.replace("Z", "+00:00"))
    except ValueError:
        raise Refused(f"restore target {target!r} is neither 'latest' nor an ISO-8601 timestamp") from None
    if t.tzinfo is None:
        raise Refused(f"restore target {target!r} has no time zone; write e.g. {target}+00:00")
    return t


_COMMIT = re.compile(r"desc: COMMIT (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d+)?) ?(UTC|GMT|[+-]\d\d(?::?\d\d)?)?")


def last_commit_time(waldump: str) -> datetime | None:
    """The newest COMMIT timestamp in `pg_waldump` output (run with TZ=UTC), None if it has none."""
    newest = None
    for m in _COMMIT.finditer(waldump):
        zone = m.group(2) or "UTC"
        zone = "+00:00" if zone in ("UTC", "GMT") else (zone if ":" in zone or len(zone) == 3 else
                                                        f"{zone[:3]}:{zone[3:]}")
        zone = zone + ":00" if len(zone) == 3 else zone
        t = datetime.fromisoformat(f"{m.group(1)}{zone}")
        newest = t if newest is None or t > newest else newest
    return newest

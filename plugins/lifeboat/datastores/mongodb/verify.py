"""MongoDB verification beyond the files themselves: the oplog window's headroom on the live server."""

from __future__ import annotations

from datetime import datetime, timedelta

from lifeboat.datastores.mongodb.oplog import entry_time, fmt, parse_ts, ts_key
from lifeboat.datastores.mongodb.options import MongoOptions
from lifeboat.datastores.mongodb.server import LiveServer
from lifeboat.durations import format_duration, parse_duration, seconds
from lifeboat.records import Check, Manifest, utcnow

NAME = "oplog window headroom"


def check_headroom(server: LiveServer, options: MongoOptions, tip: Manifest, interval: timedelta | None) -> Check:
    """Alert before the server's oplog rolls past the last captured point (the chain's tip), or when
    the window is shorter than twice the oplog backup interval."""
    margin = parse_duration(options.oplog_alert_margin)
    oldest, newest, stats = server.edge(1), server.edge(-1), server.oplog_stats()
    last = parse_ts(tip.position["until_ts"])
    last_at = datetime.fromisoformat(tip.position["until_at"])
    if oldest is None or newest is None or ts_key(oldest["ts"]) > ts_key(last):
        return Check(name=NAME, ok=False,
                     detail=f"ALERT: the server's oplog has already rolled past the last captured point "
                            f"{fmt(last, last_at)} (oldest entry {fmt(oldest['ts']) if oldest else 'none'}): the "
                            "next oplog backup will fail; take a full backup now and enlarge the oplog")
    span = max((entry_time(newest) - entry_time(oldest)).total_seconds(), 1.0)
    size, max_size = stats.get("size") or 0, stats.get("maxSize") or 0
    fill = (size / max_size) if max_size else 1.0
    base = (f"last captured {fmt(last, last_at)}; server oplog {fmt(oldest['ts'])} .. {fmt(newest['ts'])}"
            f" ({format_duration(span)}, {fill:.1%} of {max_size // 2**20 if max_size else '?'} MiB)")
    if fill >= 0.9:
        window = span  # full: the oldest entry is overwritten as fast as new ones arrive
    elif span >= seconds(options.headroom_min_history):
        window = span / max(fill, 1e-6)  # not full yet: extrapolate the fill rate
    else:
        return Check(name=NAME, ok=True,
                     detail=f"{base}; the window is not measurable yet (less than "
                            f"{options.headroom_min_history} of history and not full): nothing rolls soon")
    left = (last_at + timedelta(seconds=window)) - utcnow()
    problems = []
    if left < margin:
        problems.append(f"the oldest oplog entry passes the last captured point in ~{format_duration(left)}, "
                        f"less than the alert margin {format_duration(margin)}")
    if interval is not None and window < 2 * interval.total_seconds():
        problems.append(f"the oplog window (~{format_duration(window)}) is shorter than twice the oplog backup "
                        f"interval ({format_duration(interval)})")
    detail = (f"{base}; estimated window ~{format_duration(window)}; rolls past the last captured point in "
              f"~{format_duration(left)}")
    if problems:
        return Check(name=NAME, ok=False, detail="ALERT: " + "; ".join(problems) + ". " + detail)
    return Check(name=NAME, ok=True, detail=detail)

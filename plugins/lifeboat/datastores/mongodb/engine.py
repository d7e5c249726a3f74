"""The MongoDB engine: consistent full dumps, oplog slices, point-in-time restores, heartbeat."""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any

from lifeboat.clients import mongodb as mongoclient
from lifeboat.datastores.base import Datastore, RecoveryRange, Taken
from lifeboat.datastores.mongodb import oplog
from lifeboat.datastores.mongodb.bsonio import check_bson
from lifeboat.datastores.mongodb.dump import dump_collections
from lifeboat.datastores.mongodb.oplog import ReplayPlan, entry_time, fmt, parse_ts, ts_key, ts_str
from lifeboat.datastores.mongodb.options import HEARTBEAT_COLLECTION, OPLOG_FILE, MongoOptions, in_scope_fn
from lifeboat.datastores.mongodb.recovery import MongoRecovery
from lifeboat.datastores.mongodb.recovery import repoint as repoint_database
from lifeboat.datastores.mongodb.scratch import MongoScratch, restore_into
from lifeboat.datastores.mongodb.scratchdb import ScratchDatabases
from lifeboat.datastores.mongodb.server import LiveServer, QuietRead
from lifeboat.datastores.mongodb.verify import NAME as HEADROOM
from lifeboat.datastores.mongodb.verify import check_headroom
from lifeboat.drills import DrillRecorder
from lifeboat.durations import seconds
from lifeboat.errors import BackupNotFound, Refused
from lifeboat.records import Check, Manifest, utcnow
from lifeboat.schedule import interval

log = logging.getLogger(__name__)


class MongoDatastore(Datastore):
    engine = "mongodb"
    restore_series = "full"  # series = kind: "full" and "oplog" (base class)
    continues = {"oplog": "full"}  # noqa: RUF012 -- a ClassVar of the base class
    options: MongoOptions

    # -- the live server -----------------------------------------------------------------------------
    @contextlib.contextmanager
    def _session(self) -> Iterator[Any]:
        """A connected pymongo client for the datastore's connection (closed afterwards)."""
        with mongoclient.session(self.endpoint(), seconds(self.options.server_timeout)) as s:
            self._where, self._ferretdb = s.where, s.ferretdb
            yield s.client

    def live(self, client: Any) -> LiveServer:
        """The server behind a client from `_session()`."""
        return LiveServer(client, self.options, self._where, self._ferretdb)

    # -- backup ----------------------------------------------------------------------------------
    def _take(self, kind: str, backup_id: str, staging: Path) -> Taken:
        with self._session() as c:
            server = self.live(c)
            hello = server.require_oplog()
            if kind == "full":
                return self._take_full(server, hello, backup_id, staging)
            return self._take_oplog(server, hello, backup_id, staging)

    def _take_full(self, server: LiveServer, hello: dict, backup_id: str, staging: Path) -> Taken:
        databases = server.databases()
        if not databases:
            raise BackupNotFound(f"datastores.{self.name}: no database to back up on the server")
        start = server.edge(-1)
        if start is None:  # an empty oplog (fresh server): one heartbeat gives the dump a real start position
            self.heartbeat(client=server.client)
            start = server.edge(-1)
        assert start is not None
        t0 = start["ts"]
        collections, skipped = dump_collections(server.client, databases, staging, self.options)
        # The dump read every document after the oplog's newest entry was `start`: if that is still the
        # newest entry a quiet `settle` later, no write happened during the dump and its own counts are
        # exact at `start` (no second count read). Only when every collection the count read would cover
        # was dumped: a view or time series is counted there, not dumped.
        dumped = QuietRead(start, {ns: info["documents"] for ns, info in collections.items()}, time.monotonic()) \
            if all(why == "system collection" for why in skipped.values()) else None
        # The dump files are final now: they upload while the consistent point is read (its counts and its
        # quiet `settle` are server round trips and waiting) and the oplog window is written. An error on
        # either side leaves a folder without a manifest: an interrupted backup, never a complete one.
        dump_files = self.ctx.repo.files_below(staging)
        with ThreadPoolExecutor(1, thread_name_prefix="lifeboat-mongodb-upload") as pool:
            uploaded = pool.submit(self.ctx.repo.put_tree, self.name, backup_id, staging, dump_files)
            counts, until, exact = server.consistent_point(databases, dumped)
            oldest = server.edge(1)
            if oldest is not None and ts_key(oldest["ts"]) > ts_key(t0):
                raise Refused(f"oplog window too short: the server's oplog rolled past the dump's start {fmt(t0)} "
                              f"during the dump (oldest entry now {fmt(oldest['ts'])}): the dump cannot be made "
                              "consistent; enlarge the oplog (replSetResizeOplog) or dump at a quieter time")
            window = server.write_oplog(staging / OPLOG_FILE, in_scope_fn(self.options.databases), after=t0,
                                        until=until["ts"], inclusive=True)
            artifacts = uploaded.result()
        artifacts.append(self.ctx.repo.put_artifact(self.name, backup_id, OPLOG_FILE, staging / OPLOG_FILE))
        artifacts.sort(key=lambda a: a.path)
        stats = server.oplog_stats()
        until_at = entry_time(until)
        return Taken(
            position={
                "start_ts": ts_str(t0), "start_at": entry_time(start).isoformat(),
                "from_ts": ts_str(t0), "from_inclusive": True,
                "until_ts": ts_str(until["ts"]), "until_at": until_at.isoformat(),
                "consistent_at": until_at.isoformat(), "counts_exact": exact,
                **window["position"],
                "server_oplog_oldest_ts": ts_str(oldest["ts"]) if oldest else None,
                "server_oplog_bytes": stats.get("size"), "server_oplog_max_bytes": stats.get("maxSize"),
            },
            counts=counts if exact else {},
            tools=server.tools(),
            artifacts=artifacts,
            native={
                "tool": "lifeboat.mongodb", "layout": "mongodump --gzip --oplog directory (dump/)",
                "replset": hello.get("setName"), "databases": databases,
                "all_databases": not self.options.databases, "collections": collections,
                "skipped": skipped, "oplog": window["native"],
                "counts_at_consistent_point": counts,
            },
            restore_hint=(f"mongorestore --gzip --oplogReplay --dir=<this backup>/dump  (then, in order, each oplog "
                          f"backup after it: mongorestore --gzip --oplogReplay [--oplogLimit=<seconds>:<inc>] "
                          f"--dir=<oplog backup>/dump); consistent at {ts_str(until['ts'])} ({until_at.isoformat()})"),
        )

    def _take_oplog(self, server: LiveServer, hello: dict, backup_id: str, staging: Path) -> Taken:
        parent = oplog.chain_tip(self.ctx.repo.manifests(self.name), exclude=backup_id)
        if parent is None:
            raise BackupNotFound(f"{self.name}: no full backup yet: an oplog backup continues a chain that starts at a "
                                 "full backup; run the 'full' kind first")
        from_ts = parse_ts(parent.position["until_ts"])
        from_at = datetime.fromisoformat(parent.position["until_at"])
        oldest = server.edge(1)
        if oldest is None or ts_key(oldest["ts"]) > ts_key(from_ts):
            raise Refused(self._rolled_past_message(parent, from_ts, from_at, oldest))
        databases = list(parent.native.get("databases") or server.databases())
        counts, until, exact = server.consistent_point(databases)
        window = server.write_oplog(staging / OPLOG_FILE, in_scope_fn(self.options.databases or None), after=from_ts,
                                    until=until["ts"], inclusive=False)
        oldest_after = server.edge(1)
        if oldest_after is None or ts_key(oldest_after["ts"]) > ts_key(from_ts):
            raise Refused(self._rolled_past_message(parent, from_ts, from_at, oldest_after)
                          + " (it rolled while reading)")
        stats = server.oplog_stats()
        until_at = entry_time(until)
        return Taken(
            parent=parent.id,
            position={
                "from_ts": ts_str(from_ts), "from_at": from_at.isoformat(), "from_inclusive": False,
                "until_ts": ts_str(until["ts"]), "until_at": until_at.isoformat(), "counts_exact": exact,
                **window["position"],
                "server_oplog_oldest_ts": ts_str(oldest_after["ts"]),
                "server_oplog_bytes": stats.get("size"), "server_oplog_max_bytes": stats.get("maxSize"),
            },
            counts=counts if exact else {}, tools=server.tools(),
            native={"tool": "lifeboat.mongodb", "layout": "mongodump --gzip directory with only oplog.bson (dump/)",
                    "replset": hello.get("setName"), "databases": databases, "oplog": window["native"],
                    "counts_at_consistent_point": counts},
            restore_hint=(f"after restoring its full backup and every earlier oplog backup: mongorestore --gzip "
                          f"--oplogReplay [--oplogLimit=<seconds>:<inc>] --dir=<this backup>/dump  (entries after "
                          f"{ts_str(from_ts)} up to {ts_str(until['ts'])})"),
        )

    @staticmethod
    def _rolled_past_message(parent: Manifest, from_ts, from_at: datetime, oldest) -> str:
        have = fmt(oldest["ts"], entry_time(oldest)) if oldest else "none (empty oplog)"
        return (f"oplog window too short: the last captured point is {fmt(from_ts, from_at)} (backup {parent.id}) "
                f"but the server's oldest oplog entry is {have}: the entries in between were overwritten before an "
                "oplog backup read them, so the chain cannot continue. Take a full backup now, then enlarge the "
                "oplog (replSetResizeOplog) or run oplog backups more often")

    # -- verification ------------------------------------------------------------------------------
    def verification_batch(self, manifests: list[Manifest], deep: bool) -> dict[str, Any]:
        everything = self.ctx.repo.manifests(self.name)
        return {"everything": everything, "by_id": {m.id: m for m in everything},
                "tip": oplog.chain_tip(everything)}

    def checks(self, m: Manifest, batch: dict[str, Any], deep: bool) -> list[Check]:
        checks = [check_bson(self.ctx.repo, m), oplog.chain_check(m, batch["by_id"], batch["everything"])]
        tip = batch["tip"]
        if tip is not None and m.id == tip.id:
            checks.append(self._check_headroom(m))
        return checks

    def _check_headroom(self, tip: Manifest) -> Check:
        if tip.region and tip.region != self.region:  # e.g. verifying in the standby region, or after a failover
            return Check(name=HEADROOM, ok=True,
                         detail=f"not checked in {self.region}: the chain's tip {tip.id} was read from {tip.region}'s "
                                f"server, whose oplog window is the one that matters (checked when verifying in "
                                f"{tip.region}); {self.region}'s server is another oplog")
        b = self.spec.backups.get("oplog")
        every = interval(b.schedule, utcnow()) if b is not None else None
        try:
            with self._session() as c:
                server = self.live(c)
                server.require_oplog()
                return check_headroom(server, self.options, tip, every)
        except Exception as exc:  # the check itself cannot run: that is an alert too
            return Check(name=HEADROOM, ok=False, detail=f"ALERT: cannot read the server's oplog to check it: {exc}")

    # -- point-in-time restore ---------------------------------------------------------------------
    def plan_replay(self, full: Manifest, target: str) -> ReplayPlan:
        """The full backup plus the oplog backups that continue it without gap, up to `target`
        ('latest', an ISO-8601 time with zone, or an oplog timestamp '<seconds>:<inc>')."""
        return oplog.plan_replay(full, target, self.ctx.repo.manifests(self.name))

    def scratch_for(self, c: Any, drill_id: str) -> ScratchDatabases:
        return ScratchDatabases(c, drill_id, self.live(c).live_databases())

    def restore_into(self, c: Any, plan: ReplayPlan, scratch: ScratchDatabases, drill: DrillRecorder):
        """Full dump, then oplog replay up to the plan's target, with checks at every exact point."""
        return restore_into(self.ctx.repo, self.live(c), plan, scratch, drill)

    def scratch_target(self, manifest: Manifest, target: str, drill: DrillRecorder) -> MongoScratch:
        return MongoScratch(self, manifest, target, drill)

    # -- recovery ----------------------------------------------------------------------------------
    def ping(self) -> str:
        with self._session() as c:
            c.admin.command("ping")
            return "answers ping"

    def backup_time(self, m: Manifest) -> datetime:
        at = m.position.get("until_at")
        return datetime.fromisoformat(at) if at else m.finished_at

    def target_time(self, target: str) -> datetime | None:
        import re

        if re.fullmatch(r"(ts:)?\d+:\d+", str(target or "")):
            return oplog.ts_time(parse_ts(target))
        return super().target_time(target)

    def recovery_target(self, manifest: Manifest, target: str, *, into: str, tag: str) -> MongoRecovery:
        if into != "new":
            raise Refused(f"{self.name}: a MongoDB recovery goes into new databases (then repoint the services); "
                          "replacing a live database is a manual mongorestore --drop (docs/datastores/mongodb.md)")
        return MongoRecovery(self, manifest, target, tag)

    def repoint_uri(self, uri: str, locator: dict[str, Any]) -> str:
        return repoint_database(uri, locator)

    def recovery_range(self) -> RecoveryRange:
        everything = self.ctx.repo.manifests(self.name)
        fulls = sorted((m for m in everything if m.kind == "full"), key=self.backup_time)
        if not fulls:
            return RecoveryRange(self.name, continuous=True, until=None, detail="no full backup")
        plan = oplog.plan_replay(fulls[-1], "latest", everything)  # the newest full and its unbroken oplog chain
        tip = plan.slices[-1] if plan.slices else fulls[-1]
        return RecoveryRange(self.name, continuous=True, until=self.backup_time(tip),
                             since=self.backup_time(fulls[0]),
                             detail=f"{len(fulls)} full backups; oplog chain of {fulls[-1].id} reaches {tip.id}")

    # -- heartbeat ---------------------------------------------------------------------------------
    def heartbeat(self, client: Any = None) -> datetime:
        now = utcnow()
        now = now.replace(microsecond=now.microsecond // 1000 * 1000)  # BSON dates hold milliseconds
        ctx = contextlib.nullcontext(client) if client is not None else self._session()
        with ctx as c:
            c[self.options.heartbeat_db][HEARTBEAT_COLLECTION].insert_one(
                {"region": self.region, "written_at": now, "source": "lifeboat", "host": os.uname().nodename})
        return now

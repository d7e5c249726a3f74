"""MongoDB failover: restore the newest verified full dump plus its oplog slices into the standby
region's server.

Locally (FerretDB, which cannot replicate) each region runs its own server and the standby's is empty
until a failover. The data loss is what was written after the newest oplog slice in the target
region's catalog copy (the plan: up to the slice schedule plus its capture time); the drill measures
it from the restored heartbeat collection. On a real replica set spanning both regions the standby's
members are elected instead (`rs.reconfig(cfg, {force: true})` with only the surviving members and
their priority raised, `rs.stepDown()` on a reachable old primary): docs/failover.md.

* **role**: reachable; `primary` when one of `options.databases` holds a collection, else `standby`.
* **promote**: `plan_replay(newest verified full, 'latest')` -> the dump loaded into the live database
  names (a partial earlier attempt is dropped first), compared with its content hashes, the oplog
  replayed with the exact counts compared at every consistent point (lifeboat.datastores.mongodb.scratch).
* **fence**: none locally (FerretDB has no fsyncLock); recorded -- traffic stops writes.
* **verify**: a probe document (`lifeboat_failover_probe`) written and read back.
* **rebuild_as_standby** (failback): the former primary's databases are dropped (an empty standby).
"""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

from lifeboat.catalog import Catalog
from lifeboat.errors import Refused, RestoreFailed
from lifeboat.failover.facts import Role, first_line
from lifeboat.failover.restoring import RestoringFailover

ROLE_TIMEOUT_S = 3.0
PROBE_COLLECTION = "lifeboat_failover_probe"


class LiveDatabases:
    """What the restore code writes through (the ScratchDatabases interface) with the real database
    names: only the datastore's own databases, never a system one."""

    def __init__(self, client: Any, allowed: set[str]):
        self.client, self.allowed = client, allowed
        self.names: dict[str, str] = {}
        self.live: set[str] = set()
        self.used: set[str] = set()

    def name_for(self, source_db: str) -> str:
        return self.names.setdefault(source_db, source_db)

    def guard(self, name: str) -> None:
        from lifeboat.datastores.mongodb.options import SYSTEM_DATABASES

        if name in SYSTEM_DATABASES or (self.allowed and name not in self.allowed):
            raise Refused(f"refusing to restore into database {name!r}: a failover writes only the datastore's "
                          f"databases {sorted(self.allowed)}")

    def db(self, source_db: str):
        name = self.name_for(source_db)
        self.guard(name)
        self.used.add(name)
        return self.client[name]


class _Steps:
    """The drill-step interface restore_into reports through; the details become the promote detail."""

    def __init__(self):
        self.details: list[str] = []
        self.drill = SimpleNamespace(id="failover")

    @contextlib.contextmanager
    def step(self, name: str):
        s = SimpleNamespace(detail="")
        yield s
        self.details.append(f"{name}: {s.detail}")


class MongoFailover(RestoringFailover):
    engine = "mongodb"
    catch_up_kind = "full"  # the backup a catch-up takes of a live primary
    describe_fence = "none (no write fence on FerretDB; a replica set: rs.stepDown) -- traffic stops writes"
    describe_promote = ("restore the newest verified full dump plus every oplog slice after it into the standby "
                        "server, counts compared at each consistent point")
    describe_rebuild = "drop the former primary's databases (an empty standby until the next failover)"

    def _databases(self) -> set[str]:
        o = self.engine_options
        return set(o.databases) | {o.heartbeat_db}

    @contextlib.contextmanager
    def _client(self, region: str, timeout: float | None = None):
        from lifeboat.clients import mongodb as mongoclient
        from lifeboat.durations import seconds

        with mongoclient.session(self.endpoint(region), timeout or seconds(self.engine_options.server_timeout)) as s:
            yield s.client

    def role(self, region: str) -> Role:
        try:
            with self._client(region, ROLE_TIMEOUT_S) as c:
                version = c.server_info().get("version")
                present = [d for d in self._databases() if c[d].list_collection_names()]
        except Exception as exc:
            return Role(reachable=False, error=first_line(exc))
        return Role(reachable=True, role="primary" if present else "standby", server_version=version)

    def identity(self, facts: Role) -> str:
        return f"MongoDB-wire {facts.server_version}, databases {sorted(self._databases())} present"

    def newest_heartbeat(self, region: str) -> datetime | None:
        from lifeboat.datastores.mongodb.options import HEARTBEAT_COLLECTION

        with self._client(region, ROLE_TIMEOUT_S) as c:
            doc = c[self.engine_options.heartbeat_db][HEARTBEAT_COLLECTION].find_one({}, sort=[("written_at", -1)])
        if not doc:
            return None
        at = doc["written_at"]
        return at if at.tzinfo else at.replace(tzinfo=UTC)

    def fence_primary(self, old_region: str, facts: Role) -> str:
        return (f"{self.where(old_region)}: not fenced (no write fence on this server); the traffic switch stops "
                "the application's writes (recorded)")

    def promote_standby(self, target_region: str) -> str:
        from lifeboat.datastores.mongodb.scratch import restore_into

        eng = self._engine(target_region)
        full = Catalog(eng.ctx.repo).latest(self.name, verified=True, series="full")
        plan = eng.plan_replay(full, "latest")
        steps = _Steps()
        with eng._session() as client:
            for name in sorted(self._databases()):  # an interrupted earlier attempt: start over
                if client[name].list_collection_names():
                    client.drop_database(name)
            live = LiveDatabases(client, self._databases())
            applier = restore_into(eng.ctx.repo, eng.live(client), plan, live, steps)  # type: ignore[arg-type]
        return (f"restored {full.id} + {len(plan.slices)} oplog slice(s) into {', '.join(sorted(live.used))}: "
                f"replay {dict(applier.stats)}; " + "; ".join(steps.details))

    def verify(self, region: str) -> str:
        """A probe document written and read back (the heartbeat collection is left to the heartbeats)."""
        from lifeboat.records import utcnow

        at = utcnow().replace(microsecond=0)
        with self._client(region) as c:
            coll = c[self.engine_options.heartbeat_db][PROBE_COLLECTION]
            doc = {"region": region, "written_at": at, "source": "lifeboat failover verify"}
            doc_id = coll.insert_one(doc).inserted_id
            got = coll.find_one({"_id": doc_id})
        if not got or got.get("region") != region:
            raise RestoreFailed(f"{self.where(region)}: the probe document {doc_id} was not read back")
        return f"{self.where(region)}: probe document written and read back ({PROBE_COLLECTION} {doc_id})"

    def rebuild_as_standby(self, old_region: str, new_primary_region: str) -> str:
        if not self.role(new_primary_region).live_primary:
            raise RestoreFailed(f"{self.where(new_primary_region)} does not hold the data: not dropping it on "
                                f"{old_region}")
        with self._client(old_region) as c:
            dropped = [d for d in sorted(self._databases()) if c[d].list_collection_names()]
            for d in dropped:
                c.drop_database(d)
        return f"{self.where(old_region)}: dropped {', '.join(dropped) or 'nothing'} (an empty standby)"

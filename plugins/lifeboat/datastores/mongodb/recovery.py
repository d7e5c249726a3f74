"""The MongoDB recovery target (lifeboat_recover): NEW databases `<db>_recovered_<tag>` on the
region's server, kept -- the full dump loaded, the oplog replayed to the target (an ISO time or an
oplog timestamp `<seconds>:<inc>`), the exact counts compared at every consistent point on the way.
A service is repointed by the database name in its connection URI. No live variant: replacing a live
database is `mongorestore --drop` by hand after this one was checked (docs/datastores/mongodb.md).
"""

from __future__ import annotations

import contextlib
import hashlib
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import urlsplit, urlunsplit

from lifeboat.datastores.base import RecoveryTarget
from lifeboat.datastores.mongodb.options import HEARTBEAT_COLLECTION, SYSTEM_DATABASES
from lifeboat.datastores.mongodb.scratch import newest_heartbeat, restore_into
from lifeboat.datastores.mongodb.scratchdb import GuardedDatabases
from lifeboat.errors import Refused
from lifeboat.records import Manifest

if TYPE_CHECKING:
    from lifeboat.datastores.mongodb.engine import MongoDatastore

SUFFIX = "_recovered_"


class RecoveredDatabases(GuardedDatabases):
    """The only databases a recovery writes to: `<db>_recovered_<tag>`, which must not exist before."""

    def __init__(self, client: Any, tag: str, existing: set[str]):
        self.client = client
        self.tag = hashlib.sha1(tag.encode(), usedforsecurity=False).hexdigest()[:8]
        self.existing = set(existing)
        self.names: dict[str, str] = {}
        self.used: set[str] = set()

    def name_for(self, db: str) -> str:
        return self.names.setdefault(db, f"{db[:40]}{SUFFIX}{self.tag}")

    def guard(self, name: str) -> None:
        if SUFFIX not in name or name in SYSTEM_DATABASES or (name in self.existing and name not in self.used):
            raise Refused(f"refusing to write to database {name!r}: a recovery writes only into new databases "
                          f"named <db>{SUFFIX}<tag> that did not exist before")


class MongoRecovery(RecoveryTarget):
    def __init__(self, ds: MongoDatastore, m: Manifest, target: str, tag: str):
        self.ds, self.m, self.target, self.tag = ds, m, target, tag
        self._session = contextlib.ExitStack()
        self.dbs: RecoveredDatabases | None = None

    def precheck(self, steps: Any) -> None:
        with steps.step(f"pre-checks {self.ds.name}") as s:
            self.plan = self.ds.plan_replay(self.m, self.target)
            client = self._session.enter_context(self.ds._session())
            self.server = self.ds.live(client)
            self.dbs = RecoveredDatabases(client, self.tag, set(client.list_database_names()))
            names = [self.dbs.name_for(db) for db in self.m.native.get("databases") or []]
            for n in names:
                self.dbs.guard(n)
            s.detail = (f"{self.m.id} + {len(self.plan.slices)} oplog backups up to {self.target}; new databases "
                        f"{', '.join(names)}")

    def restore(self, steps: Any) -> None:
        assert self.dbs is not None
        self.applier = restore_into(self.ds.ctx.repo, self.server, self.plan, cast(Any, self.dbs), steps)

    def verify(self, steps: Any) -> None:
        """Done during the replay: documents match the dump, counts at every exact point."""

    def newest_heartbeat(self) -> datetime | None:
        assert self.dbs is not None
        return newest_heartbeat(self.ds.options, self.dbs, self.m)  # type: ignore[arg-type]

    def heartbeats(self, since: datetime) -> list[datetime]:
        assert self.dbs is not None
        coll = self.dbs.db(self.ds.options.heartbeat_db)[HEARTBEAT_COLLECTION]
        out = [d["written_at"] for d in coll.find({"written_at": {"$gte": since}}, {"written_at": 1})]
        return sorted(t if t.tzinfo else t.replace(tzinfo=UTC) for t in out)

    def locator(self) -> dict[str, Any]:
        assert self.dbs is not None
        return {"engine": "mongodb", "into": "new", "connection": self.ds.conn_id(),
                "databases": {db: self.dbs.name_for(db) for db in self.m.native.get("databases") or []},
                "restored_to": self.target}

    def abandon(self) -> str:
        try:
            return "dropped " + (", ".join(self.dbs.drop_all() if self.dbs else []) or "nothing")
        finally:
            self._session.close()


def repoint(uri: str, locator: dict[str, Any]) -> str:
    """The URI's database (path) replaced by its recovered database."""
    p = urlsplit(uri)
    db = p.path.lstrip("/")
    mapping = locator.get("databases") or {}
    new = mapping.get(db) or (next(iter(mapping.values())) if len(mapping) == 1 else None)
    return urlunsplit((p.scheme, p.netloc, f"/{new}", p.query, p.fragment)) if new else uri

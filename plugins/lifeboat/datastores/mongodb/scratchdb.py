"""The only databases a restore test writes to: `lifeboat_scratch_<tag>_<db>`."""

from __future__ import annotations

import hashlib
from typing import Any

from lifeboat.datastores.mongodb.options import SCRATCH_PREFIX, SYSTEM_DATABASES
from lifeboat.errors import Refused


class GuardedDatabases:
    """Databases handed out only by name through `guard` (a scratch or a recovery set): `db()` is the
    single way the restore code obtains a database to write into; `drop_all()` drops what it handed out."""

    client: Any
    used: set[str]

    def name_for(self, source_db: str) -> str:
        raise NotImplementedError

    def guard(self, name: str) -> None:
        raise NotImplementedError

    def db(self, source_db: str):
        name = self.name_for(source_db)
        self.guard(name)
        self.used.add(name)
        return self.client[name]

    def drop_all(self) -> list[str]:
        dropped = []
        for name in sorted(self.used):
            self.guard(name)
            self.client.drop_database(name)
            dropped.append(name)
        return dropped


class ScratchDatabases(GuardedDatabases):
    """The only databases a restore test writes to: `lifeboat_scratch_<tag>_<db>`.

    `db()` is the single way the restore code obtains a database to write into, and it refuses any
    name that does not start with the scratch prefix, that is a system database, or that is one of
    the live databases -- so a bug elsewhere cannot turn a drill into a write on production data.
    """

    def __init__(self, client: Any, drill_id: str, live: set[str]):
        self.client = client
        self.tag = hashlib.sha1(drill_id.encode(), usedforsecurity=False).hexdigest()[:8]
        self.names: dict[str, str] = {}
        self.live = set(live)
        self.used: set[str] = set()

    def name_for(self, source_db: str) -> str:
        if source_db not in self.names:
            name = f"{SCRATCH_PREFIX}{self.tag}_{source_db}"
            if len(name) > 63:
                digest = hashlib.sha1(source_db.encode(), usedforsecurity=False).hexdigest()[:8]
                name = f"{SCRATCH_PREFIX}{self.tag}_{source_db[:28]}_{digest}"
            self.names[source_db] = name
        return self.names[source_db]

    def guard(self, name: str) -> None:
        if not name.startswith(SCRATCH_PREFIX) or name in SYSTEM_DATABASES or name in self.live:
            raise Refused(f"refusing to write to database {name!r}: restore tests write only to scratch databases "
                          f"named {SCRATCH_PREFIX}<tag>_<db>, never to a live or system database")

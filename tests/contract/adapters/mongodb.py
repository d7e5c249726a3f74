"""MongoDB: a database and a catalog folder of this test only, on the stack's FerretDB; full backups;
the scratch target is `lifeboat_scratch_<tag>_<db>` databases on the same server."""

from __future__ import annotations

from typing import Any

from lifeboat.datastores.mongodb import SCRATCH_PREFIX
from tests.contract.adapters import Adapter, N

MINUTELY = {"full": "0 * * * *", "oplog": "* * * * *"}  # the test stack's oplog is small: see test_mongodb.py


class MongoAdapter(Adapter):
    fixtures, kind = ("mongo_engine_with", "mongo"), "full"
    # the last: the exact counts at the dump's consistent point
    first_restore_step, last_verify_step = "load full dump", "counts at "

    @property
    def dbname(self) -> str:
        return f"c_{self.unique}"

    @property
    def victim(self) -> str:  # type: ignore[override]
        return f"dump/{self.dbname}/items.bson.gz"

    def make_engine(self) -> Any:
        return self.fixture("mongo_engine_with")(
            name=f"mongodb_contract_{self.unique}", databases=[self.dbname], heartbeat_database=self.dbname,
            oplog_alert_margin="1m", schedules=MINUTELY)

    @property
    def db(self) -> Any:
        return self.fixture("mongo")[self.dbname]

    def insert(self, n: int) -> None:
        self.db.items.insert_many([{"_id": i, "v": f"document {i}"} for i in range(n)])

    def count_live(self) -> int:
        return self.db.items.count_documents({})

    def mutate(self) -> None:
        self.db.items.delete_many({"_id": {"$in": list(range(0, N, 2))}})
        self.db.items.insert_one({"_id": "after-the-backup"})

    def count_restored(self, scratch: Any) -> int:
        return scratch.databases.db(self.dbname)["items"].count_documents({})

    def cleanup(self) -> None:
        client = self.fixture("mongo")
        self.forget_engine()
        client.drop_database(self.dbname)
        for name in client.list_database_names():
            if name.startswith(SCRATCH_PREFIX) and name.endswith(f"_{self.dbname}"):
                client.drop_database(name)

"""Redis: keys under a prefix of this test in db 0 (the test stack's Redis belongs to the tests);
RDB backups over the replication protocol; the scratch target is a redis-server loading the RDB."""

from __future__ import annotations

from typing import Any

from tests.contract.adapters import Adapter, N


class RedisAdapter(Adapter):
    fixtures = ("redis_engine", "rds")
    engine_fixture, kind, victim = "redis_engine", "rdb", "dump.rdb"
    first_restore_step, last_verify_step = "fetch rdb from repository", "key counts"

    def __init__(self, request, unique):
        super().__init__(request, unique)
        self.pattern = f"contract:{unique}:*"
        self.rds = self.fixture("rds")

    def insert(self, n: int) -> None:
        self.rds.mset({f"contract:{self.unique}:{i}": i for i in range(n)})

    def count_live(self) -> int:
        return sum(1 for _ in self.rds.scan_iter(match=self.pattern))

    def mutate(self) -> None:
        self.rds.delete(*[f"contract:{self.unique}:{i}" for i in range(0, N, 2)])
        self.rds.set(f"contract:{self.unique}:after-the-backup", 1)

    def count_restored(self, scratch: Any) -> int:
        return sum(1 for _ in scratch.server.client(0).scan_iter(match=self.pattern))

    def cleanup(self) -> None:
        keys = list(self.rds.scan_iter(match=self.pattern))
        if keys:
            self.rds.delete(*keys)

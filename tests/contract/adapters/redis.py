"""Redis: keys under a prefix of this test in db 0 (the test stack's Redis belongs to the tests);
RDB backups over the replication protocol; the scratch target is a redis-server loading the RDB."""

from __future__ import annotations

from typing import Any

from tests.contract.adapters import N, Adapter


class RedisAdapter(Adapter):
    fixtures = ("redis_engine", "rds")
    kind = "rdb"
    first_restore_step = "fetch rdb from repository"
    last_verify_step = "sampled keys digest"
    victim = "dump.rdb"

    @property
    def engine(self) -> Any:
        return self.request.getfixturevalue("redis_engine")

    @property
    def rds(self) -> Any:
        return self.request.getfixturevalue("rds")

    @property
    def pattern(self) -> str:
        return f"contract:{self.unique}:*"

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

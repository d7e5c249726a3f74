"""PostgreSQL: a probe table in the community database; pgBackRest full backups; the restore test
pauses at the backup's restore point, so the target is the restore point's time."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lifeboat.records import Manifest
from tests.contract.adapters import Adapter, flip_byte


class PostgresAdapter(Adapter):
    fixtures = ("engine", "pg", "stack_env")
    engine_fixture, kind, interrupt_kind = "engine", "full", "logical"  # logical: a killed pgBackRest set
    # would become the prior set of later incrementals
    first_restore_step, last_verify_step = "pgbackrest restore", "roll forward to"

    @property
    def pg(self) -> Any:
        return self.fixture("pg")

    @property
    def table(self) -> str:
        return f"contract_{self.unique}"

    def insert(self, n: int) -> None:
        self.pg.execute(f"CREATE TABLE {self.table} (id serial PRIMARY KEY, v text NOT NULL)")
        self.pg.execute(f"INSERT INTO {self.table} (v) SELECT 'row ' || g FROM generate_series(1, %s) g", (n,))

    def count_live(self) -> int:
        return self.pg.execute(f"SELECT count(*) FROM {self.table}").fetchone()[0]

    def mutate(self) -> None:
        self.pg.execute(f"DELETE FROM {self.table} WHERE id % 2 = 0")
        self.pg.execute(f"INSERT INTO {self.table} (v) VALUES ('after the backup')")
        # the commits after the restore point must be archived: recovery stops before the first of them
        wal = self.pg.execute("SELECT pg_walfile_name(pg_current_wal_lsn())").fetchone()[0]
        self.pg.execute("SELECT pg_switch_wal()")
        deadline = time.monotonic() + 60
        while (self.pg.execute("SELECT last_archived_wal FROM pg_stat_archiver").fetchone()[0] or "") < wal:
            assert time.monotonic() < deadline, f"WAL {wal} not archived"
            time.sleep(0.3)

    def target(self, m: Manifest) -> str:
        return m.position["restore_point_at"]

    def count_restored(self, scratch: Any) -> int:
        return scratch.instance.query_one(f"SELECT count(*) FROM {self.table}")

    def corrupt(self, m: Manifest) -> tuple[str, Callable[[], None]]:
        """A data file of the pgBackRest set (pgBackRest names it, without its compression suffix)."""
        stack = Path(self.fixture("stack_env")["LIFEBOAT_STACK_DIR"])
        backup_dir = stack / "repo" / "us-west-2" / "postgres" / "pgbackrest" / "backup" / "community" / \
            m.native["label"] / "pg_data"
        victim = max((p for p in backup_dir.rglob("*") if p.is_file()), key=lambda p: p.stat().st_size)
        return victim.name.rsplit(".", 1)[0], flip_byte(victim)

    def cleanup(self) -> None:
        self.pg.execute(f"DROP TABLE IF EXISTS {self.table}")

"""PostgreSQL: pgBackRest (WAL archiving + full/diff/incr) and pg_dump logical dumps.

Physical backups are pgBackRest's own, in pgBackRest's own repository (under the datastore's folder
of the Lifeboat repository), so `pgbackrest restore` alone brings them back. Lifeboat adds:

* a named restore point written right after each backup while the counted tables are briefly locked
  in SHARE mode, so the row counts in the manifest are *exact* at that point in the WAL and a restore
  test can pause there and compare;
* verification: `pgbackrest verify` (every file's checksum in the repository), `pgbackrest check`
  (archiving works now), WAL continuity from the backup to the newest archived segment, and the
  sha256 of pgBackRest's backup.manifest against the one recorded at backup time;
* restore tests into a scratch instance (own port, unix socket only, archive_mode=off, never the
  live cluster), paused at the restore point for the count check, then rolled forward to the latest
  WAL (or a target time), then pg_amcheck.

Logical dumps: `pg_dump --format=directory --jobs=N --snapshot=<exported>` per database, the row
counts taken in the very snapshot the dump uses, plus `pg_dumpall --globals-only --no-role-passwords`.

    options.py     the inventory options (cheap: pydantic only)
    wal.py         WAL segment arithmetic, continuity, recovery targets (pure)
    pgbackrest.py  every pgBackRest call
    verify.py      the checks of a verification
    scratch.py     the scratch instance and the restore-test target
    engine.py      the engine: backup, heartbeat, exposure, retention
"""

from lifeboat.datastores.postgres.engine import PostgresDatastore
from lifeboat.datastores.postgres.options import PostgresOptions
from lifeboat.datastores.postgres.scratch import ScratchInstance

__all__ = ["PostgresDatastore", "PostgresOptions", "ScratchInstance"]

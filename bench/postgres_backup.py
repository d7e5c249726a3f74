"""pgBackRest full backup of a ~1 GB pgbench database: through BackupOperator vs the same pgBackRest
command alone, alternating, in the same run. Prints the overhead ratio.

What the operator adds on top of pgBackRest: `pgbackrest info` before/after, the SHARE-lock count of
the inventory's tables and a named restore point, waiting for that WAL segment to be archived, the
sha256 of pgBackRest's backup.manifest, and the manifest commit.
"""

from __future__ import annotations

import functools
import os
import subprocess
import sys

from common import bench_stack, operator_context, pgbench_at, phase_timer, print_phases, report, timed

RUNS = int(os.environ.get("BENCH_RUNS", "5"))
SCALE = int(os.environ.get("BENCH_PGBENCH_SCALE", "68"))  # ~1 GB


def main() -> int:
    env = bench_stack()
    import psycopg

    dsn = env["AIRFLOW_CONN_LIFEBOAT_PG_US_WEST_2"]
    subprocess.run([sys.executable, "scripts/seed_community.py"], check=True, env=os.environ.copy(),
                   cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    pgbench_at(env, dsn, SCALE)  # once; kept in .stack-bench
    with psycopg.connect(dsn, autocommit=True) as conn:
        size = conn.execute("SELECT pg_database_size('community')").fetchone()[0]
    print(f"database size: {size / 1e9:.2f} GB", flush=True)

    from lifeboat.datastores.postgres.engine import PostgresDatastore
    from lifeboat.datastores.postgres.pgbackrest import PgBackRest
    from lifeboat.operators import BackupOperator
    from lifeboat.repository import Repository

    # where the operator's time goes (overlapped phases: their sum can exceed the wall time)
    phases: dict[str, list[float]] = {n: [] for n in (
        "pgbackrest backup (+ info before)", "pgbackrest info after + manifest sha256 [thread]",
        "counts + restore point + WAL archived", "  of which: waiting for the WAL segment",
        "tool versions [thread, during backup]", "manifest commit")}
    wrap = phase_timer(phases)
    PgBackRest.take = wrap("pgbackrest backup (+ info before)", PgBackRest.take)
    PostgresDatastore._set_facts = wrap("pgbackrest info after + manifest sha256 [thread]",
                                        PostgresDatastore._set_facts)
    PostgresDatastore._counts_and_restore_point = wrap("counts + restore point + WAL archived",
                                                       PostgresDatastore._counts_and_restore_point)
    PostgresDatastore._wait_archived = wrap("  of which: waiting for the WAL segment", PostgresDatastore._wait_archived)
    PostgresDatastore._versions = wrap("tool versions [thread, during backup]", PostgresDatastore._versions)
    Repository.commit = wrap("manifest commit", Repository.commit)

    native_cmd = ["runuser", "-u", "postgres", "--", "pgbackrest", f"--config={env['LIFEBOAT_PGBACKREST_CONF']}",
                  "--stanza=community", "--type=full", "--log-level-console=warn", "backup"]
    native, ours = [], []
    from datetime import UTC, datetime, timedelta

    for i in range(RUNS):
        op = BackupOperator(task_id="bench", datastore="postgres", kind="full")
        ctx = operator_context()
        ctx["logical_date"] = datetime(2031, 1, 1, tzinfo=UTC) + timedelta(minutes=i, seconds=os.getpid() % 60)
        # bound now: a lambda would see whatever op/ctx the loop holds when it is finally called
        sides = [lambda: native.append(timed(functools.partial(subprocess.run, native_cmd, check=True))),
                 lambda op=op, ctx=ctx: ours.append(timed(functools.partial(op.execute, ctx)))]
        for side in sides if i % 2 == 0 else sides[::-1]:  # alternate who goes first (page cache, drift)
            side()
        print(f"run {i + 1}/{RUNS}: native {native[-1]:.2f}s, operator {ours[-1]:.2f}s", flush=True)
    print("operator phases (mean per run):")
    print_phases(phases, RUNS, 50)
    report("postgres_backup", "pgbackrest --type=full backup (native)", native, ours, {"database_bytes": size})
    # keep the bench repository small: expire all but the newest full backup
    subprocess.run(["runuser", "-u", "postgres", "--", "pgbackrest", f"--config={env['LIFEBOAT_PGBACKREST_CONF']}",
                    "--stanza=community", "--repo1-retention-full=1", "--log-level-console=warn", "expire"], check=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The restore-test RTO of a pgBackRest full backup vs the plain native restore of the same set, at two sizes.

    BENCH_RUNS=5 BENCH_RESTORE_SCALES=16,68 .venv/bin/python bench/postgres_restore.py

For each pgbench scale (16 ~ 0.27 GB, 68 ~ 1.1 GB of database; ascending, so the bench stack is left at
the postgres_backup bench's scale 68), `pgbench -i` fills the bench stack's `community` database, one full
backup is taken through jobs.backup, then, alternating, BENCH_RUNS times each:

  native    `pgbackrest --set=<label> --type=default --archive-mode=off restore` into an empty folder, then
            `pg_ctl -w start` (own port, unix socket only) and waiting until it accepts writes (recovery
            replayed the archived WAL and promoted: `SELECT pg_is_in_recovery()` is false)
  lifeboat  jobs.restore_drill of that backup (what the monthly restore-test DAG runs): its measured RTO
            is the drill's own clock (Datastore.restored: restore, replay to the restore point, exact row
            counts, roll forward to the end of the WAL, promoted: ready and verified)

Records bench/results/postgres_restore_pgbench<scale>.json per size (kind "restore", size_mb,
seconds_native, seconds_lifeboat; the largest also carries the size curve for bench/run.py's chart).
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from common import ROOT, bench_stack, drill_steps, pgbench_at, print_drill_steps, quiet_disk, record

RUNS = int(os.environ.get("BENCH_RUNS", "5"))
SCALES = [int(x) for x in os.environ.get("BENCH_RESTORE_SCALES", "16,68").split(",") if x.strip()]


def native_restore(env: dict, label: str, root: Path) -> float:
    """pgbackrest restore + pg_ctl start until the instance accepts writes; seconds. Stopped and removed after."""
    import psycopg

    from lifeboat.net import free_port
    from lifeboat.runners import chown_for

    user = env.get("LIFEBOAT_PG_OS_USER", "postgres")
    data, sock = root / "data", Path(tempfile.mkdtemp(prefix="lbn-"))
    shutil.rmtree(root, ignore_errors=True)
    data.mkdir(parents=True, mode=0o700)
    hba = sock / "hba.conf"
    hba.write_text("local all all trust\n")
    for p in (root, data, sock, hba):
        chown_for(str(p), user)
    port = free_port()
    as_pg = ["runuser", "-u", user, "--"]
    try:
        quiet_disk()
        t0 = time.monotonic()
        subprocess.run([*as_pg, "pgbackrest", f"--config={env['LIFEBOAT_PGBACKREST_CONF']}", "--stanza=community",
                        f"--pg1-path={data}", f"--set={label}", "--type=default", "--archive-mode=off",
                        "--log-level-console=warn", "restore"], check=True)
        opts = (f"-c port={port} -c listen_addresses='' -c unix_socket_directories='{sock}' -c hba_file='{hba}' "
                "-c logging_collector=off")
        subprocess.run([*as_pg, f"{env['LIFEBOAT_PG_BIN']}/pg_ctl", "-D", str(data), "-l", str(root / "pg.log"),
                        "-o", opts, "-w", "-t", "3600", "start"], check=True, stdout=subprocess.DEVNULL)
        while True:
            try:
                with psycopg.connect(host=str(sock), port=port, user="postgres", dbname="postgres",
                                     autocommit=True) as c:
                    if not c.execute("SELECT pg_is_in_recovery()").fetchone()[0]:
                        break
            except psycopg.OperationalError:
                pass
            time.sleep(0.02)
        return time.monotonic() - t0
    finally:
        subprocess.run([*as_pg, f"{env['LIFEBOAT_PG_BIN']}/pg_ctl", "-D", str(data), "-m", "immediate", "-w",
                        "stop"], check=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        shutil.rmtree(root, ignore_errors=True)
        shutil.rmtree(sock, ignore_errors=True)


def main() -> int:
    os.environ.setdefault("LIFEBOAT_STACK_COMPONENTS", "elasticsearch")  # PostgreSQL + moto always run
    env = bench_stack()
    dsn = env["AIRFLOW_CONN_LIFEBOAT_PG_US_WEST_2"]
    subprocess.run([sys.executable, "scripts/seed_community.py"], check=True, env=os.environ.copy(), cwd=ROOT)

    from lifeboat import jobs
    from lifeboat.catalog import Catalog
    from lifeboat.inventory import load_inventory
    from lifeboat.repository import Repository

    curve: list[dict] = []
    for k, scale in enumerate(sorted(SCALES)):
        pgbench_at(env, dsn, scale)
        jobs.heartbeat("postgres")
        when = datetime(2032, 1, 1, tzinfo=UTC) + timedelta(hours=k, seconds=os.getpid() % 3600)
        b = jobs.backup("postgres", "full", when, run={"dag_id": "bench", "run_id": f"restore-{scale}"})
        repo = Repository.from_inventory(load_inventory(), "us-west-2")
        m = Catalog(repo).get("postgres", b["backup_id"])
        size = int(m.native["database_size"])
        print(f"\n=== pgbench scale {scale}: backup {m.id} (set {m.native['label']}), {size / 1e6:.0f} MB "
              f"in {b['seconds']:.1f}s", flush=True)
        native, ours, phases = [], [], []
        for i in range(RUNS):
            native.append(native_restore(env, m.native["label"], Path(env["LIFEBOAT_STACK_DIR"]) / "bench-native"))
            quiet_disk()
            out = jobs.restore_drill("postgres", backup_id=m.id, run={"dag_id": "bench", "run_id": f"r-{scale}-{i}"})
            if out.error is not None or out.summary.get("rto_seconds") is None:
                raise SystemExit(f"restore test failed: {out.error!r} {out.summary.get('reasons')}")
            ours.append(out.summary["rto_seconds"])
            phases.append(drill_steps(repo, out.summary["drill_id"]))
            print(f"run {i + 1}/{RUNS}: native {native[-1]:.2f}s, restore-test RTO {ours[-1]:.2f}s "
                  f"(clock {out.summary['rto_clock']})", flush=True)
        n, o = statistics.median(native), statistics.median(ours)
        print(f"scale {scale} ({size / 1e6:.0f} MB): native median {n:.2f}s, restore-test RTO median {o:.2f}s, "
              f"ratio {o / n:.3f}x; drill steps (mean s):")
        print_drill_steps(phases)
        curve.append({"bytes": size, "ours_s": o, "native_s": n})
        extra = {"size_mb": round(size / 1e6, 1), "seconds_native": n, "seconds_lifeboat": o, "native": native,
                 "ours": ours, "pgbench_scale": scale, "backup_id": m.id,
                 "native_label": "pgbackrest restore + pg_ctl start until it accepts writes"}
        if k == len(SCALES) - 1:
            extra["sizes"] = curve
        record(f"postgres_restore_pgbench{scale}", "restore", o / n, RUNS, **extra)
    # keep the bench repository small: expire all but the newest full backup
    subprocess.run(["runuser", "-u", "postgres", "--", "pgbackrest", f"--config={env['LIFEBOAT_PGBACKREST_CONF']}",
                    "--stanza=community", "--repo1-retention-full=1", "--log-level-console=warn", "expire"], check=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

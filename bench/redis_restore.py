#!/usr/bin/env python3
"""Benchmark: the Redis restore-test RTO vs the plain native restore of the same backup, at two sizes.

    .venv/bin/python bench/redis_restore.py [--sizes 50,150] [--runs 5]

Starts a private redis-server (127.0.0.1, free port, password, temp folder -- not the devstack's), and
for each size: fills it with ~size MiB (the same data mix as redis_rdb_backup.py), takes ONE RDB backup
through the BackupOperator into a file:// repository, then, --runs times each, alternating who goes first:

  native    copy dump.rdb from the repository into an empty folder, `redis-server --dir <it>
            --dbfilename dump.rdb --appendonly no --save ""` on a free port, poll until it answers PING
            and INFO persistence says loading:0 (what docs/datastores/redis.md tells an operator to do)
  lifeboat  the restore-test drill (lifeboat.jobs.restore_drill, what the restore-test DAG runs); the
            number is the RTO the drill itself records (Datastore.restored's clock: fetch with sha256,
            load, key counts and the sampled-key digest compared with the manifest)

One result per size: bench/results/redis_restore_<size>mb.json (kind "restore"); the largest size's
result also carries `sizes` (the curve over every size of this run) for bench/run.py's chart.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from common import drill_steps, print_drill_steps, quiet_disk, record, run_backup_operator, wait_serving
from redis_rdb_backup import bench_redis, fill, need_tools

from lifeboat.net import free_port


def native_restore(rdb: Path, tmp: Path, i: int) -> float:
    """Copy + redis-server load until PING and loading:0: the seconds."""
    import redis

    d = tmp / f"native-{i}"
    port = free_port()
    quiet_disk()
    t = time.monotonic()
    d.mkdir()
    shutil.copyfile(rdb, d / "dump.rdb")
    proc = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--dir", str(d),
                             "--dbfilename", "dump.rdb", "--appendonly", "no", "--save", "",
                             "--logfile", str(d / "redis.log")])
    try:
        c = redis.Redis(port=port, socket_connect_timeout=1)

        def ready() -> bool:
            return bool(c.ping()) and c.info("persistence").get("loading") == 0

        wait_serving("native restore redis-server", proc, ready, d / "redis.log", 300)
        secs = time.monotonic() - t
        c.close()
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        shutil.rmtree(d, ignore_errors=True)
    return secs


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="50,150", help="dataset sizes in MiB, comma-separated (default 50,150)")
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    sizes_mb = [int(s) for s in args.sizes.split(",") if s.strip()]
    need_tools("redis-server", "redis-cli")

    with bench_redis("lifeboat-bench-redis-restore-") as (tmp, port, password):
        import redis

        from lifeboat import jobs
        from lifeboat.inventory import load_inventory
        from lifeboat.layout import Layout
        from lifeboat.repository import Repository

        live = redis.Redis(port=port, password=password)
        repo = Repository.from_inventory(load_inventory(), "us-west-2")
        curve, results = [], []
        base = datetime(2030, 1, 1, tzinfo=UTC)
        for n, mb in enumerate(sizes_mb):
            live.flushall()
            facts = fill(port, password, mb)
            live.set("lifeboat:heartbeat", datetime.now(UTC).isoformat())  # what lifeboat_heartbeat writes
            result, _ = run_backup_operator("redis", "rdb", base + timedelta(hours=n), f"bench-restore-{mb}")
            backup_id = result["backup_id"]
            rdb = tmp / "repo-w2" / Layout.artifact("redis", backup_id, "dump.rdb")
            size = rdb.stat().st_size
            print(f"{mb} MiB: {facts['keys']} keys, RDB {size / 1048576:.0f} MiB ({backup_id})")
            native, ours, phases = [], [], []
            for i in range(args.runs):
                # alternate who goes first, so a drift of the machine's load does not favour one side
                for side in ("native", "drill") if i % 2 == 0 else ("drill", "native"):
                    if side == "native":
                        native.append(native_restore(rdb, tmp, i))
                        continue
                    quiet_disk()
                    outcome = jobs.restore_drill("redis", backup_id)
                    if outcome.error is not None:
                        raise outcome.error
                    ours.append(float(outcome.summary["rto_seconds"]))
                    phases.append(drill_steps(repo, outcome.summary["drill_id"]))
                print(f"  run {i + 1}: native {native[-1]:.2f}s  restore-test RTO {ours[-1]:.2f}s")
            n_med, o_med = statistics.median(native), statistics.median(ours)
            ratio = o_med / n_med
            print(f"  medians of {args.runs}: native {n_med:.2f}s, restore test {o_med:.2f}s, ratio {ratio:.2f}x; "
                  "drill steps (mean s):")
            print_drill_steps(phases, width=56, digits=3)
            curve.append({"bytes": size, "native_s": round(n_med, 3), "ours_s": round(o_med, 3)})
            results.append((f"redis_restore_{mb}mb", ratio, size, n_med, o_med, native, ours, facts["keys"]))
        for k, (name, ratio, size, n_med, o_med, native, ours, keys) in enumerate(results):
            extra = {"sizes": curve} if k == len(results) - 1 else {}
            record(name, "restore", ratio, args.runs, size_mb=round(size / 1048576, 1), seconds_native=n_med,
                   seconds_lifeboat=o_med, native=native, ours=ours, keys=keys,
                   native_label="cp dump.rdb + redis-server load until PING and loading:0", **extra)
        return 0


if __name__ == "__main__":
    sys.exit(main())

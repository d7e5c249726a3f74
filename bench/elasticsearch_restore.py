#!/usr/bin/env python3
"""Benchmark: the restore-test RTO of an Elasticsearch snapshot vs the plain snapshot restore, at two sizes.

    .venv/bin/python bench/elasticsearch_restore.py [--sizes 100,300] [--runs 3] [--state .stack-bench]

For each size (MB of stored documents: index `bench-docs` for 300 -- the snapshot bench's, kept --, else
`bench-docs-<mb>`, 2 shards, 0 replicas, filled once and kept), one snapshot is taken through Lifeboat
(BackupOperator, into a fresh fs repository), then, alternating, --runs times each:

  native    POST _snapshot/<repo>/<snap>/_restore?wait_for_completion=true into renamed indices
            (rename_pattern, include_global_state=false): the call that brings a snapshot back
  lifeboat  jobs.restore_drill (what the monthly restore-test DAG runs); the measured RTO is the drill's
            own clock (Datastore.restored: restore + wait until the primaries are active + doc counts
            + sampled document hashes)

Records bench/results/elasticsearch_restore_<mb>mb.json per size (kind "restore", seconds_native,
seconds_lifeboat, size_mb; the largest also carries the size curve for bench/run.py's chart).
The restored copies, the bench repositories and their folders are removed at the end.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "plugins"), str(ROOT)]

from common import drill_steps, print_drill_steps, record, run_backup_operator  # noqa: E402
from elasticsearch_snapshot import INDEX, INVENTORY, drop_repositories, fill, node  # noqa: E402


def index_for(mb: int) -> str:
    return INDEX if mb == 300 else f"{INDEX}-{mb}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="100,300", help="index sizes in MB, comma-separated (default 100,300)")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--state", default=str(ROOT / ".stack-bench"), help="devstack state dir of the node")
    args = ap.parse_args()
    sizes = [int(x) for x in args.sizes.split(",") if x.strip()]

    es, repo_root, tmp = node(args.state, "bench-restore")
    from lifeboat import jobs
    from lifeboat.inventory import load_inventory
    from lifeboat.repository import Repository

    repos: list[str] = []
    curve: list[dict] = []
    try:
        for k, mb in enumerate(sizes):
            index = index_for(mb)
            t = time.monotonic()
            facts = fill(es, mb, index)
            size = es.indices.stats(index=index, metric="store")["indices"][index]["primaries"]["store"][
                "size_in_bytes"]
            print(f"\n=== {mb} MB: index {index}, {facts['docs']} docs, {size / 1e6:.0f} MB on disk "
                  f"({'reused' if facts['reused'] else f'filled in {time.monotonic() - t:.0f}s'})", flush=True)
            name = f"bench-restore-{mb}-{os.getpid()}"
            inv = tmp / f"inventory-{mb}.yaml"
            inv.write_text(INVENTORY.format(tmp=tmp / str(mb), repo=name, location=repo_root / name, index=index))
            os.environ["LIFEBOAT_INVENTORY"] = str(inv)
            repos.append(name)
            result, secs = run_backup_operator("elasticsearch", "snapshot",
                                               datetime(2030, 6, 1, tzinfo=UTC) + timedelta(hours=k), f"bench-{mb}")
            backup_id = result["backup_id"]
            m = Repository.from_inventory(load_inventory(), "us-west-2").manifest("elasticsearch", backup_id)
            snap = m.native["snapshot"]
            print(f"backup {backup_id} in {secs:.2f}s (counts {result['counts']})", flush=True)

            native, ours, phases = [], [], []
            for i in range(args.runs):
                target = f"bench-native-{i}-"
                t0 = time.monotonic()
                r = es.snapshot.restore(repository=name, snapshot=snap, indices=index, rename_pattern="(.+)",
                                        rename_replacement=target + "$1", include_global_state=False,
                                        include_aliases=False, wait_for_completion=True)
                native.append(time.monotonic() - t0)
                shards = r["snapshot"]["shards"]
                assert shards["failed"] == 0 and shards["successful"] == shards["total"], r
                es.indices.delete(index=target + index)

                out = jobs.restore_drill("elasticsearch", backup_id=backup_id,
                                         run={"dag_id": "bench", "run_id": f"bench-{mb}-{i}"})
                if out.error is not None or out.summary.get("rto_seconds") is None:
                    raise SystemExit(f"restore test failed: {out.error!r} {out.summary.get('reasons')}")
                ours.append(out.summary["rto_seconds"])
                phases.append(drill_steps(Repository.from_inventory(load_inventory(), "us-west-2"),
                                          out.summary["drill_id"]))
                print(f"run {i + 1}: native {native[-1]:.2f}s  restore-test RTO {ours[-1]:.2f}s", flush=True)
            n, o = statistics.median(native), statistics.median(ours)
            print(f"{mb} MB: native restore median {n:.2f}s, restore-test RTO median {o:.2f}s, ratio {o / n:.3f}x; "
                  "drill steps (mean s):")
            print_drill_steps(phases)
            curve.append({"bytes": size, "ours_s": o, "native_s": n})
            extra = {"size_mb": round(size / 1e6, 1), "seconds_native": n, "seconds_lifeboat": o, "native": native,
                     "ours": ours, "native_label": "POST _snapshot/_restore?wait_for_completion=true",
                     "docs": facts["docs"]}
            if k == len(sizes) - 1:
                extra["sizes"] = curve
            record(f"elasticsearch_restore_{mb}mb", "restore", o / n, args.runs, **extra)
        return 0
    finally:
        drop_repositories(es, repos)
        for i in range(args.runs):
            for mb in sizes:
                es.options(ignore_status=404).indices.delete(index=f"bench-native-{i}-{index_for(mb)}")
        shutil.rmtree(repo_root, ignore_errors=True)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())

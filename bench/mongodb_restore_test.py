#!/usr/bin/env python3
"""Benchmark: the MongoDB restore test's measured RTO vs a plain native restore of the same backup, at
two data sizes, same run.

    .venv/bin/python bench/mongodb_restore_test.py [--sizes 20000,60000] [--doc-bytes 1000] [--runs 3]

Starts a private FerretDB (bench/_mongo.py), and for each size (ascending; the collection grows to it):
fills benchdb.docs, takes ONE full backup through the engine into a file:// repository (not timed,
on a fresh empty oplog: see bench/_mongo.fresh_oplog), then --runs times each, alternating who goes first:

  native    the plain load of the same dump files into an empty database: each collection's
            .metadata.json.gz and .bson.gz read from the repository folder, gunzip, bson.decode_all
            into RawBSONDocuments, insert_many in batches of 1000, createIndexes from the metadata
            (what mongorestore --gzip does for one collection; mongorestore itself is not on this machine)
  lifeboat  MongoDatastore.restore_test(full, "latest", drill): the drill's RTO, the clock of
            Datastore.restored() (first restore step .. ready AND verified: load the dump, the documents'
            count and content hashes against the dump, the oplog window replayed, exact counts)

Records bench/results/mongodb_restore_test_<n>k.json per size (kind "restore": RTO median / native
median, goal <= 1.20; size_mb, seconds_native, seconds_lifeboat, series "mongodb_restore_test" for
bench/run.py's size curve) and prints where the RTO went (drill steps inside the clock).
"""

from __future__ import annotations

import argparse
import gzip
import re
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

from _mongo import bench_ferretdb, engine, fresh_oplog, seed
from common import record

SERIES = "mongodb_restore_test"


def plain_load(client, folder: Path, m, target_db: str) -> int:
    """The native restore: every dumped collection's files, loaded with nothing but pymongo."""
    import bson
    from bson.codec_options import CodecOptions
    from bson.json_util import loads
    from bson.raw_bson import RawBSONDocument

    raw_opts = CodecOptions(document_class=RawBSONDocument)
    n = 0
    for ns, info in m.native["collections"].items():
        name = ns.partition(".")[2]
        meta = loads(gzip.decompress((folder / info["metadata"]).read_bytes()).decode())
        docs = bson.decode_all(gzip.decompress((folder / info["file"]).read_bytes()), raw_opts)
        coll = client[target_db][name]
        for i in range(0, len(docs), 1000):
            coll.insert_many(docs[i:i + 1000], ordered=False)
        n += len(docs)
        specs = [{k: v for k, v in ix.items() if k != "v"} for ix in meta["indexes"] if ix["name"] != "_id_"]
        if specs:
            client[target_db].command("createIndexes", name, indexes=specs)
    return n


def backup_folder(eng, m) -> Path:
    """The backup's folder in the file:// repository (bench inventory: file://<tmp>/repo-w2)."""
    from lifeboat.layout import Layout

    url = eng.ctx.repo.url_of(Layout.backup(m.datastore, m.id))
    if not url.startswith("file://"):
        raise SystemExit(f"the bench repository is not a file:// folder: {url}")
    return Path(url[len("file://"):])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="20000,60000", help="document counts, ascending, comma-separated")
    ap.add_argument("--doc-bytes", type=int, default=1000)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    sizes = sorted(int(s) for s in args.sizes.split(","))

    from lifeboat.drills import DrillRecorder
    from lifeboat.inventory import Objectives

    summary = []
    with bench_ferretdb("lifeboat-bench-mongo-rt-") as (tmp, client):
        eng = engine(tmp)
        have = 0
        for size in sizes:
            t = time.perf_counter()
            have = seed(client, size, args.doc_bytes, start=have)
            print(f"\n=== {have} documents (seeded in {time.perf_counter() - t:.1f}s)", flush=True)
            fresh_oplog(client)
            m = eng.backup("full", f"bench-rt-{size}")
            info = m.native["collections"]["benchdb.docs"]
            assert info["documents"] == have, (info["documents"], have)
            mb = sum(i["bytes"] for i in m.native["collections"].values()) / 1e6
            root = backup_folder(eng, m)
            native: list[float] = []
            ours: list[float] = []
            steps: dict[str, list[float]] = defaultdict(list)

            def run_native(run: int, root: Path = root, m=m, size: int = size, native: list = native,
                           have: int = have) -> None:
                db = f"plain_rt_{size}_{run}"
                client.drop_database(db)
                t = time.perf_counter()
                n = plain_load(client, root, m, db)
                native.append(time.perf_counter() - t)
                total = sum(i["documents"] for i in m.native["collections"].values())
                assert n == total and client[db].command("collStats", "docs")["count"] == have, (n, total, have)
                client.drop_database(db)

            def run_lifeboat(run: int, m=m, ours: list = ours, steps: dict = steps) -> None:
                rec = DrillRecorder(datastore=eng.name, type_="restore_test", objectives=Objectives(),
                                    target="latest")
                eng.restore_test(m, "latest", rec)
                d = rec.finish()
                assert d.rto_seconds is not None, d.reasons
                ours.append(d.rto_seconds)
                inside = False
                for s in d.steps:
                    if s.name == d.rto_started_at_step:
                        inside = True
                    if inside:
                        steps[re.sub(r"counts at \S+", "counts at <until_ts>", s.name)].append(s.seconds or 0.0)
                    if s.name == d.rto_stopped_after_step:
                        inside = False

            for run in range(args.runs):
                pair = [run_native, run_lifeboat] if run % 2 == 0 else [run_lifeboat, run_native]
                for fn in pair:
                    fn(run)
                print(f"  run {run + 1}: native {native[-1]:.2f}s, restore test RTO {ours[-1]:.2f}s "
                      f"({ours[-1] / native[-1]:.2f}x)", flush=True)
            n_med, o_med = statistics.median(native), statistics.median(ours)
            ratio = o_med / n_med
            print(f"  {have} documents, {mb:.1f} MB raw BSON: native median {n_med:.2f}s, RTO median {o_med:.2f}s,"
                  f" ratio {ratio:.3f}")
            print("  where the RTO went (mean per run, drill steps inside the clock):")
            for name, vals in steps.items():
                print(f"    {name:<40} {sum(vals) / len(vals):7.2f}s")
            record(f"{SERIES}_{size // 1000}k", "restore", ratio, args.runs, series=SERIES, documents=have,
                   size_mb=round(mb, 2), bytes=int(mb * 1e6), seconds_native=native, seconds_lifeboat=ours,
                   native_s=n_med, ours_s=o_med,
                   steps={k: sum(v) / len(v) for k, v in steps.items()},
                   native_label="plain load of the dump files (gunzip + decode_all raw + insert_many + createIndexes)")
            summary.append((have, mb, n_med, o_med))
        if len(summary) > 1:
            (n1, mb1, a1, b1), (n2, mb2, a2, b2) = summary[0], summary[-1]
            print(f"\ngrowth {n1} -> {n2} documents ({mb2 / mb1:.2f}x the data): native {a2 / a1:.2f}x the time, "
                  f"restore test RTO {b2 / b1:.2f}x the time")
        return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Benchmark: MongoDB full dump and restore through the Lifeboat engine vs plain pymongo, same run.

    .venv/bin/python bench/mongodb_dump_restore.py [--docs 40000] [--doc-bytes 1000] [--runs 3]

Starts a private FerretDB (the devstack's binary, SQLite, replica-set name, 127.0.0.1, free port, temp
folder -- not the devstack's server), fills one collection with --docs documents of ~--doc-bytes of
mostly incompressible data, then creates the capped local.oplog.rs (after seeding, so the bulk load
does not sit in the oplog: FerretDB v1 reads its whole oplog for every oplog query, which would be
measured as engine time although no MongoDB has that cost; for the same reason the oplog is recreated
empty before each engine dump, since the restores below write into it). Then, --runs times each:

  dump     plain:    a pymongo cursor reading every document as raw BSON (what any dump has to do)
           lifeboat: MongoDatastore.backup("full"): the same read + gzip + per-document sha256 content
                     hash + consistent point + oplog window + sha256/upload to a file:// repository +
                     manifest
  restore  plain:    insert_many of the same documents (already in memory) into a fresh database
           lifeboat: the restore test's "load full dump" (read the gzip BSON back from the repository,
                     insert_many in batches, create the indexes) into a scratch database

The order of plain and lifeboat alternates between runs. Throughput is MB of raw BSON per second;
ratios are lifeboat/plain throughput of the medians (1.0 = as fast as the plain client; < 1 = slower),
recorded as bench/results/mongodb_dump.json and mongodb_restore_load.json (kind "throughput"), with
where the engine's dump time went (phases). Everything started is stopped and the temp folder deleted.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections import defaultdict

from _mongo import bench_ferretdb, engine, fresh_oplog, seed
from common import phase_timer, print_phases, record


def instrument(phases: dict[str, list[float]]) -> None:
    """Where the engine's dump time goes: the collection dump, the consistent point, the oplog window,
    the upload and the manifest."""
    from lifeboat.datastores.mongodb import engine as eng_mod
    from lifeboat.datastores.mongodb.server import LiveServer
    from lifeboat.repository import Repository

    wrap = phase_timer(phases)
    eng_mod.dump_collections = wrap("dump collections (read + hash + gzip)", eng_mod.dump_collections)
    LiveServer.consistent_point = wrap("consistent point (counts + settle)", LiveServer.consistent_point)
    LiveServer.write_oplog = wrap("oplog window file", LiveServer.write_oplog)
    Repository.put_artifact = wrap("upload (sha256 + copy; dump files beside the consistent point)",
                                   Repository.put_artifact)
    Repository.commit = wrap("manifest commit", Repository.commit)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--docs", type=int, default=40000)
    ap.add_argument("--doc-bytes", type=int, default=1000)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()

    from bson.codec_options import CodecOptions
    from bson.raw_bson import RawBSONDocument

    from lifeboat.datastores.mongodb.scratch import compare_with_dump, load_dump

    phases: dict[str, list[float]] = defaultdict(list)
    with bench_ferretdb("lifeboat-bench-mongo-") as (tmp, client):
        t = time.perf_counter()
        n = seed(client, args.docs, args.doc_bytes)
        print(f"seeded benchdb.docs: {n} documents in {time.perf_counter() - t:.1f}s")
        eng = engine(tmp)
        instrument(phases)
        raw = client.benchdb.get_collection("docs", codec_options=CodecOptions(document_class=RawBSONDocument))

        results: dict[str, list[float]] = {"dump_plain": [], "dump_lifeboat": [], "restore_plain": [],
                                           "restore_lifeboat": []}
        mb = 0.0
        m = None
        for run in range(args.runs):
            def dump_plain() -> None:
                nonlocal mb
                t = time.perf_counter()
                nbytes = sum(len(d.raw) for d in raw.find({}, batch_size=1000))
                results["dump_plain"].append(time.perf_counter() - t)
                mb = nbytes / 1e6

            def dump_lifeboat(run: int = run) -> None:
                nonlocal m
                fresh_oplog(client)  # see the module docstring
                t = time.perf_counter()
                m = eng.backup("full", f"bench-full-{run}")
                results["dump_lifeboat"].append(time.perf_counter() - t)
                assert m.native["collections"]["benchdb.docs"]["documents"] == n

            def restore_plain(run: int = run) -> None:
                docs = list(raw.find({}, batch_size=1000))
                target = client[f"plain_restore_{run}"].docs
                t = time.perf_counter()
                for i in range(0, len(docs), 1000):
                    target.insert_many(docs[i:i + 1000], ordered=False)
                target.create_index("n", name="n_1")
                results["restore_plain"].append(time.perf_counter() - t)
                client.drop_database(f"plain_restore_{run}")

            def restore_lifeboat(run: int = run) -> None:
                assert m is not None
                with eng._session() as c:
                    scratch = eng.scratch_for(c, f"bench-{run}")
                    try:
                        t = time.perf_counter()
                        load_dump(eng.ctx.repo, eng.options, m, scratch)
                        results["restore_lifeboat"].append(time.perf_counter() - t)
                        compare_with_dump(eng.options, m, scratch)  # (not timed) the restore is exact
                    finally:
                        scratch.drop_all()

            # alternate who goes first, so a drift of the machine's load does not favour one side
            order = [dump_plain, dump_lifeboat] if run % 2 == 0 else [dump_lifeboat, dump_plain]
            order += [restore_plain, restore_lifeboat] if run % 2 == 0 else [restore_lifeboat, restore_plain]
            for step in order:
                step()
            print(f"run {run + 1}: " + ", ".join(f"{k} {v[-1]:.2f}s" for k, v in results.items()), flush=True)

        assert m is not None
        med = {k: statistics.median(v) for k, v in results.items()}
        rate = {k: mb / v for k, v in med.items()}
        dump_ratio = rate["dump_lifeboat"] / rate["dump_plain"]
        restore_ratio = rate["restore_lifeboat"] / rate["restore_plain"]
        gz = sum(a.size for a in m.artifacts if a.path.endswith("docs.bson.gz")) / 1e6
        print(f"\ndata: {n} documents, {mb:.1f} MB raw BSON (gzip level {eng.options.gzip_level} in the backup: "
              f"{gz:.1f} MB) on FerretDB/SQLite")
        for key, label in (("dump_plain", "dump    plain pymongo cursor read"),
                           ("dump_lifeboat", "dump    lifeboat full backup"),
                           ("restore_plain", "restore plain insert_many"),
                           ("restore_lifeboat", "restore lifeboat load_dump")):
            print(f"{label:42} {rate[key]:8.1f} MB/s  (median {med[key]:.2f}s; runs "
                  f"{', '.join(f'{x:.2f}' for x in results[key])})")
        print("  where the lifeboat dump's time went (mean per run):")
        print_phases(phases, args.runs)
        print(f"dump throughput ratio (lifeboat / plain):    {dump_ratio:.3f}")
        print(f"restore throughput ratio (lifeboat / plain): {restore_ratio:.3f}")
        common = {"documents": n, "raw_mb": round(mb, 2), "gzip_mb": round(gz, 2),
                  "gzip_level": eng.options.gzip_level}
        record("mongodb_dump", "throughput", dump_ratio, args.runs, **common,
               mb_per_s_native=rate["dump_plain"], mb_per_s_lifeboat=rate["dump_lifeboat"],
               seconds_native=results["dump_plain"], seconds_lifeboat=results["dump_lifeboat"],
               phases={k: sum(v) / args.runs for k, v in phases.items()},
               native_label="plain pymongo cursor read (RawBSONDocument)")
        record("mongodb_restore_load", "throughput", restore_ratio, args.runs, **common,
               mb_per_s_native=rate["restore_plain"], mb_per_s_lifeboat=rate["restore_lifeboat"],
               seconds_native=results["restore_plain"], seconds_lifeboat=results["restore_lifeboat"],
               native_label="plain insert_many of the documents already in memory")
        return 0


if __name__ == "__main__":
    sys.exit(main())

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

Throughput is MB of raw BSON per second; ratios are lifeboat/plain throughput (1.0 = as fast as the
plain client; < 1 = slower). Everything started is stopped and the temp folder deleted at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import ROOT, inventory, wait_serving

from devstack.components._common import stop_process
from lifeboat.net import free_port

INVENTORY = inventory("mongodb", '{{full: {{schedule: "30 1 * * *"}}, oplog: {{schedule: "*/15 * * * *"}}}}',
                      "{{databases: [benchdb], heartbeat_database: benchdb}}")


def start_ferretdb(tmp: Path) -> tuple[subprocess.Popen, str]:
    from devstack.components import mongodb as comp

    exe = comp.ensure_binary(print)
    port = free_port()
    (tmp / "data").mkdir()
    with open(tmp / "ferretdb.log", "wb") as logf:  # the child keeps its own descriptor
        proc = subprocess.Popen(comp.ferretdb_argv(exe, tmp / "data", port, state=tmp, replset="bench"),
                                stdout=logf, stderr=subprocess.STDOUT, start_new_session=True)
    wait_serving("FerretDB", proc, lambda: socket.create_connection(("127.0.0.1", port), timeout=0.3).close() or 1,
                 tmp / "ferretdb.log", 60)
    return proc, f"mongodb://127.0.0.1:{port}/?directConnection=true"


def seed(client, docs: int, doc_bytes: int) -> int:
    coll = client.benchdb.docs
    coll.create_index("n", name="n_1")
    batch = []
    for i in range(docs):
        batch.append({"_id": i, "n": i, "name": f"user-{i}", "tags": ["a", "b", str(i % 7)],
                      "payload": os.urandom(doc_bytes // 2).hex()[: doc_bytes - 80]})
        if len(batch) == 1000:
            coll.insert_many(batch)
            batch = []
    if batch:
        coll.insert_many(batch)
    return coll.count_documents({})


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--docs", type=int, default=40000)
    ap.add_argument("--doc-bytes", type=int, default=1000)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()

    import pymongo
    from bson.codec_options import CodecOptions
    from bson.raw_bson import RawBSONDocument

    from lifeboat.datastores.base import EngineContext
    from lifeboat.datastores.mongodb import MongoDatastore
    from lifeboat.datastores.mongodb.scratch import compare_with_dump, load_dump
    from lifeboat.drills import DrillRecorder
    from lifeboat.inventory import Objectives, parse_inventory
    from lifeboat.repository import Repository

    tmp = Path(tempfile.mkdtemp(prefix="lifeboat-bench-mongo-"))
    proc = None
    try:
        proc, uri = start_ferretdb(tmp)
        os.environ["AIRFLOW_CONN_LIFEBOAT_BENCH_MONGODB"] = uri
        client = pymongo.MongoClient(uri, tz_aware=True)
        t = time.perf_counter()
        n = seed(client, args.docs, args.doc_bytes)
        print(f"seeded benchdb.docs: {n} documents in {time.perf_counter() - t:.1f}s")

        inv = parse_inventory(INVENTORY.format(tmp=tmp), "bench inventory")
        spec = inv.datastore("mongodb")
        eng = MongoDatastore(EngineContext(inventory=inv, spec=spec, repo=Repository.from_inventory(inv),
                                           run={"dag_id": "bench", "run_id": "bench"}))
        raw = client.benchdb.get_collection("docs", codec_options=CodecOptions(document_class=RawBSONDocument))

        results: dict[str, list[float]] = {"dump_plain": [], "dump_lifeboat": [], "restore_plain": [],
                                           "restore_lifeboat": []}
        mb = 0.0
        for run in range(args.runs):
            t = time.perf_counter()
            nbytes = sum(len(d.raw) for d in raw.find({}, batch_size=1000))
            results["dump_plain"].append(time.perf_counter() - t)
            mb = nbytes / 1e6

            client.local.drop_collection("oplog.rs")  # a fresh oplog: see the module docstring
            client.local.create_collection("oplog.rs", capped=True, size=16 * 2**20)
            t = time.perf_counter()
            m = eng.backup("full", f"bench-full-{run}")
            results["dump_lifeboat"].append(time.perf_counter() - t)
            assert m.native["collections"]["benchdb.docs"]["documents"] == n

            docs = list(raw.find({}, batch_size=1000))
            target = client[f"plain_restore_{run}"].docs
            t = time.perf_counter()
            for i in range(0, len(docs), 1000):
                target.insert_many(docs[i:i + 1000], ordered=False)
            target.create_index("n", name="n_1")
            results["restore_plain"].append(time.perf_counter() - t)
            client.drop_database(f"plain_restore_{run}")
            del docs

            rec = DrillRecorder(datastore="mongodb", type_="bench", objectives=Objectives())
            with eng._session() as c:
                scratch = eng.scratch_for(c, f"bench-{run}")
                try:
                    t = time.perf_counter()
                    load_dump(eng.ctx.repo, eng.options, m, scratch)
                    results["restore_lifeboat"].append(time.perf_counter() - t)
                    compare_with_dump(eng.options, m, scratch)  # (not timed) the restore is exact
                finally:
                    scratch.drop_all()
            del rec
            print(f"run {run + 1}: " + ", ".join(f"{k} {v[-1]:.2f}s" for k, v in results.items()), flush=True)

        med = {k: statistics.median(v) for k, v in results.items()}
        rate = {k: mb / v for k, v in med.items()}
        dump_ratio = rate["dump_lifeboat"] / rate["dump_plain"]
        restore_ratio = rate["restore_lifeboat"] / rate["restore_plain"]
        gz = sum(a.size for a in m.artifacts if a.path.endswith("docs.bson.gz")) / 1e6
        print(f"\ndata: {n} documents, {mb:.1f} MB raw BSON (gzip in the backup: {gz:.1f} MB) on FerretDB/SQLite")
        for key, label in (("dump_plain", "dump    plain pymongo cursor read"),
                           ("dump_lifeboat", "dump    lifeboat full backup"),
                           ("restore_plain", "restore plain insert_many"),
                           ("restore_lifeboat", "restore lifeboat load_dump")):
            print(f"{label:42} {rate[key]:8.1f} MB/s  (median {med[key]:.2f}s)")
        print(f"dump throughput ratio (lifeboat / plain):    {dump_ratio:.3f}")
        print(f"restore throughput ratio (lifeboat / plain): {restore_ratio:.3f}")
        out = ROOT / "bench" / "results"
        out.mkdir(parents=True, exist_ok=True)
        (out / "mongodb_dump_restore.json").write_text(json.dumps(
            {"documents": n, "raw_mb": mb, "gzip_mb": gz, "seconds": results, "mb_per_s": rate,
             "dump_ratio": dump_ratio, "restore_ratio": restore_ratio}, indent=2))
        client.close()
        return 0
    finally:
        if proc is not None:
            stop_process(proc, 15)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())

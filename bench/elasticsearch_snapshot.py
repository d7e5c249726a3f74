#!/usr/bin/env python3
"""Benchmark: an Elasticsearch snapshot through Lifeboat's BackupOperator vs the raw snapshot API call.

    .venv/bin/python bench/elasticsearch_snapshot.py [--mb 300] [--runs 3] [--state .stack-bench] [--drop]

Uses the devstack's Elasticsearch node of --state (started with devstack/components/elasticsearch.py
when it is not running; state defaults to <repo>/.stack-bench, never the tests' or the demo's),
fills index `bench-docs` (2 shards, 0 replicas) with ~--mb MB of documents (random, incompressible
text, so the stored size is the size; kept between runs of the bench unless --drop), then
alternates, --runs times each, every time into a FRESH fs repository (so both snapshots are full,
never incremental):

  raw       PUT _snapshot/<repo>/<snap>?wait_for_completion=true      (the one API call)
  lifeboat  BackupOperator(kind="snapshot").execute(ctx)              (the task the backup DAG runs:
            register the repository (with verify), resolve indices + health, max_seq_no before/after,
            refresh + counts + sampled hashes, snapshot with wait_for_completion=false + polling,
            index details, snapshot.json artifact, manifest written last)

and prints the medians, the overhead ratio lifeboat/raw and where the extra time goes. The bench
repositories (registrations and folders) are removed at the end.
"""

from __future__ import annotations

import argparse
import base64
import os
import shutil
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "plugins"), str(ROOT)]

from common import (  # noqa: E402
    INVENTORY_HEADER,
    phase_timer,
    print_phases,
    print_ratio,
    record,
    run_backup_operator,
)

INDEX = "bench-docs"

INVENTORY = INVENTORY_HEADER + """
  elasticsearch:
    engine: elasticsearch
    connections: {{us-west-2: lifeboat_bench_es, us-east-1: lifeboat_bench_es}}
    backups: {{snapshot: {{schedule: "0 * * * *"}}}}
    options:
      repository: {{name: {repo}, type: fs, location: "{location}"}}
      indices: [{index}]
      sample_docs: 20
"""


def fill(es, mb: int, index: str = INDEX) -> dict:
    """~mb MB of stored documents in `index`; reused when the index already has about that size."""
    from elasticsearch import helpers

    doc_bytes = 4096
    n = mb * 1_000_000 // doc_bytes
    if es.indices.exists(index=index):
        if es.count(index=index)["count"] == n:
            return {"docs": n, "reused": True}
        es.indices.delete(index=index)
    es.indices.create(index=index, settings={"number_of_shards": 2, "number_of_replicas": 0,
                                             "refresh_interval": "-1"},
                      mappings={"properties": {"n": {"type": "long"}, "blob": {"type": "text", "index": False},
                                               "tag": {"type": "keyword"}}})

    def docs():
        for i in range(n):
            yield {"_index": index, "_id": str(i),
                   "_source": {"n": i, "tag": f"t{i % 100}",
                               "blob": base64.b64encode(os.urandom(doc_bytes * 3 // 4 - 48)).decode()}}

    for _ok, _item in helpers.streaming_bulk(es, docs(), chunk_size=1000, max_chunk_bytes=8 * 1024 * 1024,
                                             raise_on_error=True, request_timeout=120):
        pass  # consume the generator: it raises on the first failed item
    es.indices.put_settings(index=index, settings={"refresh_interval": None})
    es.indices.refresh(index=index)
    es.indices.flush(index=index)
    return {"docs": n, "reused": False}


def node(state: str, repo_dir: str):
    """The bench stack's Elasticsearch node (started when down), a client, the snapshot repository folder
    `repo_dir` below its path.repo, and a temp folder with the Airflow env the operators need."""
    from devstack.components import elasticsearch as component

    env = component.up(Path(state), print)
    url = env["LIFEBOAT_ES_URL"]
    tmp = Path(tempfile.mkdtemp(prefix=f"lifeboat-{repo_dir}-es-"))
    os.environ.update({
        "AIRFLOW_HOME": str(tmp / "airflow"), "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__UNIT_TEST_MODE": "True", "AIRFLOW_CONN_LIFEBOAT_BENCH_ES": url,
    })
    from elasticsearch import Elasticsearch

    return Elasticsearch(url, request_timeout=600), Path(env["LIFEBOAT_ES_REPO_PATH"]) / repo_dir, tmp


def drop_repositories(es, repos: list[str]) -> None:
    """Delete every snapshot of each bench repository, then the repository registration."""
    for name in repos:
        try:
            for s in es.snapshot.get(repository=name, snapshot="_all")["snapshots"]:
                es.snapshot.delete(repository=name, snapshot=s["snapshot"])
            es.snapshot.delete_repository(name=name)
        except Exception as exc:
            print(f"clean-up of repository {name}: {exc}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mb", type=int, default=300, help="approximate index size in MB (default 300)")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--state", default=str(ROOT / ".stack-bench"), help="devstack state dir of the node")
    ap.add_argument("--drop", action="store_true", help="delete the bench index at the end")
    args = ap.parse_args()

    es, repo_root, tmp = node(args.state, "bench")
    repos: list[str] = []
    try:
        t = time.monotonic()
        facts = fill(es, args.mb)
        stats = es.indices.stats(index=INDEX, metric="store")["indices"][INDEX]["primaries"]["store"]
        size = stats["size_in_bytes"]
        print(f"index {INDEX}: {facts['docs']} docs, {size / 1e6:.0f} MB on disk "
              f"({'reused' if facts['reused'] else f'filled in {time.monotonic() - t:.0f}s'})")

        from lifeboat.datastores.elasticsearch.cluster import Cluster

        phases: dict[str, list[float]] = {"snapshot (PUT, wait_for_completion)": [],
                                          "counts + samples + seq_no": [], "repository registration": [],
                                          "snapshot details + _status": [], "manifest commit": []}

        timed = phase_timer(phases)

        from lifeboat.repository import Repository

        Cluster.take_snapshot = timed("snapshot (PUT, wait_for_completion)", Cluster.take_snapshot)
        Cluster.status = timed("snapshot details + _status", Cluster.status)
        Repository.commit = timed("manifest commit", Repository.commit)
        Cluster.ensure_repository = timed("repository registration", Cluster.ensure_repository)
        for f in ("counts", "sample", "max_seq_nos"):
            setattr(Cluster, f, timed("counts + samples + seq_no", getattr(Cluster, f)))

        raw, lifeboat = [], []
        base = datetime(2030, 1, 1, tzinfo=UTC)
        for i in range(args.runs):
            name = f"bench-raw-{i}"
            es.snapshot.create_repository(name=name, repository={"type": "fs", "settings": {
                "location": str(repo_root / name)}})
            repos.append(name)
            t = time.monotonic()
            r = es.snapshot.create(repository=name, snapshot="s", indices=INDEX, wait_for_completion=True)
            raw.append(time.monotonic() - t)
            assert r["snapshot"]["state"] == "SUCCESS", r

            name = f"bench-lifeboat-{i}"
            inv = tmp / f"inventory-{i}.yaml"
            inv.write_text(INVENTORY.format(tmp=tmp, repo=name, location=repo_root / name, index=INDEX))
            os.environ["LIFEBOAT_INVENTORY"] = str(inv)
            repos.append(name)
            result, secs = run_backup_operator("elasticsearch", "snapshot", base + timedelta(hours=i), f"bench-{i}")
            lifeboat.append(secs)
            print(f"run {i + 1}: raw {raw[-1]:.2f}s  lifeboat {lifeboat[-1]:.2f}s  ({result['backup_id']}, "
                  f"counts {result['counts']})")

        r_med, lb_med = statistics.median(raw), statistics.median(lifeboat)
        print(f"\nindex {size / 1e6:.0f} MB, {facts['docs']} docs, 2 shards; medians of {args.runs} runs, "
              "each into a fresh repository (full snapshot):")
        print(f"  raw PUT _snapshot?wait_for_completion=true  {r_med:7.2f}s")
        print(f"  BackupOperator (snapshot)                   {lb_med:7.2f}s   of which:")
        print_phases(phases, args.runs)
        print_ratio("lifeboat/raw", raw, lifeboat)
        record("elasticsearch_snapshot", "backup", lb_med / r_med, args.runs, native=raw, ours=lifeboat,
               native_label="PUT _snapshot?wait_for_completion=true", index_bytes=size, docs=facts["docs"],
               phases={k: round(sum(v) / args.runs, 3) for k, v in phases.items()})
        return 0
    finally:
        drop_repositories(es, repos)
        shutil.rmtree(repo_root, ignore_errors=True)
        if args.drop:
            es.options(ignore_status=404).indices.delete(index=INDEX)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Benchmark: the catalog at 10,000 backups, on file:// and on the S3 endpoint (moto).

    .venv/bin/python bench/catalog_scale.py [--backups 10000] [--drills 2000] [--runs 3] [--backend file,s3]

For each backend: a repository with --backups manifests of one datastore (2 artifacts each, as a
pgBackRest backup has), one verification each and --drills restore-test drills, then, --runs times
each, from a fresh Repository (no cache in the process):

  list        Catalog.backups (every complete backup, oldest first)
  retention   Catalog.retention_plan with keep_last/daily/weekly/monthly rules
  latest      Catalog.latest(verified=True) (what a restore test picks)
  dr_page     the DR page's JSON: ui.data.load_snapshot + /datastores and /health bodies serialised
  incomplete  Repository.incomplete (the DR page's interrupted-backup count)

Seeding writes the records in parallel and builds the catalog index once from a listing
(Repository.repair_index, what the mirror job does); then --commits more backups go through the
normal commit path (manifest, then index segment, compaction), and their median commit time is
reported. Each operation's median must stay under 2 s: one bench/results/catalog_<backend>_<op>.json
each, kind "catalog", ratio = median seconds / 2 s.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

from common import ROOT, record, wait_serving

from lifeboat.net import free_port

BUDGET = 2.0
DS = "postgres"
INVENTORY = """version: 1
platform: bench
regions: {{primary: us-west-2, standby: us-east-1}}
repository:
  us-west-2: {{url: "{url_w}"{conn}}}
  us-east-1: {{url: "{url_e}"{conn}}}
workdir: {tmp}/work
datastores:
  postgres:
    engine: postgres
    connections: {{us-west-2: lifeboat_bench_pg, us-east-1: lifeboat_bench_pg}}
    backups: {{full: {{schedule: "0 1 * * 0"}}, diff: {{schedule: "0 1 * * 1-6"}}, incr: {{schedule: "0 * * * *"}}}}
    retention: {{keep_last: 3, keep_daily: 7, keep_weekly: 4, keep_monthly: 12}}
    options: {{stanza: community, databases: [community]}}
"""


def manifest(i: int, t0: datetime):
    from lifeboat.records import Artifact, Manifest

    kind = "full" if i % 168 == 0 else ("diff" if i % 24 == 0 else "incr")
    start = t0 + timedelta(hours=i)
    parent = None if kind == "full" else f"{DS}-full-{(start - timedelta(hours=i % 168)).strftime('%Y%m%dT%H%M%SZ')}"
    return Manifest(
        id=f"{DS}-{kind}-{start.strftime('%Y%m%dT%H%M%SZ')}", datastore=DS, engine="postgres", kind=kind,
        series="physical", region="us-west-2", started_at=start, finished_at=start + timedelta(seconds=90),
        parent=parent,
        position={"start_lsn": f"0/{i:08X}", "stop_lsn": f"0/{i + 1:08X}", "wal_start": f"{i:024X}",
                  "wal_stop": f"{i + 1:024X}", "restore_point": f"lifeboat-{i}", "restore_point_lsn": f"0/{i:08X}"},
        artifacts=[Artifact(path="pgbackrest/backup.manifest", size=64, sha256="a" * 64),
                   Artifact(path="logical.dump", size=64, sha256="b" * 64)],
        counts={f"public.table_{t}": i * 10 + t for t in range(12)},
        tools={"pgbackrest": "2.45", "postgres": "15.18"},
        native={"label": f"20300101-{i:06d}F", "type": kind, "stanza": "community", "repo": "repo1",
                "backup_bytes": 1_000_000 + i, "database_bytes": 5_000_000},
        source="lifeboat_bench_pg (127.0.0.1:5432/community)", run={"dag_id": "lifeboat_backup", "run_id": f"r{i}"},
        restore_hint="pgbackrest --stanza=community --set=<label> --type=immediate restore "
                     " (docs/datastores/postgres.md)",
    )


def seed(repo, n: int, drills: int) -> float:
    from lifeboat.layout import DRILLS, Layout
    from lifeboat.records import Check, Drill, DrillStep, Verification

    t0 = datetime(2029, 1, 1, tzinfo=UTC)
    art = b"x" * 64

    def one(i: int) -> None:
        m = manifest(i, t0)
        for a in m.artifacts:
            repo.primary.put_bytes(Layout.artifact(DS, m.id, a.path), art)
        repo.primary.put_bytes(Layout.manifest(DS, m.id), m.to_json())
        v = Verification(backup_id=m.id, datastore=DS, verified_at=m.finished_at + timedelta(minutes=5),
                         ok=i % 50 != 7, checks=[Check(name="artifact checksums", ok=True, detail="2 files match"),
                                                 Check(name="pgbackrest verify", ok=i % 50 != 7, detail="ok")])
        repo.primary.put_bytes(Layout.verification(DS, m.id, v.verified_at), v.to_json())
        if i < drills:
            at = t0 + timedelta(hours=i * n / max(drills, 1))
            d = Drill(id=f"{DS}-restore-test-{at.strftime('%Y%m%dT%H%M%SZ')}", type="restore_test", datastore=DS,
                      backup_id=m.id, started_at=at, finished_at=at + timedelta(minutes=3),
                      steps=[DrillStep(name=s, started_at=at, finished_at=at + timedelta(seconds=30), ok=True)
                             for s in ("choose backup", "pgbackrest restore", "pg_amcheck", "newest heartbeat")],
                      restore_started_at=at, ready_at=at + timedelta(minutes=2), rto_seconds=120.0, rpo_seconds=4.0,
                      objective_rto_seconds=3600, objective_rpo_seconds=900, verdict="pass")
            repo.primary.put_bytes(Layout.drill(d.id), d.to_json())

    t = time.perf_counter()
    with ThreadPoolExecutor(1 if repo.primary.cheap_listing else 16) as pool:
        list(pool.map(one, range(n)))
    repo.repair_index([f"{DS}.backups", f"{DS}.verifications", DRILLS])
    return time.perf_counter() - t


def operations(inv, region: str):
    from lifeboat.catalog import Catalog
    from lifeboat.repository import Repository
    from lifeboat.ui import data

    spec = inv.datastore(DS)

    def fresh() -> Repository:
        return Repository.from_inventory(inv, region)

    def dr_page() -> int:
        snap = data.load_snapshot(region, inventory=inv)
        assert snap.status == "ok", snap.message
        body = json.dumps({"source": snap.source(), "datastores": snap.datastores}, default=str)
        return len(body)

    return {
        "list": lambda: len(Catalog(fresh()).backups(DS)),
        "retention": lambda: len(Catalog(fresh()).retention_plan(DS, spec.retention).delete),
        "latest": lambda: Catalog(fresh()).latest(DS, verified=True).id,
        "dr_page": dr_page,
        "incomplete": lambda: len(fresh().incomplete(DS)),
    }


def start_moto(tmp: Path) -> tuple[subprocess.Popen, str]:
    exe = Path(sys.executable).parent / "moto_server"
    port = free_port()
    log = tmp / "moto.log"
    with open(log, "wb") as fh:
        proc = subprocess.Popen([str(exe), "-H", "127.0.0.1", "-p", str(port)], stdout=fh, stderr=subprocess.STDOUT,
                                start_new_session=True)
    import urllib.request

    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    wait_serving("moto_server", proc, lambda: opener.open(f"http://127.0.0.1:{port}/", timeout=1).status == 200,
                 log, 60)
    return proc, f"http://127.0.0.1:{port}"


def bench_backend(backend: str, args, tmp: Path) -> list[dict]:
    from lifeboat.inventory import parse_inventory
    from lifeboat.repository import Repository

    moto = None
    try:
        if backend == "s3":
            moto, endpoint = start_moto(tmp)
            os.environ["AIRFLOW_CONN_LIFEBOAT_BENCH_S3"] = json.dumps(
                {"conn_type": "aws", "login": "testing", "password": "testing",
                 "extra": {"endpoint_url": endpoint, "region_name": "us-west-2"}})
            from lifeboat.clients import aws

            s3 = aws.client("s3", "lifeboat_bench_s3")
            for b in ("bench-w2", "bench-e1"):
                s3.create_bucket(Bucket=b, CreateBucketConfiguration={"LocationConstraint": "us-west-2"})
            urls = {"url_w": "s3://bench-w2/lifeboat", "url_e": "s3://bench-e1/lifeboat",
                    "conn": ", connection: lifeboat_bench_s3"}
        else:
            urls = {"url_w": f"file://{tmp}/repo-w2", "url_e": f"file://{tmp}/repo-e1", "conn": ""}
        inv = parse_inventory(INVENTORY.format(tmp=tmp, **urls), "catalog bench inventory")
        repo = Repository.from_inventory(inv)
        secs = seed(repo, args.backups, args.drills)
        print(f"[{backend}] seeded {args.backups} backups, {args.backups} verifications, {args.drills} drills "
              f"and built the index in {secs:.1f}s", flush=True)

        # more backups through the normal commit path: manifest, then index segment (+ compaction)
        commit_s = []
        t0 = datetime(2029, 1, 1, tzinfo=UTC)
        for i in range(args.backups, args.backups + args.commits):
            m = manifest(i, t0)
            for a in m.artifacts:
                repo.primary.put_bytes(repo.layout.artifact(DS, m.id, a.path), b"x" * 64)
            t = time.perf_counter()
            repo.commit(m)
            commit_s.append(time.perf_counter() - t)
        print(f"[{backend}] {args.commits} commits through Repository.commit: median "
              f"{statistics.median(commit_s) * 1000:.1f} ms, max {max(commit_s) * 1000:.0f} ms", flush=True)

        out = []
        ops = operations(inv, "us-west-2")
        for name, fn in ops.items():
            times, value = [], None
            for _ in range(args.runs):
                t = time.perf_counter()
                value = fn()
                times.append(time.perf_counter() - t)
            med = statistics.median(times)
            print(f"[{backend}] {name:<11} median {med:6.3f}s  runs {', '.join(f'{x:.3f}' for x in times)}  "
                  f"-> {value}", flush=True)
            out.append(record(f"catalog_{backend}_{name}", "catalog", med / BUDGET, args.runs, seconds=times,
                              median_seconds=med, budget_seconds=BUDGET, backups=args.backups + args.commits,
                              verifications=args.backups, drills=args.drills, result=str(value)[:80],
                              commit_ms_median=statistics.median(commit_s) * 1000))
        return out
    finally:
        if moto is not None:
            from devstack.components._common import stop_process

            stop_process(moto, 15)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--backups", type=int, default=10000)
    ap.add_argument("--drills", type=int, default=2000)
    ap.add_argument("--commits", type=int, default=100)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--backend", default="file,s3")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="lifeboat-bench-catalog-"))
    os.environ.update({"AIRFLOW_HOME": str(tmp / "airflow"), "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                       "AIRFLOW__CORE__UNIT_TEST_MODE": "True",
                       "AIRFLOW_CONN_LIFEBOAT_BENCH_PG": "postgresql://u:p@127.0.0.1:1/community"})
    try:
        results = [r for b in args.backend.split(",") for r in bench_backend(b.strip(), args, tmp)]
        worst = max(results, key=lambda r: r["ratio"])
        print(f"\nslowest operation: {worst['name']} {worst['median_seconds']:.3f}s (budget {BUDGET:.0f}s)")
        return 0 if all(r["ok"] for r in results) else 1
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    sys.exit(main())

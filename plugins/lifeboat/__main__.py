"""`python -m lifeboat` — the jobs without Airflow, for the runbook and the standby region.

    PYTHONPATH=plugins python -m lifeboat catalog postgres
    PYTHONPATH=plugins python -m lifeboat backup postgres --kind full
    PYTHONPATH=plugins python -m lifeboat restore-test postgres [--backup ID] [--target latest|ISO]
    PYTHONPATH=plugins python -m lifeboat --region us-east-1 catalog postgres   # read the standby copy
    PYTHONPATH=plugins python -m lifeboat runbook region-loss                   # from the standby copy
    (also: runbooks, report, incidents [ack], metrics -- lifeboat/ops_cli.py)

Connections come from AIRFLOW_CONN_<ID> environment variables, exactly as Airflow reads them.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from datetime import UTC, datetime

from lifeboat import jobs
from lifeboat.catalog import Catalog
from lifeboat.errors import LifeboatError
from lifeboat.inventory import format_duration, load_inventory
from lifeboat.repository import Repository


def _catalog(args) -> int:
    inv = load_inventory()
    repo = Repository.from_inventory(inv, args.region)
    cat = Catalog(repo)
    vmap = cat.verification_map(args.datastore)
    print(f"{'backup id':48} {'kind':8} {'finished (UTC)':20} {'parent':40} verified")
    for m in cat.backups(args.datastore):
        v = vmap.get(m.id)
        print(f"{m.id:48} {m.kind:8} {m.finished_at.strftime('%Y-%m-%d %H:%M:%S'):20} {m.parent or '-':40} "
              f"{'-' if v is None else ('ok' if v.ok else 'FAILED')}")
    for b in repo.incomplete(args.datastore):
        print(f"{b:48} INCOMPLETE (no manifest: interrupted, never restorable from the catalog)")
    return 0


def _drills(args) -> int:
    repo = Repository.from_inventory(load_inventory(), args.region)
    for d in repo.drills():
        print(f"{d.id:56} {d.verdict:5} RTO={format_duration(d.rto_seconds):>7} "
              f"RPO={format_duration(d.rpo_seconds):>7} backup={d.backup_id}")
    return 0


def _heartbeat_loop(args) -> int:
    end = time.monotonic() + args.duration if args.duration else None
    while end is None or time.monotonic() < end:
        jobs.heartbeat(args.datastore)
        time.sleep(args.every)
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m lifeboat", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--region", help="read/write the repository copy of this region (default: primary)")
    p.add_argument("-v", "--verbose", action="store_true")
    sub = p.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("backup")
    b.add_argument("datastore")
    b.add_argument("--kind", required=True)
    b.add_argument("--at", help="logical time for the backup id (default: now)")
    v = sub.add_parser("verify")
    v.add_argument("datastore")
    v.add_argument("--backup", action="append", dest="backups")
    r = sub.add_parser("restore-test")
    r.add_argument("datastore")
    r.add_argument("--backup")
    r.add_argument("--target", default="latest")
    h = sub.add_parser("heartbeat")
    h.add_argument("datastore")
    h.add_argument("--every", type=float, default=0, help="repeat every N seconds")
    h.add_argument("--duration", type=float, default=0, help="with --every: stop after N seconds")
    sub.add_parser("mirror")
    t = sub.add_parser("retention")
    t.add_argument("datastore")
    t.add_argument("--apply", action="store_true", help="really delete (default: print the plan)")
    t.add_argument("--confirm", default="", help="with --apply: must repeat the datastore name")
    c = sub.add_parser("catalog")
    c.add_argument("datastore")
    sub.add_parser("drills")
    from lifeboat.ops_cli import add_commands

    add_commands(sub)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    run = {"dag_id": "cli", "run_id": f"cli__{datetime.now(UTC):%Y%m%dT%H%M%SZ}"}
    try:
        if getattr(args, "ops", None):
            return args.ops(args)
        if args.cmd == "backup":
            when = datetime.fromisoformat(args.at) if args.at else datetime.now(UTC)
            out = jobs.backup(args.datastore, args.kind, when, run=run)
        elif args.cmd == "verify":
            out = jobs.verify(args.datastore, args.backups, run=run)
        elif args.cmd == "restore-test":
            out = jobs.restore_test(args.datastore, args.backup, args.target, run=run)
        elif args.cmd == "heartbeat":
            if args.every:
                return _heartbeat_loop(args)
            out = jobs.heartbeat(args.datastore, run=run)
        elif args.cmd == "mirror":
            out = jobs.mirror(run=run)
        elif args.cmd == "retention":
            if args.apply and args.confirm != args.datastore:
                print(f"refused: --apply deletes backups; add --confirm {args.datastore} to proceed", file=sys.stderr)
                return 2
            out = jobs.retention(args.datastore, apply=args.apply, run=run)
        elif args.cmd == "catalog":
            return _catalog(args)
        else:
            return _drills(args)
    except LifeboatError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(out, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())

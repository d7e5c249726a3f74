"""`python -m lifeboat` — the jobs without Airflow, for the runbook and the standby region.

    PYTHONPATH=plugins python -m lifeboat catalog postgres
    PYTHONPATH=plugins python -m lifeboat backup postgres --kind full
    PYTHONPATH=plugins python -m lifeboat restore-test postgres [--backup ID] [--target latest|ISO]
    PYTHONPATH=plugins python -m lifeboat --region us-east-1 catalog postgres   # the standby copy
    PYTHONPATH=plugins python -m lifeboat --region us-east-1 restore-test redis # restore from it, there
    PYTHONPATH=plugins python -m lifeboat active-region                         # where the primaries are
    PYTHONPATH=plugins python -m lifeboat runbook region-loss                   # from the standby copy
    PYTHONPATH=plugins python -m lifeboat restore-resources kubernetes --namespace community \
        --resource deployments/api-gateway [--backup ID|latest] [--confirm community]   # dry run without --confirm
    (also: runbooks, report, incidents [ack], metrics -- lifeboat/ops_cli.py)

Every command acts in one region: --region, else $LIFEBOAT_REGION, else the active region (the
inventory's regions.primary until a failover records another). It reads that region's catalog copy,
writes only there, and never needs the other region: a restore test there restores from that copy into
that region's servers; backup, heartbeat and retention --apply refuse a region that is not active.

Connections come from AIRFLOW_CONN_<ID> environment variables, exactly as Airflow reads them.
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import sys
import time
from datetime import UTC, datetime

from lifeboat import jobs, regions
from lifeboat.catalog import Catalog
from lifeboat.errors import LifeboatError
from lifeboat.inventory import format_duration, load_inventory
from lifeboat.repository import Repository


def _catalog(args) -> int:
    inv = load_inventory()
    repo = Repository.from_inventory(inv, regions.acting_region(inv, args.region))
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
    inv = load_inventory()
    repo = Repository.from_inventory(inv, regions.acting_region(inv, args.region))
    for d in repo.drills():
        print(f"{d.id:56} {d.verdict:5} RTO={format_duration(d.rto_seconds):>7} "
              f"RPO={format_duration(d.rpo_seconds):>7} backup={d.backup_id}")
    return 0


def _heartbeat_loop(args) -> int:
    end = time.monotonic() + args.duration if args.duration else None
    while end is None or time.monotonic() < end:
        jobs.heartbeat(args.datastore, region=args.region)
        time.sleep(args.every)
    return 0


def _time(value: str) -> datetime:
    """--at: an ISO-8601 time with its time zone (a backup id is derived from it)."""
    try:
        t = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not an ISO-8601 time "
                                         "(e.g. 2026-11-27T03:00:00+00:00)") from None
    if t.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{value!r} has no time zone (add one, e.g. +00:00 for UTC)")
    return t


def _target(value: str) -> str:
    """--target: checked before a drill is recorded, so a typo leaves no failed drill in the catalog."""
    value = value.strip()
    if value == "latest" or re.fullmatch(r"(ts:)?\d+:\d+", value):  # latest, or a MongoDB oplog timestamp
        return value
    try:
        _time(value)
    except argparse.ArgumentTypeError as exc:
        raise argparse.ArgumentTypeError(f"{exc} -- or 'latest', or an oplog timestamp <seconds>:<inc>") from None
    return value


def _seconds(value: str) -> float:
    try:
        s = float(value)
    except ValueError:
        s = -1.0
    if not s >= 0 or s == float("inf"):
        raise argparse.ArgumentTypeError(f"{value!r} is not a number of seconds >= 0")
    return s


def _active_region(args) -> int:
    inv = load_inventory()
    print(json.dumps(regions.describe(inv, prefer=regions.acting_region(inv, args.region)), indent=2))
    return 0


def _check_names(args, inv) -> None:
    """--region ($LIFEBOAT_REGION) and the datastore name against the inventory, before anything runs."""
    if args.region is not None:
        regions.check_region(inv, args.region)
    regions.deployment_region(inv)  # a wrong LIFEBOAT_REGION is named as such
    if getattr(args, "datastore", None) is not None:
        inv.datastore(args.datastore)  # raises, naming the inventory and the datastores it has


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m lifeboat", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--region", help="act in this region: its catalog copy, its servers (default: $LIFEBOAT_REGION, "
                                    "else the active region; restore-resources: the cluster to restore into)")
    p.add_argument("-v", "--verbose", action="store_true")
    sub = p.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("backup")
    b.add_argument("datastore")
    b.add_argument("--kind", required=True)
    b.add_argument("--at", type=_time, help="logical time for the backup id, ISO-8601 with zone (default: now)")
    v = sub.add_parser("verify")
    v.add_argument("datastore")
    v.add_argument("--backup", action="append", dest="backups")
    r = sub.add_parser("restore-test")
    r.add_argument("datastore")
    r.add_argument("--backup")
    r.add_argument("--target", type=_target, default="latest",
                   help="latest (default), an ISO-8601 time with zone, or (MongoDB) an oplog timestamp <s>:<inc>")
    h = sub.add_parser("heartbeat")
    h.add_argument("datastore")
    h.add_argument("--every", type=_seconds, default=0, help="repeat every N seconds")
    h.add_argument("--duration", type=_seconds, default=0, help="with --every: stop after N seconds")
    sub.add_parser("mirror")
    t = sub.add_parser("retention")
    t.add_argument("datastore")
    t.add_argument("--apply", action="store_true", help="really delete (default: print the plan)")
    t.add_argument("--confirm", default="", help="with --apply: must repeat the datastore name")
    rr = sub.add_parser("restore-resources", help="bring deleted Kubernetes objects back into a live namespace "
                                                  "(only what is missing; a dry run unless --confirm)")
    rr.add_argument("datastore")
    rr.add_argument("--namespace", required=True)
    rr.add_argument("--resource", action="append", dest="resources", required=True,
                    help="<resource>/<name>, e.g. deployments/api-gateway (repeatable)")
    rr.add_argument("--backup", default="latest", help="a backup id, or latest (the newest verified backup)")
    rr.add_argument("--confirm", default="", help="must repeat the namespace; without it only the plan is shown")
    rp = sub.add_parser("repair", help="objects engines: copy to the replica exactly what it lacks (dry run)")
    rp.add_argument("datastore")
    rp.add_argument("--apply", action="store_true", help="really copy (default: name what would be copied)")
    rp.add_argument("--confirm", default="", help='with --apply: "repair <datastore>"')
    rp.add_argument("--include-different", action="store_true", help="also copy keys whose ETag differs")
    c = sub.add_parser("catalog")
    c.add_argument("datastore")
    sub.add_parser("drills")
    sub.add_parser("active-region", help="the active-region record (where the primaries are, since when)")
    from lifeboat.ops_cli import add_commands

    add_commands(sub)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    run = {"dag_id": "cli", "run_id": f"cli__{datetime.now(UTC):%Y%m%dT%H%M%SZ}"}
    try:
        if getattr(args, "ops", None):
            return args.ops(args)
        _check_names(args, load_inventory())
        where = args.region
        if args.cmd == "backup":
            out = jobs.backup(args.datastore, args.kind, args.at or datetime.now(UTC), run=run, region=where)
        elif args.cmd == "verify":
            out = jobs.verify(args.datastore, args.backups, run=run, region=where)
        elif args.cmd == "restore-test":
            out = jobs.restore_test(args.datastore, args.backup, args.target, run=run, region=where)
        elif args.cmd == "heartbeat":
            if args.every:
                return _heartbeat_loop(args)
            out = jobs.heartbeat(args.datastore, run=run, region=where)
        elif args.cmd == "mirror":
            out = jobs.mirror(run=run, region=where)
        elif args.cmd == "retention":
            if args.apply and args.confirm != args.datastore:
                print(f"refused: --apply deletes backups; add --confirm {args.datastore} to proceed", file=sys.stderr)
                return 2
            out = jobs.retention(args.datastore, apply=args.apply, run=run, region=where)
        elif args.cmd == "restore-resources":
            from lifeboat.datastores.kubernetes.recover import restore_resources

            out = restore_resources(args.datastore, namespace=args.namespace, resources=args.resources,
                                    backup=args.backup, region=where, confirm=args.confirm or None, run=run)
        elif args.cmd == "repair":
            out = jobs.repair_replica(args.datastore, dry_run=not args.apply, confirm=args.confirm,
                                      include_different=args.include_different, run=run)
        elif args.cmd == "catalog":
            return _catalog(args)
        elif args.cmd == "active-region":
            return _active_region(args)
        else:
            return _drills(args)
    except LifeboatError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(out, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())

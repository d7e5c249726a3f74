"""`python -m lifeboat` subcommands for operations (wired into lifeboat.__main__):

    runbook <scenario|datastore|index>   print a runbook from the catalog (default: the STANDBY region's copy)
    runbooks                             regenerate every runbook into both regions
    report monthly|quarterly [--period]  render a report into both regions' catalogs
    incidents [--all]                    open incidents (and, with --all, the closed ones)
    incidents ack <id> --by <name>       acknowledge: escalation stops at the next monitor round
    metrics [--no-exposure]              the Prometheus text the plugin serves at /lifeboat/metrics
    walstream <datastore> [--seconds N]  PostgreSQL: keep pg_receivewal streaming into wal_stream.folder
"""

from __future__ import annotations

import json
import sys


def add_commands(sub) -> None:
    rb = sub.add_parser("runbook", help="print a runbook (region-loss, database-failure, service-failure, "
                                        "a datastore, index) from the standby region's catalog copy")
    rb.add_argument("name")
    rb.set_defaults(ops=_runbook)
    sub.add_parser("runbooks", help="regenerate every runbook into both regions").set_defaults(ops=_runbooks)
    rp = sub.add_parser("report", help="render the monthly DR review or the quarterly analysis")
    rp.add_argument("kind", choices=["monthly", "quarterly"])
    rp.add_argument("--period", help="YYYY-MM / YYYY-Qn (default: the period before now)")
    rp.set_defaults(ops=_report)
    inc = sub.add_parser("incidents", help="list incidents, or `incidents ack <id> --by <name>`")
    inc.add_argument("action", nargs="?", choices=["list", "ack"], default="list")
    inc.add_argument("incident_id", nargs="?")
    inc.add_argument("--by", default="")
    inc.add_argument("--note", default="")
    inc.add_argument("--all", action="store_true", help="include closed incidents")
    inc.set_defaults(ops=_incidents)
    m = sub.add_parser("metrics", help="print the metrics Prometheus scrapes")
    m.add_argument("--no-exposure", action="store_true", help="catalog only (do not connect to the datastores)")
    m.set_defaults(ops=_metrics)
    w = sub.add_parser("walstream", help="PostgreSQL: run pg_receivewal into options.wal_stream.folder and keep it "
                                         "running (a systemd unit or sidecar runs this)")
    w.add_argument("datastore")
    w.add_argument("--seconds", type=float, default=0, help="stop after N seconds (default: until SIGTERM)")
    w.set_defaults(ops=_walstream)


def _walstream(args) -> int:
    import signal

    from lifeboat.datastores import open_engine
    from lifeboat.datastores.postgres.walstream import WalStreamSupervisor

    sup = WalStreamSupervisor(open_engine(args.datastore))
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: sup.stop())
    return sup.run(args.seconds or None)


def _runbook(args) -> int:
    from lifeboat.runbooks import jobs

    text, where = jobs.read(args.name, region=args.region)
    print(text)
    print(f"<!-- read from {where} -->", file=sys.stderr)
    return 0


def _runbooks(args) -> int:
    from lifeboat.runbooks import jobs

    print(json.dumps(jobs.generate(region=args.region, run={"dag_id": "cli"}), indent=2))
    return 0


def _report(args) -> int:
    from lifeboat.reports import jobs

    print(json.dumps(jobs.generate(args.kind, period=args.period, region=args.region), indent=2, default=str))
    return 0


def _incidents(args) -> int:
    from lifeboat.incidents import jobs

    if args.action == "ack":
        if not args.incident_id:
            print("usage: incidents ack <incident id> --by <name>", file=sys.stderr)
            return 2
        print(json.dumps(jobs.acknowledge(args.incident_id, args.by, note=args.note, region=args.region), indent=2))
        return 0
    for i in jobs.listing(region=args.region, include_closed=args.all):
        print(f"{i['id']:60} {i['max_severity']:8} {i['status']:12} level {i['level']}  {i['message']}")
    return 0


def _metrics(args) -> int:
    from lifeboat import metrics

    sys.stdout.write(metrics.render(metrics.collect(region=args.region, exposure=not args.no_exposure)).decode())
    return 0

"""The platform's API stand-in, one per region, plus the Route 53 zone that points at it (stdlib only).

    <state>/platform_api/ports.json          {region: port}, picked free once and kept
    <state>/platform_api/<region>.pid, .log  one `devstack/platform_api_server.py` per region

Each server answers GET /health (process up) and GET /ready (a real write + read on the region's
PostgreSQL and Redis, from the stack's env file) on 127.0.0.1 -- so a failover's verification step
checks something real: the standby region's API is not ready until its datastores are promoted.

On the stack's moto endpoint (its Route 53 API) it creates the hosted zone `community.example.com`
and the record `api.community.example.com` CNAME `api.us-west-2.community.example.com` when they are
missing (moto keeps state in memory only). An existing record is never changed: after a failover it
rightly points at the other region.

Exports: LIFEBOAT_API_<REGION>_URL (base URL of each region's API), AIRFLOW_CONN_LIFEBOAT_ROUTE53 (aws
connection with endpoint_url) and, for the failback's rebuilt standbys, the PostgreSQL replication
connections AIRFLOW_CONN_LIFEBOAT_PG_REPL_<REGION> (role `replicator`, from the stack's secrets).
"""

from __future__ import annotations

import json
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

try:
    from devstack.components import _common, _daemon
except ImportError:  # run as a script: python devstack/components/<name>.py
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from devstack.components import _common, _daemon

NAME = "platform_api"
REGIONS = ("us-west-2", "us-east-1")  # the devstack's primary and standby regions
PG_PORT_KEYS = {"us-west-2": "pg_primary", "us-east-1": "pg_standby"}
ZONE = "community.example.com"
RECORD = f"api.{ZONE}"
INITIAL_TARGET = f"api.{REGIONS[0]}.{ZONE}"
SERVER = Path(__file__).resolve().parents[1] / "platform_api_server.py"
NEEDLE = b"platform_api_server"
WAIT_S = 20.0
_R53_NS = "https://route53.amazonaws.com/doc/2013-04-01/"
_HTTP = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never via a proxy


def _error(message: str, log: Path | None = None, detail: str = "") -> Exception:
    return _common.component_error(NAME, message, log, detail)


def _root(state_dir: Path) -> Path:
    return Path(state_dir) / NAME


def _ports(state_dir: Path, create: bool) -> dict[str, int] | None:
    return _daemon.ports(state_dir, NAME, REGIONS, create)


def _pidfile(state_dir: Path, region: str) -> Path:
    return _root(state_dir) / f"{region}.pid"


def _get(url: str, timeout: float = 2.0) -> tuple[int, str]:
    try:
        with _HTTP.open(urllib.request.Request(url), timeout=timeout) as r:
            return r.status, r.read().decode(errors="replace")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(errors="replace")


def _healthy(port: int) -> bool:
    try:
        return _get(f"http://127.0.0.1:{port}/health", 1.0)[0] == 200
    except OSError:
        return False


def _start(state_dir: Path, region: str, port: int) -> None:
    _daemon.start(NAME, [sys.executable, SERVER, "--region", region, "--port", port,
                         "--env-file", Path(state_dir) / "env"],
                  log=_root(state_dir) / f"{region}.log", pidfile=_pidfile(state_dir, region),
                  ready=lambda: _healthy(port), timeout=WAIT_S, what=f"platform API stand-in ({region})")


# --------------------------------------------------------------------------- Route 53 on moto

def _route53(endpoint: str, method: str, path: str, body: bytes | None = None) -> tuple[int, str]:
    return _common.moto_call(endpoint, method, path, service="route53", body=body, timeout=5)


def _zone_id(endpoint: str) -> str | None:
    code, text = _route53(endpoint, "GET", f"/2013-04-01/hostedzonesbyname?dnsname={ZONE}&maxitems=1")
    if code != 200:
        raise _error(f"Route 53 ListHostedZonesByName on {endpoint} failed: HTTP {code}", detail=text[:300])
    for hz in _common.parse_xml(text).iter(f"{{{_R53_NS}}}HostedZone"):
        if (hz.findtext(f"{{{_R53_NS}}}Name") or "").rstrip(".") == ZONE:
            return (hz.findtext(f"{{{_R53_NS}}}Id") or "").rsplit("/", 1)[-1]
    return None


def record_value(endpoint: str) -> str | None:
    """The current value of api.community.example.com (None when the zone or record is missing)."""
    zid = _zone_id(endpoint)
    if zid is None:
        return None
    code, text = _route53(endpoint, "GET", f"/2013-04-01/hostedzone/{zid}/rrset?name={RECORD}&type=CNAME&maxitems=1")
    if code != 200:
        raise _error(f"Route 53 ListResourceRecordSets on {endpoint} failed: HTTP {code}", detail=text[:300])
    for rrs in _common.parse_xml(text).iter(f"{{{_R53_NS}}}ResourceRecordSet"):
        name = (rrs.findtext(f"{{{_R53_NS}}}Name") or "").rstrip(".")
        if name == RECORD and rrs.findtext(f"{{{_R53_NS}}}Type") == "CNAME":
            vals = [el.text.rstrip(".") for el in rrs.iter(f"{{{_R53_NS}}}Value") if el.text]
            return vals[0] if vals else None
    return None


def ensure_route53(endpoint: str) -> str:
    """Create the zone and the record when missing; never change an existing record."""
    zid = _zone_id(endpoint)
    notes = []
    if zid is None:
        body = (f'<CreateHostedZoneRequest xmlns="{_R53_NS}"><Name>{ZONE}</Name>'
                f"<CallerReference>lifeboat-devstack-{time.time_ns()}</CallerReference>"
                "<HostedZoneConfig><Comment>Lifeboat devstack</Comment></HostedZoneConfig>"
                "</CreateHostedZoneRequest>").encode()
        code, text = _route53(endpoint, "POST", "/2013-04-01/hostedzone", body)
        if code not in (200, 201):
            raise _error(f"Route 53 CreateHostedZone {ZONE} failed: HTTP {code}", detail=text[:300])
        zid = _zone_id(endpoint)
        notes.append(f"zone {ZONE} created")
    current = record_value(endpoint)
    if current is None:
        body = (f'<ChangeResourceRecordSetsRequest xmlns="{_R53_NS}"><ChangeBatch><Changes><Change>'
                f"<Action>CREATE</Action><ResourceRecordSet><Name>{RECORD}</Name><Type>CNAME</Type><TTL>60</TTL>"
                f"<ResourceRecords><ResourceRecord><Value>{INITIAL_TARGET}</Value></ResourceRecord></ResourceRecords>"
                "</ResourceRecordSet></Change></Changes></ChangeBatch></ChangeResourceRecordSetsRequest>").encode()
        code, text = _route53(endpoint, "POST", f"/2013-04-01/hostedzone/{zid}/rrset", body)
        if code != 200:
            raise _error(f"Route 53 CREATE {RECORD} failed: HTTP {code}", detail=text[:300])
        current = INITIAL_TARGET
        notes.append(f"{RECORD} -> {current}")
    return ", ".join(notes) or f"{RECORD} -> {current}"


# --------------------------------------------------------------------------- the contract

def up(state_dir: Path, say) -> dict[str, str]:
    ports = _ports(state_dir, create=True)
    started = [f"{r} :{ports[r]}" for r in REGIONS
               if _daemon.ensure(_pidfile(state_dir, r), NEEDLE, lambda r=r: _healthy(ports[r]),
                                 lambda r=r: _start(state_dir, r, ports[r]))]
    endpoint = _common.moto_endpoint(state_dir)
    note = ensure_route53(endpoint) if endpoint else "no moto endpoint in stack.json: Route 53 zone not created"
    if started or "created" in note:
        say(f"  {NAME:<10} started {', '.join(started) or 'nothing'}; route53: {note}")
    return env(state_dir, ports)


def env(state_dir: Path, ports: dict[str, int] | None = None) -> dict[str, str]:
    if not (ports := ports or _ports(state_dir, create=False)):
        return {}
    out = {f"LIFEBOAT_API_{r.upper().replace('-', '_')}_URL": f"http://127.0.0.1:{ports[r]}" for r in REGIONS}
    endpoint = _common.moto_endpoint(state_dir)
    if endpoint:
        out["AIRFLOW_CONN_LIFEBOAT_ROUTE53"] = _common.aws_conn(endpoint)
    try:
        password = json.loads((Path(state_dir) / "secrets.json").read_text())["replicator"]
        pg_ports = _common.stack_ports(state_dir)
    except (OSError, ValueError, KeyError):
        return out
    pw = urllib.parse.quote(password, safe="")
    for r in REGIONS:
        out[f"AIRFLOW_CONN_LIFEBOAT_PG_REPL_{r.upper().replace('-', '_')}"] = (
            f"postgresql://replicator:{pw}@127.0.0.1:{pg_ports[PG_PORT_KEYS[r]]}/postgres")
    return out


def down(state_dir: Path, say) -> str:
    return _daemon.stop_all(REGIONS, lambda r: _pidfile(state_dir, r), NEEDLE)


def status(state_dir: Path) -> dict:
    ports = _ports(state_dir, create=False)
    root = _root(state_dir)
    if not ports:
        return _daemon.not_initialised(root)
    res = {**_daemon.regional_status(REGIONS, lambda r: _pidfile(state_dir, r), NEEDLE, lambda r: _healthy(ports[r]),
                                     lambda r: root / f"{r}.log", ports[REGIONS[0]]),
           "status": ", ".join(f"{r}:{ports[r]}" for r in REGIONS)}
    endpoint = _common.moto_endpoint(state_dir)
    if endpoint:
        try:
            res["route53"] = f"{RECORD} -> {record_value(endpoint)}"
        except Exception as exc:
            res["route53"] = f"unknown ({exc})"
    return res

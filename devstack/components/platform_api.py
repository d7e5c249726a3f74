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

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import xml.etree.ElementTree as ET
from pathlib import Path

try:
    from devstack.components import _common
except ImportError:  # run as a script: python devstack/components/<name>.py
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from devstack.components import _common

NAME = "platform_api"
REGIONS = ("us-west-2", "us-east-1")  # the devstack's primary and standby regions
PG_PORT_KEYS = {"us-west-2": "pg_primary", "us-east-1": "pg_standby"}
ZONE = "community.example.com"
RECORD = f"api.{ZONE}"
INITIAL_TARGET = f"api.{REGIONS[0]}.{ZONE}"
SERVER = Path(__file__).resolve().parents[1] / "platform_api_server.py"
WAIT_S = 20.0
_R53_NS = "https://route53.amazonaws.com/doc/2013-04-01/"
_HTTP = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never via a proxy
_CHILDREN: dict[int, subprocess.Popen] = {}


def _error(message: str, log: Path | None = None, detail: str = "") -> Exception:
    return _common.component_error(NAME, message, log, detail)


def _root(state_dir: Path) -> Path:
    return Path(state_dir) / NAME


def _stack_json(state_dir: Path) -> dict:
    try:
        return json.loads((Path(state_dir) / "stack.json").read_text())
    except (OSError, ValueError):
        return {}


def _ports(state_dir: Path, create: bool) -> dict[str, int] | None:
    f = _root(state_dir) / "ports.json"
    if f.exists():
        return json.loads(f.read_text())
    if not create:
        return None
    _root(state_dir).mkdir(parents=True, exist_ok=True)
    used = set((_stack_json(state_dir).get("ports") or {}).values())
    for other in Path(state_dir).glob("*/ports.json"):
        with contextlib.suppress(OSError, ValueError, AttributeError, TypeError):
            used |= set(json.loads(other.read_text()).values())
    ports = {}
    for r in REGIONS:
        ports[r] = _common.free_port(used)
        used.add(ports[r])
    tmp = f.with_suffix(".tmp")
    tmp.write_text(json.dumps(ports, indent=2) + "\n")
    os.replace(tmp, f)
    return ports


def _pid(state_dir: Path, region: str) -> int | None:
    try:
        pid = int((_root(state_dir) / f"{region}.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    return pid if _common.proc_alive(pid, b"platform_api_server") else None


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
    root = _root(state_dir)
    log = root / f"{region}.log"
    with open(log, "ab") as out:
        out.write(f"\n=== {time.strftime('%Y-%m-%d %H:%M:%S')} starting on :{port}\n".encode())
        out.flush()
        proc = subprocess.Popen(
            [sys.executable, str(SERVER), "--region", region, "--port", str(port),
             "--env-file", str(Path(state_dir) / "env")],
            stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, start_new_session=True, close_fds=True)
    _CHILDREN[proc.pid] = proc
    (root / f"{region}.pid").write_text(f"{proc.pid}\n")
    deadline = time.monotonic() + WAIT_S
    while not _healthy(port):
        if proc.poll() is not None:
            raise _error(f"platform API stand-in ({region}) exited with rc={proc.returncode}", log, _common.tail(log))
        if time.monotonic() > deadline:
            raise _error(f"platform API stand-in ({region}) did not answer /health on 127.0.0.1:{port} "
                         f"within {WAIT_S:.0f}s", log, _common.tail(log))
        time.sleep(0.1)


def _stop(state_dir: Path, region: str) -> str:
    pid = _pid(state_dir, region)
    if not pid:
        return "not running"
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        proc = _CHILDREN.get(pid)
        if proc is not None and proc.poll() is not None:
            break
        if not _pid(state_dir, region):
            break
        time.sleep(0.1)
    else:
        os.kill(pid, signal.SIGKILL)
    _CHILDREN.pop(pid, None)
    return "stopped"


# --------------------------------------------------------------------------- Route 53 on moto

def _route53(endpoint: str, method: str, path: str, body: bytes | None = None) -> tuple[int, str]:
    # moto routes by the credential scope of the Authorization header (never checked)
    headers = {"Content-Type": "application/xml",
               "Authorization": "AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/route53/aws4_request, "
                                "SignedHeaders=host, Signature=devstack"}
    req = urllib.request.Request(endpoint + path, data=body, method=method, headers=headers)
    try:
        with _HTTP.open(req, timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(errors="replace")


def _parse_xml(text: str) -> ET.Element:
    """An answer of the devstack's own moto server on 127.0.0.1 (never outside input)."""
    return ET.fromstring(text)  # noqa: S314 - trusted: our own moto on loopback, started by this stack


def _zone_id(endpoint: str) -> str | None:
    code, text = _route53(endpoint, "GET", f"/2013-04-01/hostedzonesbyname?dnsname={ZONE}&maxitems=1")
    if code != 200:
        raise _error(f"Route 53 ListHostedZonesByName on {endpoint} failed: HTTP {code}", detail=text[:300])
    for hz in _parse_xml(text).iter(f"{{{_R53_NS}}}HostedZone"):
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
    for rrs in _parse_xml(text).iter(f"{{{_R53_NS}}}ResourceRecordSet"):
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


def _moto_endpoint(state_dir: Path) -> str | None:
    port = (_stack_json(state_dir).get("ports") or {}).get("moto")
    return f"http://127.0.0.1:{port}" if port else None


# --------------------------------------------------------------------------- the contract

def up(state_dir: Path, say) -> dict[str, str]:
    ports = _ports(state_dir, create=True)
    started = []
    for region in REGIONS:
        port = ports[region]
        if _pid(state_dir, region) and _healthy(port):
            continue
        if _pid(state_dir, region):
            _stop(state_dir, region)
        _start(state_dir, region, port)
        started.append(f"{region} :{port}")
    endpoint = _moto_endpoint(state_dir)
    note = ensure_route53(endpoint) if endpoint else "no moto endpoint in stack.json: Route 53 zone not created"
    if started or "created" in note:
        say(f"  {NAME:<10} started {', '.join(started) or 'nothing'}; route53: {note}")
    return env(state_dir, ports)


def env(state_dir: Path, ports: dict[str, int] | None = None) -> dict[str, str]:
    ports = ports or _ports(state_dir, create=False)
    if not ports:
        return {}
    out = {f"LIFEBOAT_API_{r.upper().replace('-', '_')}_URL": f"http://127.0.0.1:{ports[r]}" for r in REGIONS}
    endpoint = _moto_endpoint(state_dir)
    if endpoint:
        out["AIRFLOW_CONN_LIFEBOAT_ROUTE53"] = json.dumps(
            {"conn_type": "aws", "login": "testing", "password": "testing",
             "extra": {"endpoint_url": endpoint, "region_name": "us-east-1"}}, separators=(",", ":"))
    try:
        password = json.loads((Path(state_dir) / "secrets.json").read_text())["replicator"]
        pg_ports = _stack_json(state_dir)["ports"]
    except (OSError, ValueError, KeyError):
        return out
    pw = urllib.parse.quote(password, safe="")
    for r in REGIONS:
        out[f"AIRFLOW_CONN_LIFEBOAT_PG_REPL_{r.upper().replace('-', '_')}"] = (
            f"postgresql://replicator:{pw}@127.0.0.1:{pg_ports[PG_PORT_KEYS[r]]}/postgres")
    return out


def down(state_dir: Path, say) -> str:
    return ", ".join(f"{r} {_stop(state_dir, r)}" for r in reversed(REGIONS))


def status(state_dir: Path) -> dict:
    ports = _ports(state_dir, create=False)
    root = _root(state_dir)
    if not ports:
        return {"running": False, "error": "not initialised (run `stack.py up`)", "log": str(root)}
    up_ = {r: bool(_pid(state_dir, r)) and _healthy(ports[r]) for r in REGIONS}
    down_ = [r for r in REGIONS if not up_[r]]
    res = {"running": all(up_.values()), "port": ports[REGIONS[0]], "pid": _pid(state_dir, REGIONS[0]),
           "log": str(root / f"{(down_ or REGIONS)[0]}.log"),
           "status": ", ".join(f"{r}:{ports[r]}" for r in REGIONS)}
    endpoint = _moto_endpoint(state_dir)
    if endpoint:
        try:
            res["route53"] = f"{RECORD} -> {record_value(endpoint)}"
        except Exception as exc:
            res["route53"] = f"unknown ({exc})"
    return res

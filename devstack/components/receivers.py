"""Local receivers for the alert channels (stdlib only): `devstack/receivers_server.py`.

    <state>/receivers/ports.json     {"smtp": port, "http": port, "https": port}, picked free once and kept
    <state>/receivers/tls/           a self-signed certificate for 127.0.0.1 (openssl), for the https port
    <state>/receivers/inbox.jsonl    every message received (e-mail, PagerDuty event, Slack, SMS)
    <state>/receivers/server.pid/.log

An SMTP server (aiosmtpd), a PagerDuty Events API v2 stand-in, Slack's chat.postMessage and webhook
shapes, and an SNS HTTP subscription endpoint. On the stack's moto endpoint it creates the SMS topic
`dr-oncall-sms` (us-west-2) and subscribes the receiver to it, so the SMS channel goes the real way:
SnsNotifier -> SNS Publish -> HTTP delivery.

Exports the Airflow connections the inventory's channels name -- smtp_default, lifeboat_slack
(base_url), lifeboat_pagerduty (extra base_url), lifeboat_sns (moto endpoint) -- plus
LIFEBOAT_SMS_TOPIC_ARN and LIFEBOAT_RECEIVERS_URL (GET <url>/inbox lists what arrived).
"""

from __future__ import annotations

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
except ImportError:  # run as a script
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from devstack.components import _common

NAME = "receivers"
SERVER = Path(__file__).resolve().parents[1] / "receivers_server.py"
TOPIC, SNS_REGION = "dr-oncall-sms", "us-west-2"
ROUTING_KEY = "devstack0routing0key0000000000ab"  # 32 characters, like a PagerDuty integration key
WAIT_S = 20.0
_HTTP = urllib.request.build_opener(urllib.request.ProxyHandler({}))
_CHILDREN: dict[int, subprocess.Popen] = {}


def _root(state_dir: Path) -> Path:
    return Path(state_dir) / NAME


def _stack_ports(state_dir: Path) -> dict:
    try:
        return json.loads((Path(state_dir) / "stack.json").read_text()).get("ports") or {}
    except (OSError, ValueError):
        return {}


def _ports(state_dir: Path, create: bool) -> dict[str, int] | None:
    f = _root(state_dir) / "ports.json"
    if f.exists():
        return json.loads(f.read_text())
    if not create:
        return None
    _root(state_dir).mkdir(parents=True, exist_ok=True)
    used = set(_stack_ports(state_dir).values())
    for other in Path(state_dir).glob("*/ports.json"):
        try:
            used |= set(json.loads(other.read_text()).values())
        except (OSError, ValueError, AttributeError, TypeError):
            continue
    ports = {}
    for k in ("smtp", "http", "https"):
        ports[k] = _common.free_port(used)
        used.add(ports[k])
    f.write_text(json.dumps(ports, indent=2) + "\n")
    return ports


def _pid(state_dir: Path) -> int | None:
    try:
        pid = int((_root(state_dir) / "server.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    return pid if _common.proc_alive(pid, b"receivers_server") else None


def _healthy(ports: dict[str, int]) -> bool:
    try:
        with _HTTP.open(f"http://127.0.0.1:{ports['http']}/health", timeout=1) as r:
            return r.status == 200 and _common.port_open(ports["smtp"]) and _common.port_open(ports["https"])
    except OSError:
        return False


def ensure_cert(folder: Path) -> Path:
    """A self-signed certificate for 127.0.0.1 (10 years), made once with openssl."""
    cert, key = folder / "cert.pem", folder / "key.pem"
    if not (cert.exists() and key.exists()):
        folder.mkdir(parents=True, exist_ok=True)
        res = subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key),
                              "-out", str(cert), "-days", "3650", "-subj", "/CN=127.0.0.1",
                              "-addext", "subjectAltName=IP:127.0.0.1"], capture_output=True, text=True, check=False)
        if res.returncode != 0:
            raise _common.component_error(NAME, "openssl could not make the receivers' certificate",
                                          detail=res.stderr[-500:])
        key.chmod(0o600)
    return cert


def _start(state_dir: Path, ports: dict[str, int]) -> None:
    root = _root(state_dir)
    log = root / "server.log"
    ensure_cert(root / "tls")
    with open(log, "ab") as out:
        proc = subprocess.Popen([sys.executable, str(SERVER), "--dir", str(root), "--smtp-port", str(ports["smtp"]),
                                 "--http-port", str(ports["http"]), "--https-port", str(ports["https"]),
                                 "--tls-dir", str(root / "tls")], stdin=subprocess.DEVNULL, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True, close_fds=True)
    _CHILDREN[proc.pid] = proc
    (root / "server.pid").write_text(f"{proc.pid}\n")
    deadline = time.monotonic() + WAIT_S
    while not _healthy(ports):
        if proc.poll() is not None:
            raise _common.component_error(NAME, f"receivers exited with rc={proc.returncode}", log, _common.tail(log))
        if time.monotonic() > deadline:
            raise _common.component_error(NAME, f"receivers did not answer within {WAIT_S:.0f}s", log,
                                          _common.tail(log))
        time.sleep(0.1)


def _sns(endpoint: str, **params: str) -> ET.Element:
    body = urllib.parse.urlencode({**params, "Version": "2010-03-31"}).encode()
    req = urllib.request.Request(endpoint + "/", data=body, method="POST", headers={
        "Content-Type": "application/x-www-form-urlencoded",
        "Authorization": f"AWS4-HMAC-SHA256 Credential=testing/20260101/{SNS_REGION}/sns/aws4_request, "
                         "SignedHeaders=host, Signature=devstack"})
    try:
        with _HTTP.open(req, timeout=5) as r:
            return ET.fromstring(r.read())  # noqa: S314 -- the stack's own moto on loopback
    except urllib.error.HTTPError as e:
        raise _common.component_error(NAME, f"SNS {params.get('Action')} on {endpoint} failed: HTTP {e.code}",
                                      detail=e.read().decode(errors="replace")[:300]) from None


def ensure_sms_topic(endpoint: str, http_port: int) -> str:
    """The SMS topic in moto with the receiver subscribed over HTTP (idempotent: moto keeps state in memory)."""
    arn = next((el.text for el in _sns(endpoint, Action="CreateTopic", Name=TOPIC).iter()
                if el.tag.endswith("TopicArn")), None)
    if not arn:
        raise _common.component_error(NAME, f"SNS CreateTopic {TOPIC} returned no TopicArn")
    url = f"http://127.0.0.1:{http_port}/sns"
    subs = _sns(endpoint, Action="ListSubscriptionsByTopic", TopicArn=arn)
    found = False
    for member in (el for el in subs.iter() if el.tag.endswith("member")):
        ep = next((c.text for c in member if c.tag.endswith("Endpoint")), "")
        sub_arn = next((c.text for c in member if c.tag.endswith("SubscriptionArn")), "")
        if ep == url:
            found = True
        elif ep.startswith("http://127.0.0.1:") and ep.endswith("/sns"):  # an earlier receiver's port
            _sns(endpoint, Action="Unsubscribe", SubscriptionArn=sub_arn)
    if not found:
        _sns(endpoint, Action="Subscribe", TopicArn=arn, Protocol="http", Endpoint=url)
    return arn


def up(state_dir: Path, say) -> dict[str, str]:
    ports = _ports(state_dir, create=True)
    if not (_pid(state_dir) and _healthy(ports)):
        if _pid(state_dir):
            down(state_dir, say)
        _start(state_dir, ports)
        say(f"  {NAME:<10} smtp :{ports['smtp']}, http :{ports['http']}")
    return env(state_dir, ports)


def env(state_dir: Path, ports: dict[str, int] | None = None) -> dict[str, str]:
    ports = ports or _ports(state_dir, create=False)
    if not ports:
        return {}
    http = f"http://127.0.0.1:{ports['http']}"

    def conn(d: dict) -> str:
        return json.dumps(d, separators=(",", ":"))

    out = {
        "LIFEBOAT_RECEIVERS_URL": http,
        "AIRFLOW_CONN_SMTP_DEFAULT": conn({"conn_type": "smtp", "host": "127.0.0.1", "port": ports["smtp"],
                                           "extra": {"disable_ssl": True, "disable_tls": True, "timeout": 10,
                                                     "from_email": "lifeboat@community.example.com"}}),
        "AIRFLOW_CONN_LIFEBOAT_SLACK": conn({"conn_type": "slack", "password": "xoxb-devstack-receiver",
                                             "extra": {"base_url": f"{http}/api/"}}),
        "AIRFLOW_CONN_LIFEBOAT_PAGERDUTY": conn({"conn_type": "pagerduty_events", "password": ROUTING_KEY, "extra": {
            "base_url": f"https://127.0.0.1:{ports['https']}",
            "ca_bundle": str(_root(state_dir) / "tls" / "cert.pem")}}),
    }
    moto = _stack_ports(state_dir).get("moto")
    if moto:
        endpoint = f"http://127.0.0.1:{moto}"
        out["AIRFLOW_CONN_LIFEBOAT_SNS"] = conn({"conn_type": "aws", "login": "testing", "password": "testing",
                                                 "extra": {"endpoint_url": endpoint, "region_name": SNS_REGION}})
        out["LIFEBOAT_SMS_TOPIC_ARN"] = ensure_sms_topic(endpoint, ports["http"])
    return out


def down(state_dir: Path, say) -> str:
    pid = _pid(state_dir)
    if not pid:
        return "not running"
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and _pid(state_dir):
        proc = _CHILDREN.get(pid)
        if proc is not None and proc.poll() is not None:
            break
        time.sleep(0.1)
    else:
        if _pid(state_dir):
            os.kill(pid, signal.SIGKILL)
    _CHILDREN.pop(pid, None)
    return "stopped"


def status(state_dir: Path) -> dict:
    ports = _ports(state_dir, create=False)
    root = _root(state_dir)
    if not ports:
        return {"running": False, "error": "not initialised (run `stack.py up`)", "log": str(root)}
    return {"running": bool(_pid(state_dir)) and _healthy(ports), "pid": _pid(state_dir), "port": ports["http"],
            "status": f"smtp:{ports['smtp']} http:{ports['http']}", "log": str(root / "server.log")}


def inbox(url: str, kind: str | None = None, after: int = 0) -> list[dict]:
    """What the receivers got (tests, `make stack-status` users)."""
    q = urllib.parse.urlencode({k: v for k, v in (("kind", kind), ("after", after)) if v})
    with _HTTP.open(f"{url}/inbox?{q}", timeout=5) as r:
        return json.loads(r.read())["items"]

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
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
import xml.etree.ElementTree as ET
from pathlib import Path

try:
    from devstack.components import _common, _daemon
except ImportError:  # run as a script
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from devstack.components import _common, _daemon

NAME = "receivers"
SERVER = Path(__file__).resolve().parents[1] / "receivers_server.py"
NEEDLE = b"receivers_server"
TOPIC, SNS_REGION = "dr-oncall-sms", "us-west-2"
ROUTING_KEY = "devstack0routing0key0000000000ab"  # 32 characters, like a PagerDuty integration key
WAIT_S = 20.0
_HTTP = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _root(state_dir: Path) -> Path:
    return Path(state_dir) / NAME


def _ports(state_dir: Path, create: bool) -> dict[str, int] | None:
    return _daemon.ports(state_dir, NAME, ("smtp", "http", "https"), create)


def _pid(state_dir: Path) -> int | None:
    return _daemon.pid_of(_root(state_dir) / "server.pid", NEEDLE)


def _healthy(ports: dict[str, int]) -> bool:
    return _daemon.answers(f"http://127.0.0.1:{ports['http']}/health") and _common.port_open(ports["smtp"]) \
        and _common.port_open(ports["https"])


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
    ensure_cert(root / "tls")
    _daemon.start(NAME, [sys.executable, SERVER, "--dir", root, "--smtp-port", ports["smtp"], "--http-port",
                         ports["http"], "--https-port", ports["https"], "--tls-dir", root / "tls"],
                  log=root / "server.log", pidfile=root / "server.pid", ready=lambda: _healthy(ports),
                  timeout=WAIT_S, what="receivers")


def _sns(endpoint: str, **params: str) -> ET.Element:
    body = urllib.parse.urlencode({**params, "Version": "2010-03-31"}).encode()
    code, text = _common.moto_call(endpoint, "POST", "/", service="sns", region=SNS_REGION, body=body,
                                   content_type="application/x-www-form-urlencoded", timeout=5)
    if code != 200:
        raise _common.component_error(NAME, f"SNS {params.get('Action')} on {endpoint} failed: HTTP {code}",
                                      detail=text[:300])
    return _common.parse_xml(text)


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
    if _daemon.ensure(_root(state_dir) / "server.pid", NEEDLE, lambda: _healthy(ports),
                      lambda: _start(state_dir, ports)):
        say(f"  {NAME:<10} smtp :{ports['smtp']}, http :{ports['http']}")
    return env(state_dir, ports)


def env(state_dir: Path, ports: dict[str, int] | None = None) -> dict[str, str]:
    if not (ports := ports or _ports(state_dir, create=False)):
        return {}
    http = f"http://127.0.0.1:{ports['http']}"

    conn = _common.conn
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
    endpoint = _common.moto_endpoint(state_dir)
    if endpoint:
        out["AIRFLOW_CONN_LIFEBOAT_SNS"] = _common.aws_conn(endpoint, SNS_REGION)
        out["LIFEBOAT_SMS_TOPIC_ARN"] = ensure_sms_topic(endpoint, ports["http"])
    return out


def down(state_dir: Path, say) -> str:
    return _daemon.stop(_root(state_dir) / "server.pid", NEEDLE)


def status(state_dir: Path) -> dict:
    ports = _ports(state_dir, create=False)
    root = _root(state_dir)
    if not ports:
        return _daemon.not_initialised(root)
    return {"running": bool(_pid(state_dir)) and _healthy(ports), "pid": _pid(state_dir), "port": ports["http"],
            "status": f"smtp:{ports['smtp']} http:{ports['http']}", "log": str(root / "server.log")}


def inbox(url: str, kind: str | None = None, after: int = 0) -> list[dict]:
    """What the receivers got (tests, `make stack-status` users)."""
    q = urllib.parse.urlencode({k: v for k, v in (("kind", kind), ("after", after)) if v})
    with _HTTP.open(f"{url}/inbox?{q}", timeout=5) as r:
        return json.loads(r.read())["items"]

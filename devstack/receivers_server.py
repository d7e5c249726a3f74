#!/usr/bin/env python3
"""Local receivers for Lifeboat's alert channels (devstack and tests only), on 127.0.0.1:

  SMTP   a real SMTP server (aiosmtpd) accepting every message: the e-mail channel and digests
  HTTP   POST /v2/enqueue          a stand-in of PagerDuty's Events API v2 (the request and answer
  (and                             shapes of the real API: routing_key, event_action trigger /
  HTTPS)                           acknowledge / resolve, dedup_key, payload; 202 or 400). The
                                   PagerDuty client only talks https://: --https-port with --tls-dir
                                   (cert.pem + key.pem, self-signed for 127.0.0.1) serves the same routes
         POST /api/chat.postMessage  Slack's Web API method the provider's SlackNotifier calls
         POST /services/...        a Slack incoming-webhook URL (SlackWebhookNotifier)
         POST /sns                 an SNS HTTP(S) subscription endpoint (moto's SNS delivers the
                                   SMS topic's messages here: the SMS gateway stand-in)
         GET  /inbox[?kind=email]  everything received, oldest first (JSON)

Every message is also appended to <dir>/inbox.jsonl. Nothing is forwarded anywhere.

    python devstack/receivers_server.py --dir .stack/receivers --smtp-port 2525 --http-port 8125
"""

from __future__ import annotations

import argparse
import email
import email.policy
import json
import secrets
import sys
import threading
import time
from datetime import UTC, datetime
from http.server import ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

if __package__ in (None, ""):  # run as a script: the project root on the path for devstack.*
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from devstack.httpstub import JsonHandler


class Inbox:
    def __init__(self, folder: Path):
        self.file = folder / "inbox.jsonl"
        self.lock = threading.Lock()
        self.items: list[dict] = []
        if self.file.exists():
            for line in self.file.read_text().splitlines():
                try:
                    self.items.append(json.loads(line))
                except ValueError:
                    continue

    def add(self, kind: str, **fields) -> dict:
        item = {"kind": kind, "received_at": datetime.now(UTC).isoformat(), **fields}
        with self.lock:
            item["seq"] = len(self.items) + 1
            self.items.append(item)
            with open(self.file, "a") as fh:
                fh.write(json.dumps(item) + "\n")
        sys.stderr.write(f"{time.strftime('%H:%M:%S')} {kind}: {fields.get('summary') or fields.get('subject', '')}\n")
        return item


# --------------------------------------------------------------------------- SMTP (aiosmtpd)

class SmtpHandler:
    def __init__(self, inbox: Inbox):
        self.inbox = inbox

    async def handle_DATA(self, server, session, envelope):
        msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
        parts = [p for p in msg.walk() if p.get_content_maintype() == "text"] if msg.is_multipart() else [msg]
        body = "\n".join(p.get_content() for p in parts)
        self.inbox.add("email", mail_from=envelope.mail_from, rcpt_tos=list(envelope.rcpt_tos),
                       subject=str(msg.get("Subject", "")), to=str(msg.get("To", "")), body=body)
        return "250 Message accepted for delivery"


# --------------------------------------------------------------------------- HTTP

_PD_ACTIONS = ("trigger", "acknowledge", "resolve")
_PD_SEVERITIES = ("critical", "error", "warning", "info")


def pagerduty_event_errors(ev: dict) -> list[str]:
    """Validation as the Events API v2 documents it."""
    errors = []
    if not isinstance(ev.get("routing_key"), str) or len(ev["routing_key"]) != 32:
        errors.append("'routing_key' is invalid (32 characters expected)")
    action = ev.get("event_action")
    if action not in _PD_ACTIONS:
        errors.append(f"'event_action' must be one of {', '.join(_PD_ACTIONS)}")
    if action in ("acknowledge", "resolve") and not ev.get("dedup_key"):
        errors.append("'dedup_key' is required for acknowledge and resolve")
    if action == "trigger":
        p = ev.get("payload") or {}
        for f in ("summary", "source", "severity"):
            if not p.get(f):
                errors.append(f"'payload.{f}' is missing or blank")
        if p.get("severity") and p["severity"] not in _PD_SEVERITIES:
            errors.append(f"'payload.severity' must be one of {', '.join(_PD_SEVERITIES)}")
    return errors


class Handler(JsonHandler):
    server_version = "lifeboat-receivers/1"
    inbox: Inbox

    def log_message(self, fmt: str, *args) -> None:
        sys.stderr.write(f"{time.strftime('%H:%M:%S')} http {fmt % args}\n")

    def _body(self) -> bytes:
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def do_GET(self) -> None:
        url = urlparse(self.path)
        if url.path == "/inbox":
            q = parse_qs(url.query)
            kind = q.get("kind", [None])[0]
            after = int(q.get("after", ["0"])[0])
            with self.inbox.lock:
                items = [i for i in self.inbox.items if (kind is None or i["kind"] == kind) and i["seq"] > after]
            self._send(200, {"items": items})
        elif url.path == "/health":
            self._send(200, {"status": "up"})
        else:
            self._send(404, {"error": f"no route {url.path}"})

    def do_POST(self) -> None:
        path = urlparse(self.path).path
        raw = self._body()
        if path == "/v2/enqueue":
            try:
                ev = json.loads(raw)
            except ValueError:
                self._send(400, {"status": "invalid event", "message": "Event object is invalid",
                                 "errors": ["body is not JSON"]})
                return
            errors = pagerduty_event_errors(ev)
            if errors:
                self._send(400, {"status": "invalid event", "message": "Event object is invalid", "errors": errors})
                return
            dedup = ev.get("dedup_key") or secrets.token_hex(16)
            p = ev.get("payload") or {}
            self.inbox.add("pagerduty", event_action=ev["event_action"], dedup_key=dedup, summary=p.get("summary", ""),
                           severity=p.get("severity", ""), source=p.get("source", ""),
                           custom_details=p.get("custom_details"), routing_key_suffix=ev["routing_key"][-4:])
            self._send(202, {"status": "success", "message": "Event processed", "dedup_key": dedup})
        elif path == "/api/chat.postMessage":
            if not (self.headers.get("Authorization") or "").startswith("Bearer "):
                self._send(200, {"ok": False, "error": "not_authed"})
                return
            ctype = self.headers.get("Content-Type", "")
            data = json.loads(raw or b"{}") if "json" in ctype else {k: v[0] for k, v in parse_qs(raw.decode()).items()}
            if not data.get("channel"):
                self._send(200, {"ok": False, "error": "channel_not_found"})
                return
            ts = f"{time.time():.6f}"
            self.inbox.add("slack", channel=data["channel"], text=data.get("text", ""), api="chat.postMessage", ts=ts)
            self._send(200, {"ok": True, "channel": data["channel"], "ts": ts, "message": {"text": data.get("text")}})
        elif path.startswith("/services/"):
            data = json.loads(raw or b"{}")
            self.inbox.add("slack", channel=data.get("channel", path), text=data.get("text", ""), api="webhook")
            self._send(200, "ok", "text/plain")
        elif path == "/sns":
            try:
                note = json.loads(raw)
            except ValueError:
                self._send(400, {"error": "not JSON"})
                return
            self.inbox.add("sms", message=note.get("Message", ""), topic_arn=note.get("TopicArn", ""),
                           sns_type=note.get("Type", ""), summary=(note.get("Message") or "").splitlines()[0:1])
            self._send(200, {"ok": True})
        else:
            self._send(404, {"error": f"no route {path}"})


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dir", type=Path, required=True)
    ap.add_argument("--smtp-port", type=int, required=True)
    ap.add_argument("--http-port", type=int, required=True)
    ap.add_argument("--https-port", type=int, default=0)
    ap.add_argument("--tls-dir", type=Path)
    args = ap.parse_args(argv)
    args.dir.mkdir(parents=True, exist_ok=True)
    inbox = Inbox(args.dir)

    from aiosmtpd.controller import Controller

    smtp = Controller(SmtpHandler(inbox), hostname="127.0.0.1", port=args.smtp_port)
    smtp.start()
    Handler.inbox = inbox
    http = ThreadingHTTPServer(("127.0.0.1", args.http_port), Handler)
    http.daemon_threads = True
    if args.https_port:
        import ssl

        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(args.tls_dir / "cert.pem", args.tls_dir / "key.pem")
        https = ThreadingHTTPServer(("127.0.0.1", args.https_port), Handler)
        https.daemon_threads = True
        https.socket = ctx.wrap_socket(https.socket, server_side=True)
        threading.Thread(target=https.serve_forever, daemon=True, name="https").start()
    sys.stderr.write(f"receivers: smtp 127.0.0.1:{args.smtp_port}, http 127.0.0.1:{args.http_port}\n")
    sys.stderr.flush()
    try:
        http.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        smtp.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())

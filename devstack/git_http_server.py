#!/usr/bin/env python3
"""Git's smart HTTP protocol on 127.0.0.1, behind basic auth (devstack only, stdlib only).

    python devstack/git_http_server.py --root <dir with *.git> --port 9418 --auth-file secrets.json [--read-only]

Every request is authenticated (HTTP basic, user/password from the JSON file --auth-file names,
{"username", "password"}, read at start) and handed to `git http-backend` (CGI) with GIT_PROJECT_ROOT
= --root. With --read-only pushes are refused (403): the standby mirror only changes by `git fetch`.
Chunked request bodies are decoded before they reach http-backend; responses are streamed.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import hmac
import json
import os
import shutil
import subprocess
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit


class Handler(BaseHTTPRequestHandler):
    server_version = "lifeboat-git-http/1"
    protocol_version = "HTTP/1.0"  # responses end with the connection: no Content-Length needed

    def log_message(self, fmt, *args):  # no Authorization headers or bodies in the log
        sys.stderr.write(f"{self.address_string()} {fmt % args}\n")

    def _authorized(self) -> bool:
        header = self.headers.get("Authorization", "")
        if not header.startswith("Basic "):
            return False
        try:
            user, _, password = base64.b64decode(header[6:]).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            return False
        cfg = self.server.auth  # type: ignore[attr-defined]
        return hmac.compare_digest(user.encode(), cfg["username"].encode()) and hmac.compare_digest(
            password.encode(), cfg["password"].encode())

    def _deny(self, code: int, message: str) -> None:
        self.send_response(code)
        if code == 401:
            self.send_header("WWW-Authenticate", 'Basic realm="lifeboat-config"')
        self.send_header("Content-Type", "text/plain")
        self.end_headers()
        self.wfile.write(message.encode() + b"\n")

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            out = bytearray()
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return bytes(out)
                out += self.rfile.read(size)
                self.rfile.readline()
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def _handle(self) -> None:
        if not self._authorized():
            self._deny(401, "authentication required")
            return
        url = urlsplit(self.path)
        service = "git-receive-pack" if ("service=git-receive-pack" in url.query
                                         or url.path.endswith("/git-receive-pack")) else ""
        if service and self.server.read_only:  # type: ignore[attr-defined]
            self._deny(403, "this repository is a read-only mirror")
            return
        body = self._body() if self.command == "POST" else b""
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "GIT_PROJECT_ROOT": str(self.server.root),  # type: ignore[attr-defined]
            "GIT_HTTP_EXPORT_ALL": "1",
            "GIT_CONFIG_NOSYSTEM": "1",
            "HOME": str(self.server.root),  # type: ignore[attr-defined]
            "REQUEST_METHOD": self.command,
            "PATH_INFO": url.path,
            "QUERY_STRING": url.query,
            "CONTENT_TYPE": self.headers.get("Content-Type", ""),
            "CONTENT_LENGTH": str(len(body)),
            "REMOTE_USER": self.server.auth["username"],  # type: ignore[attr-defined]
            "REMOTE_ADDR": self.client_address[0],
            "SERVER_PROTOCOL": "HTTP/1.1",
            "GATEWAY_INTERFACE": "CGI/1.1",
        }
        for header, var in (("Content-Encoding", "HTTP_CONTENT_ENCODING"), ("Git-Protocol", "GIT_PROTOCOL")):
            if self.headers.get(header):
                env[var] = self.headers[header]
        proc = subprocess.Popen([self.server.git, "http-backend"], stdin=subprocess.PIPE,  # type: ignore[attr-defined]
                                stdout=subprocess.PIPE, stderr=sys.stderr, env=env)
        assert proc.stdin is not None and proc.stdout is not None
        try:
            proc.stdin.write(body)
            proc.stdin.close()
        except BrokenPipeError:
            pass
        status, headers = 200, []
        while True:
            line = proc.stdout.readline()
            if line in (b"\r\n", b"\n", b""):
                break
            key, _, value = line.decode("latin-1").rstrip("\r\n").partition(":")
            if key.lower() == "status":
                status = int(value.strip().split()[0])
            else:
                headers.append((key, value.strip()))
        self.send_response(status)
        for key, value in headers:
            self.send_header(key, value)
        self.end_headers()
        while chunk := proc.stdout.read(65536):
            self.wfile.write(chunk)
        proc.wait()

    do_GET = _handle
    do_POST = _handle


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", required=True, type=Path)
    ap.add_argument("--port", required=True, type=int)
    ap.add_argument("--auth-file", required=True, type=Path)
    ap.add_argument("--read-only", action="store_true")
    args = ap.parse_args(argv)
    git = shutil.which("git")
    if not git:
        print("git not on PATH", file=sys.stderr)
        return 2
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.root = args.root.resolve()  # type: ignore[attr-defined]
    server.auth = json.loads(args.auth_file.read_text())  # type: ignore[attr-defined]
    server.read_only = args.read_only  # type: ignore[attr-defined]
    server.git = git  # type: ignore[attr-defined]
    print(f"serving {server.root} on 127.0.0.1:{args.port}{' (read-only)' if args.read_only else ''}", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())

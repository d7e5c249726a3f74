"""What the devstack's stand-in HTTP servers (platform_api_server.py, receivers_server.py) share: a request
handler that answers JSON (or given text or bytes) with its length (stdlib only)."""

from __future__ import annotations

import json
from http.server import BaseHTTPRequestHandler


class JsonHandler(BaseHTTPRequestHandler):
    _code = 0  # the status of the last answer (0: none yet)

    def _send(self, code: int, body: object, content_type: str = "application/json") -> None:
        """Answer `body`: bytes or text as they are, anything else as one line of JSON."""
        if isinstance(body, bytes):
            data = body
        else:
            data = body.encode() if isinstance(body, str) else (json.dumps(body) + "\n").encode()
        self._code = code
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

"""Cluster.take_snapshot against a FAKE Elasticsearch HTTP endpoint (a local http.server, named as a fake:
the real node cannot be made to drop one connection on cue): the answer of
`PUT _snapshot?wait_for_completion=true` is used as it arrives (no polling), and a dropped connection
hands over to polling the snapshot's state. The real node's paths (success, snapshot_timeout abort) are
in tests/integration/test_elasticsearch.py."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import pytest

from lifeboat.connections import Endpoint
from lifeboat.datastores.elasticsearch.cluster import Cluster
from lifeboat.datastores.elasticsearch.options import ElasticsearchOptions

SNAP = {"snapshot": "s1", "uuid": "u-1", "state": "SUCCESS", "indices": ["a"],
        "shards": {"total": 1, "failed": 0, "successful": 1}}


class FakeElasticsearch(BaseHTTPRequestHandler):
    """PUT answers with the finished snapshot, or (drop_put) closes the connection unanswered; GET
    answers IN_PROGRESS `in_progress_gets` times, then SUCCESS."""

    drop_put = False
    in_progress_gets = 0
    seen: ClassVar[list[str]] = []

    def log_message(self, *a):  # quiet
        pass

    def _send(self, body: dict) -> None:
        raw = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("X-Elastic-Product", "Elasticsearch")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def do_PUT(self):
        self.seen.append(f"PUT {self.path}")
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if type(self).drop_put:
            self.close_connection = True
            self.connection.shutdown(2)
            return
        self._send({"snapshot": SNAP})

    def do_GET(self):
        self.seen.append(f"GET {self.path}")
        state = "IN_PROGRESS" if type(self).in_progress_gets > 0 else "SUCCESS"
        type(self).in_progress_gets -= 1
        self._send({"snapshots": [{**SNAP, "state": state}]})


@pytest.fixture
def fake():
    handler = type("Handler", (FakeElasticsearch,), {"seen": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield handler, server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def cluster(port: int) -> Cluster:
    opts = ElasticsearchOptions.model_validate({"repository": {"name": "r", "type": "fs", "location": "/tmp/r"},
                                                "indices": ["a"], "poll_interval": "0.05s"})
    return Cluster(Endpoint("lifeboat_fake_es", "http", "127.0.0.1", port), opts, "elasticsearch")


def test_the_answer_of_wait_for_completion_is_used_without_polling(fake):
    handler, port = fake
    info = cluster(port).take_snapshot("r", "s1", indices="a")
    assert info["state"] == "SUCCESS" and info["uuid"] == "u-1"
    assert len(handler.seen) == 1 and handler.seen[0].startswith("PUT /_snapshot/r/s1")
    assert "wait_for_completion=true" in handler.seen[0]


def test_a_dropped_connection_hands_over_to_polling_the_snapshot(fake):
    handler, port = fake
    handler.drop_put, handler.in_progress_gets = True, 2
    info = cluster(port).take_snapshot("r", "s1", indices="a")
    assert info["state"] == "SUCCESS"
    puts = [s for s in handler.seen if s.startswith("PUT")]
    gets = [s for s in handler.seen if s.startswith("GET")]
    assert len(puts) == 1  # no client retry of the PUT: a second one would be a second snapshot request
    assert len(gets) >= 3  # one look after the drop, two IN_PROGRESS answers polled through, then SUCCESS

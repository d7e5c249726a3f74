#!/usr/bin/env python3
"""A stand-in for the community platform's API in one region (devstack only).

    python devstack/platform_api_server.py --region us-east-1 --port 8081 --env-file .stack/env

Serves, on 127.0.0.1 only:
  GET /health  200 while the process is up (the Kubernetes liveness probe of the real API)
  GET /ready   200 only when a real write + read succeeds on this region's PostgreSQL and Redis
               (the readiness probe): a standby region answers 503 until its datastores are promoted.
  GET /metrics Prometheus text format (prometheus_client): platform_api_requests_total{path,code},
               platform_api_request_errors_total{path} (5xx), platform_api_request_duration_seconds
               (histogram) -- what a recovery's verification compares with the pre-incident baseline
               (lifeboat.perf).

The connections come from the env file, read on every request (so the server follows whatever it
says now): the service's own keys DATABASE_URL and REDIS_URL when present (what Lifeboat's repoint step
writes, lifeboat.recovery.runtime), else the region's Airflow connections (AIRFLOW_CONN_LIFEBOAT_PG_<REGION>,
AIRFLOW_CONN_LIFEBOAT_REDIS_<REGION>) the devstack exports. MONGODB_URL / ELASTICSEARCH_URL, when set,
add a read check of those stores to /ready (a ping / the cluster health). When the env file also has
LIFEBOAT_PLATFORM_VIA_<POSTGRES|REDIS>_<REGION>=host:port (devstack/components/toxiproxy.py), PostgreSQL and
Redis are reached there instead -- the platform's own network path, where failure simulations put faults.
When that host is a name and LIFEBOAT_PLATFORM_HOSTS_<REGION> names a hosts file, the stand-in resolves the
name through that file on every request (its resolver, like a pod's CoreDNS): a name missing from it fails
the check with "name not found" (lifeboat.chaos.faults.dns breaks and restores it).
Drivers (psycopg, redis) come from the Python
that runs this file (the project's venv); secrets never appear in responses or logs.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import sys
import time
from http.server import ThreadingHTTPServer
from pathlib import Path

if __package__ in (None, ""):  # run as a script: the project root on the path for devstack.*
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from devstack.httpstub import JsonHandler
from devstack.stack import parse_env_file


def read_env(path: Path) -> dict[str, str]:
    """The service's env file (`export K='V'` lines, as the devstack writes them); {} while there is none."""
    try:
        return parse_env_file(path)
    except OSError:
        return {}


def via(uri: str, hostport: str | None) -> str:
    """`uri` with its host:port replaced by `hostport` (credentials, database and query kept)."""
    if not hostport:
        return uri
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(uri)
    creds = parts.netloc.rpartition("@")[0]
    return urlunsplit(parts._replace(netloc=f"{creds}@{hostport}" if creds else hostport))


def resolve(hostport: str | None, hosts_file: str | None) -> str | None:
    """`host:port` with a host name looked up in `hosts_file` (no file: left to the drivers' resolver)."""
    if not hostport or not hosts_file:
        return hostport
    import ipaddress

    host, _, port = hostport.rpartition(":")
    try:
        ipaddress.ip_address(host)
        return hostport
    except ValueError:
        pass
    try:
        text = Path(hosts_file).read_text()
    except OSError as exc:
        raise OSError(f"resolver {hosts_file}: {exc.strerror}") from None
    for raw in text.splitlines():
        fields = raw.split("#", 1)[0].split()
        if host.lower() in (f.lower() for f in fields[1:]):
            return f"{fields[0]}:{port}"
    raise OSError(f"DNS: {host}: name not found (NXDOMAIN) in resolver {hosts_file}")


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"[:300]


def check_postgres(uri: str, region: str, token: str) -> str:
    import psycopg

    with psycopg.connect(uri, connect_timeout=3, autocommit=True, application_name="platform-api") as c:
        c.execute("SET statement_timeout = '3s'")
        c.execute("CREATE TABLE IF NOT EXISTS platform_readiness (region text PRIMARY KEY, token text NOT NULL, "
                  "checked_at timestamptz NOT NULL DEFAULT now())")
        c.execute("INSERT INTO platform_readiness (region, token) VALUES (%s, %s) ON CONFLICT (region) "
                  "DO UPDATE SET token = EXCLUDED.token, checked_at = now()", (region, token))
    with psycopg.connect(uri, connect_timeout=3, autocommit=True, application_name="platform-api") as c:
        got = c.execute("SELECT token FROM platform_readiness WHERE region = %s", (region,)).fetchone()
    if not got or got[0] != token:
        raise RuntimeError(f"wrote {token}, read back {got[0] if got else None}")
    return "write+read ok"


def check_mongodb(uri: str, region: str, token: str) -> str:
    import pymongo

    c = pymongo.MongoClient(uri.replace("mongo://", "mongodb://", 1), serverSelectionTimeoutMS=3000)
    try:
        c.admin.command("ping")
    finally:
        c.close()
    return "read ok (ping)"


def check_elasticsearch(uri: str, region: str, token: str) -> str:
    import urllib.request

    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(uri.rstrip("/") + "/_cluster/health", timeout=3) as r:
        status = json.loads(r.read()).get("status")
    if status not in ("green", "yellow"):
        raise RuntimeError(f"cluster {status}")
    return f"read ok (cluster {status})"


def check_redis(uri: str, region: str, token: str) -> str:
    import redis

    c = redis.Redis.from_url(uri, socket_timeout=3, socket_connect_timeout=3)
    try:
        key = f"platform:readiness:{region}"
        c.set(key, token, ex=300)
        got = c.get(key)
    finally:
        c.close()
    if got is None or got.decode() != token:
        raise RuntimeError(f"wrote {token}, read back {got!r}")
    return "write+read ok"


class Metrics:
    """Request, error and latency metrics of the stand-in (prometheus_client, its own registry)."""

    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Histogram

        self.registry = CollectorRegistry()  # the region is Prometheus's target label
        self.requests = Counter("platform_api_requests", "Requests served", ["path", "code"],
                                registry=self.registry).labels
        self.errors = Counter("platform_api_request_errors", "Requests answered with a 5xx", ["path"],
                              registry=self.registry).labels
        self.latency = Histogram("platform_api_request_duration_seconds", "Request latency", ["path"],
                                 buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5), registry=self.registry)

    def observe(self, path: str, code: int, seconds: float) -> None:
        path = path if path in ("/health", "/ready", "/metrics") else "other"
        self.requests(path=path, code=str(code)).inc()
        if code >= 500:
            self.errors(path=path).inc()
        self.latency.labels(path=path).observe(seconds)

    def exposition(self) -> bytes:
        from prometheus_client import generate_latest

        return generate_latest(self.registry)


class Handler(JsonHandler):
    server_version = "lifeboat-platform-api/1"
    region = ""
    env_file = Path()
    started = time.time()
    metrics: Metrics | None = None

    def log_message(self, fmt: str, *args) -> None:  # one line per request to the log file
        sys.stderr.write(f"{time.strftime('%H:%M:%S')} {self.region} {fmt % args}\n")

    def do_GET(self) -> None:
        self._t0, self._observed = time.perf_counter(), False
        path = self.path.split("?", 1)[0]
        try:
            self._route(path)
        finally:
            self._observe(self._code or 500)

    def _observe(self, code: int) -> None:
        if self.metrics is not None and not self._observed:
            self._observed = True
            self.metrics.observe(self.path.split("?", 1)[0], code, time.perf_counter() - self._t0)

    def _send(self, code: int, body: object, content_type: str = "application/json") -> None:
        # counted BEFORE the answer leaves: a client that scrapes /metrics right after its answer must
        # find its request counted (observed after the write, 1 request in 15 was missing from a window)
        self._observe(code)
        super()._send(code, body, content_type)

    def _route(self, path: str) -> None:
        if path == "/metrics" and self.metrics is not None:
            self._send(200, self.metrics.exposition(), "text/plain; version=0.0.4; charset=utf-8")
        elif path == "/health":
            self._send(200, {"status": "up", "region": self.region,
                             "uptime_seconds": round(time.time() - self.started, 1)})
        elif path == "/ready":
            self._ready()
        else:
            self._send(404, {"error": f"no route {path}"})

    def _ready(self) -> None:
        env = read_env(self.env_file)
        suffix = self.region.upper().replace("-", "_")
        token = secrets.token_hex(8)
        checks: dict[str, str] = {}
        ok = True
        for name, keys, fn in (("postgres", ("DATABASE_URL", f"AIRFLOW_CONN_LIFEBOAT_PG_{suffix}"), check_postgres),
                               ("redis", ("REDIS_URL", f"AIRFLOW_CONN_LIFEBOAT_REDIS_{suffix}"), check_redis),
                               ("mongodb", ("MONGODB_URL",), check_mongodb),
                               ("elasticsearch", ("ELASTICSEARCH_URL",), check_elasticsearch)):
            uri = next((env.get(k) for k in keys if env.get(k)), None) or \
                next((os.environ.get(k) for k in keys if os.environ.get(k)), None)
            if not uri:
                if name in ("postgres", "redis"):
                    checks[name] = f"not configured ({' / '.join(keys)} not in {self.env_file})"
                continue
            try:
                if name in ("postgres", "redis") and not env.get(keys[0]):  # a repointed service keeps its URL
                    uri = via(uri, resolve(env.get(f"LIFEBOAT_PLATFORM_VIA_{name.upper()}_{suffix}"),
                                           env.get(f"LIFEBOAT_PLATFORM_HOSTS_{suffix}")))
                checks[name] = fn(uri, self.region, token)
            except Exception as exc:
                ok = False
                checks[name] = _short(exc)
        if not any(v.startswith("write+read ok") for v in checks.values()):
            ok = False
        self._send(200 if ok else 503, {"ready": ok, "region": self.region, "checks": checks})


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--region", required=True)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--env-file", required=True, type=Path)
    args = ap.parse_args(argv)
    Handler.region = args.region
    Handler.env_file = args.env_file
    Handler.metrics = Metrics()
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    sys.stderr.write(f"platform api stand-in for {args.region} on 127.0.0.1:{args.port}\n")
    sys.stderr.flush()
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Steady-state probes of a failure simulation. Each `check()` returns (ok, detail) and never raises:
a probe that cannot reach its target has failed, which is what it exists to notice.

* HttpProbe          GET a URL: 200 within `timeout` (and under `max_latency` when set)
* DeploymentProbe    a Deployment has its wanted replicas Ready (spec at the start of the experiment)
* DatastoreProbe     a real write + read on a datastore; every acknowledged write is a heartbeat, read back
                     after recovery to count the data the fault lost
"""

from __future__ import annotations

import logging
import threading
import time
import urllib.error
import urllib.request
from datetime import datetime

from lifeboat.chaos.records import DataLoss, utcnow

log = logging.getLogger(__name__)
_HTTP = urllib.request.build_opener(urllib.request.ProxyHandler({}))
HEARTBEAT_TABLE = "lifeboat_chaos_heartbeat"


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"[:240]


class Probe:
    name = ""
    kind = ""
    weight = 1

    def check(self) -> tuple[bool, str]:
        try:
            return self._check()
        except Exception as exc:  # a probe that cannot reach its target has failed
            return False, _short(exc)

    def _check(self) -> tuple[bool, str]:
        raise NotImplementedError


class HttpProbe(Probe):
    kind = "http"

    def __init__(self, name: str, url: str, *, weight: int = 1, timeout: float = 2.0, max_latency: float | None = None):
        self.name, self.url, self.weight, self.timeout, self.max_latency = name, url, weight, timeout, max_latency

    def _check(self) -> tuple[bool, str]:
        t0 = time.monotonic()
        try:
            with _HTTP.open(urllib.request.Request(self.url, headers={"User-Agent": "lifeboat-chaos"}),
                            timeout=self.timeout) as r:
                code = r.status
                r.read()
        except urllib.error.HTTPError as e:
            code = e.code
        took = time.monotonic() - t0
        if code != 200:
            return False, f"HTTP {code} in {took:.2f}s"
        if self.max_latency is not None and took > self.max_latency:
            return False, f"HTTP 200 but slow: {took:.2f}s > {self.max_latency:.2f}s"
        return True, f"HTTP 200 in {took:.3f}s"


class DeploymentProbe(Probe):
    kind = "kubernetes"

    def __init__(self, name: str, client, namespace: str, deployment: str, replicas: int, *, weight: int = 2):
        self.name, self.client, self.namespace, self.deployment = name, client, namespace, deployment
        self.replicas, self.weight = replicas, weight

    def _check(self) -> tuple[bool, str]:
        doc = self.client.get(f"/apis/apps/v1/namespaces/{self.namespace}/deployments/{self.deployment}")
        if doc is None:
            return False, f"deployment {self.namespace}/{self.deployment} not found"
        st = doc.get("status") or {}
        ready, want = int(st.get("readyReplicas") or 0), int((doc.get("spec") or {}).get("replicas") or 0)
        ok = ready >= self.replicas and want >= self.replicas
        return ok, f"{ready}/{self.replicas} Ready (spec {want})"


class DatastoreProbe(Probe):
    """Write heartbeat <seq> for this experiment, read it back. Engines: postgres, redis, mongodb."""

    kind = "datastore"

    def __init__(self, name: str, engine: str, connection: str, experiment_id: str, *, weight: int = 2,
                 timeout: float = 2.0):
        if engine not in ("postgres", "redis", "mongodb"):
            raise ValueError(f"no chaos write/read probe for engine {engine!r} (postgres, redis, mongodb)")
        self.name, self.engine, self.connection, self.id = name, engine, connection, experiment_id
        self.weight, self.timeout = weight, timeout
        self._seq = 0
        self._lock = threading.Lock()
        self.acked: dict[int, datetime] = {}

    def _next(self) -> int:
        with self._lock:
            self._seq += 1
            return self._seq

    def _check(self) -> tuple[bool, str]:
        from lifeboat.connections import resolve

        ep = resolve(self.connection)
        seq = self._next()
        t0 = time.monotonic()
        got = getattr(self, f"_{self.engine}")(ep, seq)
        if got != seq:
            return False, f"wrote heartbeat {seq}, read back {got}"
        self.acked[seq] = utcnow()
        return True, f"write+read ok in {time.monotonic() - t0:.3f}s"

    # -- per engine: write seq, return what reads back --------------------------------------------
    def _postgres(self, ep, seq: int) -> int | None:
        from lifeboat.clients import postgres

        with postgres.connect(ep, autocommit=True, connect_timeout=max(2, int(self.timeout)),
                              application_name="lifeboat-chaos") as c:
            c.execute(f"SET statement_timeout = '{int(self.timeout * 1000)}ms'")
            c.execute("CREATE TABLE IF NOT EXISTS lifeboat_chaos_heartbeat (experiment text NOT NULL, "
                      "seq int NOT NULL, at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (experiment, seq))")
            c.execute("INSERT INTO lifeboat_chaos_heartbeat (experiment, seq) VALUES (%s, %s)", (self.id, seq))
            row = c.execute("SELECT seq FROM lifeboat_chaos_heartbeat WHERE experiment = %s AND seq = %s",
                            (self.id, seq)).fetchone()
        return row[0] if row else None

    def _redis(self, ep, seq: int) -> int | None:
        from lifeboat.clients import redis as rc

        c = rc.client(ep, socket_timeout=self.timeout, connect_timeout=self.timeout, retries=0)
        try:
            key = f"lifeboat:chaos:{self.id}"
            c.hset(key, str(seq), utcnow().isoformat())
            c.expire(key, 7 * 86400)
            return seq if c.hget(key, str(seq)) is not None else None
        finally:
            c.close()

    def _mongodb(self, ep, seq: int) -> int | None:
        from lifeboat.clients import mongodb

        with mongodb.session(ep, self.timeout, appname="lifeboat-chaos") as s:
            coll = s.client[ep.schema or "community"][HEARTBEAT_TABLE]
            coll.insert_one({"_id": f"{self.id}:{seq}", "experiment": self.id, "seq": seq, "at": utcnow()})
            doc = coll.find_one({"_id": f"{self.id}:{seq}"})
        return doc["seq"] if doc else None

    # -- after recovery ------------------------------------------------------------------------------
    def present(self) -> set[int]:
        from lifeboat.connections import resolve

        ep = resolve(self.connection)
        if self.engine == "postgres":
            from lifeboat.clients import postgres

            with postgres.connect(ep, autocommit=True, connect_timeout=5, application_name="lifeboat-chaos") as c:
                rows = c.execute("SELECT seq FROM lifeboat_chaos_heartbeat WHERE experiment = %s",
                                 (self.id,)).fetchall()
                c.execute("DELETE FROM lifeboat_chaos_heartbeat WHERE experiment = %s", (self.id,))
            return {r[0] for r in rows}
        if self.engine == "redis":
            from lifeboat.clients import redis as rc

            c = rc.client(ep, socket_timeout=5, connect_timeout=5)
            try:
                key = f"lifeboat:chaos:{self.id}"
                out = {int(k) for k in c.hkeys(key)}
                c.delete(key)
                return out
            finally:
                c.close()
        from lifeboat.clients import mongodb

        with mongodb.session(ep, 5.0, appname="lifeboat-chaos") as s:
            coll = s.client[ep.schema or "community"][HEARTBEAT_TABLE]
            out = {d["seq"] for d in coll.find({"experiment": self.id}, {"seq": 1})}
            coll.delete_many({"experiment": self.id})
            return out

    def data_loss(self, objective_rpo_seconds: float | None) -> DataLoss:
        """Acknowledged heartbeats missing after recovery (the fault's measured data loss)."""
        present = self.present()
        lost = sorted(s for s in self.acked if s not in present)
        window = (self.acked[lost[-1]] - self.acked[lost[0]]).total_seconds() if lost else 0.0
        return DataLoss(datastore=self.name.removeprefix("write-read-"), acknowledged=len(self.acked),
                        lost=len(lost), lost_window_seconds=round(window, 3),
                        objective_rpo_seconds=objective_rpo_seconds)

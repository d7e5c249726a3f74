"""Services: the platform's Kubernetes deployments in each region, and their health endpoints.

Scaling goes through the cncf-kubernetes provider: `KubernetesHook(conn_id=...).apps_v1_client`
(`read_namespaced_deployment_scale` first -- nothing is patched when the deployment already has the
wanted replicas -- then `patch_namespaced_deployment_scale`, then `read_namespaced_deployment_status`
until the ready replicas are there). Health: each service's `/health` (process up) and `/ready`
(serving, i.e. its datastores accept writes) URLs per region.

The Apps API client is injectable (`apps_client=`) for tests: no Kubernetes cluster exists in the
local stack, so the tests use fakes named as such (tests/fakes.py).
"""

from __future__ import annotations

import json
import logging
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

from lifeboat.errors import LifeboatError, RestoreFailed
from lifeboat.inventory import FailoverService

log = logging.getLogger("lifeboat.failover.services")
_HTTP = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class KubernetesError(LifeboatError):
    """The Kubernetes API refused or failed; the message names connection, namespace and deployment."""


def kubernetes_apps_client(conn_id: str):
    """The provider hook's AppsV1Api for an Airflow kubernetes connection."""
    from airflow.providers.cncf.kubernetes.hooks.kubernetes import KubernetesHook

    return KubernetesHook(conn_id=conn_id).apps_v1_client


def http_check(url: str, timeout: float = 5.0) -> dict[str, Any]:
    started = time.monotonic()
    try:
        with _HTTP.open(urllib.request.Request(url, headers={"User-Agent": "lifeboat-failover"}), timeout=timeout) as r:
            code, body = r.status, r.read(2000).decode(errors="replace")
    except urllib.error.HTTPError as e:
        code, body = e.code, e.read(2000).decode(errors="replace")
    except OSError as e:
        return {"url": url, "ok": False, "status": None, "error": f"{type(e).__name__}: {e}"[:300],
                "seconds": round(time.monotonic() - started, 3)}
    try:
        parsed: Any = json.loads(body)
    except ValueError:
        parsed = body[:300]
    return {"url": url, "ok": code == 200, "status": code, "body": parsed,
            "seconds": round(time.monotonic() - started, 3)}


class Services:
    def __init__(self, specs: list[FailoverService], apps_client: Callable[[str], Any] | None = None):
        self.specs = {s.name: s for s in specs}
        self._factory = apps_client or kubernetes_apps_client
        self._clients: dict[str, Any] = {}

    def spec(self, name: str) -> FailoverService:
        return self.specs[name]

    def _apps(self, svc: FailoverService, region: str):
        conn = svc.kubernetes.get(region)
        if not conn:
            return None, None
        if conn not in self._clients:
            self._clients[conn] = self._factory(conn)
        return self._clients[conn], conn

    def _err(self, svc: FailoverService, region: str, conn: str, what: str, exc: Exception) -> KubernetesError:
        status = getattr(exc, "status", None)
        reason = getattr(exc, "reason", None) or str(exc).splitlines()[0][:300]
        return KubernetesError(f"Kubernetes {what} deployment {svc.namespace}/{svc.deployment or svc.name} in "
                               f"{region} (connection {conn!r}): {status or type(exc).__name__} {reason}")

    def replicas(self, svc: FailoverService, region: str) -> dict[str, Any]:
        apps, conn = self._apps(svc, region)
        if apps is None:
            return {"managed": False}
        name = svc.deployment or svc.name
        try:
            scale = apps.read_namespaced_deployment_scale(name, svc.namespace)
            status = apps.read_namespaced_deployment_status(name, svc.namespace)
        except LifeboatError:
            raise
        except Exception as exc:
            raise self._err(svc, region, conn, "read", exc) from None
        return {"managed": True, "connection": conn, "desired": scale.spec.replicas or 0,
                "ready": (status.status.ready_replicas or 0) if status.status else 0}

    def scale(self, svc: FailoverService, region: str, replicas: int, dry_run: bool = False) -> dict[str, Any]:
        apps, conn = self._apps(svc, region)
        if apps is None:
            return {"service": svc.name, "region": region, "changed": False,
                    "detail": f"no kubernetes connection for {region}: not scaled"}
        before = self.replicas(svc, region)
        out = {"service": svc.name, "region": region, "connection": conn, "from": before["desired"], "to": replicas}
        if before["desired"] == replicas:
            return {**out, "changed": False, "detail": f"already {replicas} replicas"}
        if dry_run:
            return {**out, "changed": False, "detail": f"would scale {before['desired']} -> {replicas}"}
        try:
            apps.patch_namespaced_deployment_scale(svc.deployment or svc.name, svc.namespace,
                                                   {"spec": {"replicas": replicas}})
        except Exception as exc:
            raise self._err(svc, region, conn, "scale", exc) from None
        return {**out, "changed": True, "detail": f"scaled {before['desired']} -> {replicas}"}

    def wait_ready(self, svc: FailoverService, region: str, replicas: int) -> dict[str, Any]:
        if self._apps(svc, region)[0] is None:
            return {"ready": None}
        deadline = time.monotonic() + svc.ready_timeout.total_seconds()
        while True:
            now = self.replicas(svc, region)
            if now["ready"] >= replicas:
                return now
            if time.monotonic() > deadline:
                raise RestoreFailed(f"{svc.namespace}/{svc.deployment or svc.name} in {region}: {now['ready']} of "
                                    f"{replicas} replicas ready after {svc.ready_timeout}")
            time.sleep(2)

    def check(self, svc: FailoverService, region: str, ready: bool = True) -> dict[str, Any]:
        """GET /health (and /ready) of the service in region."""
        out: dict[str, Any] = {"service": svc.name, "region": region}
        if svc.health.get(region):
            out["health"] = http_check(svc.health[region])
        if ready and svc.ready.get(region):
            out["ready"] = http_check(svc.ready[region])
        out["ok"] = all(v["ok"] for k, v in out.items() if k in ("health", "ready"))
        return out

    def wait_healthy(self, svc: FailoverService, region: str) -> dict[str, Any]:
        """Poll /health and /ready until both answer 200 (up to the service's ready_timeout)."""
        deadline = time.monotonic() + svc.ready_timeout.total_seconds()
        while True:
            res = self.check(svc, region)
            if res["ok"] or time.monotonic() > deadline:
                return res
            time.sleep(1)

"""Services: the platform's Kubernetes deployments in each region, and their health endpoints.

Scaling goes through the cncf-kubernetes provider: `KubernetesHook(conn_id=...).apps_v1_client`
(lifeboat.clients.kubernetes builds it): `read_namespaced_deployment_scale` first -- nothing is patched
when the deployment already has the wanted replicas -- then `patch_namespaced_deployment_scale`, then
`read_namespaced_deployment_status` until the rollout is done: the controller has seen the new spec and
the wanted number of pods are updated, Ready and available. Health: each service's `/health` (process up)
and `/ready` (serving, i.e. its datastores accept writes) URLs per region.

Locally each region is a real cluster (devstack/components/kubernetes.py; kwok marks pods Ready). The
Apps API client is injectable (`apps_client=`) for unit tests of the decisions alone.
"""

from __future__ import annotations

import json
import logging
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

from lifeboat.clients.kubernetes import apps_client as kubernetes_apps_client
from lifeboat.errors import KubernetesError, LifeboatError, RestoreFailed
from lifeboat.inventory import FailoverService
from lifeboat.waiting import WaitTimeout, wait_until

__all__ = ["KubernetesError", "Services", "http_check", "kubernetes_apps_client"]

log = logging.getLogger(__name__)
_HTTP = urllib.request.build_opener(urllib.request.ProxyHandler({}))
READY_POLL_S = 0.5
HEALTH_POLL_S = 1.0


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
            dep = apps.read_namespaced_deployment_status(name, svc.namespace)
        except LifeboatError:
            raise
        except Exception as exc:
            raise self._err(svc, region, conn, "read", exc) from None
        st = dep.status
        generation = getattr(dep.metadata, "generation", None) or 0
        return {"managed": True, "connection": conn, "desired": scale.spec.replicas or 0,
                "ready": (st.ready_replicas or 0) if st else 0,
                "updated": (st.updated_replicas or 0) if st else 0,
                "available": (st.available_replicas or 0) if st else 0,
                "rolled_out": bool(st) and (st.observed_generation or 0) >= generation}

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

    @staticmethod
    def rolled_out(now: dict[str, Any], replicas: int) -> bool:
        """The Deployment runs `replicas` pods of its newest spec, all Ready and available."""
        return bool(now.get("rolled_out")) and now["desired"] >= replicas and \
            min(now["ready"], now["updated"], now["available"]) >= replicas

    def wait_ready(self, svc: FailoverService, region: str, replicas: int) -> dict[str, Any]:
        """Poll the Deployment's status until it is rolled out with `replicas` Ready pods."""
        if self._apps(svc, region)[0] is None:
            return {"ready": None}
        started = time.monotonic()
        name = f"{svc.namespace}/{svc.deployment or svc.name} in {region}"
        try:
            now = wait_until(f"{name} rolled out with {replicas} Ready pods", lambda: self.replicas(svc, region),
                             svc.ready_timeout.total_seconds(), READY_POLL_S,
                             done=lambda now: self.rolled_out(now, replicas))
        except WaitTimeout as exc:
            last = exc.last if isinstance(exc.last, dict) else {}
            raise RestoreFailed(f"{name}: {last.get('ready')} of {replicas} replicas ready ({last.get('updated')} "
                                f"updated, {last.get('available')} available) after {svc.ready_timeout}") from None
        return {**now, "seconds": round(time.monotonic() - started, 3)}

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
        """Poll /health and /ready until both answer 200 (up to the service's ready_timeout); the last
        answers either way (the caller names what failed)."""
        try:
            return wait_until(f"{svc.name} in {region} healthy", lambda: self.check(svc, region),
                              svc.ready_timeout.total_seconds(), HEALTH_POLL_S, done=lambda res: res["ok"])
        except WaitTimeout as exc:
            return exc.last

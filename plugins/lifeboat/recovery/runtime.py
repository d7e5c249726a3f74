"""How a service is repointed at recovered datastores and restarted, and how its health is checked.

A service's connection config is the set of keys its `env` names (`services.<name>.env`: datastore ->
key, e.g. postgres -> DATABASE_URL). Repointing rewrites each key's URI to the recovered target --
host/port (or database) only, so the service keeps its own credentials -- in:

* its Kubernetes Secret (`services.<name>.secret`, in the namespace of its deployment in
  `failover.services`), through the cncf-kubernetes provider's hook; then `kubectl rollout restart`
  (the pod template's `kubectl.kubernetes.io/restartedAt` annotation) and a wait until the new pods
  are Ready;
* and/or a local process (`services.<name>.process`: the devstack's platform API stand-in): its 0600
  env file rewritten, the process stopped (pidfile) and started again against the new targets.

A key the service did not have yet is built from the datastore's Airflow connection (Lifeboat's own
credentials; the step says so). Values are never logged or recorded: records name the keys only.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shlex
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from lifeboat.connections import Endpoint
from lifeboat.dependencies import ProcessRuntime, ServiceSpec
from lifeboat.errors import KubernetesError, LifeboatError, Refused, RestoreFailed
from lifeboat.failover.services import http_check
from lifeboat.inventory import PROJECT_ROOT, FailoverService
from lifeboat.waiting import WaitTimeout, wait_until

log = logging.getLogger(__name__)
RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"
_SCHEMES = {"postgres": "postgresql", "postgresql": "postgresql", "redis": "redis", "rediss": "rediss",
            "mongo": "mongodb", "mongodb": "mongodb", "elasticsearch": "http", "http": "http", "https": "https"}


def endpoint_uri(ep: Endpoint) -> str:
    """A client URI for an Airflow connection (credentials included: in memory only)."""
    scheme = _SCHEMES.get(ep.conn_type, ep.conn_type or "http")
    auth = ""
    if ep.login or ep.password:
        auth = quote(ep.login, safe="") + (":" + quote(ep.password, safe="") if ep.password else "") + "@"
    port = f":{ep.port}" if ep.port else ""
    path = f"/{ep.schema}" if ep.schema else ""
    return f"{scheme}://{auth}{ep.host}{port}{path}"


def read_env_file(path: Path) -> dict[str, str]:
    out: dict[str, str] = {}
    with contextlib.suppress(OSError):
        for raw in path.read_text().splitlines():
            line = raw.strip().removeprefix("export ")
            key, sep, value = line.partition("=")
            if sep and not key.startswith("#"):
                parts = shlex.split(value)
                out[key.strip()] = parts[0] if parts else ""
    return out


def write_env_file(path: Path, values: dict[str, str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write("# written by Lifeboat (the service's datastore connections)\n")
        fh.write("".join(f"{k}={shlex.quote(v)}\n" for k, v in sorted(values.items())))
    os.replace(tmp, path)


class ProcessInstance:
    """One local process of a service: command, env file, pidfile, log, port."""

    def __init__(self, rt: ProcessRuntime, name: str, folder: Path, region: str, port: int | None = None):
        self.rt, self.name, self.folder, self.region = rt, name, Path(folder), region
        self.port = port if port is not None else rt.port
        self.env_file = self.folder / f"{name}.env"
        self.pidfile = self.folder / f"{name}.pid"
        self.log = self.folder / f"{name}.log"

    def url(self, which: str) -> str:
        return f"http://127.0.0.1:{self.port}" + (self.rt.health_path if which == "health" else self.rt.ready_path)

    def pid(self) -> int | None:
        try:
            pid = int(self.pidfile.read_text().split()[0])
            os.kill(pid, 0)
            return pid
        except (OSError, ValueError, IndexError):
            return None

    def stop(self, timeout: float = 15.0) -> str:
        pid = self.pid()
        if pid is None:
            return "not running"
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except OSError:
                break
            with contextlib.suppress(ChildProcessError):  # our own child: reap it
                os.waitpid(pid, os.WNOHANG)
            time.sleep(0.1)
        else:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        self.pidfile.unlink(missing_ok=True)
        return f"stopped pid {pid}"

    def start(self) -> int:
        if not self.port:
            raise Refused(f"services.{self.name}.process.port: 0 -- the live instance needs its port")
        subs = {"python": sys.executable, "port": str(self.port), "env_file": str(self.env_file), "region": self.region}
        argv = [part.format(**subs) for part in self.rt.command]
        self.folder.mkdir(parents=True, exist_ok=True)
        with open(self.log, "ab") as out:
            p = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, cwd=PROJECT_ROOT, start_new_session=True)
        self.pidfile.write_text(f"{p.pid}\n")
        log.info("started %s (pid %d) on 127.0.0.1:%d: %s", self.name, p.pid, self.port, shlex.join(argv))
        return p.pid


class ServiceRuntime:
    """One service of the dependency map in one region: repoint, restart, check."""

    def __init__(self, name: str, spec: ServiceSpec, deployment: FailoverService | None, region: str):
        self.name, self.spec, self.dep, self.region = name, spec, deployment, region
        self._kube: Any = None

    # -- kubernetes ------------------------------------------------------------------------------
    @property
    def kube(self):
        if self._kube is None and self.dep is not None and self.dep.kubernetes.get(self.region):
            from lifeboat.clients.kubernetes import KubernetesClient

            self._kube = KubernetesClient(self.dep.kubernetes[self.region], region=self.region)
        return self._kube

    @property
    def deployment_name(self) -> str:
        return (self.dep.deployment or self.dep.name) if self.dep else self.name

    def process(self) -> ProcessInstance | None:
        p = self.spec.process
        return ProcessInstance(p, self.name, Path(p.dir), self.region) if p and p.dir else None

    def describe(self) -> str:
        parts = []
        if self.kube is not None:
            parts.append(f"kubectl rollout restart deployment/{self.deployment_name} -n {self.dep.namespace} "  # type: ignore[union-attr]
                         f"({self.dep.kubernetes[self.region]})")  # type: ignore[union-attr]
        if self.process() is not None:
            parts.append(f"restart the local process (pidfile {self.process().pidfile})")  # type: ignore[union-attr]
        return "; ".join(parts) or "no Kubernetes deployment and no process in the inventory: restart by hand"

    def _secret_values(self) -> dict[str, str]:
        import base64

        try:
            s = self.kube.core.read_namespaced_secret(self.spec.secret, self.dep.namespace)  # type: ignore[union-attr]
        except Exception as exc:
            if getattr(exc, "status", None) == 404:
                return {}
            raise KubernetesError(f"Kubernetes read secret {self.dep.namespace}/{self.spec.secret} "  # type: ignore[union-attr]
                                  f"({self.region}): {getattr(exc, 'status', '')} "
                                  f"{getattr(exc, 'reason', exc)}") from None
        return {k: base64.b64decode(v).decode() for k, v in (s.data or {}).items()}

    def _write_secret(self, values: dict[str, str]) -> str:
        ns, name = self.dep.namespace, self.spec.secret  # type: ignore[union-attr]
        core = self.kube.core
        try:
            core.patch_namespaced_secret(name, ns, {"stringData": values})
            return f"Secret {ns}/{name} patched"
        except Exception as exc:
            if getattr(exc, "status", None) != 404:
                raise KubernetesError(f"Kubernetes patch secret {ns}/{name} ({self.region}): "
                                      f"{getattr(exc, 'status', '')} {getattr(exc, 'reason', exc)}") from None
        core.create_namespaced_secret(ns, {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
                                           "metadata": {"name": name, "namespace": ns,
                                                        "labels": {"app": self.deployment_name,
                                                                   "app.kubernetes.io/managed-by": "lifeboat"}},
                                           "stringData": values})
        return f"Secret {ns}/{name} created"

    # -- repoint ---------------------------------------------------------------------------------
    def repoint(self, recovered: dict[str, dict[str, Any]], engines: dict[str, Any]) -> dict[str, Any]:
        """Rewrite the keys of the datastores in `recovered` (datastore -> locator); returns what changed
        (keys and where, never values)."""
        keys = {ds: self.spec.env[ds] for ds in recovered if ds in self.spec.env}
        missing = [ds for ds in recovered if ds in self.spec.uses() and ds not in self.spec.env]
        out: dict[str, Any] = {"keys": sorted(keys.values()), "not_configured": missing, "where": [], "notes": []}
        if not keys:
            return out

        def new_values(old: dict[str, str]) -> dict[str, str]:
            vals = {}
            for ds, key in keys.items():
                eng = engines[ds]
                base = old.get(key)
                if not base:
                    base = endpoint_uri(eng.endpoint())
                    out["notes"].append(f"{key}: not set before; built from Airflow connection {eng.conn_id()}")
                vals[key] = eng.repoint_uri(base, recovered[ds])
            return vals

        if self.spec.secret and self.kube is not None:
            out["where"].append(self._write_secret(new_values(self._secret_values())))
        proc = self.process()
        if proc is not None:
            current = read_env_file(proc.env_file)
            write_env_file(proc.env_file, {**current, **new_values(current)})
            out["where"].append(f"env file {proc.env_file}")
        if not out["where"]:
            out["notes"].append("no Secret and no process configured: set the keys by hand")
        return out

    # -- restart -----------------------------------------------------------------------------------
    def restart(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.kube is not None:
            now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            try:
                dep = self.kube.apps.patch_namespaced_deployment(
                    self.deployment_name, self.dep.namespace,  # type: ignore[union-attr]
                    {"spec": {"template": {"metadata": {"annotations": {RESTARTED_AT: now}}}}})
            except Exception as exc:
                raise KubernetesError(f"Kubernetes rollout restart deployment {self.dep.namespace}/"  # type: ignore[union-attr]
                                      f"{self.deployment_name} ({self.region}): {getattr(exc, 'status', '')} "
                                      f"{getattr(exc, 'reason', exc)}") from None
            out["deployment"] = {"restarted_at": now, "generation": dep.metadata.generation,
                                 "replicas": dep.spec.replicas}
        proc = self.process()
        if proc is not None:
            stopped = proc.stop()
            out["process"] = {"stopped": stopped, "pid": proc.start(), "port": proc.port}
        return out

    def wait_ready(self, timeout: float) -> dict[str, Any]:
        """The Deployment rolled out (every pod of the new template Ready) and /health, /ready answer 200."""
        out: dict[str, Any] = {}
        if self.kube is not None:
            deps = self.kube.wait_deployments_ready(self.dep.namespace, [self.deployment_name], timeout=timeout)  # type: ignore[union-attr]
            out["deployment"] = deps[self.deployment_name].describe()
        urls = self.urls()
        if urls:
            def check() -> dict[str, Any]:
                return {k: http_check(u) for k, u in urls.items()}

            try:
                res = wait_until(f"{self.name} in {self.region} healthy", check, timeout, 1.0,
                                 done=lambda r: all(v["ok"] for v in r.values()))
            except WaitTimeout as exc:
                last = exc.last or {}
                raise RestoreFailed(f"{self.name} in {self.region} is not healthy after {timeout:.0f}s: " + "; ".join(
                    f"{k} {v.get('url')} -> {v.get('status') or v.get('error')} {v.get('body', '')}"
                    for k, v in last.items())) from None
            out.update({k: {"url": v["url"], "status": v["status"]} for k, v in res.items()})
        return out

    def urls(self) -> dict[str, str]:
        proc = self.process()
        if proc is not None and proc.port:
            return {"health": proc.url("health"), "ready": proc.url("ready")}
        if self.dep is not None:
            return {k: u for k, u in (("health", self.dep.health.get(self.region)),
                                      ("ready", self.dep.ready.get(self.region))) if u}
        return {}

    def health(self) -> dict[str, Any]:
        """GET /health only (a dry run must not call /ready: it writes)."""
        url = self.urls().get("health")
        return http_check(url) if url else {"ok": None, "detail": "no health URL"}


def runtime(op, name: str) -> ServiceRuntime:
    try:
        spec = op.inv.services[name]
    except KeyError:
        raise LifeboatError(f"{op.inv.source}: services.{name}: not in the dependency map") from None
    return ServiceRuntime(name, spec, op.deployment(name), op.region)

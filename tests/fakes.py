"""FAKES of the Kubernetes Apps API -- no Kubernetes cluster exists in the local stack.

- `FakeAppsV1Api`: an in-process stand-in for `kubernetes.client.AppsV1Api` with the three calls
  lifeboat.failover.services makes (unit tests inject it through `Services(apps_client=...)`).
- `FakeKubernetesApiServer`: a tiny HTTP server answering the same three endpoints of the real
  Kubernetes API (`/apis/apps/v1/namespaces/{ns}/deployments/{name}/scale` GET and PATCH, `.../status`
  GET), so the integration test drives the *real* provider `KubernetesHook` and the official
  kubernetes client through an Airflow kubernetes connection (`kube_config` pointing here). Deployments
  become ready as soon as they are scaled. Every PATCH is recorded in `patches`.

Neither proves anything about a real cluster (RBAC, scheduling, image pulls): see docs/failover.md.
"""

from __future__ import annotations

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace


class FakeAppsV1Api:
    """In-process FAKE of kubernetes.client.AppsV1Api (deployments' scale subresource only)."""

    def __init__(self, deployments: dict[tuple[str, str], int] | None = None, ready_lag: int = 0):
        self.replicas = dict(deployments or {})  # (namespace, name) -> replicas
        self.patches: list[tuple[str, str, dict]] = []
        self.ready_lag = ready_lag  # reads of the status before the new replicas count as ready
        self._pending = 0

    def _get(self, name: str, namespace: str) -> int:
        if (namespace, name) not in self.replicas:
            raise _ApiException(404, f'deployments.apps "{name}" not found')
        return self.replicas[(namespace, name)]

    def read_namespaced_deployment_scale(self, name: str, namespace: str):
        return SimpleNamespace(spec=SimpleNamespace(replicas=self._get(name, namespace)))

    def read_namespaced_deployment_status(self, name: str, namespace: str):
        n = self._get(name, namespace)
        if self._pending > 0:
            self._pending -= 1
            n = 0
        return SimpleNamespace(status=SimpleNamespace(ready_replicas=n, replicas=n))

    def patch_namespaced_deployment_scale(self, name: str, namespace: str, body: dict):
        self._get(name, namespace)
        self.patches.append((namespace, name, body))
        self.replicas[(namespace, name)] = body["spec"]["replicas"]
        self._pending = self.ready_lag
        return self.read_namespaced_deployment_scale(name, namespace)


class _ApiException(Exception):
    def __init__(self, status: int, reason: str):
        super().__init__(f"({status}) {reason}")
        self.status = status
        self.reason = reason


_PATH = re.compile(r"^/apis/apps/v1/namespaces/([^/]+)/deployments/([^/]+)/(scale|status)$")


class FakeKubernetesApiServer:
    """A FAKE Kubernetes API server (HTTP, 127.0.0.1) for one region's deployments."""

    def __init__(self, deployments: dict[tuple[str, str], int]):
        self.replicas = dict(deployments)
        self.patches: list[tuple[str, str, dict]] = []
        self.lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def _send(self, code: int, body: dict) -> None:
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _route(self):
                m = _PATH.match(self.path.split("?", 1)[0])
                if not m:
                    self._send(404, {"kind": "Status", "status": "Failure", "code": 404, "reason": "NotFound",
                                     "message": f"fake kubernetes API: no route {self.path}"})
                    return None
                ns, name, sub = m.groups()
                if (ns, name) not in fake.replicas:
                    self._send(404, {"kind": "Status", "status": "Failure", "code": 404, "reason": "NotFound",
                                     "message": f'deployments.apps "{name}" not found'})
                    return None
                return ns, name, sub

            def do_GET(self):
                r = self._route()
                if r:
                    ns, name, sub = r
                    self._send(200, fake.scale_doc(ns, name) if sub == "scale" else fake.deployment_doc(ns, name))

            def do_PATCH(self):
                r = self._route()
                if r:
                    ns, name, _sub = r
                    body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
                    with fake.lock:
                        fake.patches.append((ns, name, body))
                        fake.replicas[(ns, name)] = int(body["spec"]["replicas"])
                    self._send(200, fake.scale_doc(ns, name))

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def start(self) -> FakeKubernetesApiServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def airflow_connection(self) -> str:
        """An Airflow kubernetes connection (JSON) whose kube_config points at this fake."""
        kube = {"apiVersion": "v1", "kind": "Config", "current-context": "fake",
                "clusters": [{"name": "fake", "cluster": {"server": self.url}}],
                "users": [{"name": "fake", "user": {"token": "fake-token"}}],
                "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "fake"}}]}
        return json.dumps({"conn_type": "kubernetes", "extra": {"kube_config": kube}})

    def scale_doc(self, ns: str, name: str) -> dict:
        n = self.replicas[(ns, name)]
        return {"apiVersion": "autoscaling/v1", "kind": "Scale", "metadata": {"name": name, "namespace": ns},
                "spec": {"replicas": n}, "status": {"replicas": n, "selector": f"app={name}"}}

    def deployment_doc(self, ns: str, name: str) -> dict:
        n = self.replicas[(ns, name)]
        return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": ns},
                "spec": {"replicas": n, "selector": {"matchLabels": {"app": name}},
                         "template": {"metadata": {"labels": {"app": name}},
                                      "spec": {"containers": [{"name": name, "image": f"{name}:fake"}]}}},
                "status": {"replicas": n, "readyReplicas": n, "availableReplicas": n}}

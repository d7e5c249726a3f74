"""The local Kubernetes clusters (devstack/components/kubernetes.py) and what Lifeboat does on them:
the platform as it runs, the failover's scaling through the provider's hook, the readiness audit."""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

WEST, EAST = "us-west-2", "us-east-1"
FULL = {"api-gateway": 3, "frontend": 2, "auth-service": 2}


def listeners(pid: int) -> set[tuple[str, int]]:
    """(address, port) of every TCP socket the process listens on (in its own network namespace)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    out = set()
    for table, family in (("tcp", socket.AF_INET), ("tcp6", socket.AF_INET6)):
        for line in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]:
            f = line.split()
            if f[3] != "0A" or f[9] not in inodes:  # 0A: LISTEN
                continue
            raw, port = f[1].split(":")
            b = bytes.fromhex(raw)
            b = b"".join(b[i:i + 4][::-1] for i in range(0, len(b), 4))  # /proc prints 32-bit words host-endian
            out.add((socket.inet_ntop(family, b), int(port, 16)))
    return out


def test_kubernetes_two_clusters_run_the_platform_primary_at_full_replicas_standby_at_zero(kube, stack_env):
    from devstack import stack

    for region, want in ((WEST, FULL), (EAST, dict.fromkeys(FULL, 0))):
        deps = kube[region].wait_deployments_ready("community", timeout=60)
        assert {n: (d.replicas, d.ready) for n, d in deps.items()} == {n: (r, r) for n, r in want.items()}, region
        nodes = kube[region].get("/api/v1/nodes")["items"]
        assert len(nodes) == 2 and all(
            any(c["type"] == "Ready" and c["status"] == "True" for c in n["status"]["conditions"]) for n in nodes)
        hpa = kube[region].get("/apis/autoscaling/v2/namespaces/community/horizontalpodautoscalers/api-gateway-hpa")
        assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (3, 20)
    pods = kube[WEST].get("/api/v1/namespaces/community/pods", {"labelSelector": "app=api-gateway"})["items"]
    assert len(pods) == 3 and all(p["status"]["phase"] == "Running" for p in pods)  # kwok ran them
    status = stack.status(stack_env["LIFEBOAT_STACK_DIR"])["components"]["kubernetes"]
    assert status["running"], status
    assert "us-west-2: nodes 2/2 Ready, api-gateway 3/3 auth-service 2/2 frontend 2/2" in status["status"]


def test_kubernetes_control_plane_listens_on_loopback_only_and_a_warm_up_changes_nothing(kube, stack_env):
    from devstack.components import kubernetes as comp

    state = Path(stack_env["LIFEBOAT_STACK_DIR"])
    seen = 0
    for region in (WEST, EAST):
        for process in comp.PROCESSES:
            pid = comp.pid(state, region, process)
            assert pid, f"{process} ({region}) is not running"
            socks = listeners(pid)
            assert socks and {addr for addr, _ in socks} == {"127.0.0.1"}, (region, process, socks)
            seen += len(socks)
    assert seen >= 12
    pids = {(r, p): comp.pid(state, r, p) for r in (WEST, EAST) for p in comp.PROCESSES}
    started = time.monotonic()
    comp.up(state, print)
    print(f"\nkubernetes: warm up of both clusters {time.monotonic() - started:.2f}s")
    assert {(r, p): comp.pid(state, r, p) for r in (WEST, EAST) for p in comp.PROCESSES} == pids  # nothing restarted


def test_kubernetes_failover_services_scale_the_standby_through_the_provider_hook(kube, stack_env):
    from lifeboat.failover.services import Services
    from lifeboat.inventory import load_inventory

    svc = next(s for s in load_inventory().failover.services if s.name == "api-gateway")
    api = Services([svc])
    before = kube[EAST].get("/apis/apps/v1/namespaces/community/deployments/api-gateway")["metadata"]["generation"]
    try:
        res = api.scale(svc, EAST, 3)
        assert res["changed"] and res["from"] == 0
        ready = api.wait_ready(svc, EAST, 3)
        assert ready["ready"] == 3 and Services.rolled_out(ready, 3)
        assert kube[EAST].deployments("community")["api-gateway"].is_ready(3)  # observed independently
        again = api.scale(svc, EAST, 3)
        assert again["detail"] == "already 3 replicas"
        gen = kube[EAST].get("/apis/apps/v1/namespaces/community/deployments/api-gateway")["metadata"]["generation"]
        assert gen == before + 1  # one patch, not two
    finally:
        api.scale(svc, EAST, 0)
    assert kube[EAST].wait_deployments_ready("community", ["api-gateway"])["api-gateway"].replicas == 0


def _audit(kube):
    from devstack.components.kubernetes import platform_values
    from lifeboat.clients.kubernetes_specs import PlatformPlan, audit_platform, object_key

    live = {r: kube[r].list_namespace("community") for r in (WEST, EAST)}
    subs = {r: {platform_values(r)["registry"]: "<registry>", r: "<region>"} for r in (WEST, EAST)}
    backed_up = {object_key(o): o for o in live[WEST]}  # stands in for the newest verified backup's specs
    return audit_platform(PlatformPlan.community(), live, active_region=WEST, backed_up=backed_up,
                          substitutions=subs)


def test_kubernetes_readiness_audit_passes_on_the_platform_and_names_a_drifted_probe(kube):
    assert _audit(kube) == []
    apps = kube[EAST].apps
    container = {"name": "frontend", "readinessProbe": {"periodSeconds": 15}}
    patch = {"spec": {"template": {"spec": {"containers": [container]}}}}
    apps.patch_namespaced_deployment("frontend", "community", patch)
    try:
        found = {(f.region, f.object, f.check): f.detail for f in _audit(kube)}
        assert set(found) == {(EAST, "Deployment community/frontend", "readiness_probe"),
                              (EAST, "Deployment community/frontend", "standby_spec")}, found
        assert "periodSeconds=15 (plan: 5)" in found[(EAST, "Deployment community/frontend", "readiness_probe")]
        assert found[(EAST, "Deployment community/frontend", "standby_spec")] == \
            "spec differs (spec.template.spec.containers[0].readinessProbe.periodSeconds)"
    finally:
        patch["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["periodSeconds"] = 5
        apps.patch_namespaced_deployment("frontend", "community", patch)
    assert _audit(kube) == []

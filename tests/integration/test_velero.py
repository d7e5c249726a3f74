"""Velero on the local clusters (devstack/components/velero.py): a backup of `community` taken in the
primary, seen by the standby through its read-only location, restored there into a drill namespace with
every object equal to its source; the runbook's CLI commands; both servers side by side, each in its
own network namespace (the :8080 trap)."""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from tests.integration.test_kubernetes import listeners

pytestmark = pytest.mark.integration

WEST, EAST = "us-west-2", "us-east-1"


@pytest.fixture(scope="module")
def backup(kube, velero_env):
    """One Velero backup of `community` in the primary, and the source objects as they were."""
    name = f"pytest-community-{uuid.uuid4().hex[:8]}"
    source = kube[WEST].list_namespace("community")
    t0 = time.monotonic()
    kube[WEST].create_backup(name, namespaces=["community"], labels={"lifeboat.io/test": "pytest"})
    status = kube[WEST].wait_backup(name, timeout=300)
    took = time.monotonic() - t0
    yield {"name": name, "status": status, "source": source, "seconds": took}
    kube[WEST].delete_backup(name)


def test_velero_backup_of_community_completes_in_the_primary_bucket(backup, velero_env):
    import boto3

    st = backup["status"]
    assert st.ok, st.describe()
    assert st.storage_location == "default" and st.items_backed_up == st.total_items
    # the namespace, 3 ConfigMaps + kube-root-ca.crt, the Secret, 3 Deployments, 3 Services, the HPA,
    # the NetworkPolicy and the default ServiceAccount; pods, replica sets and endpoints are left out
    assert st.items_backed_up >= 14, st.describe()
    s3 = boto3.client("s3", endpoint_url=velero_env["LIFEBOAT_S3_ENDPOINT"], region_name=WEST,
                      aws_access_key_id="testing", aws_secret_access_key="testing")
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket=velero_env["LIFEBOAT_VELERO_BUCKET_US_WEST_2"],
                                                 Prefix=f"backups/{backup['name']}/")["Contents"]}
    assert f"backups/{backup['name']}/{backup['name']}.tar.gz" in keys
    assert f"backups/{backup['name']}/velero-backup.json" in keys
    print(f"\nvelero backup of community: {st.describe()} in {backup['seconds']:.1f}s")


def test_velero_standby_sees_the_backup_and_restores_it_into_a_drill_namespace(kube, backup):
    from lifeboat.clients.kubernetes import drill_namespace
    from lifeboat.clients.kubernetes_specs import compare_specs, object_key

    t0 = time.monotonic()
    synced = kube[EAST].wait_backup_visible(backup["name"], timeout=120, interval=0.5)
    seen = time.monotonic() - t0
    assert synced.storage_location == WEST  # through the read-only location on the primary's bucket
    assert synced.items_backed_up == backup["status"].items_backed_up
    drill = drill_namespace("community", uuid.uuid4().hex[:8])
    restore = f"{backup['name']}-drill"
    try:
        t1 = time.monotonic()
        kube[EAST].create_restore(restore, backup=backup["name"], namespace_mappings={"community": drill})
        rs = kube[EAST].wait_restore(restore, timeout=300)
        restored = time.monotonic() - t1
        assert rs.ok, rs.describe()
        deps = kube[EAST].wait_deployments_ready(drill, timeout=120)
        ready = time.monotonic() - t1
        assert {n: d.ready for n, d in deps.items()} == {"api-gateway": 3, "frontend": 2, "auth-service": 2}
        live = kube[EAST].list_namespace(drill)
        drift = compare_specs({object_key(o): o for o in backup["source"]}, live)
        assert drift == [], [d.describe() for d in drift]
        assert kube[EAST].deployments("community")["api-gateway"].replicas == 0  # the live namespace untouched
        print(f"\nvelero: standby saw {backup['name']} after {seen:.1f}s; restore into {drill} {rs.describe()} "
              f"in {restored:.1f}s, Deployments Ready after {ready:.1f}s; {len(live)} objects equal to the source")
    finally:
        kube[EAST].delete_drill_namespace(drill)
    assert not kube[EAST].namespace_exists(drill)


def test_velero_cli_restore_and_rollout_restart_as_the_runbook_says(kube, backup, velero_env):
    """docs/datastores/kubernetes.md: `velero restore create --from-backup ... --namespace-mappings`, then
    `kubectl rollout restart deployment/...` -- the standard tools alone, on the standby's kubeconfig."""
    kubeconfig = velero_env["LIFEBOAT_KUBECONFIG_US_EAST_1"]
    velero = [velero_env["LIFEBOAT_VELERO_BIN"], "--kubeconfig", kubeconfig, "-n", "velero"]
    kubectl = ["kubectl", "--kubeconfig", kubeconfig]
    kube[EAST].wait_backup_visible(backup["name"], timeout=120, interval=0.5)
    drill = f"drill-cli-{uuid.uuid4().hex[:6]}"
    env = {**os.environ, "HOME": str(Path(velero_env["LIFEBOAT_STACK_DIR"]) / "work")}
    try:
        out = subprocess.run([*velero, "restore", "create", f"{drill}-restore", "--from-backup", backup["name"],
                              "--namespace-mappings", f"community:{drill}", "--wait"],
                             capture_output=True, text=True, timeout=300, env=env, check=False)
        assert out.returncode == 0, out.stdout + out.stderr
        got = subprocess.run([*velero, "restore", "get", f"{drill}-restore"], capture_output=True, text=True,
                             timeout=60, env=env, check=True).stdout
        assert "Completed" in got, got
        # --details downloads the backup's resource list and the restore's results from the bucket
        # (a DownloadRequest answered by the server with a pre-signed URL on the local S3 endpoint)
        desc = subprocess.run([*velero, "backup", "describe", backup["name"], "--details", "--colorized=false"],
                              capture_output=True, text=True, timeout=120, env=env, check=True).stdout
        assert re.search(r"Phase:\s+Completed", desc) and "apps/v1/Deployment:" in desc, desc
        assert "community/api-gateway" in desc, desc
        desc = subprocess.run([*velero, "restore", "describe", f"{drill}-restore", "--details", "--colorized=false"],
                              capture_output=True, text=True, timeout=120, env=env, check=True).stdout
        assert re.search(r"Phase:\s+Completed", desc) and "error getting" not in desc, desc
        # the one expected warning: every cluster makes its own kube-root-ca.crt (its own CA)
        assert f"{drill}/deployments" not in desc and "kube-root-ca.crt already exists" in desc, desc
        for svc in ("api-gateway", "frontend", "auth-service"):
            subprocess.run([*kubectl, "-n", drill, "rollout", "restart", f"deployment/{svc}"], check=True,
                           capture_output=True, timeout=60)
        for svc in ("api-gateway", "frontend", "auth-service"):
            st = subprocess.run([*kubectl, "-n", drill, "rollout", "status", f"deployment/{svc}", "--timeout=120s"],
                                capture_output=True, text=True, timeout=150, check=False)
            assert st.returncode == 0 and "successfully rolled out" in st.stdout, st.stdout + st.stderr
        restarted = kube[EAST].get(f"/apis/apps/v1/namespaces/{drill}/deployments/api-gateway")
        assert "kubectl.kubernetes.io/restartedAt" in restarted["spec"]["template"]["metadata"]["annotations"]
    finally:
        kube[EAST].delete_drill_namespace(drill)


def test_velero_servers_run_side_by_side_each_in_its_own_network_namespace(velero_env):
    """The :8080 trap: each server binds :8080 in its private namespace, none in the machine's."""
    from devstack.components import velero as comp

    state = Path(velero_env["LIFEBOAT_STACK_DIR"])
    host_ns = os.readlink("/proc/self/ns/net")
    namespaces = set()
    for region in (WEST, EAST):
        pid = comp.server_pid(state, region)
        assert pid, f"velero server ({region}) is not running"
        ns = os.readlink(f"/proc/{pid}/ns/net")
        assert ns != host_ns
        namespaces.add(ns)
        assert 8080 in {port for _, port in listeners(pid)}  # its own :8080
        host_tables = "".join(Path(f"/proc/self/net/{t}").read_text() for t in ("tcp", "tcp6"))
        links = []
        for f in Path(f"/proc/{pid}/fd").iterdir():
            with contextlib.suppress(OSError):
                links.append(os.readlink(f))
        inodes = {link[8:-1] for link in links if link.startswith("socket:[")}
        assert not any(line.split()[9] in inodes for line in host_tables.splitlines()[1:]
                       if len(line.split()) > 9), "a velero socket is in the host's network namespace"
    assert len(namespaces) == 2

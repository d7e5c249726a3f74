"""The devstack's Kubernetes pieces that need no server: the platform's manifests rendered per region,
the control plane's command lines (loopback only), the binary shim's message."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from devstack.components import kubernetes as k
from devstack.components import velero

ROOT = Path(__file__).resolve().parents[2]


def docs(region: str, **kw) -> list[dict]:
    return [d for d in yaml.safe_load_all(k.render_platform(region, **kw)) if d]


def test_platform_primary_runs_full_replicas_standby_zero_images_from_the_regions_registry(monkeypatch):
    monkeypatch.delenv("LIFEBOAT_REGISTRY_US_WEST_2", raising=False)
    monkeypatch.setenv("LIFEBOAT_REGISTRY_US_EAST_1", "127.0.0.1:5001")
    west = {d["metadata"]["name"]: d for d in docs("us-west-2") if d["kind"] == "Deployment"}
    east = {d["metadata"]["name"]: d for d in docs("us-east-1") if d["kind"] == "Deployment"}
    assert {n: d["spec"]["replicas"] for n, d in west.items()} == {"api-gateway": 3, "frontend": 2, "auth-service": 2}
    assert {n: d["spec"]["replicas"] for n, d in east.items()} == dict.fromkeys(west, 0)
    img = west["api-gateway"]["spec"]["template"]["spec"]["containers"][0]["image"]
    assert img == "registry.us-west-2.community.example.com/community/api-gateway:2.14.1"
    east_img = east["frontend"]["spec"]["template"]["spec"]["containers"][0]["image"]
    assert east_img == "127.0.0.1:5001/community/frontend:3.2.0"
    for d in west.values():
        c = d["spec"]["template"]["spec"]["containers"][0]
        assert c["livenessProbe"] == {"httpGet": {"path": "/health", "port": 3000}, "initialDelaySeconds": 30,
                                      "periodSeconds": 10, "timeoutSeconds": 5, "failureThreshold": 3}
        assert c["readinessProbe"] == {"httpGet": {"path": "/ready", "port": 3000}, "initialDelaySeconds": 5,
                                       "periodSeconds": 5, "timeoutSeconds": 3, "failureThreshold": 3}
    assert all("replicas" not in d["spec"] for d in docs("us-west-2", omit_replicas=True) if d["kind"] == "Deployment")


def test_platform_configmaps_hold_the_config_files_byte_for_byte_and_refs_match_the_documents():
    rendered = k.render_platform("us-west-2")
    all_docs = [d for d in yaml.safe_load_all(rendered) if d]
    cms = {d["metadata"]["name"]: d["data"] for d in all_docs if d["kind"] == "ConfigMap"}
    cfg = ROOT / "include" / "platform" / "config"
    assert set(cms) == {f"{p.name}-config" for p in cfg.iterdir() if p.is_dir()}
    for folder in cfg.iterdir():
        assert cms[f"{folder.name}-config"] == {f.name: f.read_text() for f in folder.iterdir()}
    refs = k.manifest_refs(rendered)
    assert [(r["kind"], r["name"]) for r in refs] == [(d["kind"], d["metadata"]["name"]) for d in all_docs]
    hpa = next(r for r in refs if r["kind"] == "HorizontalPodAutoscaler")
    assert hpa["path"] == "/apis/autoscaling/v2/namespaces/community/horizontalpodautoscalers/api-gateway-hpa"
    assert refs[0]["path"] == "/api/v1/namespaces/community"


def test_platform_unknown_placeholder_names_the_file_and_line(tmp_path, monkeypatch):
    for f in (ROOT / "include" / "platform").rglob("*"):
        if f.is_file():
            dest = tmp_path / f.relative_to(ROOT / "include" / "platform")
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_text(f.read_text())
    (tmp_path / "frontend.yaml").write_text((tmp_path / "frontend.yaml").read_text().replace(
        "{{ images.frontend }}", "{{ images.frontnd }}"))
    monkeypatch.setattr(k, "PLATFORM_DIR", tmp_path)
    with pytest.raises(RuntimeError, match=r"frontend.yaml:\d+: unknown placeholder \{\{ images.frontnd \}\}"):
        k.render_platform("us-west-2")


@pytest.fixture
def state(tmp_path, monkeypatch):
    monkeypatch.setattr(k, "binary", lambda tool, say=None: Path(f"/cache/{tool}"))
    monkeypatch.setattr(k, "etcd_binary", lambda: Path("/usr/bin/etcd"))
    monkeypatch.setattr(k, "kwok_stages", lambda: [Path("/cache/stages/pod-ready.yaml")])
    (tmp_path / "stack.json").write_text('{"ports": {"moto": 45678}}')
    k.ports(tmp_path, create=True)
    return tmp_path


def test_control_plane_command_lines_bind_loopback_only_with_distinct_ports(state):
    import re

    seen = set()
    for region in k.REGIONS:
        for process in k.PROCESSES:
            argv = k.argv(state, region, process)
            flat = " ".join(argv)
            hosts = set(re.findall(r"([0-9.]+|localhost|\[::\]):\d+", flat))
            assert hosts <= {"127.0.0.1"}, (process, hosts)  # controller-manager, scheduler: --bind-address only
            if process != "etcd":
                assert "--bind-address=127.0.0.1" in argv or "--server-address=127.0.0.1:" in flat, (process, argv)
            if process == "kube-apiserver":
                assert "--feature-gates=WatchList=false" in argv and "--advertise-address=127.0.0.1" in argv
        seen |= {k.port(state, region, key) for key in k.PORT_KEYS}
    assert len(seen) == len(k.REGIONS) * len(k.PORT_KEYS)  # no two listeners share a port
    assert 45678 not in seen  # nor one of the stack's own


def test_velero_server_runs_in_a_sandbox_that_forwards_only_the_apiserver_and_moto(state):
    argv = velero.sandbox_argv(state, "us-east-1")
    forwards = [int(argv[i + 1]) for i, a in enumerate(argv) if a == "--forward"]
    assert forwards == [k.port(state, "us-east-1", "apiserver"), 45678]
    server = argv[argv.index("--") + 1:]
    assert server[1] == "server" and "--metrics-address=127.0.0.1:8085" in server
    bsls = velero.bsl_docs("us-east-1", "http://127.0.0.1:45678")
    assert [(b["metadata"]["name"], b["spec"]["accessMode"], b["spec"]["objectStorage"]["bucket"]) for b in bsls] == \
        [("us-west-2", "ReadOnly", "velero-us-west-2"), ("default", "ReadWrite", "velero-us-east-1")]


def test_binary_shim_names_the_command_that_builds_a_missing_binary(tmp_path, monkeypatch):
    monkeypatch.setenv("LIFEBOAT_CACHE_DIR", str(tmp_path))
    monkeypatch.setitem(__import__("sys").modules, "devstack.binaries", None)
    # `from devstack import binaries` takes the package attribute first: once another test imported
    # devstack.binaries, only removing it keeps this test from building kube-apiserver for real.
    import devstack

    monkeypatch.delattr(devstack, "binaries", raising=False)
    with pytest.raises(RuntimeError, match=r"kube-apiserver v1.37.2 is not built: .*bin/kube-apiserver-v1.37.2 is "
                                           r"missing -- run `python devstack/binaries.py ensure kube-apiserver`"):
        k.binary("kube-apiserver")

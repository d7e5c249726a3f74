"""The kubernetes engine's pure parts: Velero's tarball and result files, names, the guards of drill
restores and live restores, the options' validation (no cluster)."""

from __future__ import annotations

import gzip
import io
import json
import re
import tarfile

import pytest

from lifeboat.datastores.kubernetes.options import KubernetesOptions, velero_duration
from lifeboat.datastores.kubernetes.recover import find_wanted, refuse_unattended
from lifeboat.datastores.kubernetes.scratch import guard_drill_targets
from lifeboat.datastores.kubernetes.tarball import (
    TarballError,
    flatten_results,
    list_difference,
    read_gzip_json,
    read_tarball,
    unexpected_warnings,
    velero_name,
)
from lifeboat.errors import BackupNotFound, InventoryError, Refused

DEPLOY = {"apiVersion": "apps/v1", "kind": "Deployment",
          "metadata": {"name": "api-gateway", "namespace": "community", "labels": {"app": "api-gateway"}}}
CM = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg", "namespace": "community"}}
NS = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "community"}}


def tarball(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, body in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(body)
            tar.addfile(info, io.BytesIO(body))
    return buf.getvalue()


def velero_tarball() -> bytes:
    return tarball({
        "metadata/version": b"1.1.0\n",
        "resources/deployments.apps/namespaces/community/api-gateway.json": json.dumps(DEPLOY).encode(),
        "resources/deployments.apps/v1-preferredversion/namespaces/community/api-gateway.json":
            json.dumps(DEPLOY).encode(),
        "resources/configmaps/namespaces/community/cfg.json": json.dumps(CM).encode(),
        "resources/namespaces/cluster/community.json": json.dumps(NS).encode(),
    })


def test_tarball_resource_list_and_counts_in_velero_format_without_preferred_version_copies():
    t = read_tarball(velero_tarball())
    assert t.format_version == "1.1.0"
    assert t.resource_list == {"apps/v1/Deployment": ["community/api-gateway"], "v1/ConfigMap": ["community/cfg"],
                               "v1/Namespace": ["community"]}
    assert t.counts == {"apps/v1/Deployment": 1, "v1/ConfigMap": 1, "v1/Namespace": 1}
    assert [o["kind"] for o in t.objects("community")] == ["ConfigMap", "Deployment"]
    assert t.find("community", "Deployment", "api-gateway") == ("deployments.apps", DEPLOY)
    assert t.find("community", "Deployment", "frontend") is None


def test_damaged_tarball_and_gzip_json_name_where_they_were_read():
    data = bytearray(velero_tarball())
    data[len(data) // 2] ^= 0xFF
    with pytest.raises(TarballError, match=re.escape("s3://b/backups/x/x.tar.gz")):
        read_tarball(bytes(data), "s3://b/backups/x/x.tar.gz")
    with pytest.raises(TarballError, match="holds no Kubernetes objects"):
        read_tarball(tarball({"metadata/version": b"1"}), "t")
    with pytest.raises(TarballError, match=re.escape("resources/configmaps/namespaces/community/cfg.json is not JSON")):
        read_tarball(tarball({"resources/configmaps/namespaces/community/cfg.json": b"{"}), "t")
    assert read_gzip_json(gzip.compress(b'{"a": 1}'), "w") == {"a": 1}
    with pytest.raises(TarballError, match=r"^list\.gz: not gzipped JSON"):
        read_gzip_json(b"plain", "list.gz")


def test_list_difference_results_and_expected_warnings():
    assert list_difference({"v1/ConfigMap": ["ns/a", "ns/b"]}, {"v1/ConfigMap": ["ns/b", "ns/c"]}) == [
        "- v1/ConfigMap ns/a (recorded, not found)", "+ v1/ConfigMap ns/c (found, not recorded)"]
    assert list_difference({}, {"v1/X": [str(i) for i in range(10)]}, limit=2)[-1] == "... 8 more"
    results = {"warnings": {"velero": ["v"], "namespaces": {"drill-x": [
        'could not restore, ConfigMap "kube-root-ca.crt" already exists. Warning: ...',
        "could not restore, ConfigMap:other already exists"]}}}
    msgs = flatten_results(results, "warnings")
    assert msgs[0] == "velero: v" and len(msgs) == 3 and flatten_results(results, "errors") == []
    assert unexpected_warnings(msgs, ["ConfigMap/kube-root-ca.crt"]) == [
        "velero: v", "drill-x: could not restore, ConfigMap:other already exists"]


def test_velero_names_are_deterministic_dns_labels():
    assert velero_name("kubernetes-full-20261202T004552Z") == "kubernetes-full-20261202t004552z"
    long = velero_name("k" * 80)
    assert len(long) <= 63 and long == velero_name("k" * 80) and long != velero_name("k" * 81)
    assert velero_duration("120d") == "2880h0m0s" and velero_duration("90m") == "1h30m0s"


def test_drill_restores_only_into_drill_namespaces_and_live_restores_never_from_a_schedule():
    guard_drill_targets({"community": "drill-community-1"}, ["community"])
    for target in ("community", "drill-x-but-live", "prod"):
        with pytest.raises(Refused, match="only restores into drill-"):
            guard_drill_targets({"community": target}, ["community", "drill-x-but-live"])
    for run_id in ("scheduled__2026-12-02T00:00:00+00:00", "asset_triggered__x", "backfill__y"):
        with pytest.raises(Refused, match="never by a schedule"):
            refuse_unattended({"dag_id": "d", "run_id": run_id}, "community")
    refuse_unattended({"dag_id": "d", "run_id": "manual__2026"}, "community")
    refuse_unattended(None, "community")


def test_find_wanted_accepts_the_usual_spellings_and_names_what_the_backup_has():
    t = read_tarball(velero_tarball())
    for spec in ("deployments/api-gateway", "deployment/api-gateway", "Deployment/api-gateway",
                 "deployments.apps/api-gateway"):
        w = find_wanted(t, "community", spec)
        assert (w.kind, w.name, w.resource, w.labels) == ("Deployment", "api-gateway", "deployments.apps",
                                                          {"app": "api-gateway"})
        assert w.path == "/apis/apps/v1/namespaces/community/deployments/api-gateway"
    assert find_wanted(t, "community", "configmaps/cfg").path == "/api/v1/namespaces/community/configmaps/cfg"
    with pytest.raises(BackupNotFound, match=r"deployments/frontend: not in the backup's namespace community "
                                             r"\(its deployments: api-gateway\)"):
        find_wanted(t, "community", "deployments/frontend")
    with pytest.raises(InventoryError, match="expected <resource>/<name>"):
        find_wanted(t, "community", "api-gateway")


def test_options_refuse_drill_and_invalid_namespaces_naming_them():
    ok = KubernetesOptions(namespaces=["community"], bucket_connections={"us-west-2": "c"})
    assert ok.velero_ttl == "2160h0m0s" and "pods" in ok.exclude_resources
    for bad, msg in ((["drill-community"], "restore-test targets"), (["Community"], "not a Kubernetes namespace"),
                     (["a", "a"], "listed twice"), ([], "at least 1")):
        with pytest.raises(ValueError, match=msg):
            KubernetesOptions(namespaces=bad, bucket_connections={"us-west-2": "c"})
    with pytest.raises(ValueError, match="not a resource name"):
        KubernetesOptions(namespaces=["community"], bucket_connections={"r": "c"}, include_resources=["Pods!"])

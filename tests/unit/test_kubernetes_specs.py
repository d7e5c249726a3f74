"""Kubernetes logic that needs no cluster: spec normalisation and hashes, drift named per object, the
readiness audit against the DR plan, Velero request bodies and statuses (lifeboat.clients)."""

from __future__ import annotations

import copy

import pytest

from lifeboat.clients import kubernetes as kc
from lifeboat.clients import kubernetes_specs as ks


def deployment(name="api-gateway", replicas=3, image=None, region="us-west-2"):
    """As written in include/platform/ (no server defaults)."""
    image = image or f"registry.{region}.community.example.com/community/{name}:2.14.1"
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "namespace": "community", "labels": {"app": name}},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"containers": [{
                                      "name": name, "image": image, "ports": [{"name": "http", "containerPort": 3000}],
                                      "env": [{"name": "REGION", "value": region}],
                                      "livenessProbe": copy.deepcopy(dict(ks.PLAN_LIVENESS)),
                                      "readinessProbe": copy.deepcopy(dict(ks.PLAN_READINESS))}]}}}}


def as_stored(obj, namespace="community", ready=None):
    """What an API server returns for it: server metadata, status and every default filled in."""
    o = copy.deepcopy(obj)
    o["metadata"].update(namespace=namespace, uid="9d1c", resourceVersion="4711", generation=2,
                         creationTimestamp="2026-12-01T20:00:00Z", managedFields=[{"manager": "kubectl-create"}],
                         annotations={"deployment.kubernetes.io/revision": "1",
                                      "velero.io/restore-name": "r1"})
    o["metadata"]["labels"] = {**o["metadata"]["labels"], "velero.io/backup-name": "b1"}
    spec = o["spec"]
    spec.update(progressDeadlineSeconds=600, revisionHistoryLimit=10,
                strategy={"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}})
    pod = spec["template"]["spec"]
    spec["template"]["metadata"]["creationTimestamp"] = None
    pod.update(restartPolicy="Always", terminationGracePeriodSeconds=30, dnsPolicy="ClusterFirst",
               schedulerName="default-scheduler", securityContext={})
    for c in pod["containers"]:
        c.update(terminationMessagePath="/dev/termination-log", terminationMessagePolicy="File",
                 imagePullPolicy="IfNotPresent", resources={})
        for p in c["ports"]:
            p["protocol"] = "TCP"
        for probe in ("livenessProbe", "readinessProbe"):
            c[probe]["successThreshold"] = 1
            c[probe]["httpGet"]["scheme"] = "HTTP"
    n = spec["replicas"] if ready is None else ready
    o["status"] = {"observedGeneration": 2, "replicas": spec["replicas"], "readyReplicas": n,
                   "updatedReplicas": n, "availableReplicas": n}
    return o


def service(name="api-gateway"):
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": "community"},
            "spec": {"selector": {"app": name}, "ports": [{"name": "http", "port": 80, "targetPort": "http"}]}}


def hpa(min_replicas=3, max_replicas=20, cpu=70, target="api-gateway"):
    return {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": "api-gateway-hpa", "namespace": "community"},
            "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": target},
                     "minReplicas": min_replicas, "maxReplicas": max_replicas,
                     "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {
                         "type": "Utilization", "averageUtilization": cpu}}}]}}


# --------------------------------------------------------------------------- normalisation

def test_kubernetes_spec_hash_ignores_what_the_server_and_velero_added_but_not_the_spec():
    manifest = deployment()
    stored = as_stored(manifest, namespace="drill-community-x")
    assert ks.normalize(stored) == ks.normalize(manifest)
    assert ks.spec_hash(stored) == ks.spec_hash(manifest)
    assert "status" not in ks.normalize(stored) and "namespace" not in ks.normalize(stored)["metadata"]
    changed = copy.deepcopy(stored)
    changed["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["periodSeconds"] = 30
    assert ks.spec_hash(changed) != ks.spec_hash(manifest)
    explicit_non_default = copy.deepcopy(stored)
    explicit_non_default["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"] = "Always"
    assert ks.spec_hash(explicit_non_default) != ks.spec_hash(manifest)


def test_kubernetes_service_allocations_are_not_part_of_the_spec():
    a = service()
    b = copy.deepcopy(a)
    b["spec"].update(clusterIP="10.96.1.2", clusterIPs=["10.96.1.2"], type="ClusterIP", sessionAffinity="None",
                     ipFamilies=["IPv4"], ipFamilyPolicy="SingleStack", internalTrafficPolicy="Cluster")
    b["spec"]["ports"][0]["protocol"] = "TCP"
    assert ks.spec_hash(a) == ks.spec_hash(b)
    b["spec"]["ports"][0]["port"] = 8080
    assert ks.spec_hash(a) != ks.spec_hash(b)


def test_kubernetes_replicas_and_region_values_can_be_left_out_of_a_comparison():
    west, east = deployment(), deployment(replicas=0, region="us-east-1",
                                          image="registry.us-east-1.community.example.com/community/api-gateway:2.14.1")
    assert ks.spec_hash(west) != ks.spec_hash(east)
    subs = {r: {f"registry.{r}.community.example.com": "<registry>", r: "<region>"} for r in ("us-west-2", "us-east-1")}
    assert ks.spec_hash(west, ignore_replicas=True, substitutions=subs["us-west-2"]) == \
        ks.spec_hash(east, ignore_replicas=True, substitutions=subs["us-east-1"])
    other_tag = deployment(replicas=0, image="registry.us-east-1.community.example.com/community/api-gateway:2.13.0")
    assert ks.spec_hash(west, ignore_replicas=True, substitutions=subs["us-west-2"]) != \
        ks.spec_hash(other_tag, ignore_replicas=True, substitutions=subs["us-east-1"])


def test_kubernetes_compare_specs_names_missing_changed_and_extra_objects_and_the_fields():
    backup = {ks.object_key(o): o for o in (deployment(), service(), hpa())}
    live = [as_stored(deployment()), hpa(max_replicas=10), service("frontend"),
            {"kind": "ConfigMap", "metadata": {"name": "kube-root-ca.crt"}, "data": {"ca.crt": "x"}}]
    drift = {d.object: d for d in ks.compare_specs(backup, live)}
    assert set(drift) == {"Service/api-gateway", "HorizontalPodAutoscaler/api-gateway-hpa", "Service/frontend"}
    assert drift["Service/api-gateway"].change == "missing"
    assert drift["Service/frontend"].change == "extra"
    assert drift["HorizontalPodAutoscaler/api-gateway-hpa"].fields == ["spec.maxReplicas"]
    assert "spec differs (spec.maxReplicas)" in drift["HorizontalPodAutoscaler/api-gateway-hpa"].describe()
    by_hash = ks.compare_specs(ks.spec_hashes(backup.values()), live, extra=False)
    assert [(d.object, d.change) for d in by_hash] == [("HorizontalPodAutoscaler/api-gateway-hpa", "changed"),
                                                        ("Service/api-gateway", "missing")]


# --------------------------------------------------------------------------- the readiness audit

def platform(region="us-west-2", replicas=(3, 2, 2), ready=None):
    names = ("api-gateway", "frontend", "auth-service")
    objs = [as_stored(deployment(n, r, region=region), ready=ready) for n, r in zip(names, replicas, strict=True)]
    return objs + [service(n) for n in names] + [hpa()]


def test_kubernetes_audit_of_the_platform_as_planned_finds_nothing():
    live = {"us-west-2": platform(), "us-east-1": platform("us-east-1", (0, 0, 0))}
    backed_up = {ks.object_key(o): o for o in platform()}
    subs = {r: {r: "<region>"} for r in live}
    assert ks.audit_platform(ks.PlatformPlan.community(), live, active_region="us-west-2", backed_up=backed_up,
                             substitutions=subs) == []


def test_kubernetes_audit_names_each_object_that_drifts_from_the_plan():
    west = platform(replicas=(2, 2, 2), ready=1)
    c = next(o for o in west if o["metadata"]["name"] == "frontend")["spec"]["template"]["spec"]["containers"][0]
    c["livenessProbe"]["httpGet"]["path"] = "/healthz"
    del c["readinessProbe"]
    west = [o for o in west if o["metadata"]["name"] != "auth-service" or o["kind"] != "Deployment"]
    east = platform("us-east-1", (0, 1, 0))
    east = [hpa(min_replicas=1) if o["kind"] == "HorizontalPodAutoscaler" else o for o in east]
    findings = ks.audit_platform(ks.PlatformPlan.community(), {"us-west-2": west, "us-east-1": east},
                                 active_region="us-west-2")
    got = {(f.region, f.object, f.check) for f in findings}
    assert got == {
        ("us-west-2", "Deployment community/api-gateway", "replicas"),  # 2, HPA floor 3
        ("us-west-2", "Deployment community/api-gateway", "ready"),
        ("us-west-2", "Deployment community/frontend", "ready"),
        ("us-west-2", "Deployment community/frontend", "liveness_probe"),
        ("us-west-2", "Deployment community/frontend", "readiness_probe"),
        ("us-west-2", "Deployment community/auth-service", "deployment"),
        ("us-east-1", "HorizontalPodAutoscaler community/api-gateway-hpa", "hpa"),
        ("us-east-1", "Deployment community/frontend", "replicas"),
    }
    text = {(f.object, f.check): f for f in findings}
    liveness = text[("Deployment community/frontend", "liveness_probe")].detail
    assert "httpGet.path='/healthz' (plan: '/health')" in liveness
    assert text[("Deployment community/frontend", "readiness_probe")].detail == \
        "container frontend: readinessProbe missing"
    assert text[("Deployment community/auth-service", "deployment")].severity == "critical"
    assert "2 replicas (plan: 3..20 (HPA))" in text[("Deployment community/api-gateway", "replicas")].detail
    assert "min/max" in text[("HorizontalPodAutoscaler community/api-gateway-hpa", "hpa")].detail


def test_kubernetes_audit_within_the_hpa_bounds_is_fine_and_standby_drift_is_named():
    west = platform(replicas=(7, 2, 2))
    east = platform("us-east-1", (0, 0, 0))
    dep = next(o for o in east if o["metadata"]["name"] == "api-gateway" and o["kind"] == "Deployment")
    dep["spec"]["template"]["spec"]["containers"][0]["image"] = "registry/community/api-gateway:2.9.0"
    east = [o for o in east if ks.object_key(o) != "Service/frontend"]
    findings = ks.audit_platform(ks.PlatformPlan.community(), {"us-west-2": west, "us-east-1": east},
                                 active_region="us-west-2", backed_up={ks.object_key(o): o for o in platform()},
                                 substitutions={r: {r: "<region>"} for r in ("us-west-2", "us-east-1")})
    assert [(f.region, f.object, f.check, f.detail) for f in findings] == [
        ("us-east-1", "Deployment community/api-gateway", "standby_spec",
         "spec differs (spec.template.spec.containers[0].image)"),
        ("us-east-1", "Service community/frontend", "standby_spec", "in the backup, missing here")]


# --------------------------------------------------------------------------- Velero bodies and statuses

def test_velero_backup_and_restore_bodies_are_valid_and_leave_generated_objects_out():
    b = kc.backup_body("community-20261201t0300", namespaces=["community"], labels={"lifeboat/backup": "x"})
    assert b["kind"] == "Backup" and b["metadata"]["namespace"] == "velero"
    assert b["spec"]["includedNamespaces"] == ["community"] and "pods" in b["spec"]["excludedResources"]
    assert b["spec"]["snapshotVolumes"] is False and b["spec"]["storageLocation"] == "default"
    r = kc.restore_body("r1", backup="b1", namespace_mappings={"community": "drill-community-abc"})
    assert r["spec"]["namespaceMapping"] == {"community": "drill-community-abc"} and r["spec"]["backupName"] == "b1"
    with pytest.raises(ValueError, match="not a valid Kubernetes name"):
        kc.backup_body("Community_Backup", namespaces=["community"])
    with pytest.raises(ValueError, match="at least one namespace"):
        kc.backup_body("b", namespaces=[])
    ns = kc.drill_namespace("community", "restore-test-2026-12-01T04:00:00+00:00-" + "x" * 60)
    assert ns.startswith("drill-community-") and len(ns) <= 63
    assert ns == kc.drill_namespace("community", "restore-test-2026-12-01T04:00:00+00:00-" + "x" * 60)


def test_velero_status_objects_read_phase_counts_warnings_and_errors():
    obj = {"metadata": {"name": "b1"}, "spec": {"storageLocation": "default"},
           "status": {"phase": "PartiallyFailed", "progress": {"itemsBackedUp": 11, "totalItems": 12},
                      "warnings": 1, "errors": 2, "startTimestamp": "2026-12-01T03:00:00Z",
                      "completionTimestamp": "2026-12-01T03:00:04Z", "formatVersion": "1.1.0"}}
    st = kc.BackupStatus.from_object(obj)
    assert (st.phase, st.items_backed_up, st.total_items, st.warnings, st.errors) == ("PartiallyFailed", 11, 12, 1, 2)
    assert st.done and not st.ok and "11/12 items" in st.describe()
    new = kc.BackupStatus.from_object({"metadata": {"name": "b2"}})
    assert not new.done and new.phase == "" and "New" in new.describe()
    rs = kc.RestoreStatus.from_object({"metadata": {"name": "r"}, "spec": {"backupName": "b1"},
                                       "status": {"phase": "Completed", "progress": {"itemsRestored": 12,
                                                                                     "totalItems": 12}}})
    assert rs.ok and rs.backup == "b1" and rs.items_restored == 12
    dep = kc.DeploymentReadiness.from_object(as_stored(deployment(), ready=2))
    assert not dep.is_ready() and dep.is_ready(2) and dep.describe().startswith("api-gateway 2/3 ready")

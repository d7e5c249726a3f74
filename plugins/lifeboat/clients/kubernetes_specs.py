"""Kubernetes object specs compared across clusters and backups, and the platform's readiness audit (pure).

`normalize(obj)` keeps what an object *is* and drops what a cluster did to it: `status`; the metadata
a server assigns (uid, resourceVersion, creationTimestamp, managedFields, generation, namespace,
ownerReferences, finalizers); allocated fields (a Service's clusterIP(s), node ports, a claim's bound
volume); annotations and labels added by tools (kubectl's last-applied-configuration, the Deployment
revision, anything `velero.io/`); and the defaults the API server fills in (probe thresholds, the
rolling-update strategy, `protocol: TCP`, ...), so a manifest and the object the server stored from it
compare equal. `spec_hash` is the SHA-256 of the canonical JSON of that. Objects are keyed `Kind/name`
(no namespace: a drill namespace compares with its source).

`audit_platform` checks the live platform against the DR plan: every planned Deployment exists with the
plan's liveness and readiness probes and its replicas (active region: the planned count, or within the
HPA's bounds; standby: its standby count), every planned HPA exists with its bounds, and the standby
holds the same specs as a given set of backed-up specs. Each finding names the object.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

_META_DROP = ("uid", "resourceVersion", "creationTimestamp", "managedFields", "generation", "namespace", "selfLink",
              "ownerReferences", "finalizers", "deletionTimestamp", "deletionGracePeriodSeconds", "generateName")
_ANNOTATIONS_DROP = ("kubectl.kubernetes.io/last-applied-configuration", "deployment.kubernetes.io/revision",
                     "pv.kubernetes.io/bind-completed", "pv.kubernetes.io/bound-by-controller",
                     "volume.beta.kubernetes.io/storage-provisioner", "volume.kubernetes.io/storage-provisioner",
                     "autoscaling.alpha.kubernetes.io/conditions", "autoscaling.alpha.kubernetes.io/current-metrics")
_PREFIXES_DROP = ("velero.io/",)
_WORKLOADS = ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet")
_PROBE_DEFAULTS = {"successThreshold": 1, "timeoutSeconds": 1, "periodSeconds": 10, "failureThreshold": 3}
_POD_DEFAULTS = {"restartPolicy": "Always", "terminationGracePeriodSeconds": 30, "dnsPolicy": "ClusterFirst",
                 "schedulerName": "default-scheduler", "enableServiceLinks": True}
_CONTAINER_DEFAULTS = {"terminationMessagePath": "/dev/termination-log", "terminationMessagePolicy": "File"}
_SERVICE_DEFAULTS = {"type": "ClusterIP", "sessionAffinity": "None", "internalTrafficPolicy": "Cluster",
                     "ipFamilyPolicy": "SingleStack", "ipFamilies": ["IPv4"]}
_DEPLOYMENT_DEFAULTS = {"progressDeadlineSeconds": 600, "revisionHistoryLimit": 10,
                        "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%",
                                                                                 "maxUnavailable": "25%"}}}
# Lifeboat's heartbeat in every backed-up namespace (lifeboat_heartbeat; a restored copy gives the RPO).
HEARTBEAT_CONFIGMAP = "lifeboat-heartbeat"
# Skipped everywhere: made by the cluster in every namespace, or Lifeboat's heartbeat (written in the
# active region only); they differ per cluster by nature.
GENERATED_OBJECTS = frozenset({"ConfigMap/kube-root-ca.crt", "ServiceAccount/default",
                               f"ConfigMap/{HEARTBEAT_CONFIGMAP}"})

# The DR plan's probes (section 1.1) and the api-gateway autoscaler (section 1.2).
PLAN_LIVENESS = {"httpGet": {"path": "/health", "port": 3000}, "initialDelaySeconds": 30, "periodSeconds": 10,
                 "timeoutSeconds": 5, "failureThreshold": 3}
PLAN_READINESS = {"httpGet": {"path": "/ready", "port": 3000}, "initialDelaySeconds": 5, "periodSeconds": 5,
                  "timeoutSeconds": 3, "failureThreshold": 3}


# =========================================================================== normalisation and hashes

def object_key(obj: Mapping) -> str:
    return f"{obj.get('kind', '?')}/{(obj.get('metadata') or {}).get('name', '?')}"


def _drop_defaults(d: dict, defaults: Mapping[str, Any]) -> None:
    for k, v in defaults.items():
        if k in d and d[k] == v:
            del d[k]


def _pod_spec(spec: dict) -> None:
    _drop_defaults(spec, _POD_DEFAULTS)
    for c in [*(spec.get("containers") or []), *(spec.get("initContainers") or [])]:
        _drop_defaults(c, _CONTAINER_DEFAULTS)
        image = c.get("image", "")
        tag_latest = ":" not in image.rsplit("/", 1)[-1] or image.endswith(":latest")
        if c.get("imagePullPolicy") == ("Always" if tag_latest else "IfNotPresent"):
            del c["imagePullPolicy"]
        for p in c.get("ports") or []:
            _drop_defaults(p, {"protocol": "TCP"})
        for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
            if isinstance(c.get(probe), dict):
                _drop_defaults(c[probe], _PROBE_DEFAULTS)
                _drop_defaults(c[probe].get("httpGet") or {}, {"scheme": "HTTP"})
        for e in c.get("env") or []:
            _drop_defaults(((e.get("valueFrom") or {}).get("fieldRef") or {}), {"apiVersion": "v1"})
    for v in spec.get("volumes") or []:
        for src in ("configMap", "secret"):
            if isinstance(v.get(src), dict):
                _drop_defaults(v[src], {"defaultMode": 420})


def _prune(value: Any) -> Any:
    """Drop None, {} and [] recursively (servers and clients disagree on writing them)."""
    if isinstance(value, dict):
        out = {k: _prune(v) for k, v in value.items()}
        return {k: v for k, v in out.items() if v not in (None, {}, [])}
    if isinstance(value, list):
        return [_prune(v) for v in value]
    return value


def _substitute(value: Any, subs: Sequence[tuple[str, str]]) -> Any:
    if isinstance(value, str):
        for old, new in subs:
            value = value.replace(old, new)
        return value
    if isinstance(value, dict):
        return {k: _substitute(v, subs) for k, v in value.items()}
    if isinstance(value, list):
        return [_substitute(v, subs) for v in value]
    return value


def normalize(obj: Mapping, *, ignore_replicas: bool = False, substitutions: Mapping[str, str] | None = None) -> dict:
    """The comparable part of an object (see the module docstring). `ignore_replicas` drops a workload's
    spec.replicas (a standby holds the specs at other replicas); `substitutions` replaces strings in every
    value, e.g. a region's registry host and region name by placeholders, so two regions compare."""
    o = copy.deepcopy(dict(obj))
    o.pop("status", None)
    o.pop("apiVersion", None)
    kind = o.get("kind", "")
    meta = o.get("metadata") or {}
    for k in _META_DROP:
        meta.pop(k, None)
    for group in ("labels", "annotations"):
        kept = {k: v for k, v in (meta.get(group) or {}).items()
                if k not in _ANNOTATIONS_DROP and not k.startswith(_PREFIXES_DROP)}
        meta[group] = kept
    o["metadata"] = meta
    raw_spec = o.get("spec")
    spec: dict = raw_spec if isinstance(raw_spec, dict) else {}
    if kind in _WORKLOADS:
        if ignore_replicas:
            spec.pop("replicas", None)
        if kind == "Deployment":
            _drop_defaults(spec, _DEPLOYMENT_DEFAULTS)
        template = spec.get("template") or {}
        (template.get("metadata") or {}).pop("creationTimestamp", None)
        _pod_spec(template.get("spec") or {})
    elif kind == "CronJob":
        _pod_spec((((spec.get("jobTemplate") or {}).get("spec") or {}).get("template") or {}).get("spec") or {})
    elif kind == "Service":
        for k in ("clusterIP", "clusterIPs", "healthCheckNodePort"):
            spec.pop(k, None)
        _drop_defaults(spec, _SERVICE_DEFAULTS)
        for p in spec.get("ports") or []:
            p.pop("nodePort", None)
            _drop_defaults(p, {"protocol": "TCP"})
            if p.get("targetPort") == p.get("port"):
                p.pop("targetPort", None)
    elif kind == "ServiceAccount":
        o.pop("secrets", None)
    elif kind == "Secret":
        _drop_defaults(o, {"type": "Opaque"})
    elif kind == "PersistentVolumeClaim":
        spec.pop("volumeName", None)
    elif kind == "NetworkPolicy":
        if not spec.get("egress") and spec.get("policyTypes") == ["Ingress"]:
            spec.pop("policyTypes")
        for rule in [*(spec.get("ingress") or []), *(spec.get("egress") or [])]:
            for p in rule.get("ports") or []:
                _drop_defaults(p, {"protocol": "TCP"})
    out = _prune(o)
    if substitutions:
        out = _substitute(out, sorted(substitutions.items(), key=lambda kv: -len(kv[0])))
    return out


def spec_hash(obj: Mapping, **kwargs) -> str:
    canon = json.dumps(normalize(obj, **kwargs), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canon.encode()).hexdigest()


def spec_hashes(objects: Iterable[Mapping], **kwargs) -> dict[str, str]:
    """{Kind/name: spec hash} of the objects, generated per-namespace objects left out."""
    return {object_key(o): spec_hash(o, **kwargs) for o in objects if object_key(o) not in GENERATED_OBJECTS}


def diff_paths(a: Any, b: Any, path: str = "", limit: int = 8) -> list[str]:
    """Dotted paths where two normalised objects differ (at most `limit`)."""
    out: list[str] = []
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b)):
            out += diff_paths(a.get(k), b.get(k), f"{path}.{k}" if path else k, limit - len(out))
            if len(out) >= limit:
                break
    elif isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            out += diff_paths(x, y, f"{path}[{i}]", limit - len(out))
            if len(out) >= limit:
                break
    elif a != b:
        out.append(path or "(whole object)")
    return out[:limit]


@dataclass(frozen=True)
class Drift:
    object: str  # Kind/name
    change: str  # missing | changed | extra
    fields: list[str] = field(default_factory=list)

    def describe(self) -> str:
        if self.change == "missing":
            return f"{self.object}: in the backup, missing here"
        if self.change == "extra":
            return f"{self.object}: here, not in the backup"
        return f"{self.object}: spec differs" + (f" ({', '.join(self.fields)})" if self.fields else "")


def compare_specs(expected: Mapping[str, Any], actual: Iterable[Mapping], *, extra: bool = True,
                  **kwargs) -> list[Drift]:
    """Drift of live objects against expected specs. `expected` maps Kind/name to a spec hash, or to the
    backed-up object itself (then the differing fields are named)."""
    live = {object_key(o): o for o in actual if object_key(o) not in GENERATED_OBJECTS}
    out = []
    for key in sorted(expected):
        if key in GENERATED_OBJECTS:
            continue
        want = expected[key]
        if key not in live:
            out.append(Drift(key, "missing"))
            continue
        if isinstance(want, str):
            if spec_hash(live[key], **kwargs) != want:
                out.append(Drift(key, "changed"))
        else:
            a, b = normalize(want, **kwargs), normalize(live[key], **kwargs)
            if a != b:
                out.append(Drift(key, "changed", diff_paths(a, b)))
    if extra:
        out += [Drift(k, "extra") for k in sorted(set(live) - set(expected))]
    return out


# =========================================================================== the readiness audit

@dataclass(frozen=True)
class DeploymentPlan:
    name: str
    replicas: int  # in the active region
    standby_replicas: int = 0
    liveness: Mapping[str, Any] = field(default_factory=lambda: PLAN_LIVENESS)
    readiness: Mapping[str, Any] = field(default_factory=lambda: PLAN_READINESS)


@dataclass(frozen=True)
class HpaPlan:
    name: str
    target: str  # Deployment name
    min_replicas: int
    max_replicas: int
    cpu_utilization: int


@dataclass(frozen=True)
class PlatformPlan:
    namespace: str
    deployments: Sequence[DeploymentPlan]
    hpas: Sequence[HpaPlan] = ()

    @classmethod
    def community(cls) -> PlatformPlan:
        """The DR plan's Community Platform: api-gateway 3 (HPA 3..20 at 70 % CPU), frontend 2, auth-service 2."""
        return cls("community", [DeploymentPlan("api-gateway", 3), DeploymentPlan("frontend", 2),
                                 DeploymentPlan("auth-service", 2)],
                   [HpaPlan("api-gateway-hpa", "api-gateway", 3, 20, 70)])


@dataclass(frozen=True)
class Finding:
    severity: str  # critical | high | medium | low (the inventory's alert routes)
    region: str
    object: str  # e.g. "Deployment community/api-gateway"
    check: str  # deployment | liveness_probe | readiness_probe | replicas | ready | hpa | standby_spec
    detail: str

    def describe(self) -> str:
        return f"[{self.severity}] {self.region} {self.object}: {self.detail}"

    def to_dict(self) -> dict:
        return asdict(self)


def _probe_mismatch(want: Mapping[str, Any], have: Mapping[str, Any] | None, path: str = "") -> list[str]:
    """Fields of the plan's probe the live probe lacks or sets otherwise (extra live fields are fine)."""
    if not have:
        return ["missing"]
    out = []
    for k, v in want.items():
        if isinstance(v, Mapping):
            out += _probe_mismatch(v, have.get(k) if isinstance(have.get(k), Mapping) else None, f"{path}{k}.")
        elif have.get(k) != v:
            out.append(f"{path}{k}={have.get(k)!r} (plan: {v!r})")
    return out


def _hpa_bounds(hpa: Mapping) -> tuple[str, int | None, int | None, int | None]:
    spec = hpa.get("spec") or {}
    cpu = None
    for m in spec.get("metrics") or []:
        res = m.get("resource") or {}
        if m.get("type") == "Resource" and res.get("name") == "cpu":
            cpu = (res.get("target") or {}).get("averageUtilization")
    return (spec.get("scaleTargetRef") or {}).get("name", ""), spec.get("minReplicas", 1), spec.get("maxReplicas"), cpu


def audit_platform(plan: PlatformPlan, live: Mapping[str, Sequence[Mapping]], *, active_region: str,
                   backed_up: Mapping[str, Any] | None = None,
                   substitutions: Mapping[str, Mapping[str, str]] | None = None) -> list[Finding]:
    """Findings for the platform as it runs. `live`: region -> the objects of plan.namespace there (all of
    RESOURCES). `backed_up`: Kind/name -> spec hash or object of the newest verified backup, compared
    (replicas ignored) with every region but the active one; `substitutions`: region -> {string: placeholder}
    applied on both sides so region-specific values (registry host, region name) compare equal."""
    ns = plan.namespace
    out: list[Finding] = []
    for region, objects in live.items():
        active = region == active_region
        by_key = {object_key(o): o for o in objects}
        hpa_targets = {}
        for hp in plan.hpas:
            name = f"HorizontalPodAutoscaler {ns}/{hp.name}"
            hpa = by_key.get(f"HorizontalPodAutoscaler/{hp.name}")
            if hpa is None:
                out.append(Finding("high", region, name, "hpa", "missing"))
                continue
            got = _hpa_bounds(hpa)
            want = (hp.target, hp.min_replicas, hp.max_replicas, hp.cpu_utilization)
            if got != want:
                out.append(Finding("high", region, name, "hpa",
                                   f"target/min/max/cpu {got[0]}/{got[1]}/{got[2]}/{got[3]}% (plan: "
                                   f"{want[0]}/{want[1]}/{want[2]}/{want[3]}%)"))
            hpa_targets[hp.target] = (got[1] or 1, got[2] or hp.max_replicas)
        for dp in plan.deployments:
            name = f"Deployment {ns}/{dp.name}"
            dep = by_key.get(f"Deployment/{dp.name}")
            if dep is None:
                out.append(Finding("critical" if active else "high", region, name, "deployment", "missing"))
                continue
            containers = (((dep.get("spec") or {}).get("template") or {}).get("spec") or {}).get("containers") or []
            for c in containers:
                for check, key, probe in (("liveness_probe", "livenessProbe", dp.liveness),
                                          ("readiness_probe", "readinessProbe", dp.readiness)):
                    bad = _probe_mismatch(probe, c.get(key))
                    if bad:
                        out.append(Finding("high", region, name, check,
                                           f"container {c.get('name')}: {key} " + ", ".join(bad)))
            replicas = int((dep.get("spec") or {}).get("replicas", 1) or 0)
            ready = int((dep.get("status") or {}).get("readyReplicas") or 0)
            if active:
                lo, hi = hpa_targets.get(dp.name, (dp.replicas, dp.replicas))
                lo = max(lo, dp.replicas)
                if not lo <= replicas <= max(hi, lo):
                    bounds = f"{lo}" if lo == hi else f"{lo}..{hi} (HPA)"
                    out.append(Finding("high", region, name, "replicas", f"{replicas} replicas (plan: {bounds})"))
                if ready < replicas:
                    out.append(Finding("high", region, name, "ready", f"{ready} of {replicas} replicas Ready"))
            elif replicas != dp.standby_replicas:
                out.append(Finding("low", region, name, "replicas",
                                   f"{replicas} replicas in the standby region (plan: {dp.standby_replicas})"))
        if backed_up is not None and not active:
            subs = dict((substitutions or {}).get(region, {}))
            src_subs = sorted((substitutions or {}).get(active_region, {}).items(), key=lambda kv: -len(kv[0]))
            expected = {k: v if isinstance(v, str) else _substitute(normalize(v, ignore_replicas=True), src_subs)
                        for k, v in backed_up.items()}
            for d in compare_specs(expected, objects, ignore_replicas=True, substitutions=subs):
                kind, _, obj = d.object.partition("/")
                out.append(Finding("high" if d.change != "extra" else "medium", region, f"{kind} {ns}/{obj}",
                                   "standby_spec", d.describe().split(": ", 1)[1]))
    return out

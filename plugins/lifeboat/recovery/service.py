"""lifeboat_recover_service (DR plan scenario 3, a service failed): restart the affected Deployments,
shift their replicas or HPA bounds, wait until Ready, check /health and /ready and an error-rate probe.

Partial recovery: the scope's dependencies come from the dependency map and go first -- each
datastore it uses must answer (nothing is restored here: lifeboat_recover does that), each service it
depends on must be healthy (restarted first when it is not); then the requested services are
restarted in order. The error-rate probe sends `recovery.probe_requests` requests to the service's
/health and /ready and reads its /metrics before and after (lifeboat.perf windows): the share of 5xx
must stay under `recovery.max_error_ratio`."""

from __future__ import annotations

import logging
import urllib.error
import urllib.request
from typing import Any

from lifeboat import perf
from lifeboat.errors import KubernetesError, Refused, RestoreFailed
from lifeboat.records import utcnow
from lifeboat.recovery.operation import RecoveryOp, operation
from lifeboat.recovery.runtime import ServiceRuntime, runtime

log = logging.getLogger(__name__)
_HTTP = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _int(params: dict, name: str) -> int | None:
    v = params.get(name)
    if v in (None, ""):
        return None
    if not isinstance(v, int) or isinstance(v, bool) or v < 0:
        raise Refused(f"{name}: a whole number >= 0 or empty, got {v!r}. Nothing was changed.")
    return v


def actions(params: dict) -> dict[str, Any]:
    a = {"restart": params.get("restart", True), "replicas": _int(params, "replicas"),
         "hpa_min": _int(params, "hpa_min"), "hpa_max": _int(params, "hpa_max")}
    if not isinstance(a["restart"], bool):
        raise Refused(f"restart: must be true or false, got {a['restart']!r}. Nothing was changed.")
    if a["hpa_min"] is not None and a["hpa_max"] is not None and a["hpa_min"] > a["hpa_max"]:
        raise Refused(f"hpa_min {a['hpa_min']} > hpa_max {a['hpa_max']}. Nothing was changed.")
    if not (a["restart"] or any(a[k] is not None for k in ("replicas", "hpa_min", "hpa_max"))):
        raise Refused("nothing to do: restart is false and no replicas or HPA bounds given. Nothing was changed.")
    return a


def _hpa(rt: ServiceRuntime) -> dict[str, Any] | None:
    """The HPA (autoscaling/v2) whose scaleTargetRef is the service's Deployment."""
    if rt.kube is None:
        return None
    doc = rt.kube.get(f"/apis/autoscaling/v2/namespaces/{rt.dep.namespace}/horizontalpodautoscalers") or {}  # type: ignore[union-attr]
    for h in doc.get("items", []):
        ref = h.get("spec", {}).get("scaleTargetRef", {})
        if ref.get("kind") == "Deployment" and ref.get("name") == rt.deployment_name:
            return h
    return None


def _state(rt: ServiceRuntime) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if rt.kube is not None:
        d = rt.kube.deployments(rt.dep.namespace).get(rt.deployment_name)  # type: ignore[union-attr]
        out["deployment"] = d.describe() if d else "missing"
        out["ready"] = bool(d and d.is_ready())
        h = _hpa(rt)
        if h:
            out["hpa"] = {"name": h["metadata"]["name"], "min": h["spec"].get("minReplicas"),
                          "max": h["spec"].get("maxReplicas")}
    health = rt.health()
    out["health"] = health
    out["healthy"] = out.get("ready", True) and health.get("ok") is not False
    return out


def _metrics_url(rt: ServiceRuntime) -> str | None:
    u = rt.urls().get("health")
    return u.rsplit("/", 1)[0] if u else None


def probe_window(rt: ServiceRuntime, requests: int) -> dict[str, Any] | None:
    """`requests` GETs of /health and /ready between two scrapes of /metrics: the error ratio seen."""
    base = _metrics_url(rt)
    if base is None:
        return None
    before = perf.scrape(base)
    urls = list(rt.urls().values())
    codes: dict[str, int] = {}
    for i in range(requests):
        url = urls[i % len(urls)]
        try:
            with _HTTP.open(url, timeout=5) as r:
                code = r.status
        except urllib.error.HTTPError as e:
            code = e.code
        except OSError:
            code = 0
        codes[str(code)] = codes.get(str(code), 0) + 1
    w = perf.window(before, perf.scrape(base))
    return {**{k: (round(v, 4) if isinstance(v, float) else v) for k, v in w.items()}, "codes": codes}


def plan(kind: str, params: dict, run: dict) -> dict:
    op = operation(kind, params, run, check_confirm=False)
    a = actions(params)
    steps, blockers, state = [], [], {}
    for node in op.order:
        if node.kind == "datastore":
            try:
                now = op.engine(node.name).ping()
                steps.append(f"check {node.name}@{op.region}: {now}")
            except Exception as exc:
                blockers.append(f"{node.name}@{op.region} does not answer ({str(exc).splitlines()[0][:200]}): "
                                "recover it first (lifeboat_recover)")
            continue
        rt = runtime(op, node.name)
        try:
            state[node.name] = st = _state(rt)
        except KubernetesError as exc:
            blockers.append(str(exc))
            continue
        if node.name not in op.requested:
            verdict = "healthy" if st["healthy"] else "NOT healthy: restart it"
            steps.append(f"check {node.name} (a dependency): {verdict}")
            continue
        what = [f"kubectl rollout restart deployment/{rt.deployment_name}"] if a["restart"] and rt.kube else []
        if a["restart"] and rt.process() is not None:
            what.append("restart its process")
        if a["hpa_min"] is not None or a["hpa_max"] is not None:
            h = st.get("hpa")
            if not h:
                blockers.append(f"{node.name}: no HPA targets deployment {rt.deployment_name}")
            else:
                what.append(f"HPA {h['name']} {h['min']}..{h['max']} -> "
                            f"{a['hpa_min'] or h['min']}..{a['hpa_max'] or h['max']}")
        if a["replicas"] is not None:
            what.append(f"replicas -> {a['replicas']}")
        steps.append(f"recover {node.name}: {'; '.join(what) or 'nothing'} (now {st.get('deployment', '-')})")
        steps.append(f"verify {node.name}: Ready, {', '.join(rt.urls().values()) or 'no URLs'}, error-rate probe")
        try:
            state[node.name]["before"] = probe_window(rt, 5)
        except OSError as exc:
            state[node.name]["before"] = {"error": str(exc)[:200]}
    text = "\n".join([f"**RECOVER SERVICE in {op.region}** -- {'DRY RUN' if op.dry_run else 'REAL RUN'}\n",
                      f"Reason: {op.reason}\n", f"Scope: {', '.join(op.requested)}\n",
                      "Steps, in order (dependencies first):", *(f"{i}. {s}" for i, s in enumerate(steps, 1)),
                      *(["\nBLOCKED:", *(f"- {b}" for b in blockers)] if blockers else [])])
    log.info("plan:\n%s", text)
    result = {"kind": kind, "region": op.region, "dry_run": op.dry_run, "steps": steps, "blockers": blockers,
              "state": state, "actions": a, "text": text, "order": [n.name for n in op.order]}
    if blockers:
        raise Refused(f"{kind} in {op.region} is blocked:\n- " + "\n- ".join(blockers))
    return result


def _scale(rt: ServiceRuntime, a: dict[str, Any]) -> list[str]:
    done = []
    if a["hpa_min"] is not None or a["hpa_max"] is not None:
        h = _hpa(rt)
        assert h is not None  # the plan blocked otherwise
        patch = {k: v for k, v in (("minReplicas", a["hpa_min"]), ("maxReplicas", a["hpa_max"])) if v is not None}
        from kubernetes import client as k8s

        k8s.AutoscalingV2Api(rt.kube.hook.api_client).patch_namespaced_horizontal_pod_autoscaler(
            h["metadata"]["name"], rt.dep.namespace, {"spec": patch})  # type: ignore[union-attr]
        done.append(f"HPA {h['metadata']['name']} {patch}")
    if a["replicas"] is not None and rt.kube is not None:
        rt.kube.apps.patch_namespaced_deployment_scale(rt.deployment_name, rt.dep.namespace,  # type: ignore[union-attr]
                                                       {"spec": {"replicas": a["replicas"]}})
        done.append(f"replicas {a['replicas']}")
    return done


def restart(kind: str, params: dict, run: dict) -> dict:
    """Datastores checked, dependency services checked (restarted when unhealthy), then the requested
    services restarted / scaled and waited for, in dependency order."""
    op = operation(kind, params, run)
    a = actions(params)
    tl = op.timeline()
    out: dict[str, Any] = {}
    for node in op.order:
        if node.kind == "datastore":
            if tl is None:
                out[node.name] = f"DRY RUN: would check {node.name} answers"
                continue
            with op.store.step(tl, f"check {node.name}") as s:
                s.detail = op.engine(node.name).ping()
            out[node.name] = s.detail
            continue
        rt = runtime(op, node.name)
        timeout = op.ready_timeout(node.name)
        if tl is None:
            out[node.name] = {"dry_run": True, "state": _state(rt)}
            continue
        if node.name not in op.requested:
            with op.store.step(tl, f"check {node.name}") as s:
                st = _state(rt)
                if st["healthy"]:
                    s.detail = f"healthy ({st.get('deployment', 'no deployment')})"
                else:
                    s.detail = (f"not healthy ({st.get('deployment')}): restarted {rt.restart()}; "
                                + str(rt.wait_ready(timeout)))
            out[node.name] = s.detail
            continue
        with op.store.step(tl, f"restart {node.name}") as s:
            res = rt.restart() if a["restart"] else {}
            scaled = _scale(rt, a)
            s.detail = "; ".join([*(f"{k}: {v}" for k, v in res.items()), *scaled]) or "nothing changed"
        with op.store.step(tl, f"wait for {node.name} to be ready") as s:
            ready = rt.wait_ready(timeout)
            s.detail = "; ".join(f"{k}: {v}" for k, v in ready.items())
        out[node.name] = {"restart": res, "scaled": scaled, "ready": ready}
    return {"dry_run": op.dry_run, "services": out}


def verify(kind: str, params: dict, run: dict) -> dict:
    """Every service of the scope Ready and healthy, then the error-rate probe: the clock stops."""
    op = operation(kind, params, run)
    tl = op.timeline()
    limit = op.inv.recovery.max_error_ratio
    out: dict[str, Any] = {"services": {}}
    for node in op.order:
        if node.kind != "service":
            continue
        rt = runtime(op, node.name)
        if tl is None:
            out["services"][node.name] = {"health": rt.health()}
            continue
        timeout = op.ready_timeout(node.name)
        with op.store.step(tl, f"verify {node.name}") as s:
            res = rt.wait_ready(timeout)
            s.detail = "; ".join(f"{k}: {v}" for k, v in res.items())
        if node.name in op.requested:
            with op.store.step(tl, f"error-rate probe {node.name}") as s:
                w = probe_window(rt, op.inv.recovery.probe_requests)
                if w is None:
                    s.detail = "no /metrics (no URL): not probed"
                else:
                    s.detail = (f"{w['requests']:.0f} requests, {w['errors']:.0f} errors "
                                f"({w['error_ratio']:.1%}, allowed {limit:.0%}), p95 "
                                f"{(w['p95_seconds'] or 0) * 1000:.0f} ms, codes {w['codes']}")
                    if w["requests"] <= 0 or w["error_ratio"] > limit:
                        raise RestoreFailed(f"{node.name}: error-rate probe failed: {s.detail}")
            res["probe"] = w
        out["services"][node.name] = res
    if tl is not None:
        tl.verified_at = verified = utcnow()
        op.store.save(tl)
        out["verified_at"] = verified.isoformat()
        out["rto_seconds"] = round((verified - tl.triggered_at).total_seconds(), 3)
    return {"dry_run": op.dry_run, **out}


__all__ = ["RecoveryOp", "plan", "restart", "verify"]

"""The platform's readiness audit (lifeboat_monitor), wired to the inventory and the catalog.

The plan comes from the inventory: every Deployment of `failover.services` (replicas in the active and
the standby region) with the DR plan's probes (lifeboat.clients.kubernetes_specs.PLAN_LIVENESS /
PLAN_READINESS), and the HPAs of `options.audit.hpas`. The standby cluster is compared by spec hash
(replicas left out, region-specific strings replaced by placeholders) with the newest VERIFIED backup
of the namespace, read from the Lifeboat repository's copy of its tarball. Each finding names the object;
the monitor turns each into one incident (its check names the object, so two drifts are two incidents).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lifeboat.clients.kubernetes_specs import DeploymentPlan, Finding, HpaPlan, PlatformPlan, audit_platform, object_key
from lifeboat.errors import BackupNotFound, LifeboatError

if TYPE_CHECKING:
    from lifeboat.datastores.kubernetes.engine import KubernetesDatastore


def plans(eng: KubernetesDatastore) -> list[PlatformPlan]:
    """One plan per namespace of the inventory's failover services (the HPAs go with their target)."""
    fo = eng.ctx.inventory.failover
    by_ns: dict[str, list[DeploymentPlan]] = {}
    for svc in (fo.services if fo else []):
        by_ns.setdefault(svc.namespace, []).append(DeploymentPlan(svc.deployment or svc.name, svc.replicas,
                                                                  svc.standby_replicas))
    out = []
    for ns, deps in by_ns.items():
        names = {d.name for d in deps}
        hpas = [HpaPlan(h.name, h.target, h.min_replicas, h.max_replicas, h.cpu_utilization)
                for h in eng.options.audit.hpas if h.target in names]
        out.append(PlatformPlan(ns, deps, hpas))
    return out


def backed_up_specs(eng: KubernetesDatastore) -> tuple[dict[str, dict[str, dict]], str]:
    """({namespace: {Kind/name: object}} of the newest verified backup, its id); ({}, reason) if none."""
    from lifeboat.catalog import Catalog
    from lifeboat.datastores.kubernetes.scratch import LISTED_KINDS, tarball_from_copy

    try:
        m = Catalog(eng.ctx.repo).latest(eng.name, verified=True, series=eng.restore_series)
    except BackupNotFound as exc:
        return {}, str(exc)
    tarball = tarball_from_copy(eng, m)
    return {ns: {object_key(o): o for o in tarball.objects(ns) if o.get("kind") in LISTED_KINDS}
            for ns in m.native.get("namespaces", [])}, m.id


def substitutions(eng: KubernetesDatastore) -> dict[str, dict[str, str]]:
    """region -> {value: <placeholder>} from options.audit.region_values."""
    return {r: {v: f"<{k}>" for k, v in vals.items() if v} for r, vals in eng.options.audit.region_values.items()}


def audit(eng: KubernetesDatastore) -> tuple[list[Finding], str]:
    """(findings, what was compared) for every plan, in both regions."""
    inv = eng.ctx.inventory
    regions = [inv.regions.primary, inv.regions.standby]
    specs, source = backed_up_specs(eng)
    out: list[Finding] = []
    for plan in plans(eng):
        live = {r: eng.client(r).list_namespace(plan.namespace) for r in regions if r in eng.spec.connections}
        out += audit_platform(plan, live, active_region=inv.regions.primary, backed_up=specs.get(plan.namespace),
                              substitutions=substitutions(eng))
    compared = f"standby compared with {source}" if specs else f"standby not compared ({source})"
    return out, compared


def readiness_findings(eng: KubernetesDatastore) -> list[dict]:
    """The audit as monitor findings: one per object and check (severity from the audit), or one `ok`."""
    try:
        findings, compared = audit(eng)
    except LifeboatError as exc:
        return [{"check": "readiness audit", "severity": "high", "value": "failed", "threshold": "runs",
                 "message": f"{eng.name}: the platform's readiness audit could not run: {exc}"}]
    out = [{"check": f"readiness: {f.object} {f.check} ({f.region})", "severity": f.severity, "value": f.detail,
            "threshold": "DR plan" if f.check != "standby_spec" else "newest verified backup",
            "message": f"{eng.name}: {f.describe()}"} for f in findings]
    out.append({"check": "readiness audit", "severity": "ok", "value": f"{len(findings)} finding(s)",
                "threshold": "0", "message": f"{eng.name}: readiness audit: {len(findings)} finding(s); {compared}"})
    return out

"""Bring deleted Kubernetes objects back into a LIVE namespace from a Velero backup: the guarded job.

    restore_resources("kubernetes", namespace="community", resources=["deployments/api-gateway"],
                      backup="latest", region=None, confirm="community", run=None) -> dict

Also `python -m lifeboat restore-resources kubernetes --namespace community --resource deployments/api-gateway
[--backup <id>|latest] [--confirm community]`, and the recovery DAG's step for lost platform objects.

Safe by default:
* a DRY RUN unless `confirm` repeats the namespace: the plan says which objects are missing and would come
  back, which are present and are left as they are, and with which Velero Restore;
* refused from a scheduled (or asset-triggered, backfill) DAG run: a live namespace is restored only by a
  person (manual run, CLI);
* only what is MISSING is restored: a Velero Restore limited to the namespace, the objects' resources and
  their labels (`orLabelSelectors`), with `existingResourcePolicy: none` (what exists is never touched);
  refused if those filters would also bring back a missing object that was not asked for (name it too);
* afterwards every restored object is compared with the backed-up one (normalised spec) and restored
  Deployments must be Ready with the backup's replicas.

`backup`: a backup id, or "latest" (the newest verified backup, else the newest complete one). `region`:
the cluster to restore into (default: the inventory's primary region; the repository copy of that region
is read first). Returns a JSON-safe summary (the task's XCom / the CLI's output).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass

from lifeboat.catalog import Catalog
from lifeboat.clients.kubernetes_specs import compare_specs, object_key
from lifeboat.datastores.kubernetes.scratch import tarball_from_copy
from lifeboat.datastores.kubernetes.tarball import Tarball, flatten_results, read_gzip_json, velero_name
from lifeboat.errors import BackupNotFound, InventoryError, LifeboatError, Refused, RestoreFailed

log = logging.getLogger(__name__)

# Run ids of DAG runs no person started: they never restore into a live namespace.
UNATTENDED_RUNS = ("scheduled__", "asset_triggered__", "dataset_triggered__", "backfill__")


@dataclass
class Wanted:
    spec: str  # as asked: "deployments/api-gateway"
    resource: str  # the tarball's resource: "deployments.apps"
    kind: str
    name: str
    labels: dict
    path: str  # the object's API path in the namespace
    present: bool = False

    @property
    def key(self) -> str:
        return f"{self.kind}/{self.name}"


def refuse_unattended(run: dict | None, namespace: str) -> None:
    run_id = (run or {}).get("run_id", "")
    if run_id.startswith(UNATTENDED_RUNS):
        raise Refused(f"refusing to restore into the live namespace {namespace!r} from DAG run {run_id!r} "
                      f"({(run or {}).get('dag_id', '?')}): a live restore is started by a person (a manual run or "
                      "the CLI), never by a schedule; restore tests only use drill-* namespaces")


def api_path(obj: dict, resource: str, namespace: str) -> str:
    api_version, name = obj.get("apiVersion", "v1"), obj["metadata"]["name"]
    base = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
    return f"{base}/namespaces/{namespace}/{resource.split('.', 1)[0]}/{name}"


def find_wanted(tarball: Tarball, namespace: str, spec: str) -> Wanted:
    """'deployments/api-gateway', 'deployment/api-gateway', 'Deployment/api-gateway' or
    'deployments.apps/api-gateway' -> the backed-up object; BackupNotFound naming what the backup has."""
    what, _, name = spec.strip().partition("/")
    if not what or not name:
        raise InventoryError(f"--resource {spec!r}: expected <resource>/<name>, e.g. deployments/api-gateway")
    w = what.lower()
    same_type = []
    for key, obj in tarball.items.items():
        resource, ns, n = key.split("/", 2)
        kind = str(obj.get("kind", "")).lower()
        if ns == namespace and w in (resource, resource.split(".", 1)[0], kind, f"{kind}s"):
            same_type.append(n)
            if n == name:
                return Wanted(spec, resource, obj.get("kind", ""), n, dict((obj.get("metadata") or {}).get("labels")
                                                                           or {}), api_path(obj, resource, namespace))
    have = ", ".join(sorted(same_type)) or "none"
    raise BackupNotFound(f"{spec}: not in the backup's namespace {namespace} (its {what}: {have})")


def _choose(cat: Catalog, name: str, backup: str) -> tuple:
    if backup and backup != "latest":
        return cat.get(name, backup), "requested"
    try:
        return cat.latest(name, verified=True, series="full"), "newest verified backup"
    except BackupNotFound:
        return cat.latest(name, series="full"), "newest backup (none verified yet)"


def restore_resources(datastore: str, *, namespace: str, resources: Sequence[str], backup: str = "latest",
                      region: str | None = None, confirm: str | None = None, run: dict | None = None,
                      inventory=None, wait: bool = True) -> dict:
    """See the module docstring."""
    from lifeboat.datastores import open_engine
    from lifeboat.inventory import load_inventory

    refuse_unattended(run, namespace)
    inv = inventory or load_inventory()
    regions = (inv.regions.primary, inv.regions.standby)
    region = region or inv.regions.primary
    if region not in regions:
        raise InventoryError(f"region {region!r}: not an inventory region ({', '.join(regions)})")
    eng = open_engine(datastore, inventory=inv, region=region, run=run)
    if eng.engine != "kubernetes":
        raise Refused(f"{datastore}: restore-resources is for kubernetes datastores (this one is {eng.engine})")
    if not resources:
        raise InventoryError("no --resource given (e.g. deployments/api-gateway)")
    m, why = _choose(Catalog(eng.ctx.repo), datastore, backup)
    if namespace not in m.native.get("namespaces", []):
        raise Refused(f"namespace {namespace!r} is not in backup {m.id} (it holds {', '.join(m.native['namespaces'])})")
    tarball = tarball_from_copy(eng, m)
    wanted = [find_wanted(tarball, namespace, r) for r in resources]
    c = eng.client(region)
    for w in wanted:
        w.present = c.get(w.path) is not None
    missing = [w for w in wanted if not w.present]
    selectors = [{"matchLabels": w.labels} for w in missing]
    collateral = _collateral(tarball, namespace, missing, c)
    velero = m.native["velero_backup"]
    restore = velero_name(f"{velero}-{namespace}-" + hashlib.sha256(
        f"{(run or {}).get('run_id', '')}|{','.join(sorted(w.key for w in missing))}".encode()).hexdigest()[:10])
    out = {"datastore": datastore, "backup_id": m.id, "backup_chosen": why, "velero_backup": velero,
           "region": region, "namespace": namespace, "dry_run": confirm != namespace,
           "missing": [w.key for w in missing], "present": [w.key for w in wanted if w.present],
           "velero_restore": restore, "restored": [], "warnings": []}
    if collateral:
        raise Refused(f"restoring {', '.join(w.key for w in missing)} from {m.id} would also bring back "
                      f"{', '.join(collateral)} (missing too, same resources and labels): name them with --resource "
                      "as well, or restore by hand (docs/datastores/kubernetes.md)")
    if not missing:
        out["detail"] = "nothing is missing: every object asked for exists; nothing restored"
        return out
    if out["dry_run"]:
        out["detail"] = (f"dry run: would restore {', '.join(out['missing'])} into {region}/{namespace} from {velero} "
                         f"(existing objects left as they are); to do it: confirm={namespace!r} "
                         f"(CLI: --confirm {namespace})")
        log.info("%s", out["detail"])
        return out
    if region != m.region:
        c.wait_backup_visible(velero, timeout=eng.timeout("sync_timeout"))
    st = c.create_restore(restore, backup=velero, include_namespaces=[namespace],
                          include_resources=sorted({w.resource for w in missing}),
                          or_label_selectors=selectors if all(w.labels for w in missing) else (),
                          existing_resource_policy="none", labels={"app.kubernetes.io/managed-by": "lifeboat"},
                          annotations={"lifeboat.io/backup-id": m.id,
                                       "lifeboat.io/run-id": (run or {}).get("run_id", "")})
    log.info("restoring %s into %s/%s from %s: Velero Restore %s", out["missing"], region, namespace, velero, st.name)
    rs = c.wait_restore(restore, timeout=eng.timeout("restore_timeout"))
    results = _results(eng, region, c.backup(velero), restore) if (rs.warnings or rs.errors or not rs.ok) else {}
    out["velero_status"] = rs.describe()
    out["warnings"] = flatten_results(results, "warnings")
    if not rs.ok:
        raise RestoreFailed(f"{rs.describe()} into {region}/{namespace}: "
                            + "; ".join(flatten_results(results, "errors")))
    expected = {w.key: tarball.find(namespace, w.kind, w.name)[1] for w in missing}  # type: ignore[index]
    live = [obj for w in missing if (obj := c.get(w.path)) is not None]
    drift = compare_specs(expected, live, extra=False)
    if drift:
        raise RestoreFailed(f"restored into {region}/{namespace}, but: " + "; ".join(d.describe() for d in drift))
    out["restored"] = [w.key for w in missing]
    deployments = [w.name for w in missing if w.kind == "Deployment"]
    if deployments and wait:
        ready = c.wait_deployments_ready(namespace, deployments, timeout=eng.timeout("ready_timeout"))
        out["ready"] = {n: asdict(d) for n, d in ready.items() if d is not None}
    out["detail"] = (f"restored {', '.join(out['restored'])} into {region}/{namespace} from {velero}, equal to the "
                     "backup")
    log.info("%s", out["detail"])
    return out


def _matches(labels: dict, selector: dict) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


def _collateral(tarball: Tarball, namespace: str, missing: list[Wanted], c) -> list[str]:
    """Other backed-up objects the Restore's filters would bring back because they are missing too."""
    if not missing:
        return []
    resources = {w.resource for w in missing}
    asked = {w.key for w in missing}
    out = []
    for key, obj in sorted(tarball.items.items()):
        resource, ns, _ = key.split("/", 2)
        if ns != namespace or resource not in resources or object_key(obj) in asked:
            continue
        labels = (obj.get("metadata") or {}).get("labels") or {}
        if all(w.labels for w in missing) and not any(_matches(labels, w.labels) for w in missing):
            continue
        if c.get(api_path(obj, resource, namespace)) is None:
            out.append(object_key(obj))
    return out


def _results(eng, region: str, synced, restore: str) -> dict:
    try:
        loc = eng.location(region, synced.storage_location if synced else None)
        key = loc.restore_results_key(restore)
        return read_gzip_json(loc.get(key), loc.url(key))
    except (LifeboatError, ValueError) as exc:  # TarballError is a ValueError
        return {"errors": {"velero": [f"results unreadable: {exc}"]}}

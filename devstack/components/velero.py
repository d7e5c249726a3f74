"""Velero for both local clusters: one out-of-cluster `velero server` per region (stdlib only).

Needs the kubernetes component (its clusters, tokens and kubeconfigs) and the stack's moto S3 endpoint.

Per region:
  * the Velero CRDs (`velero install --crds-only --dry-run -o yaml`, server-side applied), namespace
    `velero` and a placeholder Deployment `velero` with 0 replicas (without it every restore ends
    PartiallyFailed: `deployments.apps "velero" not found`);
  * BackupStorageLocations (provider aws, the AWS object-store plugin against moto):
      `default`        ReadWrite on the region's own bucket (velero-<region>),
      `<other region>` ReadOnly on the other region's bucket -- so the standby (us-east-1) sees every
                       backup of the primary within one sync period, and the primary sees the standby's
                       after a failover; a read-only location is never written or garbage-collected;
  * `velero server --kubeconfig <state>/kubernetes/<region>/kubeconfig-velero ...` with a short
    --backup-sync-period (LIFEBOAT_VELERO_SYNC_PERIOD, default 5s). Velero's backup-sync controller only
    wakes once a minute (backupSyncReconcilePeriod in pkg/controller/backup_sync_controller.go), so a
    backup reaches the other cluster within ~1 min; the short period makes every wake-up sync (with 1m,
    jitter can skip one and make it 2 min).

The :8080 problem and the choice made here: Velero's embedded controller-runtime binds its metrics server
on :8080 of every interface, with no flag to move it, so two Velero servers cannot share a network
namespace (nor one with anything else on 8080, e.g. Airflow's UI). Each server therefore runs in its own
private network namespace (devstack/netns_sandbox.py): it binds its :8080 there, the machine's :8080
stays free, both regions' servers run side by side all the time (as in production, one per cluster), and
a client that creates a Backup in us-west-2 and a Restore in us-east-1 just sees both complete. The
namespace holds only a loopback on which the sandbox forwards exactly two host ports -- the region's
kube-apiserver and moto, under the same 127.0.0.1:<port> numbers -- so nothing else is reachable and no
packet can leave the machine. As root the sandbox only unshares the network namespace; otherwise it adds
a user namespace (no privilege needed). Because neither server binds the machine's :8080, the shared
/tmp/lifeboat-velero-8080.lock (for Velero servers in the host's namespace) is not taken.

    <state>/velero/crds-<version>.yaml       the CRDs as `velero install --crds-only` prints them
    <state>/velero/<region>/credentials      AWS shared-credentials file for moto (0600)
    <state>/velero/<region>/plugins/         velero-plugin-for-aws (a link into the binary cache)
    <state>/velero/<region>/velero.pid       the sandbox (process group leader); velero.child.pid = velero
    <state>/velero/<region>/velero.log       the sandbox's and Velero's output

Env: LIFEBOAT_VELERO_BIN (the CLI, for the runbook and tests), LIFEBOAT_VELERO_NAMESPACE,
LIFEBOAT_VELERO_BUCKET_US_WEST_2 / _US_EAST_1, and the aws connections through which Lifeboat reads the
buckets (AIRFLOW_CONN_LIFEBOAT_VELERO_S3_US_WEST_2 / _US_EAST_1, moto's endpoint).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

try:
    from devstack.components import _common
    from devstack.components import kubernetes as k8s
except ImportError:  # run as a script: python devstack/components/<name>.py
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from devstack.components import _common
    from devstack.components import kubernetes as k8s

NAME = "velero"
VERSION = k8s.VERSIONS["velero"]
NAMESPACE = "velero"
REGIONS = k8s.REGIONS
BUCKETS = {r: f"velero-{r}" for r in REGIONS}
SANDBOX = Path(__file__).resolve().parents[1] / "netns_sandbox.py"
WAIT_S = 90.0
_HTTP = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never via a proxy
_CHILDREN: dict[int, subprocess.Popen] = {}


def _error(message: str, log: Path | None = None, detail: str = "") -> Exception:
    return _common.component_error(NAME, message, log, detail)


def _root(state_dir: Path) -> Path:
    return Path(state_dir) / NAME


def _rdir(state_dir: Path, region: str) -> Path:
    return _root(state_dir) / region


def sync_period() -> str:
    return os.environ.get("LIFEBOAT_VELERO_SYNC_PERIOD") or "5s"


def velero_binary(say=None) -> Path:
    return k8s.binary("velero", say)


def moto_endpoint(state_dir: Path) -> str:
    endpoint = _common.moto_endpoint(state_dir)
    if not endpoint:
        raise _error(f"no moto port in {Path(state_dir) / 'stack.json'}: start the stack's core first")
    return endpoint


def moto_endpoints(state_dir: Path) -> dict[str, str]:
    """region -> the S3 endpoint its bucket is on (the stack runs one moto per region)."""
    fallback = moto_endpoint(state_dir)
    return {r: _common.moto_endpoint(state_dir, r) or fallback for r in REGIONS}


# --------------------------------------------------------------------------- S3 buckets (moto)

def ensure_buckets(endpoints: str | dict[str, str]) -> list[str]:
    return [bucket for region, bucket in BUCKETS.items()
            if _common.ensure_bucket(_endpoint_of(endpoints, region), bucket, region)]


def _endpoint_of(endpoints: str | dict[str, str], region: str) -> str:
    return endpoints if isinstance(endpoints, str) else endpoints[region]


# --------------------------------------------------------------------------- cluster objects

def bsl_docs(region: str, endpoint: str | dict[str, str]) -> list[dict]:
    """The region's own read-write location `default` and a read-only one on the other region's bucket."""
    out = []
    for other in REGIONS:
        own = other == region
        out.append({
            "apiVersion": "velero.io/v1", "kind": "BackupStorageLocation",
            "metadata": {"name": "default" if own else other, "namespace": NAMESPACE,
                         "labels": {"app.kubernetes.io/managed-by": "lifeboat-devstack"}},
            "spec": {"provider": "aws", "default": own, "accessMode": "ReadWrite" if own else "ReadOnly",
                     "objectStorage": {"bucket": BUCKETS[other]},
                     "config": {"region": other, "s3ForcePathStyle": "true",
                                "s3Url": _endpoint_of(endpoint, other)}}})
    return out


def placeholder_deployment() -> dict:
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "velero", "namespace": NAMESPACE,
                         "labels": {"component": "velero", "app.kubernetes.io/managed-by": "lifeboat-devstack"},
                         "annotations": {"lifeboat.devstack/note": "placeholder: the server runs outside the cluster"}},
            "spec": {"replicas": 0, "selector": {"matchLabels": {"deploy": "velero"}},
                     "template": {"metadata": {"labels": {"deploy": "velero", "component": "velero"}},
                                  "spec": {"containers": [{"name": "velero", "image": f"velero/velero:{VERSION}"}]}}}}


def _crds(state_dir: Path) -> Path:
    f = _root(state_dir) / f"crds-{VERSION}.yaml"
    if f.exists() and f.stat().st_size > 0:
        return f
    p = subprocess.run([str(velero_binary()), "install", "--crds-only", "--dry-run", "-o", "yaml",
                        f"--kubeconfig={k8s.kubeconfig_path(state_dir, REGIONS[0])}"],
                       capture_output=True, text=True, timeout=60, check=False)
    if p.returncode != 0 or "CustomResourceDefinition" not in p.stdout:
        raise _error("`velero install --crds-only --dry-run -o yaml` failed", detail=p.stderr + p.stdout[-500:])
    k8s._write(f, p.stdout, 0o644)
    return f


def _ensure_objects(state_dir: Path, region: str, api: k8s.Api, endpoint: str | dict[str, str]) -> list[str]:
    notes = []
    crds = _crds(state_dir)
    stamp = _rdir(state_dir, region) / "crds.applied"
    digest = hashlib.sha256(crds.read_bytes()).hexdigest()
    present = api.get("/apis/apiextensions.k8s.io/v1/customresourcedefinitions/backups.velero.io") is not None
    if not present or not stamp.exists() or stamp.read_text().strip() != digest:
        k8s._kubectl(state_dir, region, ["apply", "--server-side", "--force-conflicts",
                                         "--field-manager=lifeboat-devstack", "-f", str(crds)])
        k8s._write(stamp, digest + "\n", 0o644)
        notes.append("CRDs applied")
    deadline = time.monotonic() + 30
    while api.get(f"/apis/velero.io/v1/namespaces/{NAMESPACE}/backupstoragelocations") is None:
        if time.monotonic() > deadline:
            raise _error(f"the velero.io/v1 API did not appear in {region} within 30s")
        time.sleep(0.2)
    if api.get(f"/api/v1/namespaces/{NAMESPACE}") is None:
        api.request("POST", "/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace",
                                                   "metadata": {"name": NAMESPACE}})
        notes.append(f"namespace {NAMESPACE}")
    if api.get(f"/apis/apps/v1/namespaces/{NAMESPACE}/deployments/velero") is None:
        code, resp = api.request("POST", f"/apis/apps/v1/namespaces/{NAMESPACE}/deployments", placeholder_deployment())
        if code not in (201, 409):
            raise _error(f"creating the placeholder Deployment velero/velero in {region}: HTTP {code} "
                         f"{resp.get('message')}")
    for doc in bsl_docs(region, endpoint):
        path = f"/apis/velero.io/v1/namespaces/{NAMESPACE}/backupstoragelocations"
        cur = api.get(f"{path}/{doc['metadata']['name']}")
        if cur is None:
            code, resp = api.request("POST", path, doc)
            if code not in (201, 409):
                raise _error(f"creating BackupStorageLocation {doc['metadata']['name']} in {region}: HTTP {code} "
                             f"{resp.get('message')}")
            notes.append(f"BSL {doc['metadata']['name']} ({doc['spec']['accessMode']})")
        elif {k: cur["spec"].get(k) for k in doc["spec"]} != doc["spec"]:
            code, resp = api.request("PATCH", f"{path}/{doc['metadata']['name']}", {"spec": doc["spec"]},
                                     content_type="application/merge-patch+json")
            if code != 200:
                raise _error(f"updating BackupStorageLocation {doc['metadata']['name']} in {region}: HTTP {code}")
            notes.append(f"BSL {doc['metadata']['name']} updated")
    return notes


# --------------------------------------------------------------------------- the server, in its sandbox

def server_argv(state_dir: Path, region: str) -> list[str]:
    d = _rdir(state_dir, region)
    return [str(velero_binary()), "server", f"--kubeconfig={k8s.kubeconfig_path(state_dir, region, 'velero')}",
            f"--namespace={NAMESPACE}", f"--plugin-dir={d / 'plugins'}",
            # inside the sandbox's own network namespace: these (and controller-runtime's :8080) are private
            "--metrics-address=127.0.0.1:8085", "--profiler-address=127.0.0.1:6060",
            f"--backup-sync-period={sync_period()}", "--store-validation-frequency=10s",
            "--uploader-type=kopia", "--log-level=info"]


def sandbox_argv(state_dir: Path, region: str) -> list[str]:
    ports = sorted({int(e.rsplit(":", 1)[1]) for e in moto_endpoints(state_dir).values()},
                   key=lambda p: p != int(moto_endpoint(state_dir).rsplit(":", 1)[1]))
    moto = [a for p in ports for a in ("--forward", str(p))]  # both regions' buckets (one moto each)
    return [sys.executable, str(SANDBOX), "--forward", str(k8s.port(state_dir, region, "apiserver")),
            *moto, "--child-pidfile", str(_rdir(state_dir, region) / "velero.child.pid"),
            "--", *server_argv(state_dir, region)]


def pid(state_dir: Path, region: str) -> int | None:
    try:
        n = int((_rdir(state_dir, region) / "velero.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    return n if _common.proc_alive(n, str(_rdir(state_dir, region)).encode()) else None


def server_pid(state_dir: Path, region: str) -> int | None:
    """The velero process itself (inside the sandbox)."""
    try:
        n = int((_rdir(state_dir, region) / "velero.child.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    return n if pid(state_dir, region) and _common.proc_alive(n, b"velero") else None


def _prepare(state_dir: Path, region: str) -> None:
    d = _rdir(state_dir, region)
    (d / "plugins").mkdir(parents=True, exist_ok=True)
    plugin = k8s.binary("velero-plugin-for-aws")
    link = d / "plugins" / "velero-plugin-for-aws"
    if not link.is_symlink() or os.readlink(link) != str(plugin):
        with contextlib.suppress(FileNotFoundError):
            link.unlink()
        link.symlink_to(plugin)
    k8s._write(d / "credentials", "[default]\naws_access_key_id = testing\naws_secret_access_key = testing\n", 0o600)


def _start(state_dir: Path, region: str) -> None:
    d = _rdir(state_dir, region)
    log = d / "velero.log"
    with contextlib.suppress(OSError):
        if log.stat().st_size > 20 * 1024 ** 2:
            os.replace(log, log.with_suffix(".log.1"))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KUBECONFIG", "AWS_", "VELERO_"))}
    env.update({"AWS_SHARED_CREDENTIALS_FILE": str(d / "credentials"), "VELERO_NAMESPACE": NAMESPACE,
                "HOME": str(d)})
    with open(log, "ab") as out:
        out.write(f"\n=== {time.strftime('%Y-%m-%d %H:%M:%S')} starting velero server ({region})\n".encode())
        out.flush()
        proc = subprocess.Popen(sandbox_argv(state_dir, region), stdin=subprocess.DEVNULL, stdout=out,
                                stderr=subprocess.STDOUT, cwd=d, env=env, start_new_session=True, close_fds=True)
    _CHILDREN[proc.pid] = proc
    (d / "velero.pid").write_text(f"{proc.pid}\n")


def _stop(state_dir: Path, region: str) -> str:
    n = pid(state_dir, region)
    result = _common.stop_pid(n, lambda: bool(pid(state_dir, region)), _CHILDREN, 15.0)
    if result == "still running":
        raise _error(f"could not stop velero ({region}) pid {n}", _rdir(state_dir, region) / "velero.log")
    return result


def bsl_phases(api: k8s.Api) -> dict[str, str]:
    items = (api.get(f"/apis/velero.io/v1/namespaces/{NAMESPACE}/backupstoragelocations") or {}).get("items", [])
    return {b["metadata"]["name"]: (b.get("status") or {}).get("phase", "") for b in items}


def _wait_available(state_dir: Path, region: str, api: k8s.Api) -> None:
    """Until the server runs and its default backup storage location is Available."""
    log = _rdir(state_dir, region) / "velero.log"

    def alive() -> None:
        if not pid(state_dir, region):
            raise _error(f"velero server ({region}) exited", log, _common.tail(log))

    _common.wait_for(f"velero server ({region}): BSL default Available",
                     lambda: bsl_phases(api).get("default") == "Available" and server_pid(state_dir, region),
                     timeout=WAIT_S, interval=0.2, check=alive,
                     fail=lambda message, last: _error(f"{message} ({bsl_phases(api)})", log, _common.tail(log)))


# --------------------------------------------------------------------------- the contract

def up(state_dir: Path, say) -> dict[str, str]:
    t0 = time.monotonic()
    state_dir = Path(state_dir)
    if not k8s.ports(state_dir) or not all(k8s.pid(state_dir, r, "kube-apiserver") for r in REGIONS):
        raise _error("needs the kubernetes component's clusters (LIFEBOAT_STACK_COMPONENTS must include kubernetes)")
    endpoint = moto_endpoints(state_dir)
    notes: dict[str, list[str]] = {r: [] for r in REGIONS}
    made = ensure_buckets(endpoint)
    if made:
        notes[REGIONS[0]].append(f"bucket(s) {', '.join(made)}")
    with k8s.open_apis(state_dir) as apis:
        for region in REGIONS:
            _rdir(state_dir, region).mkdir(parents=True, exist_ok=True)
            notes[region] += _ensure_objects(state_dir, region, apis[region], endpoint)
            if not pid(state_dir, region):
                _prepare(state_dir, region)
                _start(state_dir, region)
                notes[region].append("server started")
        if any("server started" in n for n in notes.values()):
            for region in REGIONS:  # the server validates its locations first thing
                _wait_available(state_dir, region, apis[region])
        if any(notes.values()):
            for region in REGIONS:
                phases = ", ".join(f"{n} {p or '?'}" for n, p in sorted(bsl_phases(apis[region]).items()))
                say(f"  {NAME:<10} {region}: {', '.join(notes[region]) or 'running'}; BSLs: {phases}")
            say(f"  {NAME:<10} ready in {time.monotonic() - t0:.1f}s (servers in private network namespaces)")
    return env(state_dir)


def env(state_dir: Path) -> dict[str, str]:
    try:
        exe = str(velero_binary())
    except Exception:  # the env is informational
        exe = ""
    out = {"LIFEBOAT_VELERO_BIN": exe, "LIFEBOAT_VELERO_NAMESPACE": NAMESPACE}
    out.update({f"LIFEBOAT_VELERO_BUCKET_{_common.env_key(r)}": b for r, b in BUCKETS.items()})
    if _common.moto_endpoint(state_dir):  # Lifeboat reads the buckets (verification, restore results) through
        for r, endpoint in moto_endpoints(state_dir).items():  # aws connections, each on its region's moto
            out[f"AIRFLOW_CONN_LIFEBOAT_VELERO_S3_{_common.env_key(r)}"] = _common.conn(
                {"conn_type": "aws", "login": "testing", "password": "testing",
                 "extra": {"endpoint_url": endpoint, "region_name": r}})
    return out


def down(state_dir: Path, say) -> str:
    return ", ".join(f"{r} {_stop(state_dir, r)}" for r in reversed(REGIONS))


def status(state_dir: Path) -> dict:
    state_dir = Path(state_dir)
    if not _root(state_dir).exists():
        return {"running": False, "error": "not initialised (run `stack.py up`)", "log": str(_root(state_dir))}
    parts, running, log = [], True, None
    for region in REGIONS:
        alive = bool(server_pid(state_dir, region))
        api = k8s.Api(state_dir, region, timeout=2.0)
        try:
            phases = bsl_phases(api)
            backups = len((api.get(f"/apis/velero.io/v1/namespaces/{NAMESPACE}/backups") or {}).get("items", []))
            parts.append(f"{region}: server {'up' if alive else 'DOWN'}, BSLs "
                         + ", ".join(f"{n} {p or '?'}" for n, p in sorted(phases.items())) + f", {backups} backup(s)")
            ok = alive and phases.get("default") == "Available"
        except Exception as exc:  # status must not raise
            parts.append(f"{region}: API unreachable ({str(exc).splitlines()[0]})")
            ok = False
        finally:
            api.close()
        if not ok:
            running = False
            log = log or _rdir(state_dir, region) / "velero.log"
    return {"running": running, "pid": pid(state_dir, REGIONS[0]), "status": "; ".join(parts),
            "log": str(log or _rdir(state_dir, REGIONS[0]) / "velero.log")}

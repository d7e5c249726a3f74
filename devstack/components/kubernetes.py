"""Kubernetes for the local stack: one real control plane per region, with kwok nodes (stdlib only).

Per region (us-west-2 = primary, us-east-1 = standby), all on 127.0.0.1 with ports picked once:
  * etcd (Debian's etcd-server, /usr/bin/etcd), one per cluster;
  * kube-apiserver, kube-controller-manager, kube-scheduler v1.37.2 and kwok v0.8.0, from the machine's
    binary cache (~/.cache/lifeboat/bin/<tool>-<version>, built once by devstack/binaries.py);
  * two kwok Nodes, so the scheduler places pods and kwok marks them Running/Ready (no kubelet, no
    containers: images are never pulled, and pod/service IPs in status fields are fiction -- never
    connect to them);
  * the Community Platform (include/platform/, rendered per region): namespace `community` with
    api-gateway, frontend and auth-service at full replicas in the primary, 0 in the standby.

Authentication: static bearer tokens (--token-auth-file), one per identity (lifeboat, the controller
manager, the scheduler, kwok, velero), all in system:masters -- a devstack, not a hardened cluster.
TLS: a CA per cluster and an apiserver certificate for 127.0.0.1/localhost made with openssl.

    <state>/kubernetes/ports.json            "<region>.<process>": port, picked once and kept
    <state>/kubernetes/secrets.json          tokens and the platform Secret's values (0600)
    <state>/kubernetes/<region>/pki/         ca.crt, ca.key, apiserver.crt/.key, sa.key/.pub
    <state>/kubernetes/<region>/tokens.csv   the apiserver's token file (0600)
    <state>/kubernetes/<region>/kubeconfig   lifeboat's kubeconfig (0600); kubeconfig-<identity> beside it
    <state>/kubernetes/<region>/<process>.pid/.log, etcd/ (data), platform.yaml (what was applied)

Env (merged into <state>/env):
  AIRFLOW_CONN_LIFEBOAT_K8S_US_WEST_2 / _US_EAST_1   kubernetes connections (the cncf-kubernetes provider's
                                                     KubernetesHook reads extra.kube_config: inline, so the
                                                     credentials travel in the connection only)
  LIFEBOAT_KUBECONFIG_US_WEST_2 / _US_EAST_1         kubeconfig files for kubectl / velero (runbook)
  LIFEBOAT_K8S_API_US_WEST_2 / _US_EAST_1            https://127.0.0.1:<port>

`up` is idempotent: a running cluster is checked (processes, /readyz, the platform's objects present) in
well under a second; missing objects are created, existing ones are never changed (a failover's scaling
survives a later `up`) unless the rendered manifests themselves changed, when they are server-side
applied without the Deployments' replicas.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import http.client
import json
import os
import re
import secrets
import shutil
import ssl
import subprocess
import sys
import time
import tomllib
from collections.abc import Callable, Iterator
from pathlib import Path

try:
    from devstack.components import _common, _daemon
except ImportError:  # run as a script: python devstack/components/<name>.py
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from devstack.components import _common, _daemon

NAME = "kubernetes"
REGIONS = ("us-west-2", "us-east-1")  # the devstack's primary and standby regions
NAMESPACE = "community"
KUBE_VERSION = "v1.37.2"
VERSIONS = {"kube-apiserver": KUBE_VERSION, "kube-controller-manager": KUBE_VERSION,
            "kube-scheduler": KUBE_VERSION, "kwok": "v0.8.0",
            "velero": "v1.18.3", "velero-plugin-for-aws": "v1.14.3"}  # until devstack/pins.toml lists them
PROCESSES = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok")  # start order
PORT_KEYS = ("etcd", "etcd_peer", "apiserver", "controller_manager", "scheduler", "kwok")
IDENTITIES = ("lifeboat", "kube-controller-manager", "kube-scheduler", "kwok", "velero")
USERS = {"kube-controller-manager": "system:kube-controller-manager", "kube-scheduler": "system:kube-scheduler"}
NODES = ("a", "b")  # kwok nodes per cluster: kwok-<region>-<x>
REPO_ROOT = Path(__file__).resolve().parents[2]
PLATFORM_DIR = REPO_ROOT / "include" / "platform"
KUBECTL = os.environ.get("LIFEBOAT_KUBECTL") or "/usr/bin/kubectl"
WAIT_S = 90.0
_CHILDREN: dict[int, subprocess.Popen] = {}
_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z0-9_.-]+)\s*\}\}")


def _error(message: str, log: Path | None = None, detail: str = "") -> Exception:
    return _common.component_error(NAME, message, log, detail)


# --------------------------------------------------------------------------- binaries

def cache_dir() -> Path:
    return Path(os.environ.get("LIFEBOAT_CACHE_DIR") or Path.home() / ".cache" / "lifeboat")


def binary(tool: str, say: Callable[[str], None] | None = None) -> Path:
    """The cached binary of a pinned Go tool (devstack/binaries.py builds them; this never does)."""
    try:
        from devstack import binaries  # type: ignore[attr-defined]
    except ImportError:
        binaries = None
    if binaries is not None and hasattr(binaries, "ensure"):
        return Path(binaries.ensure(tool, say or (lambda m: None)))
    path = cache_dir() / "bin" / f"{tool}-{VERSIONS[tool]}"
    if not (path.is_file() and os.access(path, os.X_OK)):
        raise _error(f"{tool} {VERSIONS[tool]} is not built: {path} is missing -- run "
                     f"`python devstack/binaries.py ensure {tool}` (or `make bootstrap`)")
    return path


def kwok_stages() -> list[Path]:
    """kwok's stage files (node initialise/heartbeat, pod ready/complete/delete) from the binary cache."""
    d = cache_dir() / "share" / f"kwok-{VERSIONS['kwok']}" / "stages"
    files = sorted(d.glob("*.yaml")) if d.is_dir() else []  # the default set; extra/ holds variants
    if not files:
        raise _error(f"kwok stage files missing in {d} -- run `python devstack/binaries.py ensure kwok` "
                     "(or `make bootstrap`)")
    return files


def etcd_binary() -> Path:
    exe = os.environ.get("LIFEBOAT_ETCD_BIN") or shutil.which("etcd") or "/usr/bin/etcd"
    if not Path(exe).is_file():
        raise _error("etcd not found (Debian package etcd-server, in packages.txt: `make bootstrap`)")
    return Path(exe)


# --------------------------------------------------------------------------- state

def _root(state_dir: Path) -> Path:
    return Path(state_dir) / NAME


def region_dir(state_dir: Path, region: str) -> Path:
    return _root(state_dir) / region


def _write(path: Path, content: str | bytes, mode: int = 0o600) -> bool:
    """Atomic write (private by default); True when the content changed."""
    return _common.write_atomic(path, content, mode)


def ports(state_dir: Path, create: bool = False) -> dict[str, int] | None:
    """{"<region>.<key>": port}; flat, so other components' port scans can read it."""
    return _daemon.ports(state_dir, NAME, [f"{r}.{k}" for r in REGIONS for k in PORT_KEYS], create)


def port(state_dir: Path, region: str, key: str) -> int:
    p = ports(state_dir)
    if not p:
        raise _error("not initialised (run `stack.py up`)")
    return p[f"{region}.{key}"]


def _secrets(state_dir: Path, create: bool = False) -> dict | None:
    f = _root(state_dir) / "secrets.json"
    if f.exists():
        return json.loads(f.read_text())
    if not create:
        return None
    sec = {"tokens": {r: {i: secrets.token_urlsafe(32) for i in IDENTITIES} for r in REGIONS},
           "platform": {"jwt_signing_key": secrets.token_urlsafe(48), "session_secret": secrets.token_urlsafe(32)}}
    _write(f, json.dumps(sec, indent=2) + "\n", 0o600)
    return sec


def token(state_dir: Path, region: str, identity: str = "lifeboat") -> str:
    sec = _secrets(state_dir)
    if not sec:
        raise _error("not initialised (run `stack.py up`)")
    return sec["tokens"][region][identity]


def ca_file(state_dir: Path, region: str) -> Path:
    return region_dir(state_dir, region) / "pki" / "ca.crt"


def kubeconfig_path(state_dir: Path, region: str, identity: str = "lifeboat") -> Path:
    d = region_dir(state_dir, region)
    return d / ("kubeconfig" if identity == "lifeboat" else f"kubeconfig-{identity}")


def api_url(state_dir: Path, region: str) -> str:
    return f"https://127.0.0.1:{port(state_dir, region, 'apiserver')}"


# --------------------------------------------------------------------------- certificates, tokens, kubeconfigs

def _openssl(args: list[str], cwd: Path) -> None:
    try:
        p = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True, timeout=60, check=False)
    except FileNotFoundError:
        raise _error("openssl not found (Debian package openssl)") from None
    if p.returncode != 0:
        raise _error(f"`openssl {args[0]}` failed (rc={p.returncode})", detail=p.stderr + p.stdout)


def _ensure_pki(state_dir: Path, region: str) -> bool:
    pki = region_dir(state_dir, region) / "pki"
    if all((pki / f).exists() for f in ("ca.crt", "apiserver.crt", "apiserver.key", "sa.key", "sa.pub")):
        return False
    pki.mkdir(parents=True, exist_ok=True)
    os.chmod(pki, 0o700)
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    _write(pki / "ca.cnf", "[req]\ndistinguished_name = dn\nx509_extensions = v3_ca\nprompt = no\n"
           f"[dn]\nCN = lifeboat-{region}-ca\n"
           "[v3_ca]\nbasicConstraints = critical,CA:TRUE\nkeyUsage = critical,keyCertSign,cRLSign,digitalSignature\n"
           "subjectKeyIdentifier = hash\nauthorityKeyIdentifier = keyid:always\n", 0o644)
    _openssl(["req", "-x509", "-new", *ec, "-config", "ca.cnf", "-days", "3650",
              "-keyout", "ca.key", "-out", "ca.crt"], pki)
    sans = ",".join(["IP:127.0.0.1", "DNS:localhost", "DNS:kubernetes", "DNS:kubernetes.default",
                     "DNS:kubernetes.default.svc", "DNS:kubernetes.default.svc.cluster.local", "IP:10.96.0.1"])
    _write(pki / "apiserver.ext", "basicConstraints = CA:FALSE\nkeyUsage = critical,digitalSignature,keyEncipherment\n"
           f"extendedKeyUsage = serverAuth\nsubjectAltName = {sans}\n"
           "subjectKeyIdentifier = hash\nauthorityKeyIdentifier = keyid,issuer\n", 0o644)
    _openssl(["req", "-new", *ec, "-subj", "/CN=kube-apiserver", "-keyout", "apiserver.key",
              "-out", "apiserver.csr"], pki)
    _openssl(["x509", "-req", "-in", "apiserver.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
              "-set_serial", str(int.from_bytes(os.urandom(8), "big")), "-days", "3650",
              "-extfile", "apiserver.ext", "-out", "apiserver.crt"], pki)
    _openssl(["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", "sa.key"], pki)
    _openssl(["pkey", "-in", "sa.key", "-pubout", "-out", "sa.pub"], pki)
    for f in ("ca.key", "apiserver.key", "sa.key"):
        os.chmod(pki / f, 0o600)
    return True


def kubeconfig_text(server: str, ca_pem: bytes, user: str, bearer: str, context: str) -> str:
    """A kubeconfig (YAML) for one cluster and one token user."""
    ca = base64.b64encode(ca_pem).decode()
    return (f"apiVersion: v1\nkind: Config\nclusters:\n- name: {context}\n  cluster:\n    server: {server}\n"
            f"    certificate-authority-data: {ca}\ncontexts:\n- name: {context}\n  context:\n"
            f"    cluster: {context}\n    user: {user}\ncurrent-context: {context}\n"
            f"users:\n- name: {user}\n  user:\n    token: {bearer}\npreferences: {{}}\n")


def kubeconfig_dict(state_dir: Path, region: str, identity: str = "lifeboat") -> dict:
    """The same kubeconfig as a dict (the Airflow connection's inline extra.kube_config)."""
    ctx = f"lifeboat-{region}"
    ca = base64.b64encode(ca_file(state_dir, region).read_bytes()).decode()
    return {"apiVersion": "v1", "kind": "Config", "current-context": ctx, "preferences": {},
            "clusters": [{"name": ctx, "cluster": {"server": api_url(state_dir, region),
                                                   "certificate-authority-data": ca}}],
            "contexts": [{"name": ctx, "context": {"cluster": ctx, "user": identity}}],
            "users": [{"name": identity, "user": {"token": token(state_dir, region, identity)}}]}


def _ensure_auth(state_dir: Path, region: str) -> bool:
    """tokens.csv and one kubeconfig per identity; True when the token file changed."""
    d = region_dir(state_dir, region)
    toks = _secrets(state_dir)["tokens"][region]
    rows = [f'{toks[i]},{USERS.get(i, i)},{USERS.get(i, i)},"system:masters"' for i in IDENTITIES]
    changed = _write(d / "tokens.csv", "\n".join(rows) + "\n", 0o600)
    ca = ca_file(state_dir, region).read_bytes()
    for ident in IDENTITIES:
        _write(kubeconfig_path(state_dir, region, ident),
               kubeconfig_text(api_url(state_dir, region), ca, ident, toks[ident], f"lifeboat-{region}"), 0o600)
    return changed


# --------------------------------------------------------------------------- processes

def argv(state_dir: Path, region: str, process: str) -> list[str]:
    """The command line of one control-plane process (every listener on 127.0.0.1)."""
    d = region_dir(state_dir, region)
    pki = d / "pki"
    p = {k: port(state_dir, region, k) for k in PORT_KEYS}
    if process == "etcd":
        client, peer = f"http://127.0.0.1:{p['etcd']}", f"http://127.0.0.1:{p['etcd_peer']}"
        return [str(etcd_binary()), "--name", f"lifeboat-{region}", "--data-dir", str(d / "etcd"),
                "--listen-client-urls", client, "--advertise-client-urls", client,
                "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
                "--initial-cluster", f"lifeboat-{region}={peer}", "--initial-cluster-state", "new",
                "--initial-cluster-token", f"lifeboat-{region}", "--logger", "zap", "--log-level", "warn",
                "--auto-compaction-mode", "periodic", "--auto-compaction-retention", "1h",
                "--quota-backend-bytes", str(2 * 1024 ** 3)]
    if process == "kube-apiserver":
        return [str(binary("kube-apiserver")), f"--etcd-servers=http://127.0.0.1:{p['etcd']}",
                "--bind-address=127.0.0.1", "--advertise-address=127.0.0.1", f"--secure-port={p['apiserver']}",
                f"--cert-dir={d / 'apiserver-certs'}", f"--tls-cert-file={pki / 'apiserver.crt'}",
                f"--tls-private-key-file={pki / 'apiserver.key'}", f"--token-auth-file={d / 'tokens.csv'}",
                "--authorization-mode=RBAC", "--service-account-issuer=https://kubernetes.default.svc",
                f"--service-account-key-file={pki / 'sa.pub'}",
                f"--service-account-signing-key-file={pki / 'sa.key'}",
                "--service-cluster-ip-range=10.96.0.0/16", "--endpoint-reconciler-type=none",
                "--profiling=false", "--event-ttl=1h",
                # Debian's etcd 3.4.23 lacks what streaming lists need (RequestWatchProgress): with WatchList on,
                # kwok's watch-list requests fail every few seconds and new pods wait up to a minute to be run
                "--feature-gates=WatchList=false", "--shutdown-watch-termination-grace-period=0s"]
    common = ["--bind-address=127.0.0.1", "--leader-elect=false"]
    if process == "kube-controller-manager":
        return [str(binary("kube-controller-manager")), f"--kubeconfig={kubeconfig_path(state_dir, region, process)}",
                *common, f"--secure-port={p['controller_manager']}", f"--cert-dir={d / 'controller-manager-certs'}",
                f"--service-account-private-key-file={pki / 'sa.key'}", f"--root-ca-file={pki / 'ca.crt'}",
                "--use-service-account-credentials=false", f"--cluster-name=lifeboat-{region}",
                # kwok's default node heartbeat comes every 20-45 s: give it room before "NotReady"
                "--node-monitor-grace-period=120s", "--profiling=false"]
    if process == "kube-scheduler":
        return [str(binary("kube-scheduler")), f"--kubeconfig={kubeconfig_path(state_dir, region, process)}",
                *common, f"--secure-port={p['scheduler']}", f"--cert-dir={d / 'scheduler-certs'}",
                "--profiling=false"]
    if process == "kwok":
        stages = [a for f in kwok_stages() for a in ("--config", str(f))]
        return [str(binary("kwok")), f"--kubeconfig={kubeconfig_path(state_dir, region, 'kwok')}",
                "--manage-all-nodes=false", "--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake",
                f"--server-address=127.0.0.1:{p['kwok']}", "--cidr=10.244.0.0/16", "--node-ip=10.0.0.1", *stages]
    raise ValueError(process)


def _needle(state_dir: Path, region: str) -> bytes:
    return str(region_dir(state_dir, region)).encode()


def pid(state_dir: Path, region: str, process: str) -> int | None:
    try:
        n = int((region_dir(state_dir, region) / f"{process}.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    return n if _common.proc_alive(n, _needle(state_dir, region)) else None


def _log(state_dir: Path, region: str, process: str) -> Path:
    return region_dir(state_dir, region) / f"{process}.log"


def _spawn(state_dir: Path, region: str, process: str) -> None:
    d = region_dir(state_dir, region)
    log = _log(state_dir, region, process)
    with contextlib.suppress(OSError):
        if log.stat().st_size > 20 * 1024 ** 2:
            os.replace(log, log.with_suffix(".log.1"))
    cmd = argv(state_dir, region, process)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KUBECONFIG", "ETCD", "KUBE_FEATURE_"))}
    with open(log, "ab") as out:
        out.write(f"\n=== {time.strftime('%Y-%m-%d %H:%M:%S')} starting {process}\n".encode())
        out.flush()
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, cwd=d,
                                start_new_session=True, close_fds=True, env=env)
    _CHILDREN[proc.pid] = proc
    (d / f"{process}.pid").write_text(f"{proc.pid}\n")
    (d / f"{process}.argv").write_text(json.dumps(cmd) + "\n")


def _stale(state_dir: Path, region: str, process: str) -> bool:
    """The running process was started with another command line (flags or binary changed since)."""
    try:
        return json.loads((region_dir(state_dir, region) / f"{process}.argv").read_text()) != \
            argv(state_dir, region, process)
    except (OSError, ValueError):
        return True


def _stop(state_dir: Path, region: str, process: str) -> str:
    n = pid(state_dir, region, process)
    # the apiserver hangs for a while in its graceful shutdown on etcd 3.4; its state is in etcd anyway
    return _common.stop_pid(n, lambda: bool(pid(state_dir, region, process)), _CHILDREN,
                            5.0 if process == "kube-apiserver" else 15.0)


def _wait(what: str, pred: Callable[[], object], *, state_dir: Path, region: str, process: str,
          timeout: float = WAIT_S, interval: float = 0.1):
    log = _log(state_dir, region, process)

    def alive() -> None:
        if not pid(state_dir, region, process):
            raise _error(f"{process} ({region}) exited while waiting for {what}", log, _common.tail(log))

    return _common.wait_for(f"{what} ({region})", pred, timeout=timeout, interval=interval, check=alive,
                            fail=lambda message, last: _error(message, log, (last + "\n" + _common.tail(log)).strip()))


# --------------------------------------------------------------------------- a tiny API client (stdlib)

class Api:
    """JSON over HTTPS to one apiserver with a bearer token; one kept-alive connection."""

    def __init__(self, state_dir: Path, region: str, identity: str = "lifeboat", timeout: float = 5.0):
        self.port = port(state_dir, region, "apiserver")
        self.token = token(state_dir, region, identity)
        self.ctx = ssl.create_default_context(cafile=str(ca_file(state_dir, region)))
        self.timeout = timeout
        self.conn: http.client.HTTPSConnection | None = None

    def request(self, method: str, path: str, body: object = None,
                content_type: str = "application/json") -> tuple[int, dict]:
        data = None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
        headers = {"Authorization": f"Bearer {self.token}", "Accept": "application/json"}
        if data is not None:
            headers["Content-Type"] = content_type
        for attempt in (1, 2):
            if self.conn is None:
                self.conn = http.client.HTTPSConnection("127.0.0.1", self.port, context=self.ctx, timeout=self.timeout)
            try:
                self.conn.request(method, path, body=data, headers=headers)
                r = self.conn.getresponse()
                raw = r.read()
                break
            except (http.client.HTTPException, OSError):
                self.conn.close()
                self.conn = None
                if attempt == 2:
                    raise
        try:
            doc = json.loads(raw) if raw else {}
        except ValueError:
            doc = {"raw": raw.decode(errors="replace")[:500]}
        return r.status, doc if isinstance(doc, dict) else {"items": doc}

    def get(self, path: str) -> dict | None:
        code, doc = self.request("GET", path)
        if code == 404:
            return None
        if code != 200:
            raise _error(f"GET {path} on 127.0.0.1:{self.port}: HTTP {code} {doc.get('message', '')}")
        return doc

    def ready(self) -> bool:
        try:
            return self.request("GET", "/readyz")[0] == 200
        except OSError:
            return False

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None


# --------------------------------------------------------------------------- nodes

def node_doc(region: str, suffix: str) -> dict:
    name = f"kwok-{region}-{suffix}"
    res = {"cpu": "32", "memory": "256Gi", "pods": "110", "ephemeral-storage": "500Gi"}
    return {"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name,
                         "annotations": {"kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0"},
                         "labels": {"kubernetes.io/arch": "amd64", "kubernetes.io/os": "linux",
                                    "kubernetes.io/hostname": name, "type": "kwok",
                                    "topology.kubernetes.io/region": region,
                                    "topology.kubernetes.io/zone": f"{region}{suffix}"}},
            "spec": {},
            "status": {"allocatable": res, "capacity": res, "phase": "Running",
                       "nodeInfo": {"architecture": "amd64", "operatingSystem": "linux",
                                    "kubeletVersion": f"{KUBE_VERSION}-kwok", "kubeProxyVersion": "fake"}}}


@contextlib.contextmanager
def open_apis(state_dir: Path, identity: str = "lifeboat") -> Iterator[dict[str, Api]]:
    """{region: Api} of both clusters, closed afterwards."""
    apis = {r: Api(state_dir, r, identity) for r in REGIONS}
    try:
        yield apis
    finally:
        for api in apis.values():
            api.close()


def _ensure_nodes(api: Api, region: str) -> int:
    made = 0
    for suffix in NODES:
        doc = node_doc(region, suffix)
        if api.get(f"/api/v1/nodes/{doc['metadata']['name']}") is None:
            code, resp = api.request("POST", "/api/v1/nodes", doc)
            if code not in (200, 201, 409):
                raise _error(f"creating node {doc['metadata']['name']} ({region}): HTTP {code} {resp.get('message')}")
            made += 1
    return made


def _nodes_ready(api: Api) -> tuple[int, int]:
    items = (api.get("/api/v1/nodes") or {}).get("items", [])
    ready = sum(1 for n in items for c in (n.get("status") or {}).get("conditions") or []
                if c.get("type") == "Ready" and c.get("status") == "True")
    return ready, len(items)


# --------------------------------------------------------------------------- the platform's manifests

def _local_registry(state_dir: Path | None, region: str) -> str:
    """The stack's own registry for `region` when the stack runs one (devstack/components/registry.py
    allocates its ports before it starts, so the Deployments can name it even when they come first)."""
    wanted = {c.strip() for c in os.environ.get("LIFEBOAT_STACK_COMPONENTS", "").split(",") if c.strip()}
    if state_dir is None or (wanted and "registry" not in wanted):
        return ""
    from devstack.components import registry

    return registry.address(state_dir, region)


def platform_values(region: str, state_dir: Path | None = None) -> dict[str, str]:
    """Flat {placeholder: value} for one region from include/platform/values.toml (+ env overrides)."""
    src = PLATFORM_DIR / "values.toml"
    try:
        vals = tomllib.loads(src.read_text())
        reg = vals["regions"][region]
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise _error(f"{src}: {exc}") from None
    except KeyError as exc:
        raise _error(f"{src}: regions.{region}: missing ({exc})") from None
    out = {"region": region, "namespace": vals.get("namespace", NAMESPACE), "role": reg.get("role", ""),
           "domain": reg.get("domain", ""),
           "registry": os.environ.get(f"LIFEBOAT_REGISTRY_{_common.env_key(region)}")
           or _local_registry(state_dir, region) or reg["registry"]}
    out.update({f"images.{k}": str(v) for k, v in vals.get("images", {}).items()})
    out.update({f"replicas.{k}": str(int(v)) for k, v in reg.get("replicas", {}).items()})
    sec = _secrets(state_dir) if state_dir else None
    if sec:
        out.update({f"secret.{k}": v for k, v in sec["platform"].items()})
    return out


def _substitute(text: str, values: dict[str, str], where: Path, omit_replicas: bool) -> str:
    lines = []
    for n, line in enumerate(text.splitlines(), 1):
        keys = _PLACEHOLDER.findall(line)
        if omit_replicas and any(k.startswith("replicas.") for k in keys):
            continue
        for k in keys:
            if k not in values:
                raise _error(f"{where}:{n}: unknown placeholder {{{{ {k} }}}} (known: {', '.join(sorted(values))})")
        lines.append(_PLACEHOLDER.sub(lambda m: values[m.group(1)], line))
    return "\n".join(lines).strip("\n")


def _configmap(service: str, folder: Path, namespace: str) -> str:
    """The ConfigMap <service>-config whose data are the folder's files, byte for byte."""
    out = [f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {service}-config\n  namespace: {namespace}\n"
           f"  labels:\n    app: {service}\n    app.kubernetes.io/part-of: community-platform\ndata:"]
    for f in sorted(p for p in folder.iterdir() if p.is_file()):
        text = f.read_text()
        if "\t" in text or "\r" in text or any(line != line.rstrip() for line in text.splitlines()):
            raise _error(f"{f}: tabs, carriage returns or trailing blanks cannot round-trip a YAML block scalar")
        chomp = "" if text.endswith("\n") and not text.endswith("\n\n") else ("-" if not text.endswith("\n") else "+")
        indent = "2" if text[:1] == " " else ""
        out.append(f"  {f.name}: |{indent}{chomp}")
        out.extend(f"    {line}" if line else "" for line in text.splitlines())
    return "\n".join(out)


def render_platform(region: str, state_dir: Path | None = None, omit_replicas: bool = False) -> str:
    """include/platform/ rendered for one region: one multi-document YAML."""
    vals = tomllib.loads((PLATFORM_DIR / "values.toml").read_text())
    values = platform_values(region, state_dir)
    if state_dir is None:  # rendering for a look: placeholders for the generated secrets
        values.setdefault("secret.jwt_signing_key", "<generated>")
        values.setdefault("secret.session_secret", "<generated>")
    docs = []
    files = vals.get("files") or []
    for name in files[:1]:
        docs.append(_substitute((PLATFORM_DIR / name).read_text(), values, PLATFORM_DIR / name, omit_replicas))
    cfg = PLATFORM_DIR / "config"
    for folder in sorted(p for p in cfg.iterdir() if p.is_dir()) if cfg.is_dir() else []:
        docs.append(_configmap(folder.name, folder, values["namespace"]))
    for name in files[1:]:
        path = PLATFORM_DIR / name
        if not path.is_file():
            raise _error(f"{PLATFORM_DIR / 'values.toml'}: files: {name} does not exist in {PLATFORM_DIR}")
        docs.append(_substitute(path.read_text(), values, path, omit_replicas))
    return "\n---\n".join(d for d in docs if d.strip()) + "\n"


_KIND_PLURALS = {"Namespace": "namespaces", "ConfigMap": "configmaps", "Secret": "secrets", "Service": "services",
                 "ServiceAccount": "serviceaccounts", "Deployment": "deployments",
                 "HorizontalPodAutoscaler": "horizontalpodautoscalers", "NetworkPolicy": "networkpolicies"}


def manifest_refs(text: str) -> list[dict[str, str]]:
    """(apiVersion, kind, namespace, name, path) of every document of a rendered manifest: the
    top-level keys of our own manifests, read without a YAML parser (the devstack is stdlib only)."""
    refs = []
    for doc in re.split(r"(?m)^---\s*$", text):
        api_version = re.search(r"(?m)^apiVersion:\s*(\S+)", doc)
        kind = re.search(r"(?m)^kind:\s*(\S+)", doc)
        meta = re.search(r"(?ms)^metadata:\s*\n((?:[ ]{2}.*\n?|\s*\n)*)", doc)
        if not (api_version and kind and meta):
            continue
        name = re.search(r"(?m)^  name:\s*(\S+)", meta.group(1))
        ns = re.search(r"(?m)^  namespace:\s*(\S+)", meta.group(1))
        kind_s, av = kind.group(1), api_version.group(1)
        if kind_s not in _KIND_PLURALS or not name:
            raise _error(f"rendered platform manifest: unsupported document kind {kind_s!r} (add it to _KIND_PLURALS)")
        base = "/api/v1" if av == "v1" else f"/apis/{av}"
        path = f"{base}/namespaces/{ns.group(1)}/" if ns else f"{base}/"
        refs.append({"apiVersion": av, "kind": kind_s, "name": name.group(1), "namespace": ns.group(1) if ns else "",
                     "path": path + f"{_KIND_PLURALS[kind_s]}/{name.group(1)}"})
    return refs


def _kubectl(state_dir: Path, region: str, args: list[str], stdin: str | None = None,
             check: bool = True) -> subprocess.CompletedProcess:
    cmd = [KUBECTL, f"--kubeconfig={kubeconfig_path(state_dir, region)}",
           f"--cache-dir={_root(state_dir) / 'kubectl-cache'}", *args]
    try:
        p = subprocess.run(cmd, input=stdin, capture_output=True, text=True, timeout=120, check=False,
                           env={k: v for k, v in os.environ.items() if k != "KUBECONFIG"})
    except FileNotFoundError:
        raise _error(f"kubectl not found at {KUBECTL} (set LIFEBOAT_KUBECTL)") from None
    if check and p.returncode != 0:
        raise _error(f"`kubectl {' '.join(args[:2])}` failed in {region} (rc={p.returncode})",
                     detail=p.stderr + p.stdout)
    return p


def _apply_platform(state_dir: Path, region: str, api: Api) -> str:
    """Create what is missing; server-side apply (without replicas) when the manifests changed."""
    d = region_dir(state_dir, region)
    text = render_platform(region, state_dir)
    digest = hashlib.sha256(text.encode()).hexdigest()
    stamp = d / "platform.applied"
    refs = manifest_refs(text)
    missing = [r for r in refs if api.get(r["path"]) is None]
    changed = stamp.exists() and stamp.read_text().strip() != digest
    if not missing and not changed and stamp.exists():
        return ""
    _write(d / "platform.yaml", text, 0o600)  # holds the Secret's values
    notes = []
    if missing:
        p = _kubectl(state_dir, region, ["create", "-f", str(d / "platform.yaml")], check=False)
        errors = [ln for ln in p.stderr.splitlines() if ln.strip() and "AlreadyExists" not in ln
                  and "Warning:" not in ln]
        if p.returncode != 0 and errors:
            raise _error(f"creating the platform's objects in {region} failed", d / "platform.yaml", "\n".join(errors))
        notes.append(f"created {len(missing)} object(s)")
    if changed:
        _write(d / "platform-apply.yaml", render_platform(region, state_dir, omit_replicas=True), 0o600)
        _kubectl(state_dir, region, ["apply", "--server-side", "--force-conflicts",
                                     "--field-manager=lifeboat-devstack", "-f", str(d / "platform-apply.yaml")])
        notes.append("manifests changed: server-side applied (replicas left as they are)")
    _write(stamp, digest + "\n", 0o644)
    return ", ".join(notes)


def deployments(api: Api, namespace: str = NAMESPACE) -> dict[str, dict]:
    """{name: {replicas, ready, updated, current}} of a namespace's Deployments."""
    out = {}
    for dep in (api.get(f"/apis/apps/v1/namespaces/{namespace}/deployments") or {}).get("items", []):
        st, spec, meta = dep.get("status") or {}, dep.get("spec") or {}, dep.get("metadata") or {}
        out[meta["name"]] = {"replicas": spec.get("replicas", 1), "ready": st.get("readyReplicas", 0),
                             "updated": st.get("updatedReplicas", 0),
                             "current": st.get("observedGeneration", 0) >= meta.get("generation", 0)}
    return out


def _all_ready(deps: dict[str, dict]) -> bool:
    return bool(deps) and all(d["current"] and d["ready"] == d["replicas"] and d["updated"] >= d["replicas"]
                              for d in deps.values())


def _summary(deps: dict[str, dict]) -> str:
    return " ".join(f"{n} {d['ready']}/{d['replicas']}" for n, d in sorted(deps.items())) or "no deployments"


# --------------------------------------------------------------------------- the contract

def _healthy(state_dir: Path, region: str) -> bool:
    return all(pid(state_dir, region, p) for p in PROCESSES)


def up(state_dir: Path, say) -> dict[str, str]:
    t0 = time.monotonic()
    state_dir = Path(state_dir)
    ports(state_dir, create=True)
    _secrets(state_dir, create=True)
    started: dict[str, list[str]] = {r: [] for r in REGIONS}
    restart_api = set()
    for region in REGIONS:
        region_dir(state_dir, region).mkdir(parents=True, exist_ok=True)
        _ensure_pki(state_dir, region)
        if _ensure_auth(state_dir, region):
            restart_api.add(region)  # a new token file is read at start only
    with open_apis(state_dir) as apis:
        # phase by phase over both regions, so the two clusters boot side by side
        for process in PROCESSES:
            for region in REGIONS:
                if pid(state_dir, region, process) and (_stale(state_dir, region, process) or (
                        process == "kube-apiserver" and region in restart_api)):
                    say(f"  {NAME:<10} {region}: restarting {process} (its command line changed)")
                    _stop(state_dir, region, process)
                if not pid(state_dir, region, process):
                    key = {"etcd": "etcd", "kube-apiserver": "apiserver"}.get(process)
                    if key and _common.port_open(port(state_dir, region, key)):
                        raise _error(f"port {port(state_dir, region, key)} ({process}, {region}) is in use by "
                                     "another process; free it or wipe the stack", _log(state_dir, region, process))
                    _spawn(state_dir, region, process)
                    started[region].append(process)
            for region in REGIONS:
                if process == "etcd" and started[region]:
                    _wait("etcd to listen", lambda r=region: _common.port_open(port(state_dir, r, "etcd")),
                          state_dir=state_dir, region=region, process="etcd")
                elif process == "kube-apiserver":
                    _wait("kube-apiserver /readyz", apis[region].ready, state_dir=state_dir, region=region,
                          process="kube-apiserver")
        notes = {}
        for region in REGIONS:
            api = apis[region]
            made = _ensure_nodes(api, region)
            applied = _apply_platform(state_dir, region, api)
            notes[region] = ", ".join(x for x in (
                f"started {' '.join(started[region])}" if started[region] else "",
                f"{made} node(s) created" if made else "", applied) if x)
        if any(notes.values()):
            for region in REGIONS:  # a cold start returns Ready nodes and a platform whose pods are Ready
                _wait("the kwok nodes to be Ready", lambda r=region: _nodes_ready(apis[r])[0] >= len(NODES),
                      state_dir=state_dir, region=region, process="kwok")
                _wait("the platform's Deployments to be Ready", lambda r=region: _all_ready(deployments(apis[r])),
                      state_dir=state_dir, region=region, process="kwok")
            for region in REGIONS:
                ready, total = _nodes_ready(apis[region])
                say(f"  {NAME:<10} {region}: {notes[region] or 'running'}; api {api_url(state_dir, region)}, "
                    f"nodes {ready}/{total} Ready, {_summary(deployments(apis[region]))}")
            say(f"  {NAME:<10} both clusters ready in {time.monotonic() - t0:.1f}s")
    return env(state_dir)


def env(state_dir: Path) -> dict[str, str]:
    if not ports(state_dir) or not _secrets(state_dir) or not all(ca_file(state_dir, r).exists() for r in REGIONS):
        return {}
    out = {}
    for region in REGIONS:
        k = _common.env_key(region)
        conn = {"conn_type": "kubernetes", "extra": {"kube_config": kubeconfig_dict(state_dir, region)}}
        out[f"AIRFLOW_CONN_LIFEBOAT_K8S_{k}"] = json.dumps(conn, separators=(",", ":"))
        out[f"LIFEBOAT_KUBECONFIG_{k}"] = str(kubeconfig_path(state_dir, region))
        out[f"LIFEBOAT_K8S_API_{k}"] = api_url(state_dir, region)
    return out


def down(state_dir: Path, say) -> str:
    res = []
    for region in reversed(REGIONS):
        stopped = [f"{p} {_stop(state_dir, region, p)}" for p in reversed(PROCESSES) if pid(state_dir, region, p)]
        res.append(f"{region}: {', '.join(stopped) or 'not running'}")
    return "; ".join(res)


def status(state_dir: Path) -> dict:
    state_dir = Path(state_dir)
    if not ports(state_dir) or not _secrets(state_dir):
        return {"running": False, "error": "not initialised (run `stack.py up`)", "log": str(_root(state_dir))}
    parts, running, log = [], True, None
    regions = {}
    for region in REGIONS:
        down_ = [p for p in PROCESSES if not pid(state_dir, region, p)]
        info: dict = {"api": api_url(state_dir, region), "processes_down": down_}
        api = Api(state_dir, region, timeout=2.0)
        try:
            info["healthz"] = api.request("GET", "/healthz")[1].get("raw", "?")
            ready, total = _nodes_ready(api)
            deps = deployments(api)
            info.update(nodes=f"{ready}/{total}",
                        deployments={n: f"{d['ready']}/{d['replicas']}" for n, d in deps.items()})
            parts.append(f"{region}: nodes {ready}/{total} Ready, {_summary(deps)}")
        except Exception as exc:  # status must not raise
            info["error"] = str(exc).splitlines()[0]
            parts.append(f"{region}: API unreachable ({info['error']})")
            running = False
        finally:
            api.close()
        if down_:
            running = False
            parts[-1] += f" [DOWN: {', '.join(down_)}]"
            log = log or _log(state_dir, region, down_[0])
        regions[region] = info
    return {"running": running, "port": port(state_dir, REGIONS[0], "apiserver"),
            "pid": pid(state_dir, REGIONS[0], "kube-apiserver"), "status": "; ".join(parts),
            "log": str(log or _log(state_dir, REGIONS[0], "kube-apiserver")), "regions": regions}


if __name__ == "__main__":  # python devstack/components/kubernetes.py render us-east-1
    if sys.argv[1:2] == ["render"]:
        print(render_platform(sys.argv[2] if len(sys.argv) > 2 else REGIONS[0]), end="")
    else:
        print("usage: kubernetes.py render [region]", file=sys.stderr)
        sys.exit(2)

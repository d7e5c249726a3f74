"""Two container registries (us-west-2 primary, us-east-1 standby) with the platform's images (stdlib only).

Debian's `docker-registry` (the distribution registry 2.8), one process per region on 127.0.0.1,
htpasswd (bcrypt) basic auth, filesystem storage with deletes enabled (the tests delete blobs through
the registry API to prove verification catches it):

    <state>/registry/ports.json            {region: port}, picked free once and kept
    <state>/registry/secrets.json          {"username", "password"} (0600)
    <state>/registry/htpasswd              bcrypt entry made by `htpasswd -niB` (password on stdin)
    <state>/registry/auth.json             the devstack's own skopeo auth file (0600)
    <state>/registry/<region>/config.yml   registry config; data in <region>/data, log <region>/registry.log
    <state>/registry/oci/                  OCI layout the images are built into with umoci
    <state>/registry/seeded-<region>.json  what the first `up` pushed there (ref -> digest)

The images (include/platform/images.toml) are built with umoci, reproducibly (fixed timestamps and
content), and pushed with `skopeo copy --all --preserve-digests`: every image to the primary, the
entries marked `standby = true` to the standby too, so the standby starts partially replicated.
Seeding happens once per state dir; later `up`s leave the registries' content alone.

Exports AIRFLOW_CONN_LIFEBOAT_REGISTRY_<REGION> (generic connection: host, port, login, password,
extra {"tls_verify": false}), LIFEBOAT_REGISTRY_<REGION> = "127.0.0.1:<port>" (image references are
<registry>/community/<service>:<tag>) and LIFEBOAT_REGISTRY_DATA_<REGION> (the storage folder).

Helpers: address(state_dir, region) (usable before `up`); for tests build_image() / push() / new_image()
add images, digest_of() reads one back.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets as _secrets
import shutil
import subprocess
import sys
import time
import tomllib
import urllib.error
import urllib.request
from datetime import datetime
from pathlib import Path

try:
    from devstack.components import _common, _daemon
except ImportError:  # run as a script: python devstack/components/<name>.py
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from devstack.components import _common, _daemon

NAME = "registry"
REGIONS = ("us-west-2", "us-east-1")  # primary, standby
REPO_ROOT = Path(__file__).resolve().parents[2]
IMAGES_TOML = REPO_ROOT / "include" / "platform" / "images.toml"
USERNAME = "lifeboat"
NEEDLE = b"docker-registry"
WAIT_S = 20.0
_HTTP = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never via a proxy
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
ACCEPT = ", ".join([OCI_INDEX, OCI_MANIFEST, "application/vnd.docker.distribution.manifest.list.v2+json",
                    "application/vnd.docker.distribution.manifest.v2+json"])


def _error(message: str, log: Path | None = None, detail: str = "") -> Exception:
    return _common.component_error(NAME, message, log, detail)


def _root(state_dir: Path) -> Path:
    return Path(state_dir) / NAME


def _exe(name: str, package: str) -> str:
    path = shutil.which(name)
    if not path:
        raise _error(f"{name} not on PATH -- install the Debian package {package} (`make bootstrap`)")
    return path


def _run(argv: list[str], *, what: str, input: str | None = None, timeout: float = 120,
         env: dict | None = None) -> str:
    try:
        p = subprocess.run(argv, input=input, capture_output=True, text=True, timeout=timeout, check=False,
                           env=env)
    except subprocess.TimeoutExpired:
        raise _error(f"{what}: `{Path(argv[0]).name}` timed out after {timeout:.0f}s") from None
    if p.returncode != 0:
        raise _error(f"{what}: `{Path(argv[0]).name} {argv[1] if len(argv) > 1 else ''}` failed "
                     f"(rc={p.returncode})", detail=(p.stderr or "") + (p.stdout or ""))
    return p.stdout


# --------------------------------------------------------------------------- config, secrets

def _ports(state_dir: Path, create: bool) -> dict[str, int] | None:
    return _daemon.ports(state_dir, NAME, REGIONS, create)


def address(state_dir: Path, region: str) -> str:
    """"127.0.0.1:<port>" of a region's registry -- what image references start with. Allocates the
    ports when the registry has not started yet, so a component that runs before this one (the
    Kubernetes clusters render their Deployments) gets the address the registry will listen on."""
    ports = _ports(state_dir, create=True) or {}
    return f"127.0.0.1:{ports[region]}"


def _password(state_dir: Path) -> str:
    return _daemon.secrets_file(_root(state_dir) / "secrets.json",
                                lambda: {"username": USERNAME, "password": _secrets.token_urlsafe(24)})["password"]


def _config(state_dir: Path, region: str, port: int) -> str:
    d = _root(state_dir) / region
    secret = hashlib.sha256(f"{_password(state_dir)}:{region}".encode()).hexdigest()
    return f"""\
# Managed by devstack/components/registry.py -- rewritten on every `up`.
version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: {json.dumps(str(d / 'data'))}
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: 127.0.0.1:{port}
  secret: {secret}
  headers:
    X-Content-Type-Options: [nosniff]
auth:
  htpasswd:
    realm: lifeboat-{region}
    path: {json.dumps(str(_root(state_dir) / 'htpasswd'))}
"""


def _ensure_htpasswd(state_dir: Path) -> None:
    f = _root(state_dir) / "htpasswd"
    password = _password(state_dir)
    try:
        line = f.read_text().strip()
        if line.startswith(f"{USERNAME}:$2"):
            # `htpasswd -vb` would put the password on argv: check it with -v and stdin instead
            p = subprocess.run([_exe("htpasswd", "apache2-utils"), "-v", "-i", str(f), USERNAME],
                               input=password, capture_output=True, text=True, timeout=30, check=False)
            if p.returncode == 0:
                return
    except OSError:
        pass
    entry = _run([_exe("htpasswd", "apache2-utils"), "-n", "-i", "-B", USERNAME], input=password,
                 what="creating the htpasswd file").strip()
    _daemon.write_atomic(f, entry + "\n", 0o600)


def authfile(state_dir: Path) -> Path:
    """The devstack's skopeo auth file for both registries (0600)."""
    ports = _ports(state_dir, create=False) or {}
    token = base64.b64encode(f"{USERNAME}:{_password(state_dir)}".encode()).decode()
    f = _root(state_dir) / "auth.json"
    _daemon.write_atomic(f, json.dumps({"auths": {f"127.0.0.1:{p}": {"auth": token} for p in ports.values()}},
                                       indent=2) + "\n", 0o600)
    return f


# --------------------------------------------------------------------------- registry processes

def _pidfile(state_dir: Path, region: str) -> Path:
    return _root(state_dir) / region / "registry.pid"


def _answers(port: int) -> bool:
    """The registry's API base answers (401 without credentials = up and enforcing auth)."""
    return _common.http_status(f"http://127.0.0.1:{port}/v2/") in (200, 401)


def _start(state_dir: Path, region: str, port: int) -> None:
    d = _root(state_dir) / region
    (d / "data").mkdir(parents=True, exist_ok=True)
    if _common.port_open(port):
        raise _error(f"port {port} ({region}) is in use by another process; free it or edit "
                     f"{_root(state_dir) / 'ports.json'}", d / "registry.log")
    _daemon.start(NAME, [_exe("docker-registry", "docker-registry"), "serve", str(d / "config.yml")],
                  log=d / "registry.log", pidfile=_pidfile(state_dir, region), ready=lambda: _answers(port),
                  timeout=WAIT_S, what=f"docker-registry ({region}) on 127.0.0.1:{port}")


# --------------------------------------------------------------------------- images (umoci + skopeo)

def images_spec(path: Path = IMAGES_TOML) -> dict:
    try:
        spec = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise _error(f"{path}: cannot read the image list: {exc}") from None
    for i, img in enumerate(spec.get("image", [])):
        for key in ("service", "tag"):
            if not isinstance(img.get(key), str) or not img[key]:
                raise _error(f"{path}: image[{i}].{key}: missing")
    return spec


def _stream(seed: str, size: int) -> bytes:
    """Deterministic, incompressible bytes (a SHA-256 counter stream)."""
    out = bytearray()
    n = 0
    while len(out) < size:
        out += hashlib.sha256(f"{seed}:{n}".encode()).digest()
        n += 1
    return bytes(out[:size])


def _umoci(*args: str) -> list[str]:
    exe = _exe("umoci", "umoci")
    return [exe, *args]


def _touch_tree(root: Path, epoch: int) -> None:
    for dirpath, dirnames, filenames in os.walk(root):
        for n in dirnames + filenames:
            os.utime(os.path.join(dirpath, n), (epoch, epoch), follow_symlinks=False)
    os.utime(root, (epoch, epoch))


def _epoch(created: str) -> int:
    return int(datetime.fromisoformat(created.replace("Z", "+00:00")).timestamp())


def _layout_index(layout: Path) -> dict[str, dict]:
    idx = json.loads((layout / "index.json").read_text())
    return {m.get("annotations", {}).get("org.opencontainers.image.ref.name"): m for m in idx.get("manifests") or []}


def _rootless() -> list[str]:
    return [] if os.geteuid() == 0 else ["--rootless"]


def _ensure_base(layout: Path, created: str, work: Path) -> None:
    if "base" in _layout_index(layout):
        return
    _run(_umoci("new", "--image", f"{layout}:empty"), what="umoci new")
    bundle = work / "bundle-base"
    shutil.rmtree(bundle, ignore_errors=True)
    _run(_umoci("unpack", *_rootless(), "--image", f"{layout}:empty", str(bundle)), what="umoci unpack base")
    rootfs = bundle / "rootfs"
    (rootfs / "etc").mkdir(parents=True, exist_ok=True)
    (rootfs / "etc" / "os-release").write_text('NAME="Community Base"\nID=community\nVERSION_ID="1"\n')
    (rootfs / "usr" / "lib" / "community").mkdir(parents=True, exist_ok=True)
    (rootfs / "usr" / "lib" / "community" / "base.bin").write_bytes(_stream("community-base", 1 << 20))
    _touch_tree(rootfs, _epoch(created))
    _run(_umoci("repack", "--history.created", created, "--history.comment", "community base layer",
                "--image", f"{layout}:base", str(bundle)), what="umoci repack base")
    shutil.rmtree(bundle, ignore_errors=True)
    _run(_umoci("rm", "--image", f"{layout}:empty"), what="umoci rm")


def _ref(service: str, tag: str, arch: str | None = None) -> str:
    return f"{service}-{tag}" + (f"-{arch}" if arch else "")


def build_image(layout: Path, service: str, tag: str, *, platforms: list[str] | None = None,
                created: str = "2026-11-02T09:00:00Z", salt: str = "", work: Path | None = None) -> str:
    """Build <service>:<tag> into the OCI layout (umoci) and return its layout ref name. More than one
    platform makes an OCI image index over one manifest per platform. Deterministic for equal input."""
    layout = Path(layout)
    work = Path(work or layout.parent / "build")
    work.mkdir(parents=True, exist_ok=True)
    if not (layout / "index.json").exists():
        _run(_umoci("init", "--layout", str(layout)), what="umoci init")
    _ensure_base(layout, created, work)
    platforms = platforms or ["linux/amd64"]
    refs = []
    for plat in platforms:
        os_, _, arch = plat.partition("/")
        ref = _ref(service, tag, arch if len(platforms) > 1 else None) + (f"-{salt}" if salt else "")
        refs.append((ref, os_, arch))
        if ref in _layout_index(layout):
            continue
        bundle = work / f"bundle-{ref}"
        shutil.rmtree(bundle, ignore_errors=True)
        _run(_umoci("unpack", *_rootless(), "--image", f"{layout}:base", str(bundle)), what=f"umoci unpack {ref}")
        app = bundle / "rootfs" / "app" / service
        app.mkdir(parents=True, exist_ok=True)
        (app / "VERSION").write_text(f"{service} {tag} {plat}{' ' + salt if salt else ''}\n")
        (app / "run.sh").write_text(f"#!/bin/sh\necho '{service} {tag} ({plat})'\nexec sleep infinity\n")
        os.chmod(app / "run.sh", 0o755)
        (app / "bundle.bin").write_bytes(_stream(f"{service}:{tag}:{plat}:{salt}", 128 << 10))
        _touch_tree(bundle / "rootfs", _epoch(created))
        _run(_umoci("repack", "--history.created", created, "--history.comment", f"{service} {tag}",
                    "--image", f"{layout}:{ref}", str(bundle)), what=f"umoci repack {ref}")
        shutil.rmtree(bundle, ignore_errors=True)
        _run(_umoci("config", "--image", f"{layout}:{ref}", "--created", created, "--history.created", created,
                    "--os", os_, "--architecture", arch, "--config.cmd", f"/app/{service}/run.sh",
                    "--config.workingdir", f"/app/{service}",
                    "--config.label", f"org.opencontainers.image.title={service}",
                    "--config.label", f"org.opencontainers.image.version={tag}",
                    "--config.label", "org.opencontainers.image.vendor=Community Platform"),
             what=f"umoci config {ref}")
    if len(refs) == 1:
        return refs[0][0]
    # A multi-arch image: an OCI image index over the per-platform manifests (umoci makes manifests only).
    index_ref = _ref(service, tag) + (f"-{salt}" if salt else "")
    idx = json.loads((layout / "index.json").read_text())
    by_ref = _layout_index(layout)
    if index_ref not in by_ref:
        manifests = []
        for ref, os_, arch in refs:
            m = {k: v for k, v in by_ref[ref].items() if k != "annotations"}
            m["platform"] = {"architecture": arch, "os": os_}
            manifests.append(m)
        blob = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests},
                          separators=(",", ":"), sort_keys=True).encode()
        digest = hashlib.sha256(blob).hexdigest()
        _daemon.write_atomic(layout / "blobs" / "sha256" / digest, blob, 0o644)
        idx["manifests"].append({"mediaType": OCI_INDEX, "digest": f"sha256:{digest}", "size": len(blob),
                                 "annotations": {"org.opencontainers.image.ref.name": index_ref}})
        _daemon.write_atomic(layout / "index.json", json.dumps(idx, separators=(",", ":")), 0o644)
    return index_ref


def layout_digest(layout: Path, ref: str) -> str:
    return _layout_index(Path(layout))[ref]["digest"]


def push(state_dir: Path, layout: Path, ref: str, region: str, service: str, tag: str,
         prefix: str = "community") -> str:
    """skopeo copy --all --preserve-digests oci:<layout>:<ref> -> the region's registry; returns the digest."""
    port = (_ports(state_dir, create=False) or {})[region]
    _run([_exe("skopeo", "skopeo"), "copy", "--all", "--preserve-digests", "--retry-times", "2",
          "--dest-authfile", str(authfile(state_dir)), "--dest-tls-verify=false",
          f"oci:{layout}:{ref}", f"docker://127.0.0.1:{port}/{prefix}/{service}:{tag}"],
         what=f"pushing {service}:{tag} to the {region} registry")
    return layout_digest(layout, ref)


def digest_of(state_dir: Path, region: str, repository: str, reference: str) -> str | None:
    """Docker-Content-Digest of <repository>:<reference> in the region's registry (None when absent)."""
    port = (_ports(state_dir, create=False) or {})[region]
    token = base64.b64encode(f"{USERNAME}:{_password(state_dir)}".encode()).decode()
    req = urllib.request.Request(f"http://127.0.0.1:{port}/v2/{repository}/manifests/{reference}", method="HEAD",
                                 headers={"Accept": ACCEPT, "Authorization": f"Basic {token}"})
    try:
        with _HTTP.open(req, timeout=5) as r:
            return r.headers.get("Docker-Content-Digest")
    except urllib.error.HTTPError as e:
        if e.code == 404:
            return None
        raise


def new_image(state_dir: Path, service: str, tag: str, region: str = REGIONS[0], *, salt: str | None = None,
              platforms: list[str] | None = None) -> str:
    """Build a fresh image (unique content unless `salt` is given) and push it to `region`: the digest."""
    layout = _root(state_dir) / "oci"
    salt = salt if salt is not None else _secrets.token_hex(4)
    ref = build_image(layout, service, tag, platforms=platforms, salt=salt, work=_root(state_dir) / "build")
    return push(state_dir, layout, ref, region, service, tag)


def _seed(state_dir: Path, say) -> str:
    spec = images_spec()
    prefix, created = spec.get("prefix", "community"), spec.get("created", "2026-11-02T09:00:00Z")
    root = _root(state_dir)
    layout = root / "oci"
    notes = []
    t0 = time.monotonic()
    built: list[tuple[dict, str]] = []
    for img in spec.get("image", []):
        ref = build_image(layout, img["service"], img["tag"], platforms=img.get("platforms"), created=created,
                          work=root / "build")
        built.append((img, ref))
    t_build = time.monotonic() - t0
    for region in REGIONS:
        marker = root / f"seeded-{region}.json"
        if marker.exists():
            continue
        t1 = time.monotonic()
        pushed = {}
        for img, ref in built:
            if region != REGIONS[0] and not img.get("standby"):
                continue
            for tag in [img["tag"], *img.get("aliases", [])]:
                pushed[f"{prefix}/{img['service']}:{tag}"] = push(state_dir, layout, ref, region, img["service"],
                                                                  tag, prefix)
        _daemon.write_atomic(marker, json.dumps(pushed, indent=2, sort_keys=True) + "\n")
        notes.append(f"{region}: {len(pushed)} tags pushed [{time.monotonic() - t1:.1f}s]")
    if notes:
        say(f"  {NAME:<10} images built [{t_build:.1f}s]; " + "; ".join(notes))
    return ", ".join(notes)


# --------------------------------------------------------------------------- the contract

def up(state_dir: Path, say) -> dict[str, str]:
    ports = _ports(state_dir, create=True)
    _password(state_dir)
    _ensure_htpasswd(state_dir)
    authfile(state_dir)
    started = []
    for region in REGIONS:  # a changed config.yml is read at start only
        changed = _daemon.write_atomic(_root(state_dir) / region / "config.yml",
                                       _config(state_dir, region, ports[region]), 0o600)
        if _daemon.ensure(_pidfile(state_dir, region), NEEDLE, lambda r=region: _answers(ports[r]),
                          lambda r=region: _start(state_dir, r, ports[r]), restart=changed):
            started.append(f"{region} :{ports[region]}")
    _daemon.announce(say, NAME, [f"started {', '.join(started)}"] if started else [])
    _seed(state_dir, say)
    return env(state_dir, ports)


def env(state_dir: Path, ports: dict[str, int] | None = None) -> dict[str, str]:
    if not (ports := ports or _ports(state_dir, create=False)):
        return {}
    password = _password(state_dir)
    out = {}
    for region in REGIONS:
        k = _common.env_key(region)
        out[f"AIRFLOW_CONN_LIFEBOAT_REGISTRY_{k}"] = _daemon.local_conn(
            ports[region], USERNAME, password, extra={"tls_verify": False, "region": region})
        out[f"LIFEBOAT_REGISTRY_{k}"] = f"127.0.0.1:{ports[region]}"
        out[f"LIFEBOAT_REGISTRY_DATA_{k}"] = str(_root(state_dir) / region / "data")
    return out


def down(state_dir: Path, say) -> str:
    return _daemon.stop_all(REGIONS, lambda r: _pidfile(state_dir, r), NEEDLE)


def _seeded(state_dir: Path, region: str) -> int:
    """How many tags the first `up` pushed to a region."""
    try:
        return len(json.loads((_root(state_dir) / f"seeded-{region}.json").read_text()))
    except (OSError, ValueError):
        return 0


def status(state_dir: Path) -> dict:
    if not (ports := _ports(state_dir, create=False)):
        return _daemon.not_initialised(_root(state_dir))
    res = _daemon.regional_status(REGIONS, lambda r: _pidfile(state_dir, r), NEEDLE, lambda r: _answers(ports[r]),
                                  lambda r: _root(state_dir) / r / "registry.log", ports[REGIONS[0]])
    return {**res, "status": ", ".join(f"{r}:{ports[r]} ({_seeded(state_dir, r)} tags seeded)" for r in REGIONS)}

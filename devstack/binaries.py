"""Go binaries for the local stack, built from our wrapper modules and cached by version (stdlib only).

    from devstack import binaries
    exe = binaries.ensure("kube-apiserver", say)   # ~/.cache/lifeboat/bin/kube-apiserver-v1.37.2
    stages = binaries.share_dir("kwok")            # ~/.cache/lifeboat/share/kwok-v0.8.0/stages

Every program is built the ordinary way: a small wrapper module of ours under devstack/go/<wrapper>/
(go.mod + go.sum pin every module; tools.go names the commands) and `go build <package>` inside it.
Before anything is compiled, the main module's zip (as the Go module proxy serves it, taken from the
module cache after `go mod download`) is checked against the tool's SHA-256 in devstack/pins.toml; a
mismatch or a missing pin is refused naming the tool, the expected and the actual hash. Every other
module is verified by the wrapper's go.sum (GOSUMDB=off, -mod=readonly: nothing is added or trusted
that go.sum does not list).

Tools of one wrapper module (the Kubernetes trio, toxiproxy's server and CLI) are built by one
`go build` so they share their compiled packages. A build takes a file lock (two processes never build
the same thing), writes the binary under a temporary name, runs it once (`--version` or similar) and
renames it into place; the build log stays beside it (<tool>-<version>.build.log). The Go build cache
of a build is a private directory under <cache>/go-build-tmp/, deleted afterwards (the Kubernetes
build alone leaves several GB there); the module cache (GOMODCACHE, default ~/go/pkg/mod) is kept.

    $LIFEBOAT_CACHE_DIR   cache root (default ~/.cache/lifeboat): bin/, share/, go-build-tmp/
    $LIFEBOAT_PINS        another pin file (tests plant a wrong hash with it)
    $LIFEBOAT_GOPROXY     module proxy (default https://proxy.golang.org)
    $LIFEBOAT_GO          the go command (default: go on PATH, else /usr/local/go/bin/go)

CLI: python devstack/binaries.py list | ensure <name>...|all [--jobs N]
"""

from __future__ import annotations

import concurrent.futures
import fcntl
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

try:
    from devstack import pins
except ImportError:  # run as a script: python devstack/binaries.py
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from devstack import pins

GO_DIR = Path(__file__).resolve().with_name("go")
DEFAULT_PROXY = "https://proxy.golang.org"
BUILD_TIMEOUT_S = 3 * 3600
HEARTBEAT_S = 120.0

Say = Callable[[str], None]


class BuildError(RuntimeError):
    """A Go build that failed; the message names the tool and its build log."""


@dataclass(frozen=True)
class Tool:
    name: str                    # the binary's name; also its [artifacts.<name>] in pins.toml
    wrapper: str                 # devstack/go/<wrapper>/ (or an absolute path)
    package: str                 # the Go package `go build` compiles
    module: str                  # the main module whose proxy zip is pinned
    version: str                 # the main module's version (as in the wrapper's go.mod)
    ldflags: str = "-s -w"
    smoke: tuple[str, ...] = ("--version",)  # run once after the build; must exit 0 ...
    expect: str = ""             # ... and print this (when set)
    smoke_rc: int = 0
    share: tuple[tuple[str, str], ...] = field(default=())  # (glob in the module, dest under share/<tool>-<version>/)
    # Files the module's own build generates and its zip lacks: (path in the module, content), handed to
    # `go build -overlay` (the module cache is never written to)
    generated: tuple[tuple[str, str], ...] = field(default=())

    @property
    def wrapper_dir(self) -> Path:
        return Path(self.wrapper) if os.path.isabs(self.wrapper) else GO_DIR / self.wrapper


_K8S = "v1.37.2"
_K8S_LD = ("-s -w -X k8s.io/component-base/version.gitVersion=v1.37.2 -X k8s.io/component-base/version.gitMajor=1 "
           "-X k8s.io/component-base/version.gitMinor=37 -X k8s.io/component-base/version.gitTreeState=clean")
_WEED = "v0.0.0-20261109003541-7506e5f91cd6"

# kwok's stage files (kustomize/stage/ in its module): the set a plain cluster needs at the top of
# share_dir("kwok") (pass each with -c), everything else below extra/.
_KWOK_STAGES = (
    ("kustomize/stage/node/fast/node-initialize.yaml", "stages/"),
    ("kustomize/stage/node/heartbeat/node-heartbeat.yaml", "stages/"),
    ("kustomize/stage/pod/fast/pod-*.yaml", "stages/"),
    ("kustomize/stage/node/heartbeat-with-lease/node-heartbeat-with-lease.yaml",
     "stages/extra/node/heartbeat-with-lease/"),
    ("kustomize/stage/node/chaos/*.yaml", "stages/extra/node/chaos/"),
    ("kustomize/stage/pod/general/pod-*.yaml", "stages/extra/pod/general/"),
    ("kustomize/stage/pod/chaos/*.yaml", "stages/extra/pod/chaos/"),
)

TOOLS: dict[str, Tool] = {t.name: t for t in (
    Tool("kube-apiserver", "kubernetes", "k8s.io/kubernetes/cmd/kube-apiserver", "k8s.io/kubernetes", _K8S,
         _K8S_LD, expect="Kubernetes v1.37.2"),
    Tool("kube-controller-manager", "kubernetes", "k8s.io/kubernetes/cmd/kube-controller-manager",
         "k8s.io/kubernetes", _K8S, _K8S_LD, expect="Kubernetes v1.37.2"),
    Tool("kube-scheduler", "kubernetes", "k8s.io/kubernetes/cmd/kube-scheduler", "k8s.io/kubernetes", _K8S,
         _K8S_LD, expect="Kubernetes v1.37.2"),
    Tool("kwok", "kwok", "sigs.k8s.io/kwok/cmd/kwok", "sigs.k8s.io/kwok", "v0.8.0",
         "-s -w -X sigs.k8s.io/kwok/pkg/consts.Version=v0.8.0", expect="0.8.0", share=_KWOK_STAGES),
    Tool("velero", "velero", "github.com/vmware-tanzu/velero/cmd/velero", "github.com/vmware-tanzu/velero",
         "v1.18.3", "-s -w -X github.com/vmware-tanzu/velero/pkg/buildinfo.Version=v1.18.3 "
         "-X github.com/vmware-tanzu/velero/pkg/buildinfo.GitTreeState=clean",
         smoke=("version", "--client-only"), expect="v1.18.3"),
    Tool("velero-plugin-for-aws", "velero-plugin-for-aws",
         "github.com/vmware-tanzu/velero-plugin-for-aws/velero-plugin-for-aws",
         "github.com/vmware-tanzu/velero-plugin-for-aws", "v1.14.3",
         # a go-plugin binary refuses to run outside Velero, saying so: that is the check
         smoke=(), expect="plugin", smoke_rc=1),
    Tool("weed", "seaweedfs", "github.com/seaweedfs/seaweedfs/weed", "github.com/seaweedfs/seaweedfs", _WEED,
         "-s -w -X github.com/seaweedfs/seaweedfs/weed/util/version.COMMIT=7506e5f91cd6",
         smoke=("version",), expect="7506e5f91cd6"),
    Tool("toxiproxy-server", "toxiproxy", "github.com/Shopify/toxiproxy/v2/cmd/server",
         "github.com/Shopify/toxiproxy/v2", "v2.5.0", "-s -w -X github.com/Shopify/toxiproxy/v2.Version=2.5.0",
         smoke=("-version",), expect="2.5.0"),
    Tool("toxiproxy-cli", "toxiproxy", "github.com/Shopify/toxiproxy/v2/cmd/cli",
         "github.com/Shopify/toxiproxy/v2", "v2.5.0", "-s -w -X github.com/Shopify/toxiproxy/v2.Version=2.5.0",
         smoke=("--version",), expect="2.5.0"),
    # FerretDB's Taskfile writes build/version/version.txt before building; without it the binary
    # panics at start when FerretDB is the build info's main module (go install ...@v1.24.2 does).
    # In a wrapper it still is: debug.ReadBuildInfo().Main is the module of the main package, not
    # the wrapper (tried: the panic). So the file is supplied at build time (see _overlay).
    Tool("ferretdb", "ferretdb", "github.com/FerretDB/FerretDB/cmd/ferretdb", "github.com/FerretDB/FerretDB",
         "v1.24.2", smoke=("--version",), expect="v1.24.2",
         generated=(("build/version/version.txt", "v1.24.2\n"), ("build/version/package.txt", "lifeboat-devstack\n"))),
)}


# ----------------------------------------------------------------------------------------- paths

def cache_dir() -> Path:
    return pins.cache_dir()


def tool(name: str) -> Tool:
    try:
        return TOOLS[name]
    except KeyError:
        raise KeyError(f"unknown Go tool {name!r} (known: {', '.join(TOOLS)})") from None


def path(name: str) -> Path:
    """Where the cached binary of `name` lives (it may not exist yet: see ensure)."""
    t = tool(name)
    return cache_dir() / "bin" / f"{t.name}-{t.version}"


def _share_root(t: Tool) -> Path:
    return cache_dir() / "share" / f"{t.name}-{t.version}"


def _bin_present(t: Tool) -> bool:
    p = cache_dir() / "bin" / f"{t.name}-{t.version}"
    return p.is_file() and os.access(p, os.X_OK)


def _share_present(t: Tool) -> bool:
    return not t.share or (_share_root(t) / ".complete").is_file()


def _present(t: Tool) -> bool:
    return _bin_present(t) and _share_present(t)


# ----------------------------------------------------------------------------------------- go

def go_command() -> str:
    for cand in (os.environ.get("LIFEBOAT_GO"), shutil.which("go"), "/usr/local/go/bin/go", "/usr/lib/go/bin/go"):
        if cand and Path(cand).is_file() and os.access(cand, os.X_OK):
            return cand
    raise BuildError("the `go` command is not installed (needed to build the local stack's Go programs): install "
                     "Go >= 1.26 (/usr/local/go on these machines) or set LIFEBOAT_GO")


def _version_tuple(v: str) -> tuple[int, ...]:
    return tuple(int(x) for x in re.findall(r"\d+", v)[:3])


def _go_env(gocache: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GO") or k in ("GOPATH", "GOMODCACHE")}
    env.update({
        "GOPROXY": os.environ.get("LIFEBOAT_GOPROXY") or DEFAULT_PROXY,
        # go.sum in the wrapper is the verification (and the main module's zip is pinned): no sumdb
        "GOSUMDB": "off", "GONOSUMDB": "", "GOPRIVATE": "", "GONOPROXY": "",
        "GOFLAGS": "-mod=readonly -buildvcs=false",
        "GOTOOLCHAIN": "local",  # never fetch another toolchain: an old Go is an error naming the need
        "CGO_ENABLED": "0",
        "GOCACHE": str(gocache),
        "GOTMPDIR": "",
    })
    return env


def _required_go(wrapper: Path) -> str:
    m = re.search(r"^go\s+(\S+)", (wrapper / "go.mod").read_text(), re.MULTILINE)
    return m.group(1) if m else "0"


# ----------------------------------------------------------------------------------------- build

class _Log:
    def __init__(self, path: Path):
        self.path = path
        self.fh = open(path, "w")  # noqa: SIM115 - closed by close()
        self.lock = threading.Lock()

    def write(self, text: str) -> None:
        with self.lock:
            self.fh.write(text)
            self.fh.flush()

    def close(self) -> None:
        self.fh.close()


def _run(argv: list[str], *, cwd: Path, env: dict, log: _Log, what: str, timeout: float = BUILD_TIMEOUT_S,
         heartbeat: Callable[[float], None] | None = None, log_output: bool = True) -> str:
    log.write(f"$ (cd {cwd} && {shlex.join(argv)})\n")
    t0 = time.monotonic()
    with subprocess.Popen(argv, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True) as proc:
        out: list[str] = []

        def pump():
            for line in proc.stdout:
                out.append(line)
                if log_output:
                    log.write(line)
        reader = threading.Thread(target=pump, daemon=True)
        reader.start()
        next_beat = t0 + HEARTBEAT_S
        while True:
            try:
                proc.wait(timeout=5)
                break
            except subprocess.TimeoutExpired:
                now = time.monotonic()
                if now - t0 > timeout:
                    proc.kill()
                    proc.wait()
                    reader.join(5)
                    raise BuildError(f"{what}: timed out after {timeout:.0f}s; log: {log.path}") from None
                if heartbeat and now >= next_beat:
                    heartbeat(now - t0)
                    next_beat = now + HEARTBEAT_S
        reader.join(10)
    text = "".join(out)
    if proc.returncode != 0 and not log_output:
        log.write(text)
    log.write(f"# exit {proc.returncode} after {time.monotonic() - t0:.1f}s\n")
    if proc.returncode != 0:
        tail = "\n".join("    " + ln for ln in text.strip().splitlines()[-15:])
        raise BuildError(f"{what}: `{' '.join(argv[:2])} ...` failed (rc={proc.returncode}); log: {log.path}\n{tail}")
    return text


def _fmt(seconds: float) -> str:
    s = round(seconds)
    return f"{s // 60}m{s % 60:02d}s" if s >= 60 else f"{s}s"


def _verify_module(t: Tool, go: str, env: dict, log: _Log, info: dict | None = None) -> dict:
    """`go mod download` the main module (as the wrapper's go.mod requires it) and check its zip against
    the pin, before anything is built. Returns go's JSON for the module (Path, Dir, Zip, Version);
    `info` is that JSON from an earlier call for the same module (no second download)."""
    p = pins.pin(t.name)  # PinError when there is none
    if p.version != t.version:
        raise pins.PinError(f"{pins.pin_file()}: artifacts.{t.name}.version is {p.version!r} but "
                            f"devstack/binaries.py builds {t.version}: update one of them")
    pinned_module = p.get("module")
    if pinned_module and pinned_module != t.module:
        raise pins.PinError(f"{pins.pin_file()}: artifacts.{t.name}.module is {pinned_module!r} but "
                            f"devstack/binaries.py builds {t.module}")
    if info is None:
        raw = _run([go, "mod", "download", "-json", t.module], cwd=t.wrapper_dir, env=env, log=log,
                   what=f"[go] {t.name}: downloading {t.module}", timeout=1800)
        info = json.loads(raw[raw.index("{"):])
    if info.get("Error"):
        raise BuildError(f"[go] {t.name}: go mod download {t.module}: {info['Error']}; log: {log.path}")
    if info.get("Version") != t.version:
        raise BuildError(f"[go] {t.name}: {t.wrapper_dir}/go.mod requires {t.module} {info.get('Version')}, "
                         f"devstack/binaries.py says {t.version}: update one of them")
    pins.check(p, Path(info["Zip"]))  # PinError naming the tool, expected and actual hash
    log.write(f"# {t.module}@{t.version}: zip sha256 {p.sha256} matches pins.toml\n")
    return info


def _copy_share(t: Tool, module_dir: Path) -> None:
    root = _share_root(t)
    tmp = root.with_name(root.name + f".tmp{os.getpid()}.{threading.get_ident()}")
    shutil.rmtree(tmp, ignore_errors=True)
    copied = []
    for pattern, dest in t.share:
        matches = sorted(module_dir.glob(pattern))
        if not matches:
            raise BuildError(f"[go] {t.name}: {pattern} not found in {module_dir}")
        (tmp / dest).mkdir(parents=True, exist_ok=True)
        for src in matches:
            target = tmp / dest / src.name
            shutil.copyfile(src, target)  # plain copy: the module cache is read-only
            copied.append(str(target.relative_to(tmp)))
    (tmp / "SOURCE").write_text(f"Copied from the module {t.module}@{t.version} (pinned in devstack/pins.toml) "
                                f"by devstack/binaries.py:\n" + "".join(f"  {c}\n" for c in copied))
    (tmp / ".complete").write_text("\n".join(copied) + "\n")
    shutil.rmtree(root, ignore_errors=True)
    os.replace(tmp, root)


def _overlay(todo: list[Tool], info: dict, wrapper: Path, tmpdir: Path, log: _Log) -> list[str]:
    """Flags that add the tools' generated files to the build, or [] when there are none.

    `go build -overlay` adds a file to a build without writing it anywhere, but Go refuses overlays
    beneath GOMODCACHE. So the build reads the module through a symlink to its (pinned, read-only)
    module-cache directory: a copy of the wrapper's go.mod with one directory `replace` to that symlink,
    used with -modfile; the overlay then adds the files there. Nothing is copied or modified."""
    files = {rel: content for t in todo for rel, content in t.generated}
    if not files:
        return []
    link = tmpdir / "module"
    link.symlink_to(info["Dir"], target_is_directory=True)
    modfile = tmpdir / "build.mod"
    modfile.write_text((wrapper / "go.mod").read_text() + f"\n// build-time only (devstack/binaries.py)\n"
                       f"replace {info['Path']} => {link}\n")
    shutil.copyfile(wrapper / "go.sum", tmpdir / "build.sum")
    replace = {}
    for i, (rel, content) in enumerate(sorted(files.items())):
        src = tmpdir / "generated" / f"{i}-{Path(rel).name}"
        src.parent.mkdir(parents=True, exist_ok=True)
        src.write_text(content)
        replace[str(link / rel)] = str(src)
        log.write(f"# overlay: {info['Path']}/{rel} = {content.strip()!r} (the module's own build generates it; "
                  f"its zip has none)\n")
    (tmpdir / "overlay.json").write_text(json.dumps({"Replace": replace}, indent=1))
    return [f"-modfile={modfile}", "-overlay", str(tmpdir / "overlay.json")]


def _smoke(t: Tool, exe: Path, log: _Log) -> None:
    argv = [str(exe), *t.smoke]
    try:
        p = subprocess.run(argv, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise BuildError(f"[go] {t.name}: the new binary does not run ({' '.join(argv)}): {exc}; "
                         f"log: {log.path}") from None
    out = p.stdout + p.stderr
    log.write(f"$ {shlex.join(argv)}\n{out}# exit {p.returncode}\n")
    if p.returncode != t.smoke_rc or (t.expect and t.expect.lower() not in out.lower()):
        raise BuildError(f"[go] {t.name}: the new binary failed its check `{' '.join(argv)}` (rc={p.returncode}, "
                         f"expected rc={t.smoke_rc} and {t.expect!r} in the output); log: {log.path}\n    "
                         + "\n    ".join(out.strip().splitlines()[-8:]))


def _build_group(group: list[Tool], say: Say, label: str = "", gocache: Path | None = None) -> float:
    """Build the missing tools of one wrapper module (one `go build`). Returns the seconds spent."""
    first = group[0]
    wrapper = first.wrapper_dir
    bindir = cache_dir() / "bin"
    bindir.mkdir(parents=True, exist_ok=True)
    lockname = bindir / f".{wrapper.name}-{first.version}.lock"
    with open(lockname, "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            say(f"[go] {first.name} {first.version}: another process is building it; waiting ...")
            fcntl.flock(lock, fcntl.LOCK_EX)
        todo = [t for t in group if not _present(t)]
        if not todo:
            return 0.0
        return _build_locked(todo, say, label, gocache)


def _build_locked(todo: list[Tool], say: Say, label: str, gocache: Path | None) -> float:
    go = go_command()
    first = next((t for t in todo if not _bin_present(t)), todo[0])
    wrapper = first.wrapper_dir
    names = ", ".join(t.name for t in todo)
    if not (wrapper / "go.mod").is_file() or not (wrapper / "go.sum").is_file():
        raise BuildError(f"[go] {names}: wrapper module {wrapper} needs go.mod and go.sum")
    have = subprocess.run([go, "env", "GOVERSION"], capture_output=True, text=True, check=False,
                          env={**os.environ, "GOTOOLCHAIN": "local"}).stdout.strip()
    need = _required_go(wrapper)
    if _version_tuple(have.removeprefix("go")) < _version_tuple(need):
        raise BuildError(f"[go] {names}: {wrapper}/go.mod needs Go >= {need}, {go} is {have or 'unknown'}: "
                         f"install a newer Go (or set LIFEBOAT_GO)")
    bindir = cache_dir() / "bin"
    tmpdir = cache_dir() / "go-build-tmp" / f"{wrapper.name}-{first.version}-{os.getpid()}"
    shutil.rmtree(tmpdir, ignore_errors=True)
    (tmpdir / "out").mkdir(parents=True)
    env = _go_env(gocache or tmpdir / "gocache")  # ensure_all shares one between its builds
    share_only = all(_bin_present(t) for t in todo)  # only files from the module are missing: no build
    logpath = bindir / f"{first.name}-{first.version}.{'share' if share_only else 'build'}.log"
    log = _Log(logpath)
    t0 = time.monotonic()
    say(f"[go] {'copying the shared files of' if share_only else 'building'} {names} {first.version}{label} ...")
    try:
        log.write(f"# devstack/binaries.py: {names} {first.version} from {wrapper} with {have}\n")
        info: dict = {}
        for t in todo:  # the tools of one wrapper share a main module; each has its own pin entry
            info = _verify_module(t, go, env, log, info if info.get("Path") == t.module else None)
        for t in todo:
            if not _share_present(t):
                _copy_share(t, Path(info["Dir"]))
        todo = [t for t in todo if not _bin_present(t)]
        if not todo:  # only the shared files were missing
            return time.monotonic() - t0
        ldflags = {t.ldflags for t in todo}
        if len(ldflags) != 1:
            raise BuildError(f"[go] {names}: tools of one wrapper must share ldflags")

        def beat(elapsed: float) -> None:
            say(f"[go]   still building {names}{label}, {_fmt(elapsed)} so far (log: {logpath})")
        pkgs = [t.package for t in todo]
        overlay = _overlay(todo, info, wrapper, tmpdir, log)
        t_dl = time.monotonic()
        mods = _run([go, "list", *overlay, "-deps", "-f", "{{with .Module}}{{.Path}}@{{.Version}}{{end}}", *pkgs],
                    cwd=wrapper,
                    env=env, log=log, what=f"[go] {names}: downloading the modules", timeout=3600, log_output=False)
        n_mods = len({m for m in mods.split() if "@" in m})
        took_dl = time.monotonic() - t_dl
        log.write(f"# {n_mods} modules in the build, downloaded and checked against go.sum in {took_dl:.1f}s\n")
        say(f"[go]   {names}: {n_mods} modules ready in {_fmt(took_dl)}, compiling ...")
        out = tmpdir / "out"
        _run([go, "build", "-trimpath", *overlay, "-ldflags", ldflags.pop(), "-o", str(out) + "/",
              *pkgs], cwd=wrapper, env=env, log=log, what=f"[go] building {names}",
             heartbeat=beat)
        for t in todo:
            built = out / t.package.rstrip("/").rsplit("/", 1)[-1]
            if not built.is_file():
                raise BuildError(f"[go] {t.name}: go build wrote no {built.name}; log: {logpath}")
            staged = bindir / f".{t.name}-{t.version}.tmp{os.getpid()}"
            shutil.move(built, staged)
            os.chmod(staged, 0o755)
            try:
                _smoke(t, staged, log)
            except BuildError:
                staged.unlink(missing_ok=True)
                raise
            os.replace(staged, bindir / f"{t.name}-{t.version}")  # atomic: the old file or the whole new one
        took = time.monotonic() - t0
        log.write(f"# built {names} in {took:.1f}s\n")
        for t in todo:
            if t is not first:  # one build, one log: the same text beside each binary
                shutil.copyfile(logpath, bindir / f"{t.name}-{t.version}.build.log")
        return took
    finally:
        log.close()
        shutil.rmtree(tmpdir, ignore_errors=True)  # the Go build cache: GBs, never reused


# ----------------------------------------------------------------------------------------- API

def ensure(name: str, say: Say = print) -> Path:
    """The cached binary of `name` (see TOOLS), built first when missing. Tools that share a wrapper
    module with it and are missing too are built in the same `go build`."""
    t = tool(name)
    if not _present(t):
        group = [x for x in TOOLS.values() if x.wrapper == t.wrapper and x.version == t.version]
        group.sort(key=lambda x: x is not t)
        took = _build_group(group, say)
        if took:
            say(f"[go] {t.name} {t.version} ready in {_fmt(took)}")
    return path(name)


def share_dir(name: str, say: Say = print) -> Path:
    """Files a tool ships beside its binary, read from its pinned module: for "kwok" the stage files
    (node-initialize.yaml, node-heartbeat.yaml, pod-ready/complete/delete.yaml at the top, pass each
    with `kwok -c`; more under extra/). Built/copied by ensure(name) when missing."""
    t = tool(name)
    if not t.share:
        raise KeyError(f"Go tool {name!r} has no shared files")
    if not (_share_root(t) / ".complete").is_file():
        ensure(name, say)
    return _share_root(t) / t.share[0][1].split("/")[0]


def ensure_all(names: Iterable[str] | None = None, jobs: int = 2, say: Say = print) -> dict[str, Path]:
    """Ensure several tools, building independent wrapper modules `jobs` at a time (largest first),
    with a progress line per tool. Returns {name: path}."""
    wanted = list(dict.fromkeys(names or TOOLS))
    for n in wanted:
        tool(n)
    total = len(wanted)
    index = {n: i + 1 for i, n in enumerate(wanted)}
    groups: dict[tuple[str, str], list[Tool]] = {}
    for n in wanted:
        t = TOOLS[n]
        if _present(t):
            say(f"[go] {t.name} {t.version} ({index[n]}/{total}): cached, skipped")
        else:
            groups.setdefault((t.wrapper, t.version), []).append(t)
    order = sorted(groups.values(), key=lambda g: -_COST.get(g[0].wrapper, 60))
    t_all = time.monotonic()
    errors: list[str] = []

    def one(group: list[Tool]) -> None:
        label = " (" + ", ".join(f"{index[t.name]}/{total}" for t in group) + ")"
        took = _build_group(group, say, label, gocache)
        if took:
            say(f"[go] built {', '.join(t.name for t in group)} {group[0].version}{label}, {_fmt(took)}")
        else:
            say(f"[go] {', '.join(t.name for t in group)} {group[0].version}{label}: built by another process")

    # One Go build cache for all builds of this call: the standard library and the modules the tools
    # share at the same version compile once. Go's cache is safe for concurrent builds; it is deleted
    # when the last build is done (it grows to several GB and is never reused).
    gocache = cache_dir() / "go-build-tmp" / f"gocache-{os.getpid()}-{threading.get_ident()}"
    try:
        with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
            futures = {pool.submit(one, g): g for g in order}
            for fut in concurrent.futures.as_completed(futures):
                try:
                    fut.result()
                except (BuildError, pins.PinError, OSError) as exc:
                    errors.append(str(exc))
                    say(f"[go] FAILED: {exc}")
    finally:
        shutil.rmtree(gocache, ignore_errors=True)
    if groups:
        say(f"[go] {sum(len(g) for g in groups.values())} built, {total - sum(len(g) for g in groups.values())} "
            f"cached, {_fmt(time.monotonic() - t_all)} in all")
    if errors:
        raise BuildError("\n".join(errors))
    return {n: path(n) for n in wanted}


# Rough cold build seconds on 2 cores, only to start the longest builds first.
_COST = {"kubernetes": 1500, "velero": 500, "seaweedfs": 500, "velero-plugin-for-aws": 300, "ferretdb": 250,
         "kwok": 200, "toxiproxy": 20}


def main(argv: list[str]) -> int:
    args = list(argv)
    jobs = 2
    if "--jobs" in args:
        i = args.index("--jobs")
        jobs = int(args[i + 1])
        del args[i:i + 2]
    if args == ["list"]:
        for t in TOOLS.values():
            state = "cached" if _present(t) else "missing"
            print(f"{t.name:<24} {t.version:<36} {state:<8} {path(t.name)}")
        return 0
    if len(args) >= 2 and args[0] == "ensure":
        names = None if args[1:] == ["all"] else args[1:]
        try:
            built = ensure_all(names, jobs=jobs)
            if names:  # `all` (bootstrap) has said enough; named tools: their paths, one a line
                for n, p in built.items():
                    print(f"{n}: {p}")
        except (BuildError, pins.PinError, KeyError) as exc:
            print(f"[go] {exc}", file=sys.stderr)
            return 1
        return 0
    print("usage: binaries.py list | ensure <name>...|all [--jobs N]", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

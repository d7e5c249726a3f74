"""The platform's configuration repository in Git, served per region on loopback (stdlib + git only).

    <state>/config_repo/ports.json                      {region: port}, picked free once and kept
    <state>/config_repo/secrets.json                    {"username", "password"} (0600)
    <state>/config_repo/us-west-2/community-config.git  the primary (bare), seeded once
    <state>/config_repo/us-east-1/community-config.git  the standby: `git clone --mirror` of the primary,
                                                        kept in sync by `git fetch --prune` (sync_mirror())
    <state>/config_repo/<region>/server.log, server.pid devstack/git_http_server.py (smart HTTP behind
                                                        basic auth -> `git http-backend`)

Content: include/platform/config/ (one folder per service = one ConfigMap `<service>-config`, the
files the Kubernetes manifests of include/platform/ mount) with a short, deterministic history (fixed
author, committer and dates, so the commit ids are the same on every machine for the same files):

    release/2026.10.0  (annotated tag)  the files without the last one in sorted order
    release/2026.11.0  (annotated tag)  exactly include/platform/config/
    deployed/us-west-2, deployed/us-east-1 (lightweight tags) -> the release/2026.11.0 commit: what runs
    main                                one commit further (a comment line in the first YAML file),
                                        not deployed

Both regions accept authenticated pushes (a standby is repaired with `git push --mirror`). The
devstack only syncs the mirror when it creates it and when sync_mirror() is called: in production a
mirroring job does this, and Lifeboat checks that it happened.

Exports AIRFLOW_CONN_LIFEBOAT_CONFIG_<REGION> (generic connection: host, port, login, password, schema
= the repository path, extra {"scheme": "http"}), LIFEBOAT_CONFIG_REPO_<REGION> (clone URL without
credentials) and LIFEBOAT_CONFIG_REPO_DIR_<REGION> (the bare repository on disk).
"""

from __future__ import annotations

import os
import secrets as _secrets
import shutil
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

try:
    from devstack.components import _common, _daemon
except ImportError:  # run as a script: python devstack/components/<name>.py
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from devstack.components import _common, _daemon

NAME = "config_repo"
REGIONS = ("us-west-2", "us-east-1")  # primary, standby
REPO_NAME = "community-config.git"
REPO_ROOT = Path(__file__).resolve().parents[2]
CONFIG_SRC = REPO_ROOT / "include" / "platform" / "config"
SERVER = Path(__file__).resolve().parents[1] / "git_http_server.py"
USERNAME = "lifeboat"
NEEDLE = b"git_http_server"
WAIT_S = 15.0
_HTTP = urllib.request.build_opener(urllib.request.ProxyHandler({}))
IDENTITY = {"GIT_AUTHOR_NAME": "Community Platform", "GIT_AUTHOR_EMAIL": "platform@community.example.com",
            "GIT_COMMITTER_NAME": "Community Platform", "GIT_COMMITTER_EMAIL": "platform@community.example.com"}
RELEASES = ("release/2026.10.0", "release/2026.11.0")
DEPLOYED = "release/2026.11.0"


def _error(message: str, log: Path | None = None, detail: str = "") -> Exception:
    return _common.component_error(NAME, message, log, detail)


def _root(state_dir: Path) -> Path:
    return Path(state_dir) / NAME


def repo_dir(state_dir: Path, region: str) -> Path:
    return _root(state_dir) / region / REPO_NAME


def git_env(extra: dict | None = None) -> dict[str, str]:
    """A git environment that ignores the machine's and user's git config."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update({"GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull, "GIT_TERMINAL_PROMPT": "0",
                "LC_ALL": "C"})
    env.update(extra or {})
    return env


def git(*args: str, cwd: Path | None = None, env: dict | None = None, what: str = "") -> str:
    exe = shutil.which("git")
    if not exe:
        raise _error("git not on PATH -- install git")
    p = subprocess.run([exe, *args], cwd=cwd, env=git_env(env), capture_output=True, text=True, timeout=120,
                       check=False)
    if p.returncode != 0:
        raise _error(f"{what or 'git'}: `git {' '.join(args[:3])}` failed (rc={p.returncode})",
                     detail=p.stderr + p.stdout)
    return p.stdout


def _ports(state_dir: Path, create: bool) -> dict[str, int] | None:
    return _daemon.ports(state_dir, NAME, REGIONS, create)


def _secrets_path(state_dir: Path) -> Path:
    return _root(state_dir) / "secrets.json"


def _password(state_dir: Path) -> str:
    return _daemon.secrets_file(_secrets_path(state_dir),
                                lambda: {"username": USERNAME, "password": _secrets.token_urlsafe(24)})["password"]


# --------------------------------------------------------------------------- the repository's history

def _files(src: Path) -> dict[str, bytes]:
    return {str(p.relative_to(src)): p.read_bytes() for p in sorted(src.rglob("*")) if p.is_file()}


NEXT_RELEASE_NOTE = b"# next release: under review, not deployed yet\n"


def history(src: Path = CONFIG_SRC) -> list[dict]:
    """The seeded commits, oldest first: {message, date, files: {path: bytes}, tags, annotated}.
    Derived from whatever include/platform/config/ holds (the Kubernetes manifests own those files):
    October = the files without the last one (sorted), November = the files as they are (deployed),
    main = November plus a comment line appended to the first YAML file (not deployed)."""
    current = _files(src)
    if not current:
        raise _error(f"{src}: no configuration files")
    names = sorted(current)
    october = {k: v for k, v in current.items() if k != names[-1]} if len(names) > 1 else dict(current)
    later = dict(current)
    first_yaml = next((n for n in names if n.endswith((".yaml", ".yml"))), None)
    if first_yaml:
        later[first_yaml] = current[first_yaml].rstrip(b"\n") + b"\n" + NEXT_RELEASE_NOTE
    else:
        later[f"{names[0].split('/')[0]}/NEXT_RELEASE.txt"] = NEXT_RELEASE_NOTE
    return [
        {"message": "release 2026.10.0", "date": "2026-10-05T10:00:00+00:00", "files": october,
         "annotated": ["release/2026.10.0"], "tags": []},
        {"message": f"release 2026.11.0: add {names[-1]}", "date": "2026-11-02T10:00:00+00:00",
         "files": current, "annotated": ["release/2026.11.0"], "tags": [f"deployed/{r}" for r in REGIONS]},
        {"message": "next release, under review (not deployed)", "date": "2026-11-20T15:30:00+00:00",
         "files": later, "annotated": [], "tags": []},
    ]


def changed_on_main(src: Path = CONFIG_SRC) -> str:
    """The file main changes after the deployed release (what a drift check at main would see)."""
    h = history(src)
    return next(k for k in sorted(set(h[2]["files"]) | set(h[1]["files"]))
                if h[2]["files"].get(k) != h[1]["files"].get(k))


def _seed_primary(bare: Path) -> None:
    bare.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="config-seed-", dir=bare.parent) as tmp:
        work = Path(tmp)
        git("init", "-q", "-b", "main", str(work), what="seeding the config repository")
        for commit in history():
            for old in [p for p in work.rglob("*") if p.is_file() and ".git" not in p.parts]:
                old.unlink()
            for rel, data in commit["files"].items():
                (work / rel).parent.mkdir(parents=True, exist_ok=True)
                (work / rel).write_bytes(data)
            dated = {**IDENTITY, "GIT_AUTHOR_DATE": commit["date"], "GIT_COMMITTER_DATE": commit["date"]}
            git("add", "-A", cwd=work, what="seeding the config repository")
            git("commit", "-q", "-m", commit["message"], cwd=work, env=dated, what="seeding the config repository")
            for tag in commit["annotated"]:
                git("tag", "-a", "-m", tag.replace("/", " "), tag, cwd=work, env=dated, what="tagging")
            for tag in commit["tags"]:
                git("tag", tag, cwd=work, what="tagging")
        tmp_bare = bare.with_name(bare.name + ".tmp")
        shutil.rmtree(tmp_bare, ignore_errors=True)
        git("clone", "-q", "--bare", str(work), str(tmp_bare), what="creating the primary repository")
        git("--git-dir", str(tmp_bare), "remote", "remove", "origin", what="creating the primary repository")
        os.replace(tmp_bare, bare)


def _ensure_mirror(primary: Path, mirror: Path) -> bool:
    if (mirror / "HEAD").exists():
        return False
    mirror.parent.mkdir(parents=True, exist_ok=True)
    tmp = mirror.with_name(mirror.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    git("clone", "-q", "--mirror", str(primary), str(tmp), what="creating the standby mirror")
    os.replace(tmp, mirror)
    return True


def sync_mirror(state_dir: Path, region: str = REGIONS[1]) -> dict[str, str]:
    """`git fetch --prune` the standby mirror from the primary (what a mirroring job does); its refs."""
    mirror = repo_dir(state_dir, region)
    git("--git-dir", str(mirror), "fetch", "-q", "--prune", "origin", what=f"syncing the {region} mirror")
    return refs(state_dir, region)


def refs(state_dir: Path, region: str) -> dict[str, str]:
    """{refname: object id} of a region's repository (tags as their tag objects, like ls-remote)."""
    out = git("--git-dir", str(repo_dir(state_dir, region)), "for-each-ref", "--format=%(refname) %(objectname)",
              what="listing refs")
    return dict(line.split(" ", 1) for line in out.splitlines() if line)


# --------------------------------------------------------------------------- servers

def _pidfile(state_dir: Path, region: str) -> Path:
    return _root(state_dir) / region / "server.pid"


def _answers(port: int) -> bool:
    """Up and enforcing auth (an unauthenticated success would be wrong)."""
    return _common.http_status(f"http://127.0.0.1:{port}/{REPO_NAME}/info/refs") == 401


def _start(state_dir: Path, region: str, port: int) -> None:
    d = _root(state_dir) / region
    if _common.port_open(port):
        raise _error(f"port {port} ({region}) is in use by another process; free it or edit "
                     f"{_root(state_dir) / 'ports.json'}", d / "server.log")
    _daemon.start(NAME, [sys.executable, str(SERVER), "--root", str(d), "--port", str(port),
                         "--auth-file", str(_secrets_path(state_dir))],
                  log=d / "server.log", pidfile=_pidfile(state_dir, region), ready=lambda: _answers(port),
                  timeout=WAIT_S, what=f"git HTTP server ({region}) on 127.0.0.1:{port}")


# --------------------------------------------------------------------------- the contract

def up(state_dir: Path, say) -> dict[str, str]:
    ports = _ports(state_dir, create=True)
    _password(state_dir)
    notes = []
    primary, mirror = repo_dir(state_dir, REGIONS[0]), repo_dir(state_dir, REGIONS[1])
    if not (primary / "HEAD").exists():
        _seed_primary(primary)
        notes.append(f"seeded {REPO_NAME} ({len(history())} commits)")
    if _ensure_mirror(primary, mirror):
        notes.append(f"{REGIONS[1]} mirror cloned")
    notes += [f"{r} :{ports[r]}" for r in REGIONS
              if _daemon.ensure(_pidfile(state_dir, r), NEEDLE, lambda r=r: _answers(ports[r]),
                                lambda r=r: _start(state_dir, r, ports[r]))]
    _daemon.announce(say, NAME, notes)
    return env(state_dir, ports)


def env(state_dir: Path, ports: dict[str, int] | None = None) -> dict[str, str]:
    if not (ports := ports or _ports(state_dir, create=False)):
        return {}
    password = _password(state_dir)
    out: dict[str, str] = {}
    for region in REGIONS:
        out.update({f"{var}_{_common.env_key(region)}": value for var, value in (
            ("AIRFLOW_CONN_LIFEBOAT_CONFIG", _daemon.local_conn(ports[region], USERNAME, password, schema=REPO_NAME,
                                                                extra={"scheme": "http"})),
            ("LIFEBOAT_CONFIG_REPO", f"http://127.0.0.1:{ports[region]}/{REPO_NAME}"),
            ("LIFEBOAT_CONFIG_REPO_DIR", str(repo_dir(state_dir, region))))})
    return out


def down(state_dir: Path, say) -> str:
    return _daemon.stop_all(REGIONS, lambda r: _pidfile(state_dir, r), NEEDLE)


def status(state_dir: Path) -> dict:
    root = _root(state_dir)
    if not (ports := _ports(state_dir, create=False)):
        return _daemon.not_initialised(root)
    res = _daemon.regional_status(REGIONS, lambda r: _pidfile(state_dir, r), NEEDLE, lambda r: _answers(ports[r]),
                                  lambda r: root / r / "server.log", ports[REGIONS[0]])
    try:
        a, b = refs(state_dir, REGIONS[0]), refs(state_dir, REGIONS[1])
        diff = sorted(set(a.items()) ^ set(b.items()))
        res["replication"] = "mirror in sync" if not diff else f"mirror differs in {len({r for r, _ in diff})} refs"
    except Exception as exc:
        res["replication"] = f"unknown ({str(exc).splitlines()[0]})"
    return res

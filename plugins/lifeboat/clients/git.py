"""Git behind an Airflow connection: ls-remote, clone/fetch/push, bundle create/verify/list-heads, fsck,
and reading trees and files at a commit.

The connection (generic) holds host, port, login, password, `schema` = the repository path
(`community-config.git`) and extra `{"scheme": "https"|"http"}`; or extra `{"url": "..."}` with the
whole URL (without credentials). Credentials reach git through a credential helper configured in the
environment (GIT_CONFIG_COUNT/KEY/VALUE, git >= 2.31) that prints them from two environment variables:
they are never part of a URL, argv, a config file or a log line. Prompts are off (GIT_TERMINAL_PROMPT=0),
so a wrong password fails at once with the connection id in the message. The user's and the machine's
git configuration are ignored.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from lifeboat.connections import Endpoint, resolve
from lifeboat.errors import ConnectionConfigError, ServiceError

log = logging.getLogger(__name__)

# The helper is a shell function git runs as `sh -c '<helper> get'`; it only answers `get`.
_HELPER = ('!f() { test "$1" = get || exit 0; printf "username=%s\\npassword=%s\\n" '
           '"$LIFEBOAT_GIT_USERNAME" "$LIFEBOAT_GIT_PASSWORD"; }; f')
ZERO = "0" * 40


@dataclass(frozen=True)
class GitRemote:
    """A repository URL (never with credentials) and the credentials to use with it."""

    url: str
    conn_id: str = ""
    username: str = ""
    password: str = field(default="", repr=False)

    @classmethod
    def from_connection(cls, conn_id: str) -> GitRemote:
        return cls.from_endpoint(resolve(conn_id))

    @classmethod
    def from_endpoint(cls, ep: Endpoint) -> GitRemote:
        extra = ep.extra or {}
        url = extra.get("url") or ""
        if not url:
            if not ep.host:
                raise ConnectionConfigError(f"Airflow connection {ep.conn_id!r}: needs host (and schema = the "
                                            "repository path) or extra.url")
            scheme = extra.get("scheme") or "https"
            netloc = f"{ep.host}:{ep.port}" if ep.port else ep.host
            url = urlunsplit((scheme, netloc, "/" + (ep.schema or "").lstrip("/"), "", ""))
        parts = urlsplit(url)
        if parts.username or parts.password:
            raise ConnectionConfigError(f"Airflow connection {ep.conn_id!r}: the repository URL must not carry "
                                        "credentials: put them in the connection's login and password")
        return cls(url=url, conn_id=ep.conn_id, username=ep.login, password=ep.password)

    def describe(self) -> str:
        return f"{self.url} (connection {self.conn_id})" if self.conn_id else self.url

    def env(self) -> dict[str, str]:
        if not (self.username or self.password):
            return {}
        return {"GIT_CONFIG_COUNT": "2",
                "GIT_CONFIG_KEY_0": "credential.helper", "GIT_CONFIG_VALUE_0": "",  # reset inherited helpers
                "GIT_CONFIG_KEY_1": "credential.helper", "GIT_CONFIG_VALUE_1": _HELPER,
                "LIFEBOAT_GIT_USERNAME": self.username, "LIFEBOAT_GIT_PASSWORD": self.password}


Remote = GitRemote | str | Path  # a GitRemote, or a local path / URL without credentials


class Git:
    """Runs git with a clean environment (no user/system config, no prompts); errors name the command,
    the repository (URL without credentials) and git's own message."""

    def __init__(self, git: str | None = None, timeout: float = 600.0):
        self.exe = git or shutil.which("git") or ""
        self.timeout = timeout
        if not self.exe:
            raise ServiceError("git not found on PATH")

    # ---- plumbing ------------------------------------------------------------------------------
    def env(self, remote: Remote | None = None, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("GIT_", "LIFEBOAT_GIT_"))}
        env.update({"GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull, "GIT_TERMINAL_PROMPT": "0",
                    "GIT_ASKPASS": "/bin/false", "SSH_ASKPASS": "/bin/false", "LC_ALL": "C"})
        if isinstance(remote, GitRemote):
            env.update(remote.env())
        env.update(extra or {})
        return env

    def run(self, args: Sequence[str | Path], *, remote: Remote | None = None, cwd: str | Path | None = None,
            input: bytes | None = None, check: bool = True, timeout: float | None = None,
            env: Mapping[str, str] | None = None) -> subprocess.CompletedProcess:
        argv = [self.exe, *map(str, args)]
        where = _describe(remote)
        log.info("$ git %s%s", " ".join(map(str, args)), f"  [{where}]" if where and where not in argv else "")
        try:
            p = subprocess.run(argv, input=input, capture_output=True, cwd=cwd, env=self.env(remote, env),
                               timeout=timeout or self.timeout, check=False)
        except subprocess.TimeoutExpired:
            raise ServiceError(f"git {args[0]} timed out after {timeout or self.timeout:.0f}s"
                               + (f" on {where}" if where else "")) from None
        if check and p.returncode != 0:
            msg = p.stderr.decode(errors="replace").strip()
            hint = ""
            if isinstance(remote, GitRemote) and ("Authentication failed" in msg or "401" in msg):
                hint = f" -- check the login/password of Airflow connection {remote.conn_id!r}"
            raise ServiceError(f"git {args[0]} failed (rc={p.returncode})" + (f" on {where}" if where else "")
                               + f"{hint}: {msg[-1500:]}")
        return p

    def out(self, args: Sequence[str | Path], **kw) -> str:
        return self.run(args, **kw).stdout.decode(errors="replace")

    # ---- remotes -------------------------------------------------------------------------------
    def ls_remote(self, remote: Remote) -> dict[str, str]:
        """{refname: object id} as the remote advertises them (HEAD and peeled ^{} entries left out)."""
        text = self.out(["ls-remote", "--refs", _url(remote)], remote=remote)
        return _parse_refs(text, sep="\t")

    def clone(self, remote: Remote, dest: Path, *, mirror: bool = False, bare: bool = False) -> Path:
        args = ["clone", "--quiet"] + (["--mirror"] if mirror else ["--bare"] if bare else [])
        self.run([*args, _url(remote), str(dest)], remote=remote)
        return Path(dest)

    def fetch(self, git_dir: Path, remote: Remote | None = None, *, prune: bool = True,
              refspecs: Sequence[str] = ()) -> None:
        """Fetch into a (mirror) repository; with a remote URL, into the refs the refspecs name."""
        args = ["--git-dir", str(git_dir), "fetch", "--quiet"] + (["--prune"] if prune else [])
        args += [_url(remote), *refspecs] if remote is not None else ["origin"]
        self.run(args, remote=remote)

    def push_mirror(self, git_dir: Path, remote: Remote, *, force: bool = True) -> None:
        """Make the remote's refs exactly the local repository's (`git push --mirror`): a repair."""
        self.run(["--git-dir", str(git_dir), "push", "--quiet", "--mirror"] + (["--force"] if force else [])
                 + [_url(remote)], remote=remote)

    def push(self, work_tree: Path, remote: Remote, refspecs: Sequence[str], *, force: bool = False) -> None:
        self.run(["-C", str(work_tree), "push", "--quiet"] + (["--force"] if force else []) + [_url(remote),
                 *refspecs], remote=remote)

    # ---- bundles -------------------------------------------------------------------------------
    def bundle_create(self, git_dir: Path, path: Path, refs: Sequence[str] = ("--all",)) -> dict[str, str]:
        """`git bundle create <path> --all`; returns the refs it holds (bundle list-heads)."""
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        self.run(["--git-dir", str(git_dir), "bundle", "create", "--quiet", str(path), *refs])
        return self.bundle_heads(path)

    def bundle_verify(self, path: Path, *, deep: bool = True) -> dict[str, str]:
        """Verify a bundle and return the refs it holds. `git bundle verify` alone only reads the header
        and checks prerequisites -- it passes a truncated bundle or one with a flipped byte (git 2.39,
        measured) -- so with `deep` every ref is also fetched from the bundle into an empty scratch
        repository (index-pack checks every object, fetch checks connectivity) and that repository is
        fsck'ed. Raises ServiceError naming the bundle and git's complaint."""
        import tempfile

        with tempfile.TemporaryDirectory(prefix="lifeboat-bundle-verify-") as tmp:
            scratch = Path(tmp) / "verify.git"
            self.run(["init", "--quiet", "--bare", str(scratch)])
            p = self.run(["--git-dir", str(scratch), "bundle", "verify", "--quiet", str(path)], check=False)
            if p.returncode != 0:
                raise ServiceError(f"git bundle verify {path}: {p.stderr.decode(errors='replace').strip()[-1500:]}")
            heads = self.bundle_heads(path)
            if not deep:
                return heads
            p = self.run(["--git-dir", str(scratch), "fetch", "--quiet", "--no-write-fetch-head", str(path),
                          "refs/*:refs/*"], check=False)
            if p.returncode != 0:
                raise ServiceError(f"bundle {path}: its objects do not unpack: "
                                   f"{p.stderr.decode(errors='replace').strip()[-1500:]}")
            problems = self.fsck(scratch)
            if problems:
                raise ServiceError(f"bundle {path}: git fsck of its content: " + "; ".join(problems[:20]))
            restored = self.refs(scratch)
            if restored != heads:
                raise ServiceError(f"bundle {path}: refs after unpacking {restored} differ from its header {heads}")
            return heads

    def bundle_heads(self, path: Path) -> dict[str, str]:
        return _parse_refs(self.out(["bundle", "list-heads", str(path)]), sep=" ")

    # ---- repositories --------------------------------------------------------------------------
    def refs(self, git_dir: Path) -> dict[str, str]:
        """{refname: object id} of a local repository (tags as their tag objects, like ls-remote)."""
        text = self.out(["--git-dir", str(git_dir), "for-each-ref", "--format=%(objectname) %(refname)"])
        return _parse_refs(text, sep=" ")

    def fsck(self, git_dir: Path) -> list[str]:
        """`git fsck --full --strict`: the problems found ([] = clean; notices are not problems)."""
        p = self.run(["--git-dir", str(git_dir), "fsck", "--full", "--strict", "--no-progress",
                      "--no-dangling"], check=False)
        lines = [ln for ln in (p.stdout + p.stderr).decode(errors="replace").splitlines()
                 if ln.strip() and not ln.startswith("notice:")]  # e.g. "HEAD points to an unborn branch"
        if p.returncode != 0 and not lines:
            lines = [f"git fsck exited with {p.returncode}"]
        return lines if p.returncode != 0 or lines else []

    def rev_parse(self, git_dir: Path, rev: str) -> str:
        return self.out(["--git-dir", str(git_dir), "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}"]).strip()

    def tree_of(self, git_dir: Path, rev: str) -> str:
        return self.out(["--git-dir", str(git_dir), "rev-parse", "--verify", f"{rev}^{{tree}}"]).strip()

    def ls_tree(self, git_dir: Path, rev: str, path: str = "") -> dict[str, str]:
        """{path: blob id} of every file under `path` at `rev` (recursive)."""
        args = ["--git-dir", str(git_dir), "ls-tree", "-r", "-z", "--full-tree", rev]
        if path:
            args += ["--", path]
        out: dict[str, str] = {}
        for entry in self.run(args).stdout.split(b"\0"):
            if entry:
                meta, _, name = entry.partition(b"\t")
                _mode, kind, oid = meta.decode().split()
                if kind == "blob":
                    out[name.decode()] = oid
        return out

    def show(self, git_dir: Path, rev: str, path: str) -> bytes:
        """A file's exact bytes at `rev`."""
        return self.run(["--git-dir", str(git_dir), "cat-file", "blob", f"{rev}:{path}"]).stdout

    def files_at(self, git_dir: Path, rev: str, path: str = "") -> dict[str, bytes]:
        return {p: self.show(git_dir, rev, p) for p in self.ls_tree(git_dir, rev, path)}


def _url(remote: Remote) -> str:
    return remote.url if isinstance(remote, GitRemote) else str(remote)


def _describe(remote: Remote | None) -> str:
    if remote is None:
        return ""
    return remote.describe() if isinstance(remote, GitRemote) else str(remote)


def _parse_refs(text: str, sep: str) -> dict[str, str]:
    """Lines of "<oid><sep><ref>" into {ref: oid} (peeled ^{} entries and HEAD left out)."""
    out = {}
    for line in text.splitlines():
        oid, _, ref = line.strip().partition(sep)
        if ref and not ref.endswith("^{}") and ref != "HEAD":
            out[ref.strip()] = oid.strip()
    return out

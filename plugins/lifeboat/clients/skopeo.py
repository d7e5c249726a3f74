"""skopeo as a subprocess: a private auth file for the registries it talks to (0600 in a 0700 folder,
removed afterwards; credentials never in argv), its environment, and running it with its output logged.
Used by lifeboat.clients.registry."""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from typing import Any

from lifeboat.errors import CommandFailed

log = logging.getLogger(__name__)


@contextlib.contextmanager
def auth_file(clients: Sequence[Any]) -> Iterator[str]:
    """A containers-auth.json for these registries in a private temporary folder, removed afterwards."""
    auths = {}
    for c in clients:
        if c.username or c.password:
            auths[c.host] = {"auth": base64.b64encode(f"{c.username}:{c.password}".encode()).decode()}
    folder = tempfile.mkdtemp(prefix="lifeboat-auth-")
    try:
        os.chmod(folder, 0o700)
        path = os.path.join(folder, "auth.json")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump({"auths": auths}, fh)
        yield path
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def skopeo_env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("REGISTRY_AUTH_FILE", None)  # only the auth file we pass
    return env


def run(argv: list[str], timeout: float, runner=None) -> None:
    if runner is not None:
        runner.run(argv, timeout=timeout, env=skopeo_env())
        return
    log.info("$ %s", " ".join(argv))
    try:
        p = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=skopeo_env(), check=False)
    except subprocess.TimeoutExpired:
        raise CommandFailed(argv, None, "", timed_out=True) from None
    for line in (p.stderr + p.stdout).splitlines()[-20:]:
        log.info("  %s", line)
    if p.returncode != 0:
        raise CommandFailed(argv, p.returncode, (p.stderr + p.stdout)[-3000:])


def run_bytes(argv: list[str], timeout: float = 120) -> bytes:
    log.info("$ %s", " ".join(argv))
    try:
        p = subprocess.run(argv, capture_output=True, timeout=timeout, env=skopeo_env(), check=False)
    except subprocess.TimeoutExpired:
        raise CommandFailed(argv, None, "", timed_out=True) from None
    if p.returncode != 0:
        raise CommandFailed(argv, p.returncode, p.stderr.decode(errors="replace")[-3000:])
    return p.stdout

"""Native tools on the database host over SSH: `SSHRunner`, a `lifeboat.runners.Runner`.

The connection is an Airflow `ssh` connection: host, port, login, and in its extra the private key
(`private_key`, PEM/OpenSSH text, as apache-airflow-providers-ssh takes it) and the host's public key
(`host_key`, "<type> <base64>"): the host is checked against it (StrictHostKeyChecking=yes), never
trusted on first use. Passwords are never used (BatchMode, PasswordAuthentication=no). The key goes to a
0600 file for the lifetime of the runner, never into argv or a log.

Secrets for the tool (PGPASSWORD, REDISCLI_AUTH ...) travel inside the encrypted channel on stdin: the
remote command is `sh -s`, which reads `export NAME='value'` lines and then `exec`s the tool, so they
are in neither side's argv.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shlex
import shutil
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

from lifeboat.connections import Endpoint, resolve
from lifeboat.errors import ConnectionConfigError
from lifeboat.runners import Arg, LocalRunner

log = logging.getLogger(__name__)


class SSHRunner(LocalRunner):
    """Runs argv on `endpoint`'s host through the system `ssh` client; output handling, timeouts and
    process-group kills are LocalRunner's (the ssh client is the local process; closing it ends the
    remote session and its command)."""

    def __init__(self, endpoint: Endpoint, tail_lines: int = 40, ssh_bin: str = "ssh"):
        super().__init__(tail_lines)
        ep = endpoint
        if not ep.host or not ep.login:
            raise ConnectionConfigError(f"Airflow connection {ep.conn_id!r} (ssh) needs host and login")
        key, host_key = ep.extra.get("private_key"), ep.extra.get("host_key")
        if not key:
            raise ConnectionConfigError(f"Airflow connection {ep.conn_id!r} (ssh): extra.private_key is not set "
                                        "(Lifeboat logs in with keys only, never passwords)")
        if not host_key:
            raise ConnectionConfigError(f"Airflow connection {ep.conn_id!r} (ssh): extra.host_key is not set "
                                        "(the host's public key, `<type> <base64>`; hosts are never trusted on "
                                        "first use)")
        self.endpoint = ep
        self.ssh_bin = ssh_bin
        self._dir = Path(tempfile.mkdtemp(prefix="lifeboat-ssh-"))
        os.chmod(self._dir, 0o700)
        self.key_file = self._dir / "id"
        fd = os.open(self.key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(key.strip() + "\n")
        port = ep.port or 22
        hostname = ep.host if port == 22 else f"[{ep.host}]:{port}"
        (self._dir / "known_hosts").write_text(f"{hostname} {host_key.strip()}\n")

    @classmethod
    def from_connection(cls, conn_id: str) -> SSHRunner:
        return cls(resolve(conn_id))

    def describe(self) -> str:
        return f"ssh {self.endpoint.login}@{self.endpoint.host}:{self.endpoint.port or 22} ({self.endpoint.conn_id})"

    def ssh_argv(self) -> list[str]:
        ep = self.endpoint
        return [self.ssh_bin, "-T", "-p", str(ep.port or 22), "-i", str(self.key_file),
                "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes", "-o", "PasswordAuthentication=no",
                "-o", "KbdInteractiveAuthentication=no", "-o", "StrictHostKeyChecking=yes",
                "-o", f"UserKnownHostsFile={self._dir / 'known_hosts'}", "-o", "GlobalKnownHostsFile=/dev/null",
                "-o", "ConnectTimeout=10", "-o", "ServerAliveInterval=15", "-o", "LogLevel=ERROR",
                "-l", ep.login, ep.host, "sh -s"]

    @staticmethod
    def script(argv: Sequence[Arg], env: Mapping[str, str] | None, as_user: str | None, cwd: str | None) -> str:
        """What `sh -s` reads on the host: the environment, then exec of the tool (as `as_user`)."""
        lines = ["set -e"]
        for k, v in (env or {}).items():
            if not k.replace("_", "").isalnum():
                raise ValueError(f"environment variable name {k!r}")
            lines.append(f"export {k}={shlex.quote(str(v))}")
        if cwd:
            lines.append(f"cd {shlex.quote(cwd)}")
        words = [str(a) for a in argv]
        if as_user:  # on the host: root uses runuser (keeps the environment), others sudo -E
            words = ['$(if [ "$(id -u)" = 0 ]; then echo runuser -u; else echo sudo -n -E -u; fi)',
                     shlex.quote(as_user), "--", *map(shlex.quote, words)]
        else:
            words = list(map(shlex.quote, words))
        lines.append("exec " + " ".join(words) + " </dev/null")
        return "\n".join(lines) + "\n"

    def _spawn(self, argv, env, as_user, cwd, **popen) -> subprocess.Popen:
        log.info("$ [%s]%s %s", self.describe(), f" [{as_user}]" if as_user else "",
                 shlex.join(str(a) for a in argv))
        proc = subprocess.Popen(self.ssh_argv(), stdin=subprocess.PIPE, start_new_session=True, **popen)
        assert proc.stdin is not None
        data = self.script(argv, env, as_user, cwd)
        proc.stdin.write(data if popen.get("text") else data.encode())
        proc.stdin.close()
        return proc

    def run(self, argv, *, env=None, as_user=None, timeout=None, check=True, capture=False, cwd=None, quiet=False):
        return self._run_proc(argv, lambda **kw: self._spawn(argv, env, as_user, cwd, **kw), timeout=timeout,
                              check=check, capture=capture, quiet=quiet)

    def start(self, argv, *, env=None, as_user=None, log_path=None):
        with open(log_path or os.devnull, "ab") as out:
            return self._spawn(argv, env, as_user, None, stdout=out, stderr=subprocess.STDOUT)

    def open_stdout(self, argv, *, env=None):
        return self._spawn(argv, env, None, None, stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    def close(self) -> None:
        shutil.rmtree(self._dir, ignore_errors=True)

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            self.close()

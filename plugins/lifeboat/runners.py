"""Where native tools run: on this host now; in a pod (Kubernetes exec) or over SSH in production.

A runner streams the tool's output line by line to the task log, returns the exit code and the
captured stdout, and kills the whole process group on timeout (after Airflow's SubprocessHook).
Secrets go in through `env`, never argv, and env values are never logged.
"""

from __future__ import annotations

import contextlib
import logging
import os
import pwd
import shlex
import signal
import subprocess
import threading
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from lifeboat.errors import CommandFailed

log = logging.getLogger(__name__)
STREAM_PIPE_BYTES = 1 << 20  # the stdout pipe of a streamed tool (Linux's default fs.pipe-max-size)
Arg = str | int | os.PathLike[str]  # one argv element (paths and ports are turned into str)


@dataclass
class CommandResult:
    argv: list[str]
    returncode: int
    stdout: str
    tail: str


class Runner:
    """Interface. `as_user` runs the command as that OS user (PostgreSQL tools refuse root)."""

    def run(
        self,
        argv: Sequence[Arg],
        *,
        env: Mapping[str, str] | None = None,
        as_user: str | None = None,
        timeout: float | None = None,
        check: bool = True,
        capture: bool = False,
        cwd: str | None = None,
        quiet: bool = False,
    ) -> CommandResult:
        raise NotImplementedError

    def start(self, argv: Sequence[Arg], *, env=None, as_user=None, log_path: str | None = None) -> subprocess.Popen:
        raise NotImplementedError

    def open_stdout(self, argv: Sequence[Arg], *, env=None) -> subprocess.Popen:
        """Start a tool whose binary stdout the caller reads as a stream (stdout and stderr are pipes;
        the caller waits for it and reads stderr for errors)."""
        raise NotImplementedError


def _user_prefix(as_user: str | None) -> list[str]:
    if not as_user:
        return []
    current = pwd.getpwuid(os.geteuid()).pw_name
    if as_user == current:
        return []
    if os.geteuid() == 0:
        return ["runuser", "-u", as_user, "--"]
    return ["sudo", "-n", "-E", "-u", as_user, "--"]


class LocalRunner(Runner):
    def __init__(self, tail_lines: int = 40):
        self.tail_lines = tail_lines

    def _env(self, env: Mapping[str, str] | None) -> dict[str, str]:
        merged = dict(os.environ)
        if env:
            merged.update(env)
        return merged

    def run(self, argv, *, env=None, as_user=None, timeout=None, check=True, capture=False, cwd=None, quiet=False):
        argv = [str(a) for a in argv]
        # runuser -u (not a login shell) keeps the environment, so secrets stay out of argv.
        full = _user_prefix(as_user) + argv
        log.info("$ %s%s", f"[{as_user}] " if as_user else "", shlex.join(argv))

        def spawn(**kw) -> subprocess.Popen:
            return subprocess.Popen(full, env=self._env(env), cwd=cwd, start_new_session=True, **kw)

        return self._run_proc(argv, spawn, timeout=timeout, check=check, capture=capture, quiet=quiet)

    def _run_proc(self, argv, spawn, *, timeout, check, capture, quiet) -> CommandResult:
        """Start the process with `spawn(**popen kwargs)`, stream its output, wait, kill its group on timeout."""
        argv = [str(a) for a in argv]
        proc = spawn(stdout=subprocess.PIPE, stderr=subprocess.STDOUT if not capture else subprocess.PIPE,
                     text=True, errors="replace")
        tail: deque[str] = deque(maxlen=self.tail_lines)
        captured: list[str] = []

        def pump(stream, sink: list[str] | None) -> None:
            for raw in stream:
                line = raw.rstrip("\n")
                if sink is not None:
                    sink.append(line)
                else:
                    tail.append(line)
                    if not quiet:
                        log.info("  %s", line)

        threads = []
        if capture:
            threads.append(threading.Thread(target=pump, args=(proc.stdout, captured), daemon=True))
            threads.append(threading.Thread(target=pump, args=(proc.stderr, None), daemon=True))
        else:
            threads.append(threading.Thread(target=pump, args=(proc.stdout, None), daemon=True))
        for t in threads:
            t.start()
        timed_out = False
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        except BaseException:
            # The task itself is being killed: take the tool down with it.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            raise
        for t in threads:
            t.join(timeout=5)
        result = CommandResult(argv, proc.returncode, "\n".join(captured), "\n".join(tail))
        if check and (timed_out or proc.returncode != 0):
            raise CommandFailed(argv, proc.returncode, result.tail, timed_out=timed_out)
        return result

    def open_stdout(self, argv, *, env=None):
        argv = [str(a) for a in argv]
        log.info("$ %s (stdout streamed)", shlex.join(argv))
        def popen(pipesize: int = -1) -> subprocess.Popen:
            return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=self._env(env),
                                    start_new_session=True, pipesize=pipesize)

        try:  # a 1 MiB pipe (Linux's default 64 KiB stalls the tool whenever the reader hashes a chunk)
            return popen(STREAM_PIPE_BYTES)
        except PermissionError:  # over the user's pipe-buffer quota (fs.pipe-user-pages-soft): the default
            return popen()

    def start(self, argv, *, env=None, as_user=None, log_path=None):
        """Start a long-running process (a scratch server) detached from the task's process group."""
        argv = [str(a) for a in argv]
        log.info("$ (background) %s", shlex.join(argv))
        with open(log_path or os.devnull, "ab") as out:  # the child keeps its own copy of the descriptor
            return subprocess.Popen(
                _user_prefix(as_user) + argv, stdout=out, stderr=subprocess.STDOUT, env=self._env(env),
                start_new_session=True,
            )


def chown_for(path: str, as_user: str | None) -> None:
    """Give a scratch folder to the OS user a tool runs as (only possible, and needed, as root)."""
    if as_user and os.geteuid() == 0:
        pw = pwd.getpwnam(as_user)
        for root, dirs, files in os.walk(path):
            os.chown(root, pw.pw_uid, pw.pw_gid)
            for n in dirs + files:
                os.chown(os.path.join(root, n), pw.pw_uid, pw.pw_gid, follow_symlinks=False)
        os.chown(path, pw.pw_uid, pw.pw_gid)

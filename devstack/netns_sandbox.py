#!/usr/bin/env python3
"""Run one command in a private network namespace whose loopback reaches chosen host ports (stdlib only).

    python devstack/netns_sandbox.py --forward 6443 --forward 5000 [--child-pidfile F] -- velero server ...

Why: Velero's controller-runtime binds its metrics server on :8080 of every interface and has no flag to
move it, so two Velero servers (one per region) cannot share a network namespace, and neither can share
one with anything else that wants 8080. Inside its own network namespace the command binds what it likes
(its :8080 is its own, the machine's :8080 stays free) and reaches exactly the forwarded ports, at
127.0.0.1:<port> -- the same numbers as on the host, so kubeconfigs and endpoint URLs stay as they are.
Nothing else is reachable: the namespace has only its loopback, so no packet can leave the machine.

How: fork; the child unshares a network namespace (together with a user namespace when it is not root,
so no privilege is needed), brings its loopback up, binds 127.0.0.1:<port> for every forwarded port, hands
those listening sockets to the parent over a socketpair (SCM_RIGHTS) and execs the command. The parent
stays in the host's namespace: it accepts on the handed-over sockets and connects each connection to the
host's 127.0.0.1:<port>, copying bytes both ways. It exits with the command's exit status; SIGTERM and
SIGINT are passed on to the command.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import fcntl
import os
import signal
import socket
import struct
import sys
import threading
from pathlib import Path

CLONE_NEWNET = 0x40000000
CLONE_NEWUSER = 0x10000000
SIOCGIFFLAGS, SIOCSIFFLAGS = 0x8913, 0x8914
IFF_UP = 0x1


def _unshare(flags: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(flags) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"unshare(0x{flags:x}): {os.strerror(err)}")


def _loopback_up() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        ifreq = struct.pack("16sH14x", b"lo", 0)
        flags = struct.unpack("16sH14x", fcntl.ioctl(s, SIOCGIFFLAGS, ifreq))[1]
        fcntl.ioctl(s, SIOCSIFFLAGS, struct.pack("16sH14x", b"lo", flags | IFF_UP))


def enter_private_netns() -> None:
    """Move the calling (single-threaded) process into a new network namespace with loopback up."""
    uid, gid = os.geteuid(), os.getegid()
    if uid == 0:
        _unshare(CLONE_NEWNET)
    else:  # the user namespace grants CAP_NET_ADMIN over the new network namespace only
        _unshare(CLONE_NEWUSER | CLONE_NEWNET)
        Path("/proc/self/setgroups").write_text("deny")
        Path("/proc/self/uid_map").write_text(f"{uid} {uid} 1")
        Path("/proc/self/gid_map").write_text(f"{gid} {gid} 1")
    _loopback_up()


def _pump(src: socket.socket, dst: socket.socket, left: list[int], lock: threading.Lock) -> None:
    """Copy src -> dst until EOF; the second of the two pumps of a connection closes both sockets."""
    try:
        while True:
            data = src.recv(65536)
            if not data:
                break
            dst.sendall(data)
        dst.shutdown(socket.SHUT_WR)
    except OSError:
        pass
    finally:
        with lock:
            left[0] -= 1
            last = left[0] == 0
        if last:
            src.close()
            dst.close()


def _bridge(conn: socket.socket, port: int) -> None:
    try:
        up = socket.create_connection(("127.0.0.1", port), timeout=10)
        up.settimeout(None)
    except OSError:
        conn.close()
        return
    left, lock = [2], threading.Lock()
    threading.Thread(target=_pump, args=(conn, up, left, lock), daemon=True).start()
    _pump(up, conn, left, lock)


def _accept_loop(listener: socket.socket, port: int) -> None:
    while True:
        try:
            conn, _ = listener.accept()
        except OSError:
            return
        threading.Thread(target=_bridge, args=(conn, port), daemon=True).start()


def _child(sock: socket.socket, ports: list[int], argv: list[str]) -> None:
    """In the forked child: new namespace, listeners to the parent, exec. Never returns."""
    try:
        enter_private_netns()
        listeners = []
        for port in ports:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("127.0.0.1", port))
            s.listen(256)
            listeners.append(s)
        socket.send_fds(sock, [b"ready"], [s.fileno() for s in listeners])
        sock.close()
        for s in listeners:
            s.close()
        os.execvp(argv[0], argv)  # noqa: S606 - argv from our own caller, no shell
    except BaseException as exc:  # reported to the parent, then exit
        with contextlib.suppress(OSError):
            sock.sendall(f"error: {type(exc).__name__}: {exc}".encode()[:4000])
        os._exit(127)


def run(ports: list[int], argv: list[str], child_pidfile: Path | None = None) -> int:
    parent_sock, child_sock = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    pid = os.fork()
    if pid == 0:
        parent_sock.close()
        _child(child_sock, ports, argv)
    child_sock.close()
    msg, fds, _, _ = socket.recv_fds(parent_sock, 4096, max(1, len(ports)))
    parent_sock.close()
    if msg != b"ready" or len(fds) != len(ports):
        print(f"netns_sandbox: {msg.decode(errors='replace') or 'the child exited early'}", file=sys.stderr, flush=True)
        for fd in fds:
            os.close(fd)
        _, status = os.waitpid(pid, 0)
        return os.waitstatus_to_exitcode(status) or 1
    if child_pidfile:
        child_pidfile.write_text(f"{pid}\n")
    for fd, port in zip(fds, ports, strict=True):
        threading.Thread(target=_accept_loop, args=(socket.socket(fileno=fd), port), daemon=True).start()

    def forward(signum, _frame):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signum)

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, forward)
    print(f"netns_sandbox: pid {pid} runs {Path(argv[0]).name} in a private network namespace; "
          f"forwarding 127.0.0.1:{','.join(map(str, ports))} to the host", file=sys.stderr, flush=True)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="netns_sandbox.py", description=__doc__.split("\n\n")[0])
    ap.add_argument("--forward", type=int, action="append", default=[], metavar="PORT",
                    help="a host loopback port the command may reach at 127.0.0.1:PORT (repeatable)")
    ap.add_argument("--child-pidfile", type=Path, help="write the command's pid here")
    ap.add_argument("command", nargs=argparse.REMAINDER)
    args = ap.parse_args(argv)
    cmd = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not cmd:
        ap.error("no command given (after --)")
    return run(args.forward, cmd, args.child_pidfile)


if __name__ == "__main__":
    sys.exit(main())

"""The snapshot handed to the scratch redis-server WHILE it is being taken.

`redis-cli --rdb -` streams the RDB to our stdout; every chunk goes into the staging file, the
sha256, and this feed: a one-shot replication source on 127.0.0.1 (a free port of this process,
never the live server) that answers the scratch server's handshake (PING, REPLCONF, PSYNC) with
`+FULLRESYNC` and the very same bytes in the diskless `$EOF:<mark>` framing. The scratch server runs
`repl-diskless-load on-empty-db`, so Redis's own RDB loader (CRC64 checked) parses the snapshot as it
arrives: loading overlaps the transfer instead of following it.

The writer's thread sends each chunk itself (no queue, no second thread handing bytes over: that
cost as much CPU as the copy into the staging file on a 2-core host); a thread only answers the
handshake, and chunks that arrive before it is done wait in a bounded backlog.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
import socket
import threading

log = logging.getLogger(__name__)


class SyncFeed:
    def __init__(self, timeout: float = 60.0, depth: int = 64):
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(timeout)
        self.timeout = timeout
        self.port = self.listener.getsockname()[1]
        self.mark = secrets.token_hex(20).encode()  # 40 bytes, as Redis's CONFIG_RUN_ID_SIZE
        self.conn: socket.socket | None = None
        self.error: BaseException | None = None
        self.sent = 0
        self.depth = depth  # chunks held before the replica is ready; one more waits for it
        self._backlog: list[bytes | memoryview] = []
        self._lock = threading.Lock()  # the backlog and the hand-over from the handshake thread
        self._ready = threading.Event()  # set once the header is sent (or the feed failed)
        self._thread = threading.Thread(target=self._serve, name="lifeboat-redis-feed", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def put(self, chunk: bytes | memoryview) -> None:
        """Send `chunk` to the replica (from the writer's thread); a failed feed takes no more bytes."""
        if not self._ready.is_set():
            with self._lock:
                held = not self._ready.is_set()  # checked again under the lock the hand-over holds
                if held:
                    self._backlog.append(chunk)
                    full = len(self._backlog) >= self.depth
            if held:
                if full:  # the stream waits for the replica, no more
                    self._ready.wait(self.timeout)
                return
        self._send(chunk)

    def _send(self, chunk: bytes | memoryview) -> None:
        if self.error is not None or self.conn is None:
            return
        try:
            self.conn.sendall(chunk)
            self.sent += len(chunk)
        except OSError as exc:  # recorded; the caller reports it, the stream to the file goes on
            self._fail(exc)

    def _fail(self, exc: BaseException) -> None:
        if self.error is None:
            self.error = exc
            log.warning("feeding the scratch redis-server failed: %s", exc)
        self._ready.set()

    def finish(self) -> None:
        """The stream is complete: send the end mark (after every chunk)."""
        self._thread.join()
        if self.error is None and self.conn is not None:
            try:
                self.conn.sendall(self.mark)
            except OSError as exc:
                self._fail(exc)

    def _serve(self) -> None:
        try:
            conn, _ = self.listener.accept()
            self.listener.close()
            conn.settimeout(None)
            self._handshake(conn)
            with self._lock:
                conn.sendall(b"$EOF:" + self.mark + b"\r\n")
                self.conn = conn
                for chunk in self._backlog:
                    self._send(chunk)
                self._backlog.clear()
                self._ready.set()
        except BaseException as exc:
            with self._lock:
                self._backlog.clear()
                self._fail(exc)

    @staticmethod
    def _handshake(conn: socket.socket) -> None:
        """Answer the replica's commands until it asks for the data (PSYNC / SYNC)."""
        f = conn.makefile("rb")
        while True:
            head = f.readline()
            if not head:
                raise ConnectionError("the scratch redis-server closed the connection during the handshake")
            if not head.startswith(b"*"):  # inline command (a bare newline keepalive, or PING)
                words = head.split()
            else:
                words = []
                for _ in range(int(head[1:])):
                    n = int(f.readline()[1:])
                    words.append(f.read(n + 2)[:-2])
            cmd = words[0].upper() if words else b""
            if cmd in (b"PSYNC", b"SYNC"):
                conn.sendall(b"+FULLRESYNC " + secrets.token_hex(20).encode() + b" 0\r\n")
                return
            if cmd == b"PING":
                conn.sendall(b"+PONG\r\n")
            elif cmd:
                conn.sendall(b"+OK\r\n")

    def closed_by_peer(self) -> bool:
        """Did the scratch server drop the link (it does when the load fails)?"""
        if self.conn is None:
            return False
        try:
            return self.conn.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
        except BlockingIOError:
            return False
        except OSError:
            return True

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.listener.close()
        if self.conn is not None:
            with contextlib.suppress(OSError):
                self.conn.close()
        self._ready.set()

"""The snapshot handed to the scratch redis-server WHILE it is being taken.

`redis-cli --rdb -` streams the RDB to our stdout; every chunk goes into the staging file, the
sha256, and this feed: a one-shot replication source on 127.0.0.1 (a free port of this process,
never the live server) that answers the scratch server's handshake (PING, REPLCONF, PSYNC) with
`+FULLRESYNC` and the very same bytes in the diskless `$EOF:<mark>` framing. The scratch server runs
`repl-diskless-load on-empty-db`, so Redis's own RDB loader (CRC64 checked) parses the snapshot as it
arrives: loading overlaps the transfer instead of following it.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import secrets
import socket
import threading

log = logging.getLogger(__name__)
_END = object()


class SyncFeed:
    def __init__(self, timeout: float = 60.0, depth: int = 64):
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(timeout)
        self.port = self.listener.getsockname()[1]
        self.mark = secrets.token_hex(20).encode()  # 40 bytes, as Redis's CONFIG_RUN_ID_SIZE
        self.conn: socket.socket | None = None
        self.error: BaseException | None = None
        self.sent = 0
        self._q: queue.Queue = queue.Queue(maxsize=depth)  # bounded: a slow loader slows the stream, no more
        self._thread = threading.Thread(target=self._serve, name="lifeboat-redis-feed", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def put(self, chunk: bytes | memoryview) -> None:
        self._q.put(chunk)

    def finish(self) -> None:
        """The stream is complete: send the end mark (after every chunk)."""
        self._q.put(_END)
        self._thread.join()

    def _serve(self) -> None:
        ended = False
        try:
            conn, _ = self.listener.accept()
            self.listener.close()
            conn.settimeout(None)
            self.conn = conn
            self._handshake(conn)
            conn.sendall(b"$EOF:" + self.mark + b"\r\n")
            while (chunk := self._q.get()) is not _END:
                conn.sendall(chunk)
                self.sent += len(chunk)
            ended = True
            conn.sendall(self.mark)
        except BaseException as exc:  # recorded; the caller reports it, the stream to the file goes on
            self.error = exc
            log.warning("feeding the scratch redis-server failed: %s", exc)
            while not ended and self._q.get() is not _END:  # keep draining so the writer never blocks
                pass

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
        if self._thread.is_alive():
            with contextlib.suppress(queue.Full):
                self._q.put_nowait(_END)

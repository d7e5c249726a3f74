"""The replication feed (feed.py) speaks the handshake a replica expects and frames the bytes as a
diskless transfer: what a scratch redis-server reads from it, checked on a plain socket."""

from __future__ import annotations

import socket

from lifeboat.datastores.redis.feed import SyncFeed


def _cmd(*words: bytes) -> bytes:
    return b"*%d\r\n" % len(words) + b"".join(b"$%d\r\n%s\r\n" % (len(w), w) for w in words)


def test_feed_answers_the_handshake_and_frames_the_stream_with_its_end_mark():
    feed = SyncFeed(timeout=10)
    feed.start()
    try:
        c = socket.create_connection(("127.0.0.1", feed.port), timeout=10)
        f = c.makefile("rb")
        c.sendall(_cmd(b"PING"))
        assert f.readline() == b"+PONG\r\n"
        c.sendall(_cmd(b"REPLCONF", b"listening-port", b"1234") + _cmd(b"REPLCONF", b"capa", b"eof"))
        assert [f.readline(), f.readline()] == [b"+OK\r\n", b"+OK\r\n"]
        c.sendall(_cmd(b"PSYNC", b"?", b"-1"))
        head = f.readline()
        assert head.startswith(b"+FULLRESYNC ") and head.endswith(b" 0\r\n") and len(head.split()[1]) == 40
        for chunk in (b"REDIS0010", b"\xfa" * 5, b"tail"):
            feed.put(chunk)
        feed.finish()
        assert f.readline() == b"$EOF:" + feed.mark + b"\r\n"
        body = b"REDIS0010" + b"\xfa" * 5 + b"tail"
        assert f.read(len(body) + 40) == body + feed.mark
        assert feed.error is None and feed.sent == 18 and not feed.closed_by_peer()
        c.close()
    finally:
        feed.close()


def test_a_replica_that_goes_away_is_an_error_and_never_blocks_the_writer():
    feed = SyncFeed(timeout=10, depth=2)
    feed.start()
    try:
        c = socket.create_connection(("127.0.0.1", feed.port), timeout=10)
        c.close()  # gone during the handshake
        for _ in range(10):  # more than the queue holds: the feed keeps draining
            feed.put(b"x" * 1024)
        feed.finish()
        assert isinstance(feed.error, ConnectionError)
    finally:
        feed.close()


def test_chunks_written_before_the_replica_connects_are_sent_first_and_in_order():
    """The writer never waits for the handshake while the backlog has room; what it wrote meanwhile
    goes out right after the `$EOF:` header, before anything written later."""
    feed = SyncFeed(timeout=10, depth=8)
    feed.start()
    try:
        for chunk in (b"REDIS0011", b"early-1", b"early-2"):
            feed.put(chunk)  # no replica yet: returns at once
        c = socket.create_connection(("127.0.0.1", feed.port), timeout=10)
        f = c.makefile("rb")
        c.sendall(_cmd(b"PSYNC", b"?", b"-1"))
        assert f.readline().startswith(b"+FULLRESYNC ")
        assert f.readline() == b"$EOF:" + feed.mark + b"\r\n"
        feed.put(b"late")
        feed.finish()
        body = b"REDIS0011early-1early-2late"
        assert f.read(len(body) + 40) == body + feed.mark
        assert feed.error is None and feed.sent == len(body)
        c.close()
    finally:
        feed.close()

"""Network helpers shared by scratch targets and tests."""

from __future__ import annotations

import socket
from collections.abc import Iterable


def free_port(exclude: Iterable[int] = ()) -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now (and not one of `exclude`)."""
    skip = set(exclude)
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if port not in skip:
            return port

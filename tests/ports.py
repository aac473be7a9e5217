"""Ports for the servers tests start: from `STARCODER_TEST_PORTS` (`LOW-HIGH`) when set — several
engineers share one machine, each with a range — else whatever the OS hands out."""

from __future__ import annotations

import itertools
import os
import random
import socket

_range = os.environ.get("STARCODER_TEST_PORTS", "")
_cursor: itertools.cycle[int] | None = None
if _range:
    low, high = (int(p) for p in _range.split("-", 1))
    ports = list(range(low, high + 1))
    start = random.randrange(len(ports))
    _cursor = itertools.cycle(ports[start:] + ports[:start])
    _size = len(ports)


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on now (consecutive calls give different ones)."""
    if _cursor is None:
        with socket.socket() as s:
            s.bind((host, 0))
            return int(s.getsockname()[1])
    for _ in range(_size):
        port = next(_cursor)
        with socket.socket() as s:
            try:
                s.bind((host, port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port in STARCODER_TEST_PORTS={_range}")

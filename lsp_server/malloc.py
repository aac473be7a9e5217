"""Give freed document memory back to the system (glibc).

glibc serves allocations above its mmap threshold with `mmap`, and returns them on `free` — but
its threshold is dynamic: after a large block is freed it rises (up to 32 MB) so that later blocks
of that size come from the heap, where they stay mapped after being freed. A language server
allocates exactly such blocks all the time (a document's text, each edit's new copy of it, a
message being parsed), so a 200,000-line document storm kept ~100 MB more resident than the
documents held (measured: +232 MB RSS for 131 MB of live objects; with a fixed threshold +147 MB).
Fixing the threshold turns the dynamic rule off.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import sys

from lsp_server import defaults

log = logging.getLogger(__name__)

M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter


def return_large_blocks() -> bool:
    """Fix glibc's mmap threshold (`defaults.MALLOC_MMAP_THRESHOLD_BYTES`); False elsewhere."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # musl and others: no mallopt, nothing to fix
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    ok = bool(mallopt(M_MMAP_THRESHOLD, defaults.MALLOC_MMAP_THRESHOLD_BYTES))
    log.debug("malloc mmap threshold fixed at %d bytes: %s", defaults.MALLOC_MMAP_THRESHOLD_BYTES, ok)
    return ok

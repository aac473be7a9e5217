"""How long the event loop was blocked: a timer's drift, measured inside the server.

Every answer, every keystroke's bookkeeping and `$/cancelRequest` itself wait for the event loop,
so a handler that holds it (a backtracking regex, a scan of a huge document, a C call under the GIL
on the worker thread) freezes the whole server. This probe schedules itself every
`defaults.LAG_PROBE_INTERVAL_S` and records how late each tick ran; a stall of S ms shows as a
drift between S - interval and S. It runs only while the editor is active (for
`defaults.LAG_ACTIVE_S` after the last message), so an idle server does not wake up. Reported in
`starcoder/stats`; a stall over the handler budget is logged (at most once a second).
"""

from __future__ import annotations

import asyncio
import gc
import logging
from typing import Any

from lsp_server import defaults

log = logging.getLogger(__name__)


class LoopLag:
    """The event loop's worst drift since start and since the last `snapshot()`."""

    def __init__(self, interval_s: float = defaults.LAG_PROBE_INTERVAL_S,
                 active_s: float = defaults.LAG_ACTIVE_S,
                 budget_ms: float = defaults.HANDLER_BUDGET_MS) -> None:
        self.interval_s, self.active_s, self.budget_ms = interval_s, active_s, budget_ms
        self.max_ms = 0.0  # since start
        self.recent_ms = 0.0  # since the last snapshot
        self.stalls = 0  # ticks later than the budget
        self._handle: asyncio.TimerHandle | None = None
        self._due = 0.0
        self._last_poke = 0.0
        self._last_what = ""
        self._last_warned = float("-inf")

    def poke(self, what: str = "") -> None:
        """A message arrived (`what`: its method): keep probing for the next `active_s`."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # not on the event loop (in-process use): nothing to measure
            return
        self._last_poke, self._last_what = loop.time(), what or self._last_what
        if self._handle is None:
            self._schedule(loop)

    def _schedule(self, loop: asyncio.AbstractEventLoop) -> None:
        self._due = loop.time() + self.interval_s
        self._handle = loop.call_at(self._due, self._tick, loop)

    def _tick(self, loop: asyncio.AbstractEventLoop) -> None:
        now = loop.time()
        self.record((now - self._due) * 1000.0)
        if now - self._last_poke > self.active_s:
            self._handle = None  # idle: stop waking up until the next message
            return
        self._schedule(loop)

    def record(self, drift_ms: float, now: float | None = None) -> None:
        """Account one tick that ran `drift_ms` late."""
        drift_ms = max(0.0, drift_ms)
        self.max_ms = max(self.max_ms, drift_ms)
        self.recent_ms = max(self.recent_ms, drift_ms)
        if drift_ms <= self.budget_ms:
            return
        self.stalls += 1
        t = self._due if now is None else now
        if t - self._last_warned >= 1.0:
            self._last_warned = t
            log.warning("the event loop was blocked for %.0f ms (last message: %s)", drift_ms,
                        self._last_what or "none")

    def snapshot(self) -> dict[str, Any]:
        """Fields for `starcoder/stats`; `loopLagMs` is the worst drift since the last call."""
        out = {"loopLagMs": round(self.recent_ms, 1), "loopLagMaxMs": round(self.max_ms, 1),
               "loopStalls": self.stalls, "loopProbeMs": round(self.interval_s * 1000.0, 1)}
        self.recent_ms = 0.0
        return out

    def stop(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None


def settle_heap() -> None:
    """Put what is alive once the server is up out of the garbage collector's sight.

    lsprotocol's and cattrs' type machinery, pygls, llama.cpp's bindings: ~70,000 long-lived
    objects that every full collection walked again, a 50-75 ms pause of the event loop every few
    hundred requests (measured by `benchmarks.loop_lag`). Collected first, so no garbage is kept;
    objects made later are collected as usual.
    """
    gc.collect()
    gc.freeze()

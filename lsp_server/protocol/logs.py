"""Forward the server's own log records to the editor (`window/logMessage`).

Users look for "why no suggestion" in the editor's output panel, not in a stderr they never see.
Records come from any thread (the engine's worker too), so they are handed to the event loop;
a record logged while one is being sent is not forwarded again (no feedback loop through pygls).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from typing import Any

from lsprotocol import types

LEVELS = {
    logging.ERROR: types.MessageType.Error,
    logging.WARNING: types.MessageType.Warning,
    logging.INFO: types.MessageType.Info,
}
# INFO and up: loads, status changes, warnings. Debug (one line per keystroke) stays in the log file.
FORWARD_LEVEL = logging.INFO


class LogMessageHandler(logging.Handler):
    """A logging handler that sends each record as a `window/logMessage` notification."""

    def __init__(self, server: Any, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(FORWARD_LEVEL)
        self.server = server
        self.loop = loop
        self._sending = threading.local()
        self.setFormatter(logging.Formatter("%(name)s: %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        if getattr(self._sending, "active", False) or self.loop.is_closed():
            return
        kind = next((t for lvl, t in LEVELS.items() if record.levelno >= lvl), types.MessageType.Log)
        params = types.LogMessageParams(type=kind, message=self.format(record))
        with contextlib.suppress(RuntimeError):  # the loop closed since the check
            self.loop.call_soon_threadsafe(self._send, params)

    def _send(self, params: types.LogMessageParams) -> None:
        self._sending.active = True
        try:
            self.server.window_log_message(params)
        except Exception:
            pass
        finally:
            self._sending.active = False


def forward_logs(server: Any, logger_name: str = "lsp_server") -> LogMessageHandler:
    """Attach (once) a forwarding handler for `server` to our package's logger."""
    logger = logging.getLogger(logger_name)
    for old in [h for h in logger.handlers if isinstance(h, LogMessageHandler)]:
        logger.removeHandler(old)
    handler = LogMessageHandler(server, asyncio.get_running_loop())
    logger.addHandler(handler)
    return handler


def stop_forwarding(server: Any, logger_name: str = "lsp_server") -> None:
    """Detach `server`'s forwarding handler (its client is gone)."""
    logger = logging.getLogger(logger_name)
    for old in [h for h in logger.handlers
                if isinstance(h, LogMessageHandler) and h.server is server]:
        logger.removeHandler(old)

"""Requests that fail for an internal reason: counted, logged once per cause, shown until one works.

An inline completion that fails answers with no items (DESIGN.md: never an error), so without
this the user would only see suggestions stop. Each failure is counted (`starcoder/stats`:
`errors`, `errorsSinceSuccess`, `lastError`), its traceback is logged the first time its cause is
seen in a run of failures, and `starcoder/status` carries `errors` (failures since that kind of
request last worked) and `lastError` (the cause), so the editor shows "errors" instead of "ready"
until the failing kind of request works again. Kinds are counted apart: code actions that work on
every cursor move must not hide completions that fail on every keystroke. The state itself stays
`ready` (the model is fine, the next request may work); `error` is for what the user must fix.
"""

from __future__ import annotations

import logging
from typing import Any

from lsp_server import defaults

log = logging.getLogger(__name__)


class Failures:
    """Internal failures of requests since start, and the current run of them per kind."""

    def __init__(self) -> None:
        self.total = 0
        self.last = ""  # the latest cause, kept after recovery (stats, bug reports)
        self._failing: dict[str, tuple[int, str]] = {}  # kind -> (failures since it worked, cause)
        self._logged: set[str] = set()

    def failed(self, what: str, exc: BaseException) -> None:
        """`what` (an LSP method or command) failed with `exc`: count it, log its cause once."""
        lines = str(exc).strip().splitlines()
        cause = f"{what}: {type(exc).__name__}{': ' + lines[0] if lines else ''}"
        cause = cause[: defaults.FAILURE_CAUSE_CHARS]
        self.total += 1
        self.last = cause
        count, _ = self._failing.pop(what, (0, ""))  # re-inserted: the last entry is the latest
        self._failing[what] = (count + 1, cause)
        if cause in self._logged:
            log.debug("failed again: %s", cause)
            return
        if len(self._logged) >= defaults.FAILURE_CAUSES_LOGGED:
            self._logged.clear()
        self._logged.add(cause)
        log.error("%s failed with an internal error", what, exc_info=exc)

    def succeeded(self, what: str) -> bool:
        """`what` worked; True when that ended a run of failures (the status changes)."""
        run = self._failing.pop(what, None)
        if run is None:
            return False
        self._logged = {c for c in self._logged if not c.startswith(f"{what}: ")}
        return True

    @property
    def streak(self) -> int:
        return sum(n for n, _ in self._failing.values())

    def status_fields(self) -> dict[str, Any]:
        """What `starcoder/status` adds to {state, model, message}."""
        if not self._failing:
            return {"errors": 0, "lastError": ""}
        latest = next(reversed(self._failing.values()))[1]
        return {"errors": self.streak, "lastError": latest}

    def stats(self) -> dict[str, Any]:
        return {"errors": self.total, "errorsSinceSuccess": self.streak,
                "lastError": self.last or None}

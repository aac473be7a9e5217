"""Watching the catalogue files and the loaded model file, so edits take effect without a restart.

watchdog reports file events on its own thread; bursts (an editor's save writes a temp file and
renames it; a copy writes in chunks) are folded into one callback after a quiet period.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from lsp_server import defaults

log = logging.getLogger(__name__)


# inotify reports opening and closing a file without writing it: nothing changed.
_READ_ONLY_EVENTS = frozenset({"opened", "closed_no_write"})


class FileWatcher:
    """Calls `on_change()` on the event loop after files of interest changed and settled."""

    def __init__(self, loop: asyncio.AbstractEventLoop, on_change: Callable[[], None],
                 debounce_s: float = defaults.WATCH_DEBOUNCE_S) -> None:
        self._loop = loop
        self._on_change = on_change
        self._debounce = debounce_s
        self._files: set[Path] = set()
        self._observer: Any = None
        self._timer: asyncio.TimerHandle | None = None

    def watch(self, files: Iterable[Path]) -> None:
        """Watch exactly `files` (their folders are observed; other files there are ignored)."""
        files = {Path(f).expanduser().resolve() for f in files}
        if files == self._files and self._observer is not None:
            return
        self.stop()
        self._files = files
        from watchdog.events import FileSystemEventHandler
        from watchdog.observers import Observer

        watcher = self

        class Handler(FileSystemEventHandler):
            def on_any_event(self, event: Any) -> None:
                if event.event_type in _READ_ONLY_EVENTS:
                    return  # our own reads of the file (a reload) must not trigger another one
                paths = {Path(str(event.src_path))}
                if getattr(event, "dest_path", None):
                    paths.add(Path(str(event.dest_path)))
                if any(p.resolve() in watcher._files for p in paths):
                    with contextlib.suppress(RuntimeError):  # the loop is gone: nobody to tell
                        watcher._loop.call_soon_threadsafe(watcher._poke)

        observer = Observer()
        handler = Handler()
        for folder in {f.parent for f in files if f.parent.is_dir()}:
            observer.schedule(handler, str(folder), recursive=False)
        observer.daemon = True
        observer.start()
        self._observer = observer
        log.debug("watching %s", sorted(str(f) for f in files))

    def _poke(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = self._loop.call_later(self._debounce, self._fire)

    def _fire(self) -> None:
        self._timer = None
        self._on_change()

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._observer is not None:
            self._observer.stop()
            self._observer = None

"""The one thread that owns the llama.cpp context, and the "latest request wins" policy.

A llama.cpp context is not thread-safe, so every model call runs as a job on one worker thread.
Completion jobs carry a cancel flag: submitting a newer completion sets the flag of the older one,
which then stops at its next token or prompt chunk (or is skipped before it starts), so requests
never queue up behind each other while the user types.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from lsp_server.engine.generate import Cancelled
from lsp_server.engine.model import LoadedModel, ModelError

log = logging.getLogger(__name__)
T = TypeVar("T")


class CancelFlag(threading.Event):
    """A cancel flag that also runs callbacks when set: a job blocked in a socket read (a remote
    engine's stream) cannot poll the flag, so it registers a callback that closes the socket."""

    def __init__(self) -> None:
        super().__init__()
        self._callbacks: list[Callable[[], None]] = []
        self._cb_lock = threading.Lock()

    def on_set(self, fn: Callable[[], None]) -> Callable[[], None]:
        """Run `fn` when the flag is set (at once if it already is); returns an unregister."""
        with self._cb_lock:
            if not self.is_set():
                self._callbacks.append(fn)
                return lambda: self._remove(fn)
        fn()
        return lambda: None

    def _remove(self, fn: Callable[[], None]) -> None:
        with self._cb_lock:
            if fn in self._callbacks:
                self._callbacks.remove(fn)

    def set(self) -> None:
        with self._cb_lock:
            super().set()
            callbacks, self._callbacks = self._callbacks, []
        for fn in callbacks:
            try:
                fn()
            except Exception:
                log.debug("cancel callback failed", exc_info=True)


class Worker:
    """Runs jobs against the loaded model on a single thread (or, for a remote engine, on
    `threads` threads: the jobs then only wait on HTTP, and the pool size is the request limit)."""

    def __init__(self, threads: int = 1, name: str = "llama") -> None:
        self._pool = concurrent.futures.ThreadPoolExecutor(threads, thread_name_prefix=name)
        self.model: LoadedModel | None = None  # touched only on the worker thread
        self._lock = threading.Lock()
        # lane -> cancel flag and future of its newest job
        self._latest: dict[str, tuple[threading.Event, concurrent.futures.Future[Any]]] = {}
        self._all: set[threading.Event] = set()

    def submit(
        self, fn: Callable[[LoadedModel | None, threading.Event], T], lane: str | None = None
    ) -> tuple[concurrent.futures.Future[T], threading.Event]:
        """Queue `fn(model, cancel)`. A job in a `lane` cancels the previous job of that lane: a
        running one stops at its next token, a queued one never starts and its awaiter answers at
        once (`Cancelled`), letting go of its request (a burst of keystrokes behind a long
        generation otherwise kept every superseded request's document text alive)."""
        cancel = CancelFlag()

        def run() -> T:
            try:
                if cancel.is_set():
                    raise Cancelled
                return fn(self.model, cancel)
            except (Cancelled, ModelError):
                raise  # the cache is consistent after these
            except Exception:
                # llama.cpp failed mid-job (a decode error, an exception we did not expect): the
                # KV cache may not match our bookkeeping, so forget it; the next job starts clean.
                if self.model is not None:
                    log.warning("a model job failed: resetting the KV cache")
                    with contextlib.suppress(Exception):
                        self.model.reset_cache()
                raise

        def done(_: concurrent.futures.Future[T]) -> None:  # also when cancelled before starting
            with self._lock:
                self._all.discard(cancel)
                if lane is not None and self._latest.get(lane, (None,))[0] is cancel:
                    del self._latest[lane]

        old = None
        with self._lock:
            fut = self._pool.submit(run)
            if lane is not None:
                old = self._latest.get(lane)
                self._latest[lane] = (cancel, fut)
            self._all.add(cancel)
        fut.add_done_callback(done)
        if old is not None:  # outside the lock: cancel() runs `done` at once
            old[0].set()
            old[1].cancel()  # False (harmless) once it has started
        return fut, cancel

    async def run(self, fn: Callable[[LoadedModel | None, threading.Event], T],
                  lane: str | None = None) -> T:
        """`submit` and await the result; a cancelled awaiter ($/cancelRequest, a superseded
        task) sets the job's flag, so the job stops at its next token or closes its stream.
        A job superseded before it started raises `Cancelled`, as one stopped while running."""
        fut, cancel = self.submit(fn, lane)
        try:
            return await asyncio.wrap_future(fut)
        except asyncio.CancelledError:
            cancel.set()
            task = asyncio.current_task()
            if fut.cancelled() and (task is None or not task.cancelling()):
                raise Cancelled from None  # superseded in its lane, not our awaiter cancelled
            raise

    def set_model(self, model: LoadedModel | None) -> None:
        """Swap the model (call on the worker thread); the old one is freed."""
        old, self.model = self.model, model
        if old is not None and old is not model:
            old.close()

    def cancel_all(self) -> None:
        with self._lock:
            for ev in self._all:
                ev.set()

    def shutdown(self) -> None:
        """Stop promptly: running generations stop at their next token, queued jobs are dropped."""
        self.cancel_all()
        self._pool.shutdown(wait=False, cancel_futures=True)

"""The engine in this process: a loaded llama.cpp model, driven by the one worker thread that owns
its context (llama.cpp is not thread-safe). Slots keep separate KV sequences, so a quick window, the
full window and a long explanation do not evict each other's cache."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import Any, TypeVar

from lsp_server import defaults
from lsp_server.engine.base import ChatTemplate, DecodeGuard, FimInput, Generation, Job
from lsp_server.engine.generate import Cancelled, cost, generate, prepare
from lsp_server.engine.model import LoadedModel, ModelError
from lsp_server.engine.worker import Worker

log = logging.getLogger(__name__)
T = TypeVar("T")


class LocalEngine:
    """`Engine` over a `LoadedModel`; every job runs on `worker`, which owns the model."""

    def __init__(self, model: LoadedModel, worker: Worker, name: str, family: Any) -> None:
        self.model = model
        self.worker = worker
        self.name = name
        self.family = family
        self.n_ctx = model.n_ctx
        self.fim = model.fim
        self.chat = (ChatTemplate(model.chat_template, model.bos_text, model.eos_text)
                     if model.chat_template else None)
        self.speculates = True
        self.tokenize = model.tokenize
        self.tokenize_special = model.tokenize_special
        self.count = model.count
        self.measure = model.measure

    @property
    def description(self) -> str:
        return f"{self.name} ({self.family.name})"

    def has_token(self, text: str) -> bool:
        return len(self.model.tokenize_special(text)) == 1

    def detokenize(self, ids: Sequence[Any]) -> str:
        return b"".join(self.model.pieces[t] for t in ids).decode("utf-8", "replace")

    def _slot(self, name: str) -> Any:
        return self.model.quick if name == "quick" else self.model.main

    def cost(self, ids: Sequence[Any], slot: str) -> int:
        return cost(self.model, self._slot(slot), ids)

    def _bound(self, job: Job[T]) -> Callable[[LoadedModel | None, threading.Event], T]:
        """`job` if this engine's model is still the worker's when it starts: a job queued behind
        a load or an unload must not touch the freed model."""

        def run(model: LoadedModel | None, cancel: threading.Event) -> T:
            if model is not self.model:
                raise Cancelled
            return job(cancel)

        return run

    def submit(self, job: Job[T], lane: str | None = None
               ) -> tuple[Future[T], threading.Event]:
        return self.worker.submit(self._bound(job), lane)

    async def run(self, job: Job[T], lane: str | None = None) -> T:
        return await self.worker.run(self._bound(job), lane)

    def complete(self, prompt: FimInput, *, slot: str, max_tokens: int, temperature: float,
                 guard: DecodeGuard, cancel: threading.Event, fresh: bool = False) -> Generation:
        if fresh:
            self.model.kv.clear(self.model.main)
        return generate(self.model, prompt.ids, slot=self._slot(slot),
                        max_tokens=max_tokens, temperature=temperature, guard=guard,
                        cancel=cancel, reuse_suffix=self.family.keep_suffix and not fresh)

    def warm(self, ids: Sequence[Any], cancel: threading.Event) -> int:
        """Repair kept (approximate) cells, then bring the full window to `ids` exactly, in small
        abandonable chunks."""
        model = self.model
        done = model.kv.refresh(model.main, cancel, defaults.REFRESH_CHUNK_TOKENS)
        n, _ = prepare(model, model.main, ids, cancel, reuse_suffix=False,
                       chunk=defaults.REFRESH_CHUNK_TOKENS)
        return done + n

    async def generate_text(self, ids: Sequence[Any], *, max_tokens: int, stops: Sequence[str],
                            should_stop: Callable[[str], bool],
                            on_text: Callable[[str], None] | None,
                            cancel: threading.Event) -> Generation:
        """Decoded in slices on the worker, in a KV sequence of its own: completions that arrive
        meanwhile run between two slices, and the text resumes from its cache."""
        prompt = list(ids)
        generated: list[int] = []
        text, first, reason, evaluated = "", None, "max_tokens", 0
        while len(generated) < max_tokens:
            step_ids = prompt + generated

            def step(_model: LoadedModel | None, c: threading.Event,
                     step_ids: list[int] = step_ids) -> Generation:
                if self.worker.model is not self.model:
                    raise ModelError("the model was unloaded")
                return generate(self.model, step_ids, slot=self.model.explain,
                                max_tokens=defaults.EXPLAIN_SLICE_TOKENS,
                                cancel=c, reuse_suffix=False)

            gen = await self.worker.run(step)
            first = gen if first is None else first
            evaluated += gen.evaluated
            generated += gen.tokens
            text = self.detokenize(generated)
            if on_text is not None:
                on_text(text)
            if gen.stop_reason == "eos" or not gen.tokens:
                reason = "eos"
                break
            if any(s in text for s in stops) or should_stop(text):
                reason = "stop"
                break
            if cancel.is_set():
                raise Cancelled
        if cancel.is_set():  # set during the last slice: the caller asked for nothing
            raise Cancelled
        return Generation(text=text, stop_reason=reason, prompt_tokens=len(prompt),
                          evaluated=evaluated, generated=len(generated),
                          prompt_ms=first.prompt_ms if first else 0.0,
                          generate_ms=0.0, tokens=generated)

    def stats(self) -> dict[str, Any]:
        return {"evaluated": self.model.kv.evaluated_total}

    def close(self) -> None:
        """Stop its jobs; the weights are freed by the worker when the next model is set."""

    async def free(self) -> None:
        """Free the weights now, on the worker (idle unload, a session's end, a remote switch)."""
        fut, _ = self.worker.submit(lambda model, cancel: self.worker.set_model(None))
        await asyncio.wrap_future(fut)

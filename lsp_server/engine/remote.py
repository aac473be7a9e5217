"""Generation on a remote engine over streamed HTTP: llama.cpp's `llama-server`, or any
OpenAI-compatible `/v1/completions` (vLLM, TGI, Ollama, llama-cpp-python's own server).

Only generation moves: the windows, the FIM layout, the stop rules and post-processing stay in this
process and are the same as for the local engine (`RemoteEngine` is an `Engine` whose "tokens" are
text pieces). The transport is `engine.http`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from lsp_server import defaults
from lsp_server.engine.base import ChatTemplate, DecodeGuard, FimInput, Generation, Job
from lsp_server.engine.generate import Cancelled
from lsp_server.engine.http import (  # noqa: F401  (re-exported: the remote engine's public names)
    LLAMA_SERVER,
    OPENAI,
    Limits,
    RemoteClient,
    RemoteError,
    api_root,
    backoff_delays,
    join_url,
    parse_sse,
    server_root,
)
from lsp_server.engine.worker import CancelFlag, Worker
from lsp_server.prompt.fim import FimIds

if TYPE_CHECKING:
    from lsp_server.models.spec import Family

log = logging.getLogger(__name__)
T = TypeVar("T")

# OpenAI-style APIs (TGI validates it) accept at most this many stop strings; we cut the rest
# ourselves, and the engine stops at end-of-text anyway.
MAX_STOP_STRINGS = 4



def cut_at_stop(text: str, stops: Sequence[str]) -> tuple[str, bool]:
    """`text` up to the first stop string, and whether one was found."""
    cut = min((i for i in (text.find(s) for s in stops if s) if i != -1), default=-1)
    return (text[:cut], True) if cut != -1 else (text, False)


def neutralize(text: str, markers: Iterable[str]) -> str:
    """User text with control-marker strings broken (a zero-width space after the first
    character): a text prompt is parsed for special tokens by the engine, so a file containing
    `<fim_middle>` must not inject the marker."""
    for m in markers:
        if m and m in text:
            text = text.replace(m, m[0] + "\u200b" + m[1:])
    return text


def fim_strings(family: Family) -> FimIds[str]:
    """The family's FIM markers as text pieces, for prompts sent as text."""
    return FimIds(
        family.fim_prefix, family.fim_suffix, family.fim_middle, family.fim_pad, family.repo_name,
        family.file_sep, family.filename, frozenset(family.stop),
        tuple(s for s in family.stop[:1] if s),  # the end-of-text string that separates documents
    )


def openai_body(model: str | None, prompt: str, max_tokens: int, temperature: float,
                stop: Sequence[str]) -> dict[str, Any]:
    # repeat_penalty: llama-cpp-python's server defaults to 1.1, which penalizes reusing the
    # identifiers of the context (what code completion is about); other engines ignore the field.
    body: dict[str, Any] = {"prompt": prompt, "max_tokens": max_tokens,
                            "temperature": temperature, "stream": True, "repeat_penalty": 1.0}
    if model:
        body["model"] = model
    if stop:
        body["stop"] = list(stop[:MAX_STOP_STRINGS])
    return body


def infill_body(prefix: str, suffix: str, extra: Sequence[tuple[str, str]], max_tokens: int,
                temperature: float, stop: Sequence[str]) -> dict[str, Any]:
    """llama-server `/infill`: it lays out the FIM prompt itself from the model's own FIM tokens,
    with the other files as repo-level context (`input_extra`), and keeps the slot's KV cache
    (`cache_prompt`)."""
    return {
        "input_prefix": prefix, "input_suffix": suffix, "prompt": "",
        "input_extra": [{"filename": path, "text": text} for path, text in extra],
        "n_predict": max_tokens, "temperature": temperature, "stream": True,
        "cache_prompt": True, "id_slot": defaults.LLAMA_SERVER_SLOT, "stop": list(stop),
    }


def completion_body(prompt: str, max_tokens: int, temperature: float,
                    stop: Sequence[str]) -> dict[str, Any]:
    """llama-server `/completion` with our own prompt text (explanations; FIM when /infill is
    missing)."""
    return {"prompt": prompt, "n_predict": max_tokens, "temperature": temperature,
            "stream": True, "cache_prompt": True, "id_slot": defaults.LLAMA_SERVER_SLOT, "stop": list(stop)}


def event_text(event: dict[str, Any]) -> tuple[str, bool]:
    """(text, finished) of one streamed event of either flavour."""
    if "choices" in event:  # OpenAI
        choices = event.get("choices") or [{}]
        first = choices[0] if isinstance(choices[0], dict) else {}
        return str(first.get("text") or ""), first.get("finish_reason") is not None
    if "error" in event:
        err = event["error"]
        detail = err.get("message", err) if isinstance(err, dict) else err
        raise RemoteError(f"the engine reported an error: {detail}")
    return str(event.get("content") or ""), bool(event.get("stop"))


def _finish_reason(event: dict[str, Any]) -> str:
    """OpenAI `finish_reason` or llama-server `stop_type` of a final event."""
    choices = event.get("choices")
    if isinstance(choices, list) and choices and isinstance(choices[0], dict):
        return str(choices[0].get("finish_reason") or "")
    return str(event.get("stop_type") or "")


# --- token counting -------------------------------------------------------------------------------
@dataclass
class Vocab:
    """The model's own tokenizer, loaded vocab-only (no weights): exact budgets, no round trip."""

    weights: Any
    chat_template: str | None = None
    bos_text: str = ""
    eos_text: str = ""

    def count(self, text: str) -> int:
        from lsp_server.engine.model import tokenize

        return len(tokenize(self.weights.vocab, text, special=False)) if text else 0

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.weights.close()


def load_vocab(path: Path) -> Vocab:
    """Read only the GGUF's vocabulary and chat template (milliseconds to ~1 s, a few MB)."""
    import llama_cpp
    from llama_cpp import _internals, _logger

    from lsp_server.engine.model import pieces_text

    _logger.set_verbose(False)
    params = llama_cpp.llama_model_default_params()
    params.vocab_only = True
    weights = _internals.LlamaModel(path_model=str(path), params=params, verbose=False)
    vocab = Vocab(weights)
    template = llama_cpp.llama_model_chat_template(weights.model, None)
    if template:
        vocab.chat_template = template.decode("utf-8", "replace")
        vocab.bos_text = pieces_text(weights.vocab, llama_cpp.llama_vocab_bos(weights.vocab))
        vocab.eos_text = pieces_text(weights.vocab, llama_cpp.llama_vocab_eos(weights.vocab))
    return vocab


# A mixed sample of code and prose: the server's tokenizer on it calibrates the estimate.
_CALIBRATION_TEXT = '''def fibonacci(n: int) -> int:
    """Return the n-th Fibonacci number."""
    if n < 2:
        return n
    return fibonacci(n - 1) + fibonacci(n - 2)


class Cache(dict):
    def __missing__(self, key):
        value = self[key] = compute(key)  # computed once
        return value
'''


def server_tokens(client: RemoteClient, model_id: str | None, text: str) -> int | None:
    """Tokens of `text` by the engine's own tokenizer, or None if it has no tokenize route
    (llama-server: /tokenize; vLLM: /tokenize; llama-cpp-python: /extras/tokenize)."""
    root = server_root(client.root)
    tries: list[tuple[str, dict[str, Any]]] = [
        ("/tokenize", {"content": text, "prompt": text, "add_special": False,
                       **({"model": model_id} if model_id else {})}),
        ("/extras/tokenize", {"input": text, **({"model": model_id} if model_id else {})}),
    ]
    for route, body in tries:
        try:
            answer = client.get_json(route, body, root=root, retries=False)
        except RemoteError:
            continue
        if isinstance(answer, dict):
            if isinstance(answer.get("tokens"), list):
                return len(answer["tokens"])
            if isinstance(answer.get("count"), int):
                return int(answer["count"])
    return None


# --- the remote "model" the prompt pipeline sees ------------------------------------------------------
@dataclass(eq=False)
class RemoteEngine:
    """`Engine` whose prompts are text pieces (`fim`, `tokenize`, `measure` work on strings) and
    whose generation streams over HTTP; its jobs wait on HTTP on a small pool of threads (the
    pool size is the concurrency limit)."""

    client: RemoteClient
    family: Family
    n_ctx: int
    model_id: str | None = None  # the engine's name for the model (OpenAI `model` field)
    vocab: Vocab | None = None
    name: str = ""
    chars_per_token: float = defaults.CHARS_PER_TOKEN_ESTIMATE
    counting: str = "estimate"  # "vocabulary" | "server tokenizer" | "estimate" (for the status)
    fim: FimIds[str] = field(init=False)
    chat: ChatTemplate | None = field(init=False)
    infill_missing: bool = False  # llama-server without /infill: use /completion with our prompt
    speculates: bool = False  # see `Engine`: prefetch only once a suggestion is accepted
    calibrated: bool = False

    def __post_init__(self) -> None:
        self.fim = fim_strings(self.family)
        self._markers = tuple(sorted({*self.family.fim_markers, *self.family.optional_markers,
                                      *self.family.stop, "<|im_start|>", "<|im_end|>"} - {""}))
        v = self.vocab
        self.chat = ChatTemplate(v.chat_template, v.bos_text, v.eos_text) \
            if v is not None and v.chat_template else None
        self.name = self.name or self.model_id or ""
        self.pool = Worker(defaults.REMOTE_CONCURRENCY, name="remote")

    @property
    def description(self) -> str:
        return (f"{self.name} ({self.family.name}) on {self.client.root}; "
                f"budgets by {self.counting}")

    # --- the prompt pipeline's model interface ---
    def tokenize(self, text: str) -> list[str]:
        """User text as one piece, with control markers neutralized (it is sent as text)."""
        return [neutralize(text, self._markers)] if text else []

    def tokenize_special(self, text: str) -> list[str]:
        """Our own template text, sent as is (the engine parses its markers)."""
        return [text] if text else []

    def detokenize(self, ids: Sequence[Any]) -> str:
        return "".join(ids)

    def has_token(self, text: str) -> bool:
        """From the vocabulary when the GGUF is here; else only the StarCoder family's markers
        are assumed (its vocabularies all have them)."""
        if self.vocab is not None:
            from lsp_server.engine.model import tokenize

            return len(tokenize(self.vocab.weights.vocab, text, special=True)) == 1
        return self.family.name.startswith("starcoder")

    def count(self, text: str) -> int:
        if not text:
            return 0
        if self.vocab is not None:
            return self.vocab.count(text)
        return math.ceil(len(text) / self.chars_per_token)

    def measure(self, ids: Sequence[Any]) -> int:
        """Tokens of a text-piece prompt: one per marker, counted text for the rest."""
        markers = {self.fim.prefix, self.fim.suffix, self.fim.middle, self.fim.repo_name,
                   self.fim.file_sep, self.fim.filename, *self.fim.document_end}
        return sum(1 if p in markers else self.count(p) for p in ids)

    def cost(self, ids: Sequence[Any], slot: str) -> int:
        return 0  # the engine's cache is not ours to see: always the full window

    def warm(self, ids: Sequence[Any], cancel: threading.Event) -> int:
        return 0  # llama-server keeps its own slot cache (`cache_prompt`)

    def submit(self, job: Job[T], lane: str | None = None
               ) -> tuple[Future[T], threading.Event]:
        return self.pool.submit(lambda _model, cancel: job(cancel), lane)

    async def run(self, job: Job[T], lane: str | None = None) -> T:
        return await self.pool.run(lambda _model, cancel: job(cancel), lane)

    def stats(self) -> dict[str, Any]:
        return {"evaluated": 0}

    def close(self) -> None:
        self.pool.cancel_all()
        self.pool.shutdown()
        if self.vocab is not None:
            self.vocab.close()

    # --- engine ---
    def probe(self) -> None:
        """Check the engine answers (and learn its model name); raise RemoteError if not."""
        if self.client.flavour == LLAMA_SERVER:
            self.client.get_json("/health", retries=False)
            return
        answer = self.client.get_json("models", retries=False)
        models = answer.get("data") if isinstance(answer, dict) else None
        ids = [m.get("id") for m in models or [] if isinstance(m, dict)]
        ids = [i for i in ids if isinstance(i, str)]
        if ids and self.model_id not in ids:
            self.model_id = ids[0]

    def calibrate(self) -> None:
        """Without the vocabulary, learn chars/token from the server's tokenizer (one request)."""
        self.calibrated = True
        if self.vocab is not None:
            self.counting = "vocabulary"
            return
        n = server_tokens(self.client, self.model_id, _CALIBRATION_TEXT)
        if n:
            self.chars_per_token = len(_CALIBRATION_TEXT) / n * 0.9  # 10 % margin: per-line text varies
            self.counting = "server tokenizer"
        else:
            self.counting = "estimate"

    def stream_text(self, route: str, body: dict[str, Any], cancel: threading.Event | None, *,
                    stops: Sequence[str], guard: DecodeGuard | None = None,
                    on_text: Callable[[str], None] | None = None) -> Generation:
        """Stream one generation; stop (closing the stream) as soon as the text is complete."""
        guard = guard or DecodeGuard()
        t0 = time.perf_counter()
        text, reason, pieces, first = "", "max_tokens", 0, None
        events = self.client.stream(route, body, cancel)
        try:
            for event in events:
                piece, finished = event_text(event)
                if first is None:
                    first = time.perf_counter()
                if piece:
                    pieces += 1
                    text += piece
                    if len(text) > defaults.REMOTE_MAX_TEXT_CHARS:
                        text, reason = text[: defaults.REMOTE_MAX_TEXT_CHARS], "max_tokens"
                        break
                    text, hit = cut_at_stop(text, stops)
                    if hit:
                        reason = "eos"
                        break
                    if on_text is not None:
                        on_text(text)
                    # The budget runs from the first token: the engine's queue and prompt
                    # evaluation are not time spent producing lines the user may not want.
                    stop = guard.check(text, piece, time.perf_counter() - (first or t0))
                    if stop is not None:
                        reason = stop
                        break
                if finished:
                    reason = "max_tokens" if _finish_reason(event) in ("length", "limit") else "eos"
                    break
        finally:
            events.close()  # closes the HTTP stream: the engine stops generating
        t1 = time.perf_counter()
        return Generation(text=text, stop_reason=reason, prompt_tokens=0, evaluated=0,
                          generated=pieces, prompt_ms=((first or t1) - t0) * 1000,
                          generate_ms=(t1 - (first or t1)) * 1000)

    def complete(self, prompt: FimInput, *, slot: str, max_tokens: int, temperature: float,
                 guard: DecodeGuard, cancel: threading.Event, fresh: bool = False) -> Generation:
        """A FIM completion: our text prompt (openai, llama-server /completion) or llama-server's
        /infill from the window's prefix and suffix and the cross-file snippets."""
        stops = [s for s in self.family.stop if s]
        text_prompt = "".join(prompt.ids)
        if self.client.flavour == OPENAI:
            body = openai_body(self.model_id, text_prompt, max_tokens, temperature, stops)
            return self.stream_text("completions", body, cancel, stops=stops, guard=guard)
        if not self.infill_missing:
            try:
                body = infill_body(self.tokenize(prompt.prefix)[0] if prompt.prefix else "",
                                   self.tokenize(prompt.suffix)[0] if prompt.suffix else "",
                                   [(p, self.tokenize(t)[0] if t else "") for p, t in prompt.extra],
                                   max_tokens, temperature, stops)
                # /infill saw the whole prefix (no healing): present the text as if the healed
                # characters had been regenerated, as the pipeline expects.
                unhealed = DecodeGuard(should_stop=guard.should_stop,
                                       time_budget_s=guard.time_budget_s)
                gen = self.stream_text("/infill", body, cancel, stops=stops, guard=unhealed)
                gen.text = guard.heal + gen.text
                return gen
            except RemoteError as exc:
                if not any(f"HTTP {c}" in str(exc) for c in (404, 501)):
                    raise
                log.warning("%s; using /completion with our own FIM prompt instead", exc)
                self.infill_missing = True
        body = completion_body(text_prompt, max_tokens, temperature, stops)
        return self.stream_text("/completion", body, cancel, stops=stops, guard=guard)

    async def generate_text(self, ids: Sequence[Any], *, max_tokens: int, stops: Sequence[str],
                            should_stop: Callable[[str], bool],
                            on_text: Callable[[str], None] | None,
                            cancel: threading.Event) -> Generation:
        """Free text from a text prompt, greedy, streamed (the engine cuts at `stops` too)."""
        prompt = "".join(ids)
        if self.client.flavour == OPENAI:
            body = openai_body(self.model_id, prompt, max_tokens, 0.0, stops)
            route = "completions"
        else:
            body, route = completion_body(prompt, max_tokens, 0.0, stops), "/completion"
        loop = asyncio.get_running_loop()

        def job(c: threading.Event) -> Generation:
            # The user's cancel (progress UI) closes the stream at once, even before the first
            # piece (llama-server sends its headers only with the first token).
            unlink = cancel.on_set(c.set) if isinstance(cancel, CancelFlag) else None

            def stream(text: str) -> None:  # on this thread, per streamed piece
                if cancel.is_set():
                    c.set()
                if on_text is not None:
                    loop.call_soon_threadsafe(on_text, text)

            try:
                return self.stream_text(route, body, c, stops=(),
                                        guard=DecodeGuard(should_stop=should_stop), on_text=stream)
            finally:
                if unlink is not None:
                    unlink()

        gen = await self.run(job)
        if cancel.is_set():
            raise Cancelled
        return gen

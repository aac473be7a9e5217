"""Prompt evaluation with KV-prefix reuse, and a greedy/sampled decode loop we control.

Why not `Llama.generate`: its prompt evaluation cannot be abandoned between chunks, it cannot
constrain the first tokens (token healing), and its sampler is rebuilt per call. The loop here is
small: reuse the longest common token prefix of the KV cache, evaluate the rest in `n_batch`
chunks checking the cancel flag between them, then pick tokens from the last logits.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from lsp_server.engine.model import LoadedModel


class Cancelled(Exception):
    """The request was superseded or cancelled; the KV cache stays consistent for the next one."""


@dataclass
class Generation:
    text: str
    stop_reason: str  # "eos" | "max_tokens" | "stop" | "cancelled" | "time"
    prompt_tokens: int
    evaluated: int  # prompt tokens actually run through the model (the rest came from the cache)
    generated: int
    prompt_ms: float
    generate_ms: float


def common_prefix(a: list[int], b: list[int]) -> int:
    n = min(len(a), len(b))
    i = 0
    # Compare in blocks first: prompts are thousands of tokens and mostly equal.
    block = 256
    while i + block <= n and a[i : i + block] == b[i : i + block]:
        i += block
    while i < n and a[i] == b[i]:
        i += 1
    return i


def cached_tokens(model: LoadedModel) -> list[int]:
    llm = model.llm
    return [int(t) for t in llm.input_ids[: llm.n_tokens]]


def evaluate(model: LoadedModel, ids: list[int], cancel: threading.Event | None) -> int:
    """Make the KV cache hold exactly `ids` with fresh logits; return how many tokens were run."""
    llm = model.llm
    if len(ids) > model.n_ctx:
        raise ValueError(f"prompt of {len(ids)} tokens exceeds the context of {model.n_ctx}")
    keep = common_prefix(cached_tokens(model), ids)
    if keep == len(ids):
        keep -= 1  # re-run the last token: logits are only kept for the latest decode
    keep = max(0, keep)
    llm.n_tokens = keep
    llm._ctx.kv_cache_seq_rm(-1, keep, -1)
    todo = ids[keep:]
    step = llm.n_batch
    for i in range(0, len(todo), step):
        if cancel is not None and cancel.is_set():
            raise Cancelled
        llm.eval(todo[i : i + step])
    return len(todo)


def _logits(model: LoadedModel) -> np.ndarray:
    llm = model.llm
    ptr = llm._ctx.get_logits_ith(-1)
    return np.ctypeslib.as_array(ptr, shape=(llm.n_vocab(),))


def _pick(logits: np.ndarray, temperature: float, rng: np.random.Generator,
          allowed: list[int] | None) -> int:
    if allowed is not None:
        sub = logits[allowed]
        if temperature <= 0:
            return allowed[int(np.argmax(sub))]
        p = np.exp((sub - sub.max()) / temperature)
        return allowed[int(rng.choice(len(allowed), p=p / p.sum()))]
    if temperature <= 0:
        return int(np.argmax(logits))
    top = np.argpartition(logits, -40)[-40:]  # top-k 40: the tail is noise for code
    sub = logits[top]
    p = np.exp((sub - sub.max()) / temperature)
    return int(top[int(rng.choice(len(top), p=p / p.sum()))])


def _healing_candidates(model: LoadedModel, need: bytes) -> list[int]:
    """Tokens consistent with the bytes the output must start with."""
    return [
        t for t in model.tokens_starting_with(need[0])
        if model.pieces[t].startswith(need) or need.startswith(model.pieces[t])
    ]


def generate(
    model: LoadedModel,
    ids: list[int],
    *,
    max_tokens: int,
    temperature: float = 0.0,
    heal: str = "",
    should_stop: Callable[[str], bool] | None = None,
    cancel: threading.Event | None = None,
    time_budget_s: float | None = None,
    seed: int = 0,
) -> Generation:
    """Evaluate `ids` and decode. The returned text starts with `heal` when healing applied.

    `should_stop(text)` is asked after each token (e.g. "the line is finished"); `time_budget_s`
    stops at the next newline once exceeded so a slow request still returns whole lines.
    """
    t0 = time.perf_counter()
    ids = list(ids)
    if model.add_bos is not None and (not ids or ids[0] != model.add_bos):
        ids.insert(0, model.add_bos)
    room = model.n_ctx - len(ids)
    max_tokens = max(0, min(max_tokens, room))
    evaluated = evaluate(model, ids, cancel)
    t1 = time.perf_counter()
    rng = np.random.default_rng(seed)
    need = heal.encode("utf-8")
    out = bytearray()
    generated = 0
    reason = "max_tokens"
    while generated < max_tokens:
        if cancel is not None and cancel.is_set():
            reason = "cancelled"
            break
        allowed = None
        if len(out) < len(need):
            allowed = _healing_candidates(model, need[len(out) :])
            if not allowed:
                allowed = None
                need = bytes(out)  # nothing fits: give up healing rather than force garbage
        tok = _pick(_logits(model), temperature, rng, allowed)
        if tok in model.fim.stop:
            reason = "eos"
            break
        out += model.pieces[tok]
        generated += 1
        text = out.decode("utf-8", "ignore")
        if should_stop is not None and len(out) >= len(need) and should_stop(text[len(heal):]):
            reason = "stop"
            break
        if (time_budget_s is not None and time.perf_counter() - t0 > time_budget_s
                and "\n" in text[len(heal):]):
            reason = "time"
            break
        if generated < max_tokens:
            model.llm.eval([tok])
    t2 = time.perf_counter()
    text = out.decode("utf-8", "replace")
    if reason == "cancelled":
        raise Cancelled
    return Generation(
        text=text, stop_reason=reason, prompt_tokens=len(ids), evaluated=evaluated,
        generated=generated, prompt_ms=(t1 - t0) * 1000, generate_ms=(t2 - t1) * 1000,
    )

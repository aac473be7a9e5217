"""Prompt evaluation with KV reuse, and a greedy/sampled decode loop we control.

Why not `Llama.generate`: its prompt evaluation cannot be abandoned between chunks, it cannot keep
the suffix's cache across an edit, it cannot constrain the first tokens (token healing), and its
sampler is rebuilt per call. The loop here: bring the slot's KV cache to the prompt (see
`engine.kv`), then pick tokens from the last logits until a stop.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence

import numpy as np

from lsp_server import defaults
from lsp_server.engine.base import DecodeGuard, Generation
from lsp_server.engine.kv import Cancelled, Plan, Slot, plan_sync
from lsp_server.engine.model import LoadedModel

__all__ = ["Cancelled", "Generation", "cost", "generate", "prepare"]

NO_GUARD = DecodeGuard()


def _with_bos(model: LoadedModel, ids: Sequence[int]) -> list[int]:
    if model.add_bos is not None and (not ids or ids[0] != model.add_bos):
        return [model.add_bos, *ids]
    return list(ids)


def _plan(model: LoadedModel, slot: Slot, ids: list[int], reuse_suffix: bool) -> Plan:
    return plan_sync(slot, ids, can_shift=model.kv.can_shift and reuse_suffix,
                     fresh_head=defaults.FRESH_HEAD_TOKENS, min_reuse=defaults.MIN_REUSE_TOKENS,
                     max_stale=defaults.MAX_STALE_TOKENS)


def cost(model: LoadedModel, slot: Slot, ids: Sequence[int], reuse_suffix: bool = True) -> int:
    """Tokens the model would have to evaluate to answer `ids` from `slot`."""
    return _plan(model, slot, _with_bos(model, ids), reuse_suffix).cost


def prepare(model: LoadedModel, slot: Slot, ids: Sequence[int], cancel: threading.Event | None,
            reuse_suffix: bool = True, chunk: int | None = None) -> tuple[int, bool]:
    """Bring `slot` to hold `ids` (no generation): warming the cache while the user pauses."""
    ids = _with_bos(model, ids)
    plan = _plan(model, slot, ids, reuse_suffix)
    return model.kv.sync(slot, ids, plan, cancel, chunk), plan.surgery


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
    ids: Sequence[int],
    *,
    max_tokens: int,
    slot: Slot | None = None,
    temperature: float = 0.0,
    guard: DecodeGuard = NO_GUARD,
    cancel: threading.Event | None = None,
    reuse_suffix: bool = True,
    seed: int = 0,
) -> Generation:
    """Evaluate `ids` in `slot` (default: the main window) and decode until `guard` stops it.

    The returned text starts with `guard.heal` when healing applied (the first tokens are
    constrained to it). Raises `Cancelled` when `cancel` is set before the prompt is evaluated or
    while generating.
    """
    slot = slot or model.main
    t0 = time.perf_counter()
    if cancel is not None and cancel.is_set():
        raise Cancelled
    evaluated, surgery = prepare(model, slot, ids, cancel, reuse_suffix)
    prompt_len = len(slot.tokens)
    max_tokens = max(0, min(max_tokens, defaults.MAX_GENERATION_CELLS,
                            model.kv.n_cells - prompt_len - 1))
    t1 = time.perf_counter()
    rng = np.random.default_rng(seed)
    need = guard.heal.encode("utf-8")
    out = bytearray()
    tokens: list[int] = []
    generated = 0
    reason = "max_tokens"
    while generated < max_tokens:
        if cancel is not None and cancel.is_set():
            raise Cancelled
        allowed = None
        if len(out) < len(need):
            allowed = _healing_candidates(model, need[len(out) :])
            if not allowed:
                need = bytes(out)  # nothing fits: give up healing (the guard then stops)
                allowed = None
        tok = _pick(model.kv.logits(), temperature, rng, allowed)
        if tok in model.fim.stop:
            reason = "eos"
            break
        piece = model.pieces[tok]
        out += piece
        tokens.append(tok)
        generated += 1
        stop = guard.check(out.decode("utf-8", "ignore"), "\n" if b"\n" in piece else "",
                           time.perf_counter() - t1)
        if stop is not None:
            reason = stop
            break
        if generated < max_tokens:
            model.kv.append(slot, tok)
    t2 = time.perf_counter()
    return Generation(
        text=out.decode("utf-8", "replace"), stop_reason=reason, prompt_tokens=prompt_len,
        evaluated=evaluated, generated=generated, prompt_ms=(t1 - t0) * 1000,
        generate_ms=(t2 - t1) * 1000, reused_suffix=surgery, tokens=tokens,
        stale=slot.stale_from is not None,
    )

"""Our llama.cpp context and what its KV cache holds, sequence by sequence.

One context, one unified KV cache, several sequences:
- `SEQ_MAIN` holds the full window prompt (up to 8K tokens),
- `SEQ_QUICK` a small window, used while the full one is not in the cache yet (first request after
  opening a file, a jump to another place), so a suggestion arrives in ~1-2 s instead of ~35 s,
- `SEQ_PARK` is scratch space for the suffix-reuse edit below,
- `SEQ_EXPLAIN` an explanation in progress (it survives completions that pre-empt it).

Why the edit: in PSM order (`[PRE] prefix [SUF] suffix [MID]`) every typed character lands
*before* the suffix, and llama.cpp reuses only the longest common token prefix, so each keystroke
would re-evaluate the whole suffix. For RoPE models the cells after the edit can instead be kept
and shifted: park them in `SEQ_PARK`, decode the typed tokens plus a short fresh head of what
follows (`fresh_head` tokens, so the boundary around the cursor is computed exactly), shift the
parked cells by the length change, and copy them back. The kept cells were computed without the
typed characters — an approximation whose staleness is bounded (`max_stale`) and repaired by
re-evaluating them while the user pauses (`refresh`).
"""

from __future__ import annotations

import ctypes
import threading
from dataclasses import dataclass, field
from typing import Any

import numpy as np

SEQ_MAIN, SEQ_QUICK, SEQ_PARK, SEQ_EXPLAIN = 0, 1, 2, 3
N_SEQ = 4


class Cancelled(Exception):
    """The request was superseded or cancelled; the KV cache stays consistent for the next one."""


class DecodeError(RuntimeError):
    """llama_decode failed (no KV slot, or a llama.cpp error)."""


@dataclass
class Slot:
    """The token list a sequence holds, position i = tokens[i]."""

    seq: int
    tokens: list[int] = field(default_factory=list)
    prompt_len: int = 0  # tokens past this are generated text, dropped before the next prompt
    stale_from: int | None = None  # cells from here on were kept through an edit (approximate)
    stale_tokens: int = 0  # tokens inserted/removed before those cells since they were computed


@dataclass(frozen=True)
class Plan:
    """How to bring a slot to a new prompt; `cost` = tokens to run through the model."""

    keep: int  # common token prefix kept as is
    reuse_from: int = 0  # old position of the first kept tail cell (surgery only)
    reuse_to: int = 0  # old position one past the last kept tail cell
    cost: int = 0
    changed: int = 0  # tokens removed + inserted by the edit (staleness it adds to kept cells)

    @property
    def surgery(self) -> bool:
        return self.reuse_to > self.reuse_from


def common_prefix(a: list[int], b: list[int]) -> int:
    n = min(len(a), len(b))
    i = 0
    block = 256  # compare in blocks first: prompts are thousands of tokens and mostly equal
    while i + block <= n and a[i : i + block] == b[i : i + block]:
        i += block
    while i < n and a[i] == b[i]:
        i += 1
    return i


def common_suffix(a: list[int], b: list[int], limit: int) -> int:
    n = min(len(a), len(b), limit)
    i = 0
    while i < n and a[-1 - i] == b[-1 - i]:
        i += 1
    return i


def plan_sync(slot: Slot, ids: list[int], *, can_shift: bool, fresh_head: int, min_reuse: int,
              max_stale: int) -> Plan:
    """Choose between plain prefix reuse and the suffix-keeping edit for `ids`."""
    old = slot.tokens[: slot.prompt_len]
    keep = common_prefix(slot.tokens, ids)  # generated tokens count too (explanations resume)
    if keep == len(ids):
        keep -= 1  # re-run the last token: logits are only kept for the latest decode
    keep = max(0, keep)
    plain = Plan(keep, cost=len(ids) - keep)
    if not can_shift or keep >= len(old):
        return plain
    tail = common_suffix(old, ids, min(len(old), len(ids)) - keep)
    reuse_from = len(old) - tail + fresh_head
    reuse_to = len(old) - 1  # the last token ([MID]) is always re-run for its logits
    if reuse_to - reuse_from < min_reuse:
        return plain
    changed = (len(old) - tail - keep) + (len(ids) - tail - keep)
    if slot.stale_tokens + changed > max_stale:
        return plain
    cost = (len(ids) - keep) - (reuse_to - reuse_from)
    return Plan(keep, reuse_from, reuse_to, cost, changed)


class KVContext:
    """A llama.cpp context with `N_SEQ` sequences in one unified KV cache."""

    def __init__(self, model: Any, n_cells: int, n_batch: int, n_threads: int) -> None:
        import llama_cpp

        self._l = llama_cpp
        params = llama_cpp.llama_context_default_params()
        params.n_ctx = n_cells
        params.n_batch = n_batch
        params.n_ubatch = n_batch
        params.n_threads = n_threads
        params.n_threads_batch = n_threads
        params.n_seq_max = N_SEQ
        params.kv_unified = True  # cells are shared: parking a suffix copies no data
        params.no_perf = True
        ctx = llama_cpp.llama_init_from_model(model, params)
        if ctx is None:
            raise DecodeError("llama_init_from_model failed")
        self.ctx = ctx
        self.mem = llama_cpp.llama_get_memory(ctx)
        self.n_cells = n_cells
        self.n_batch = n_batch
        self.batch = llama_cpp.llama_batch_init(n_batch, 0, 1)
        self.n_vocab = llama_cpp.llama_vocab_n_tokens(llama_cpp.llama_model_get_vocab(model))
        self.can_shift = bool(llama_cpp.llama_memory_can_shift(self.mem))
        self.evaluated_total = 0  # tokens run through the model, for tests and benchmarks
        self._lock = threading.Lock()

    def close(self) -> None:
        with self._lock:
            if self.ctx is not None:
                self._l.llama_batch_free(self.batch)
                self._l.llama_free(self.ctx)
                self.ctx = None

    # --- raw operations -----------------------------------------------------------------------------
    def decode(self, seq: int, ids: list[int], pos0: int, cancel: threading.Event | None = None,
               chunk: int | None = None) -> int:
        """Decode `ids` at positions pos0.. in `seq`, in chunks; stop early when cancelled.

        Returns how many tokens were decoded (all of them unless cancelled). Logits are kept for
        the last token of the last chunk only.
        """
        step = min(chunk or self.n_batch, self.n_batch)
        done = 0
        b = self.batch
        while done < len(ids):
            if cancel is not None and cancel.is_set() and done:
                return done
            part = ids[done : done + step]
            b.n_tokens = len(part)
            for j, tok in enumerate(part):
                b.token[j] = tok
                b.pos[j] = pos0 + done + j
                b.n_seq_id[j] = 1
                b.seq_id[j][0] = seq
                b.logits[j] = 0
            b.logits[len(part) - 1] = 1
            rc = self._l.llama_decode(self.ctx, b)
            if rc != 0:
                raise DecodeError(f"llama_decode returned {rc}")
            done += len(part)
            self.evaluated_total += len(part)
        return done

    def logits(self) -> np.ndarray:
        ptr = self._l.llama_get_logits_ith(self.ctx, -1)
        return np.ctypeslib.as_array(ctypes.cast(ptr, ctypes.POINTER(ctypes.c_float)),
                                     shape=(self.n_vocab,))

    def rm(self, seq: int, p0: int, p1: int = -1) -> None:
        self._l.llama_memory_seq_rm(self.mem, seq, p0, p1)

    # --- slots -------------------------------------------------------------------------------------
    def drop_generated(self, slot: Slot) -> None:
        if len(slot.tokens) > slot.prompt_len:
            self.rm(slot.seq, slot.prompt_len)
            del slot.tokens[slot.prompt_len :]

    def sync(self, slot: Slot, ids: list[int], plan: Plan, cancel: threading.Event | None,
             chunk: int | None = None) -> int:
        """Make `slot` hold exactly `ids` with fresh logits, following `plan`; return tokens run.

        On cancellation the slot keeps what was decoded so far and `Cancelled` is raised.
        """
        if plan.surgery:
            self.drop_generated(slot)
            return self._sync_edit(slot, ids, plan, cancel, chunk)
        keep = plan.keep
        self.rm(slot.seq, keep)
        del slot.tokens[keep:]
        if slot.stale_from is not None and slot.stale_from >= keep:
            slot.stale_from, slot.stale_tokens = None, 0
        done = self.decode(slot.seq, ids[keep:], keep, cancel, chunk)
        slot.tokens.extend(ids[keep : keep + done])
        slot.prompt_len = len(slot.tokens)
        if done < len(ids) - keep:
            raise Cancelled
        return done

    def _sync_edit(self, slot: Slot, ids: list[int], plan: Plan, cancel: threading.Event | None,
                   chunk: int | None) -> int:
        old = slot.tokens
        keep, r0, r1 = plan.keep, plan.reuse_from, plan.reuse_to
        new_r0 = len(ids) - (len(old) - r0)  # where the kept cells land in the new prompt
        delta = new_r0 - r0
        self._l.llama_memory_seq_cp(self.mem, slot.seq, SEQ_PARK, r0, r1)
        self.rm(slot.seq, keep)
        head = ids[keep:new_r0]
        try:
            done = self.decode(slot.seq, head, keep, cancel, chunk)
        except BaseException:
            self.rm(SEQ_PARK, -1)
            raise
        if done < len(head):  # cancelled: forget the parked cells, keep what was decoded
            self.rm(SEQ_PARK, -1)
            slot.tokens = ids[: keep + done]
            slot.prompt_len = len(slot.tokens)
            slot.stale_from, slot.stale_tokens = None, 0
            raise Cancelled
        self._l.llama_memory_seq_add(self.mem, SEQ_PARK, r0, r1, delta)
        self._l.llama_memory_seq_cp(self.mem, SEQ_PARK, slot.seq, r0 + delta, r1 + delta)
        self.rm(SEQ_PARK, -1)
        new_r1 = r1 + delta
        last = self.decode(slot.seq, ids[new_r1:], new_r1)
        prev = slot.stale_from
        slot.stale_from = prev if prev is not None and prev < keep else new_r0
        slot.stale_tokens += plan.changed
        slot.tokens = list(ids)
        slot.prompt_len = len(ids)
        return done + last

    def refresh(self, slot: Slot, cancel: threading.Event | None, chunk: int) -> int:
        """Re-evaluate the approximate (stale) cells of `slot` exactly, in small chunks."""
        self.drop_generated(slot)
        start = slot.stale_from
        if start is None:
            return 0
        ids = list(slot.tokens)
        self.rm(slot.seq, start)
        del slot.tokens[start:]
        slot.stale_from, slot.stale_tokens = None, 0
        done = self.decode(slot.seq, ids[start:], start, cancel, chunk=chunk)
        slot.tokens.extend(ids[start : start + done])
        slot.prompt_len = len(slot.tokens)
        if done < len(ids) - start:
            raise Cancelled
        return done

    def append(self, slot: Slot, tok: int) -> None:
        """Decode one generated token after the slot's contents."""
        self.decode(slot.seq, [tok], len(slot.tokens))
        slot.tokens.append(tok)

    def clear(self, slot: Slot) -> None:
        self.rm(slot.seq, 0)
        slot.tokens.clear()
        slot.prompt_len = 0
        slot.stale_from, slot.stale_tokens = None, 0

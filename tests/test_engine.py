"""The engine on the tiny StarCoder GGUF: the real llama.cpp loader, tokenizer and FIM token path.

Its text is noise; these tests pin token ids, KV-prefix reuse, cancellation and the worker policy.
"""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import llama_cpp
import pytest

from lsp_server import defaults
from lsp_server.engine.base import DecodeGuard
from lsp_server.engine.generate import Cancelled, generate
from lsp_server.engine.kv import SEQ_MAIN, common_prefix, common_suffix
from lsp_server.engine.model import LoadedModel, LoadOptions, ModelError, has_amx, load_model
from lsp_server.engine.worker import Worker
from lsp_server.models.catalog import load_catalog
from lsp_server.prompt.fim import build_prompt
from lsp_server.service import Assistant, CompletionRequest
from lsp_server.settings import Settings
from testkit.tiny_models import write_no_fim_model


def cached_tokens(model: LoadedModel) -> list[int]:
    return list(model.main.tokens)


def cold(model: LoadedModel) -> None:
    model.kv.clear(model.main)


# StarCoder's real vocabulary ids (bigcode/starcoder tokenizer.json).
FIM_PREFIX, FIM_MIDDLE, FIM_SUFFIX = 1, 2, 3


@pytest.fixture(scope="module")
def tiny(tiny_starcoder: Path) -> LoadedModel:
    family = load_catalog().families["starcoder"]
    return load_model(tiny_starcoder, family, LoadOptions(n_ctx=2048, n_threads=1), "tiny")


def test_the_installed_llama_cpp_has_no_amx_kernels() -> None:
    # `make install` builds llama.cpp without AMX: its matmul segfaults on Sapphire Rapids-class
    # CPUs (llama.cpp#20824). A build with it is detected, and run without repacked weights.
    info = llama_cpp.llama_print_system_info().decode()
    assert "AVX" in info or "NEON" in info, info
    assert not has_amx(info), info
    assert has_amx("CPU : AVX512_BF16 = 1 | AMX_INT8 = 1 | REPACK = 1 |")
    assert not has_amx("CPU : AVX2 = 1 | REPACK = 1 |")


def test_fim_ids_are_starcoders(tiny: LoadedModel) -> None:
    assert (tiny.fim.prefix, tiny.fim.suffix, tiny.fim.middle) == (FIM_PREFIX, FIM_SUFFIX,
                                                                   FIM_MIDDLE)
    assert 0 in tiny.fim.stop  # <|endoftext|>


def test_prompt_in_the_kv_cache_is_starcoder_psm(tiny: LoadedModel) -> None:
    prompt = build_prompt("def f(x):\n    return ", "\n\nprint(f(1))\n", tiny.fim, tiny.tokenize)
    generate(tiny, prompt.ids, max_tokens=3, guard=DecodeGuard(prompt.heal))
    seen = cached_tokens(tiny)
    assert seen[0] == FIM_PREFIX
    assert seen.count(FIM_SUFFIX) == 1 and seen.count(FIM_MIDDLE) == 1
    mid = seen.index(FIM_MIDDLE)
    assert seen.index(FIM_SUFFIX) < mid
    assert seen[: mid + 1] == prompt.ids


def test_user_text_cannot_inject_control_tokens(tiny: LoadedModel) -> None:
    ids = tiny.tokenize("x = '<fim_middle><|endoftext|>'")
    assert FIM_MIDDLE not in ids and 0 not in ids


def test_kv_prefix_is_reused(tiny: LoadedModel) -> None:
    text = "".join(f"value_{i} = {i}\n" for i in range(60))
    p1 = build_prompt(text, "\nprint(1)\n", tiny.fim, tiny.tokenize, heal=False)
    cold(tiny)
    g1 = generate(tiny, p1.ids, max_tokens=2, reuse_suffix=False)
    p2 = build_prompt(text + "x", "\nprint(1)\n", tiny.fim, tiny.tokenize, heal=False)
    g2 = generate(tiny, p2.ids, max_tokens=2, reuse_suffix=False)
    assert g1.evaluated == len(p1.ids)
    # Only the typed token and the suffix after it are evaluated again.
    assert g2.evaluated <= len(p2.ids) - len(p1.ids) + len(tiny.tokenize("\nprint(1)\n")) + 4
    g3 = generate(tiny, p2.ids, max_tokens=2)
    assert g3.evaluated == 1  # identical prompt: only the last token is re-run for fresh logits


def test_generation_stops_when_cancelled(tiny: LoadedModel) -> None:
    cancel = threading.Event()
    prompt = build_prompt("a", "", tiny.fim, tiny.tokenize, heal=False)
    produced: list[str] = []

    def stop_hook(text: str) -> bool:
        produced.append(text)
        if len(produced) == 5:
            cancel.set()
        return False

    with pytest.raises(Cancelled):
        generate(tiny, prompt.ids, max_tokens=1000, guard=DecodeGuard(should_stop=stop_hook), cancel=cancel)
    assert len(produced) == 5  # stopped at the very next token


def test_prompt_evaluation_is_abandoned_between_chunks(tiny: LoadedModel) -> None:
    class CancelAfterTwoChunks(threading.Event):
        checks = 0

        def is_set(self) -> bool:
            self.checks += 1
            return self.checks > 2

    ids = build_prompt("z" * 1500, "", tiny.fim, tiny.tokenize, heal=False).ids
    cold(tiny)
    with pytest.raises(Cancelled):
        generate(tiny, ids, max_tokens=5, cancel=CancelAfterTwoChunks())
    # Two chunks ran (the first check is before any work), the rest was abandoned; the cache
    # holds exactly what ran.
    n = tiny.kv.n_batch
    assert len(tiny.main.tokens) == n
    assert cached_tokens(tiny) == ids[:n]
    assert llama_cpp.llama_memory_seq_pos_max(tiny.kv.mem, SEQ_MAIN) == n - 1


def test_suffix_cells_survive_typing(tiny: LoadedModel) -> None:
    """Typing before a long suffix re-evaluates only the typed tokens and a short fresh head."""
    suffix = "".join(f"    total += item_{i}\n" for i in range(120))
    prefix = "def f(items):\n    total = 0\n    "
    cold(tiny)
    first = build_prompt(prefix, suffix, tiny.fim, tiny.tokenize, heal=False)
    generate(tiny, first.ids, max_tokens=3)
    typed = "x = 1"
    prev = first.ids
    for n in range(1, len(typed) + 1):
        p = build_prompt(prefix + typed[:n], suffix, tiny.fim, tiny.tokenize, heal=False)
        g = generate(tiny, p.ids, max_tokens=3)
        assert g.reused_suffix
        keep = common_prefix(prev, p.ids)
        new_tokens = len(p.ids) - keep - common_suffix(prev, p.ids, len(prev) - keep)
        # Only the new tokens, a short fresh head after them and [MID] run through the model.
        assert g.evaluated <= new_tokens + defaults.FRESH_HEAD_TOKENS + 1
        prev = p.ids
        assert tiny.main.tokens[: len(p.ids)] == p.ids
        assert llama_cpp.llama_memory_seq_pos_max(tiny.kv.mem, SEQ_MAIN) == len(tiny.main.tokens) - 1
    assert tiny.main.stale_from is not None
    # Repairing the approximate cells while idle re-evaluates exactly them.
    done = tiny.kv.refresh(tiny.main, None, defaults.REFRESH_CHUNK_TOKENS)
    assert done > 0 and tiny.main.stale_from is None
    assert tiny.main.tokens == p.ids


def test_deleting_keeps_the_suffix_too(tiny: LoadedModel) -> None:
    suffix = "".join(f"    total += item_{i}\n" for i in range(120))
    prefix = "def f(items):\n    total = 0\n    abcdef"
    cold(tiny)
    generate(tiny, build_prompt(prefix, suffix, tiny.fim, tiny.tokenize, heal=False).ids,
             max_tokens=2)
    p = build_prompt(prefix[:-3], suffix, tiny.fim, tiny.tokenize, heal=False)
    g = generate(tiny, p.ids, max_tokens=2)
    assert g.reused_suffix and g.evaluated <= defaults.FRESH_HEAD_TOKENS + 2


def test_newer_job_in_a_lane_cancels_the_older() -> None:
    worker = Worker()
    started = threading.Event()

    def slow(_: object, cancel: threading.Event) -> str:
        started.set()
        if cancel.wait(10):
            raise Cancelled
        return "finished"

    def fast(_: object, cancel: threading.Event) -> str:
        return "fast"

    old, _ = worker.submit(slow, lane="complete")
    started.wait(5)
    new, _ = worker.submit(fast, lane="complete")
    with pytest.raises(Cancelled):
        old.result(10)
    assert new.result(10) == "fast"
    worker.shutdown()


def test_a_queued_job_superseded_in_its_lane_answers_at_once_and_never_runs() -> None:
    """Keystrokes behind a long generation: the ones in between never start, their awaiters get
    `Cancelled` at once (and let go of their requests), the newest one runs."""
    worker = Worker()
    busy, release, ran = threading.Event(), threading.Event(), []

    def blocker(_: object, cancel: threading.Event) -> str:
        busy.set()
        release.wait(10)
        return "done"

    def job(name: str):  # type: ignore[no-untyped-def]
        def fn(_: object, cancel: threading.Event) -> str:
            ran.append(name)
            return name
        return fn

    async def scenario() -> None:
        worker.submit(blocker)  # no lane: the model is busy with something else
        busy.wait(5)
        first = asyncio.ensure_future(worker.run(job("first"), lane="complete"))
        await asyncio.sleep(0.05)
        second = asyncio.ensure_future(worker.run(job("second"), lane="complete"))
        with pytest.raises(Cancelled):
            await asyncio.wait_for(first, 2)  # while the blocker still holds the worker
        release.set()
        assert await asyncio.wait_for(second, 10) == "second"

    asyncio.run(scenario())
    assert ran == ["second"]
    assert not worker._all and not worker._latest  # nothing left behind for the cancelled one
    worker.shutdown()


def test_no_fim_model_is_refused_with_a_clear_error(tmp_path: Path) -> None:
    path = write_no_fim_model(tmp_path / "nofim.gguf", arch="starcoder")
    family = load_catalog().families["starcoder"]
    family = type(family)(name="broken", fim_prefix="<fim_prefix>", fim_suffix="<fim_suffix>",
                          fim_middle="<fim_middle>")
    with pytest.raises(ModelError, match="FIM"):
        load_model(path, family, LoadOptions(n_ctx=256), "nofim")


def test_assistant_superseded_request_returns_none(tiny_starcoder: Path) -> None:
    async def run() -> None:
        a = Assistant(Settings(model=str(tiny_starcoder), max_tokens=1500, context_tokens=2048, threads=1))
        await a.load()
        assert a.ready, a.message
        lines = ["def f(x):\n", "    \n"]
        gate = threading.Event()
        a.worker.submit(lambda model, cancel: gate.wait(10))  # keep the worker busy
        first = asyncio.ensure_future(a.complete(CompletionRequest(lines, 1, 4)))
        await asyncio.sleep(0.05)
        second_task = asyncio.ensure_future(a.complete(CompletionRequest(lines, 1, 4)))
        await asyncio.sleep(0.05)
        gate.set()
        second = await second_task
        assert await first is None  # superseded: cancelled, answered with nothing
        assert second is not None
        a.shutdown()

    asyncio.run(run())

"""The engine on the tiny StarCoder GGUF: the real llama.cpp loader, tokenizer and FIM token path.

Its text is noise; these tests pin token ids, KV-prefix reuse, cancellation and the worker policy.
"""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest

from lsp_server.engine.generate import Cancelled, cached_tokens, generate
from lsp_server.engine.model import LoadedModel, LoadOptions, ModelError, load_model
from lsp_server.engine.worker import Worker
from lsp_server.models.catalog import load_catalog
from lsp_server.prompt.fim import build_prompt
from lsp_server.service import Assistant, CompletionRequest
from lsp_server.settings import Settings
from tests.tiny_models import write_no_fim_model

# StarCoder's real vocabulary ids (bigcode/starcoder tokenizer.json).
FIM_PREFIX, FIM_MIDDLE, FIM_SUFFIX = 1, 2, 3


@pytest.fixture(scope="module")
def tiny(tiny_starcoder: Path) -> LoadedModel:
    family = load_catalog().families["starcoder"]
    return load_model(tiny_starcoder, family, LoadOptions(n_ctx=2048, n_threads=1), "tiny")


def test_fim_ids_are_starcoders(tiny: LoadedModel) -> None:
    assert (tiny.fim.prefix, tiny.fim.suffix, tiny.fim.middle) == (FIM_PREFIX, FIM_SUFFIX,
                                                                   FIM_MIDDLE)
    assert 0 in tiny.fim.stop  # <|endoftext|>


def test_prompt_in_the_kv_cache_is_starcoder_psm(tiny: LoadedModel) -> None:
    prompt = build_prompt("def f(x):\n    return ", "\n\nprint(f(1))\n", tiny.fim, tiny.tokenize)
    generate(tiny, prompt.ids, max_tokens=3, heal=prompt.heal)
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
    tiny.llm.n_tokens = 0  # start cold
    g1 = generate(tiny, p1.ids, max_tokens=2)
    p2 = build_prompt(text + "x", "\nprint(1)\n", tiny.fim, tiny.tokenize, heal=False)
    g2 = generate(tiny, p2.ids, max_tokens=2)
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
        generate(tiny, prompt.ids, max_tokens=1000, should_stop=stop_hook, cancel=cancel)
    assert len(produced) == 5  # stopped at the very next token


def test_prompt_evaluation_is_abandoned_between_chunks(tiny: LoadedModel) -> None:
    class CancelAfterTwoChunks(threading.Event):
        checks = 0

        def is_set(self) -> bool:
            self.checks += 1
            return self.checks > 2

    ids = build_prompt("z" * 1500, "", tiny.fim, tiny.tokenize, heal=False).ids
    tiny.llm.n_tokens = 0
    with pytest.raises(Cancelled):
        generate(tiny, ids, max_tokens=5, cancel=CancelAfterTwoChunks())
    # Two n_batch chunks ran, the rest was abandoned; the cache holds exactly what ran.
    assert tiny.llm.n_tokens == 2 * tiny.llm.n_batch
    assert cached_tokens(tiny) == ids[: 2 * tiny.llm.n_batch]


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

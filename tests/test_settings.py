"""Settings merge: camelCase in, typed out, bad values reported and ignored (never a crash)."""

from __future__ import annotations

from lsp_server import defaults
from lsp_server.settings import Settings, merge, to_camel


def test_defaults() -> None:
    s = Settings()
    assert s.model == defaults.DEFAULT_MODEL
    assert s.context_tokens == 8192
    assert s.threads >= 1
    assert s.enable


def test_merge_camel_case_and_section() -> None:
    s, problems = merge(Settings(), {"starcoder": {"contextTokens": 4096, "nGpuLayers": 0,
                                                   "maxTokens": 64, "model": "x.gguf"}})
    assert problems == []
    assert (s.context_tokens, s.n_gpu_layers, s.max_tokens, s.model) == (4096, 0, 64, "x.gguf")


def test_invalid_values_keep_previous_and_explain() -> None:
    base = Settings(context_tokens=2048)
    s, problems = merge(base, {"contextTokens": 100_000, "temperature": "hot", "enable": "yes"})
    assert s.context_tokens == 2048 and s.temperature is None and s.enable
    assert len(problems) == 3
    assert any("contextTokens" in p and "8192" in p for p in problems)


def test_null_resets_and_unknown_keys_are_ignored() -> None:
    s, problems = merge(Settings(max_tokens=5), {"maxTokens": None, "somethingElse": 1})
    assert s.max_tokens is None and problems == []


def test_non_object_settings() -> None:
    s, problems = merge(Settings(), [1, 2])
    assert s == Settings(threads=s.threads) and problems


def test_to_camel_round_trip() -> None:
    s = Settings(context_tokens=1024, backend="openai", endpoint="http://127.0.0.1:1/v1")
    again, problems = merge(Settings(), {k: v for k, v in to_camel(s).items() if v is not None})
    assert again == s and problems == []


def test_user_settings_file_is_the_base(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from lsp_server.settings import load_user_settings, user_settings_path

    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    path = user_settings_path()
    assert str(path).startswith(str(tmp_path))
    path.parent.mkdir(parents=True)
    path.write_text('[starcoder]\nmodel = "/m/x.gguf"\nthreads = 1\ncontextTokens = 99999\n')
    s, problems = load_user_settings(Settings())
    assert (s.model, s.threads) == ("/m/x.gguf", 1)
    assert len(problems) == 1 and "contextTokens" in problems[0]
    path.write_text("not toml [")
    s, problems = load_user_settings(Settings())
    assert s == Settings(threads=s.threads) and problems

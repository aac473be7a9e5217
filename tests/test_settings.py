"""Settings merge: camelCase in, typed out, bad values reported and ignored (never a crash)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from lsp_server import defaults
from lsp_server.files import FileRefused, read_bounded
from lsp_server.settings import Settings, load_user_settings, merge, redact_url, to_camel


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


# --- settings that could leak (issue 15) ------------------------------------------------------------


@pytest.mark.parametrize("name", ["STARCODER_API_KEY", "STARCODER_TEAM_TOKEN", "STARCODER_K1"])
def test_api_key_env_accepts_names_made_for_this_tool(name: str) -> None:
    s, problems = merge(Settings(), {"apiKeyEnv": name})
    assert problems == [] and s.api_key_env == name


@pytest.mark.parametrize("name", ["HOME", "AWS_SECRET_ACCESS_KEY", "GITHUB_TOKEN", "OPENAI_API_KEY",
                                  "starcoder_api_key", "STARCODER_", "STARCODER_KEY;rm", "PATH",
                                  "AWS_SESSION_TOKEN", "STARCODER_" + "X" * 80])
def test_api_key_env_refuses_other_variables(name: str) -> None:
    s, problems = merge(Settings(api_key_env="STARCODER_OLD"), {"apiKeyEnv": name, "backend": "openai",
                                                               "endpoint": "https://gpu/v1"})
    assert s.api_key_env == "STARCODER_OLD" and s.backend == "local" and s.endpoint is None
    assert "starts with STARCODER_" in problems[0] and "were not changed" in problems[-1]


@pytest.mark.parametrize(("endpoint", "why"), [
    ("http://bob:pw@gpu:8000/v1", "user name or password"), ("https://tok@gpu/v1", "user name"),
    ("ftp://gpu/v1", "http:// or https://"), ("http:///v1", "with a host"),
    ("http://gpu/v1?key=abc", "query"), ("http://gpu/v1 \r\nX: y", "control characters"),
])
def test_endpoint_must_be_a_plain_http_url(endpoint: str, why: str) -> None:
    s, problems = merge(Settings(), {"endpoint": endpoint})
    assert s.endpoint is None and why in problems[0]
    assert "pw@" not in problems[0] and "tok@" not in problems[0]


def test_endpoints_accepted_and_urls_redacted() -> None:
    for ok in ("http://127.0.0.1:8080/v1", "https://llm.example.internal", "gpu:8000"):
        assert merge(Settings(), {"endpoint": ok})[0].endpoint == ok
    assert redact_url("got 'http://u:p@h/x' and https://t@h2") == "got 'http://***@h/x' and https://***@h2"


def test_exclude_and_gitignore_settings() -> None:
    s, problems = merge(Settings(), {"exclude": ["*.tfvars", " config/ ", ""], "gitignore": True})
    assert problems == [] and s.exclude == ("*.tfvars", "config/") and s.gitignore
    assert merge(Settings(), {"exclude": "*.pem"})[0].exclude == ("*.pem",)
    for bad in ([1], {"a": 1}, ["x" * 300], ["*"] * 201):
        assert merge(Settings(), {"exclude": bad})[1], bad


def test_cli_flags_are_checked_like_editor_settings(caplog: pytest.LogCaptureFixture) -> None:
    import argparse

    from lsp_server.cli import settings_from_args

    args = argparse.Namespace(api_key_env="AWS_SECRET_ACCESS_KEY", endpoint="http://u:pw@h/v1",
                              backend="openai", model=None, models_file=None, n_gpu_layers=None,
                              threads=None, context_tokens=None, max_tokens=None)
    s = settings_from_args(args)
    assert (s.backend, s.endpoint, s.api_key_env) == ("local", None, None)
    assert "starts with STARCODER_" in caplog.text and "pw@" not in caplog.text


def test_setting_files_must_be_small_regular_files(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    for path, why in [(fifo, "not a regular file"), (Path("/dev/zero"), "not a regular file"),
                      (tmp_path, "not a regular file")]:
        with pytest.raises(FileRefused, match=why):
            read_bounded(path, 1024)
    big = tmp_path / "big.toml"
    big.write_bytes(b"#" * 2048)
    with pytest.raises(FileRefused, match="at most 1024 bytes"):
        read_bounded(big, 1024)
    assert read_bounded(big, 4096) == b"#" * 2048
    with pytest.raises(FileNotFoundError):
        read_bounded(tmp_path / "none", 10)


def test_a_user_settings_file_that_is_a_fifo_is_skipped(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    (tmp_path / "starcoder-lsp").mkdir()
    os.mkfifo(tmp_path / "starcoder-lsp" / "settings.toml")
    s, problems = load_user_settings(Settings())
    assert s == Settings() and "not a regular file" in problems[0]


def test_the_readme_documents_every_setting() -> None:
    import re

    from lsp_server.settings import BY_KEY

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    table = set(re.findall(r"^\| `(\w+)` \|", readme, re.MULTILINE))
    assert set(BY_KEY) <= table, set(BY_KEY) - table

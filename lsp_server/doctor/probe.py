"""The doctor's measurements: versions, the llama.cpp build, the machine, the model cache, a
speed test on the smallest downloaded model, and the settings with where each came from."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import re
import shutil
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from lsp_server import __version__, defaults
from lsp_server.doctor.checks import (
    ABSENT,
    PACKAGES,
    PRESENT,
    VERIFIED,
    Build,
    Facts,
    ModelRow,
    SettingRow,
    Speed,
)
from lsp_server.settings import SCHEMA, Settings, merge, read_user_settings, user_settings_path


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def llama_pin() -> str | None:
    """The llama-cpp-python version this package requires (`==X` in its metadata)."""
    try:
        requires = importlib.metadata.requires("starcoder-lsp") or []
    except importlib.metadata.PackageNotFoundError:
        return None
    for req in requires:
        m = re.match(r"llama[-_]cpp[-_]python\s*==\s*([\w.]+)\s*(;.*)?$", req)
        if m and "extra" not in (m.group(2) or ""):
            return m.group(1)
    return None


def probe_build() -> Build:
    try:
        import llama_cpp

        return Build(None, llama_cpp.llama_print_system_info().decode("utf-8", "replace").strip(),
                     bool(llama_cpp.llama_supports_gpu_offload()), int(llama_cpp.llama_max_devices()))
    except Exception as exc:  # ImportError, OSError (a missing shared library), a bad build
        return Build(import_error=f"{type(exc).__name__}: {exc}")


def gpu_hardware() -> list[str]:
    """GPUs llama.cpp could use if it were built for them (seen without any GPU library)."""
    found = []
    if shutil.which("nvidia-smi") or Path("/proc/driver/nvidia/version").exists():
        found.append("NVIDIA (CUDA)")
    if Path("/dev/kfd").exists():
        found.append("AMD (ROCm/HIP)")
    if sys.platform == "darwin" and platform.machine() == "arm64":
        found.append("Apple Silicon (Metal)")
    return found


def _total_ram() -> int | None:
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        return None


def _shown(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def settings_in_effect(flags: Mapping[str, Any]) -> tuple[Settings, list[SettingRow], list[str]]:
    """Defaults < the user's settings file < CLI flags, as `serve` layers them, and where each
    value came from (an editor's own settings, sent at start, override all of these)."""
    raw, problems = read_user_settings()
    base = Settings()
    from_file, file_problems = merge(base, raw)
    final, flag_problems = merge(from_file, dict(flags))
    section = raw.get(defaults.SETTINGS_SECTION)
    table = section if isinstance(section, Mapping) else raw
    rows = []
    for f in SCHEMA:
        if f.key in flags and not merge(from_file, {f.key: flags[f.key]})[1]:
            origin = f"CLI {f.flag}"
        elif f.key in table and not merge(base, {f.key: table[f.key]})[1]:
            origin = "settings file"
        else:
            origin = "default"
        rows.append(SettingRow(f.key, _shown(getattr(final, f.name)), origin))
    path = user_settings_path()
    problems += [f"{path}: {p}" for p in file_problems] + [f"CLI: {p}" for p in flag_problems]
    return final, rows, problems


def _model_rows(facts: Facts) -> None:
    """The catalogue's models with their local state; the configured one verified (as a load
    would) and its memory need estimated."""
    from lsp_server.engine.model import kv_cache_bytes
    from lsp_server.models import store
    from lsp_server.models.catalog import load_catalog
    from lsp_server.models.spec import CatalogError, ModelSpec

    s = facts.settings
    try:
        catalog = load_catalog(models_file=s.models_file)
    except CatalogError as exc:
        facts.catalog_error = str(exc)
        return
    specs = dict(catalog.models)
    try:
        configured: ModelSpec | None = catalog.resolve(s.model)
    except CatalogError:
        configured = None  # an unknown name or a bad .gguf path: `assess` says so
    if configured is not None and specs.get(configured.name) is not configured:
        specs[f"path:{configured.source.path}"] = configured  # a .gguf path, maybe named as a preset
    facts.cache_dir = str(store.model_dir())
    for spec in specs.values():
        is_configured = spec is configured
        state = (VERIFIED if store.is_verified(spec) else
                 PRESENT if store.is_present(spec) else ABSENT)
        problem = None
        if is_configured and state == PRESENT and spec.family.has_fim:
            try:
                store.verify(spec)
                state = VERIFIED
            except store.PullError as exc:
                problem = str(exc)
        need = None
        if is_configured and spec.size_bytes:
            path = store.local_path(spec)
            n_ctx = min(s.context_tokens, spec.context_length)
            kv = (kv_cache_bytes(path, n_ctx) if path.is_file()
                  else n_ctx * defaults.KV_BYTES_PER_TOKEN_ESTIMATE)
            need = spec.size_bytes + defaults.LOAD_OVERHEAD_BYTES + kv
        name = str(spec.source.path) if spec.source.kind == "path" else spec.name
        facts.models.append(ModelRow(name, spec.params, spec.size_bytes, state,
                                     spec.family.has_fim, spec.source.describe(), is_configured,
                                     need, problem))


# Code to time the prompt on: ordinary Python, tokenized like what the server sends.
_SPEED_TEXT = "".join(
    f"def scaled_{i}(values: list[float], factor: float = {i}.5) -> list[float]:\n"
    f"    \"\"\"Multiply each value by the factor, skipping negatives ({i}).\"\"\"\n"
    f"    return [v * factor for v in values if v >= {i % 3}]\n\n\n"
    for i in range(64)
)


def measure_speed(name: str, path: Path, family: Any, size_bytes: int, threads: int,
                  n_gpu_layers: int) -> Speed:
    """Load `path` as the server does, time a prompt and greedy decoding (each within its budget)."""
    import numpy as np

    from lsp_server.engine.kv import SEQ_MAIN
    from lsp_server.engine.model import LoadOptions, load_model

    t0 = time.perf_counter()
    model = load_model(path, family, LoadOptions(n_ctx=defaults.DOCTOR_CONTEXT_TOKENS,
                                                 n_threads=threads, n_gpu_layers=n_gpu_layers), name)
    load_s = time.perf_counter() - t0
    try:
        kv = model.kv
        ids = model.tokenize(_SPEED_TEXT)[: defaults.DOCTOR_PROMPT_TOKENS]
        if model.add_bos is not None:
            ids = [model.add_bos, *ids[:-1]]
        kv.decode(SEQ_MAIN, ids[:1], 0)  # warm-up: the first decode sets up buffers
        kv.rm(SEQ_MAIN, 0)
        t1 = time.perf_counter()
        done = 0
        while done < len(ids) and (done == 0 or time.perf_counter() - t1 < defaults.DOCTOR_PROMPT_BUDGET_S):
            done += kv.decode(SEQ_MAIN, ids[done: done + kv.n_batch], done)
        t2 = time.perf_counter()
        generated = 0
        while generated < defaults.DOCTOR_DECODE_TOKENS and (
                generated == 0 or time.perf_counter() - t2 < defaults.DOCTOR_DECODE_BUDGET_S):
            tok = int(np.argmax(kv.logits()))
            kv.decode(SEQ_MAIN, [tok], done + generated)
            generated += 1
        t3 = time.perf_counter()
    finally:
        model.close()
    return Speed(name, size_bytes, threads, model.gpu_layers, load_s, done, t2 - t1, generated,
                 t3 - t2)


def busy_cores(seconds: float = defaults.DOCTOR_BUSY_SAMPLE_S) -> float | None:
    """Cores in use over `seconds` (from /proc/stat, Linux; else the 1-minute load average): what
    other processes take before our own test runs."""
    def sample() -> tuple[int, int] | None:
        try:
            with open("/proc/stat", encoding="ascii") as fh:
                fields = [int(x) for x in fh.readline().split()[1:]]
        except (OSError, ValueError):
            return None
        idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
        return sum(fields[:8]), idle

    first = sample()
    if first is None:
        try:
            return min(float(os.getloadavg()[0]), float(os.cpu_count() or 1))
        except (OSError, AttributeError):
            return None
    time.sleep(seconds)
    second = sample()
    if second is None or second[0] <= first[0]:
        return None
    total, idle = second[0] - first[0], second[1] - first[1]
    return (1 - idle / total) * (os.cpu_count() or 1)


def _speed_test(facts: Facts) -> None:
    """On the smallest downloaded FIM model (the numbers scale to the others)."""
    from lsp_server.engine.model import ModelError
    from lsp_server.models import store
    from lsp_server.models.catalog import load_catalog

    candidates = [m for m in facts.models if m.fim and m.state != ABSENT and m.size_bytes
                  and not m.problem]
    if not candidates or facts.build.import_error is not None:
        return
    row = min(candidates, key=lambda m: m.size_bytes or 0)
    s = facts.settings
    facts.busy_cores = busy_cores()
    try:
        catalog = load_catalog(models_file=s.models_file)
        spec = catalog.models.get(row.name) or catalog.resolve(s.model)
        path = store.verify(spec)
        facts.speed = measure_speed(spec.name, path, spec.family, path.stat().st_size, s.threads,
                                    s.n_gpu_layers)
    except (ModelError, store.PullError, OSError) as exc:
        facts.speed_error = f"{row.name}: {exc}"


def collect(flags: Mapping[str, Any], *, speed: bool = True) -> Facts:
    from lsp_server.engine.model import memory_limit

    settings, rows, problems = settings_in_effect(flags)
    facts = Facts(
        python=f"{platform.python_version()} ({sys.executable})",
        versions={name: _version(name) for name in PACKAGES},
        llama_pin=llama_pin(),
        build=probe_build(),
        cores=os.cpu_count() or 1,
        free_ram=memory_limit(),
        total_ram=_total_ram(),
        gpu_hardware=gpu_hardware(),
        settings=settings,
        settings_rows=rows,
        settings_problems=problems,
    )
    facts.versions["starcoder-lsp"] = facts.versions["starcoder-lsp"] or __version__
    _model_rows(facts)
    if speed:
        _speed_test(facts)
    else:
        facts.speed_skipped = True
    return facts

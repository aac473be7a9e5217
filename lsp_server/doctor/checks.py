"""The doctor's facts and the rules that judge them: pure, so every rule and the exit status it
gives (0 healthy, 1 warnings, 2 must fix) is unit-tested without llama.cpp or a model."""

from __future__ import annotations

import dataclasses
import re
import sys
from dataclasses import dataclass, field
from typing import Any, Literal

from lsp_server import defaults
from lsp_server.settings import LOCAL, REFUSE, Settings, user_settings_path

EXIT_HEALTHY, EXIT_WARNINGS, EXIT_MUST_FIX = 0, 1, 2
WARN: Literal["warn"] = "warn"  # works, but worse than it could
FIX: Literal["fix"] = "fix"  # does not work until the user acts

VERIFIED, PRESENT, ABSENT = "verified", "present", "absent"
PACKAGES = ("starcoder-lsp", "llama-cpp-python", "pygls", "lsprotocol")


@dataclass(frozen=True)
class Finding:
    level: Literal["warn", "fix"]
    problem: str
    fix: str


@dataclass(frozen=True)
class Build:
    """The installed llama.cpp: whether it imports, what it was compiled with."""

    import_error: str | None = None
    system_info: str = ""  # llama_print_system_info(): backends and CPU features
    gpu_offload: bool = False  # llama_supports_gpu_offload(): a CUDA/Metal/Vulkan/... build
    max_devices: int = 0

    @property
    def features(self) -> list[str]:
        """The `NAME = 1` entries of the system info (AVX2, NEON, CUDA, ...)."""
        return re.findall(r"(\w+) = 1", self.system_info)

    @property
    def amx(self) -> bool:
        from lsp_server.engine.model import has_amx

        return has_amx(self.system_info)


@dataclass(frozen=True)
class ModelRow:
    name: str
    params: str | None
    size_bytes: int | None
    state: str  # verified | present | absent
    fim: bool
    source: str
    configured: bool = False
    need_bytes: int | None = None  # weights + KV cache at the configured context, + overhead
    problem: str | None = None  # why the configured model cannot be used (verification, ...)


@dataclass(frozen=True)
class Speed:
    """One measurement on one model (as llama-bench's pp / tg, on our own load path)."""

    model: str
    size_bytes: int
    threads: int
    gpu_layers: int
    load_s: float
    prompt_tokens: int
    prompt_s: float
    decode_tokens: int
    decode_s: float

    @property
    def prompt_tps(self) -> float:
        return self.prompt_tokens / self.prompt_s if self.prompt_s > 0 else 0.0

    @property
    def decode_tps(self) -> float:
        return self.decode_tokens / self.decode_s if self.decode_s > 0 else 0.0


@dataclass(frozen=True)
class Estimate:
    """Expected latency of one model on this machine, from the measured speed scaled by file size
    (both phases are bound by reading the weights on a CPU): an estimate, not a measurement."""

    model: str
    pause_s: float  # a typing pause in a file whose window is cached
    new_file_s: float  # the first suggestion in a file just opened (the quick window)


@dataclass(frozen=True)
class SettingRow:
    key: str
    value: Any
    origin: str  # "default" | "settings file" | "CLI --flag"


@dataclass
class Facts:
    """Everything `assess` judges, collected once."""

    python: str
    versions: dict[str, str | None]
    llama_pin: str | None
    build: Build
    cores: int
    free_ram: int | None
    total_ram: int | None
    gpu_hardware: list[str]
    settings: Settings
    settings_rows: list[SettingRow] = field(default_factory=list)
    settings_problems: list[str] = field(default_factory=list)
    catalog_error: str | None = None
    models: list[ModelRow] = field(default_factory=list)
    cache_dir: str = ""
    speed: Speed | None = None
    speed_error: str | None = None
    speed_skipped: bool = False
    busy_cores: float | None = None  # cores other processes kept busy just before the speed test


# --- judging (pure) -------------------------------------------------------------------------------


def estimate(speed: Speed, size_bytes: int) -> Estimate:
    """Latency of a model of `size_bytes` from `speed` measured on another (see `Estimate`)."""
    scale = speed.size_bytes / size_bytes
    prompt_tps = max(speed.prompt_tps * scale, 1e-9)
    decode_tps = max(speed.decode_tps * scale, 1e-9)
    line_s = defaults.DOCTOR_LINE_TOKENS / decode_tps
    pause_tokens = defaults.DOCTOR_PAUSE_TYPED_TOKENS + defaults.FRESH_HEAD_TOKENS + 1
    return Estimate("", pause_tokens / prompt_tps + line_s,
                    defaults.QUICK_WINDOW_TOKENS / prompt_tps + line_s)


def estimates(facts: Facts) -> dict[str, Estimate]:
    """Per FIM model of known size, when the speed test ran."""
    if facts.speed is None:
        return {}
    out = {}
    for row in facts.models:
        if row.fim and row.size_bytes:
            out[row.name] = dataclasses.replace(estimate(facts.speed, row.size_bytes), model=row.name)
    return out


def _pip(args: str) -> str:
    return f"{sys.executable} -m pip install {args}"


def _gpu_build_command(hardware: str, pin: str | None) -> str:
    flag = "-DGGML_METAL=on" if "Metal" in hardware else "-DGGML_CUDA=on"
    if "ROCm" in hardware:
        flag = "-DGGML_HIP=on"
    version = f"llama-cpp-python=={pin}" if pin else "llama-cpp-python"
    return (f'CMAKE_ARGS="{flag}" '
            + _pip(f"--force-reinstall --no-binary llama-cpp-python {version}")
            + " (README: GPU)")


def assess(facts: Facts) -> list[Finding]:
    """What is wrong, worst first; each with the command or setting that fixes it."""
    out: list[Finding] = []
    s = facts.settings
    b = facts.build
    local = s.backend == LOCAL
    if b.import_error is not None:
        version = f"=={facts.llama_pin}" if facts.llama_pin else ""
        out.append(Finding(FIX, f"llama.cpp does not load: {b.import_error}",
                           _pip(f"--force-reinstall llama-cpp-python{version}")
                           + " (or `make install` in a checkout)"))
    if facts.catalog_error is not None:
        out.append(Finding(FIX, f"the model catalogue cannot be read: {facts.catalog_error}",
                           "correct the file and field the message names"))
    present = [m for m in facts.models if m.fim and m.state != ABSENT]
    configured = next((m for m in facts.models if m.configured), None)
    if local and configured is not None:
        pull = f"starcoder-lsp models pull {configured.name}"
        if not configured.fim:
            out.append(Finding(FIX, f"the model '{configured.name}' has no fill-in-the-middle "
                                    "tokens, so it cannot complete code",
                               f"set model to a FIM code model, e.g. {defaults.DEFAULT_MODEL}"))
        elif configured.state == ABSENT:
            is_path = configured.source.startswith("path:")
            out.append(Finding(FIX, f"the configured model '{configured.name}' is not on this "
                                    "machine",
                               "check the path in the model setting" if is_path else
                               f"run `{pull}` ({configured.source})"))
        elif configured.problem:
            out.append(Finding(FIX, configured.problem, f"run `{pull}`"))
        need, free = configured.need_bytes, facts.free_ram
        if configured.fim and need and free and need > free:
            problem = (f"'{configured.name}' needs ~{gib(need)} (weights + KV cache for "
                       f"{s.context_tokens} tokens) and {gib(free)} is free")
            fix = ("close other programs, lower contextTokens, set memoryPolicy to \"shrink\", or "
                   "choose a smaller model")
            out.append(Finding(FIX if s.memory_policy == REFUSE else WARN, problem, fix))
    elif local and configured is None and facts.catalog_error is None:
        out.append(Finding(FIX, f"the configured model '{s.model}' is neither in the catalogue "
                                "nor a .gguf file", "see `starcoder-lsp models list`"))
    no_model_fix = configured is not None and configured.fim and local  # said above instead
    if not present and facts.catalog_error is None and not no_model_fix:
        size = next((f" ({size_text(m.size_bytes)})" for m in facts.models
                     if m.name == defaults.DEFAULT_MODEL and m.size_bytes), "")
        out.append(Finding(FIX if local else WARN, "no model is downloaded",
                           f"run `starcoder-lsp models pull {defaults.DEFAULT_MODEL}`{size}"))
    if facts.speed_error is not None:
        out.append(Finding(FIX, f"the speed test could not run: {facts.speed_error}",
                           "pull the model again (`starcoder-lsp models pull NAME`) or reinstall "
                           "llama-cpp-python"))
    for problem in facts.settings_problems:
        out.append(Finding(WARN, problem, f"edit {user_settings_path()} (or the flag)"))
    installed = facts.versions.get("llama-cpp-python")
    if b.import_error is None and facts.llama_pin and installed and installed != facts.llama_pin:
        out.append(Finding(WARN, f"llama-cpp-python {installed} is installed; this starcoder-lsp "
                                 f"was tested with {facts.llama_pin} (it uses llama.cpp's "
                                 "low-level calls, which change between versions)",
                           _pip(f"llama-cpp-python=={facts.llama_pin}")))
    if b.import_error is None and not b.gpu_offload and facts.gpu_hardware:
        hardware = facts.gpu_hardware[0]
        out.append(Finding(WARN, f"this machine has a GPU ({hardware}) but the installed "
                                 "llama.cpp is a CPU-only build",
                           _gpu_build_command(hardware, facts.llama_pin)))
    if b.import_error is None and not b.gpu_offload and s.n_gpu_layers > 0:
        out.append(Finding(WARN, f"nGpuLayers is {s.n_gpu_layers} but this llama.cpp build "
                                 "cannot offload: every layer runs on the CPU",
                           "install a GPU build (README: GPU) or set nGpuLayers to -1"))
    if b.import_error is None and b.amx:
        out.append(Finding(WARN, "this llama.cpp was built with AMX, whose kernels crash on "
                                 "Q4_K models here: it runs without repacked weights (slower)",
                           "rebuild it without AMX: `make install` in a checkout"))
    if local and s.threads > facts.cores:
        out.append(Finding(WARN, f"threads is {s.threads} but this machine has {facts.cores} "
                                 "cores: llama.cpp's threads then wait on each other",
                           f"set threads to {facts.cores} or fewer"))
    busy = facts.busy_cores
    if local and busy is not None and busy >= defaults.DOCTOR_BUSY_CORES:
        fewer = max(1, facts.cores - round(busy))
        out.append(Finding(WARN, f"other processes keep ~{busy:.1f} of {facts.cores} cores busy: "
                                 "the speed test and completions run slower than this machine can",
                           f"set threads to {fewer} while they run (llama.cpp's threads wait on "
                           "busy cores), and run the doctor again when the machine is quieter"
                           if fewer < s.threads else "run the doctor again when the machine is "
                           "quieter"))
    est = estimates(facts)
    slow = est.get(configured.name) if configured is not None else None
    if local and slow is not None and slow.pause_s > defaults.DOCTOR_SLOW_PAUSE_S:
        faster = [m for m, e in est.items() if e.pause_s <= defaults.DOCTOR_SLOW_PAUSE_S]
        out.append(Finding(WARN, f"'{slow.model}' is slow on this machine: ~{slow.pause_s:.1f} s "
                                 "from a typing pause to a suggestion (estimate)",
                           f"choose a smaller model ({', '.join(faster[:3])})" if faster else
                           "choose a smaller model, or a GPU (README: GPU, Teams)"))
    out.sort(key=lambda f: f.level != FIX)
    return out


def exit_status(findings: list[Finding]) -> int:
    if any(f.level == FIX for f in findings):
        return EXIT_MUST_FIX
    return EXIT_WARNINGS if findings else EXIT_HEALTHY


def gib(n: int | None) -> str:
    return "?" if n is None else f"{n / 2**30:.1f} GiB"


def size_text(n: int | None) -> str:
    return "?" if not n else f"{n / 1e6:.0f} MB" if n < 1e9 else f"{n / 1e9:.1f} GB"

"""User settings: one typed object, merged from CLI < initializationOptions < workspace/configuration.

Editors send camelCase JSON (section ``starcoder``); a bad value must never crash the server, so
each field is validated on its own: an invalid one keeps its previous value and yields a message
for ``window/showMessage``.
"""

from __future__ import annotations

import dataclasses
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import platformdirs

from lsp_server import defaults


@dataclass(frozen=True)
class Settings:
    model: str = defaults.DEFAULT_MODEL
    models_file: str | None = None
    n_gpu_layers: int = defaults.N_GPU_LAYERS
    threads: int = field(default_factory=defaults.default_threads)
    context_tokens: int = defaults.CONTEXT_TOKENS
    max_tokens: int | None = None  # None: the model entry's recommendation
    temperature: float | None = None  # None: the model entry's recommendation
    enable: bool = True
    idle_unload_minutes: float = defaults.IDLE_UNLOAD_MINUTES
    backend: str = "local"
    endpoint: str | None = None
    api_key_env: str | None = None
    memory_policy: str = "refuse"  # or "shrink": lower the context when memory is short

    def replace(self, **changes: Any) -> Settings:
        return dataclasses.replace(self, **changes)


def _int_range(lo: int, hi: int) -> Callable[[Any], int]:
    def check(v: Any) -> int:
        if isinstance(v, bool) or not isinstance(v, int | float) or int(v) != v:
            raise ValueError("must be a whole number")
        if not lo <= int(v) <= hi:
            raise ValueError(f"must be between {lo} and {hi}")
        return int(v)

    return check


def _float_range(lo: float, hi: float) -> Callable[[Any], float]:
    def check(v: Any) -> float:
        if isinstance(v, bool) or not isinstance(v, int | float):
            raise ValueError("must be a number")
        if not lo <= float(v) <= hi:
            raise ValueError(f"must be between {lo} and {hi}")
        return float(v)

    return check


def _string(v: Any) -> str:
    if not isinstance(v, str) or not v.strip():
        raise ValueError("must be a non-empty string")
    return v.strip()


def _bool(v: Any) -> bool:
    if not isinstance(v, bool):
        raise ValueError("must be true or false")
    return v


def _choice(*options: str) -> Callable[[Any], str]:
    def check(v: Any) -> str:
        if v not in options:
            raise ValueError(f"must be one of {', '.join(options)}")
        return str(v)

    return check


# camelCase key -> (field name, validator). `None` in JSON resets a field to its default.
_FIELDS: dict[str, tuple[str, Callable[[Any], Any]]] = {
    "model": ("model", _string),
    "modelsFile": ("models_file", _string),
    "nGpuLayers": ("n_gpu_layers", _int_range(-1, 10_000)),
    "threads": ("threads", _int_range(1, 1024)),
    "contextTokens": ("context_tokens", _int_range(256, defaults.MAX_CONTEXT_TOKENS)),
    "maxTokens": ("max_tokens", _int_range(1, 4096)),
    "temperature": ("temperature", _float_range(0.0, 2.0)),
    "enable": ("enable", _bool),
    "idleUnloadMinutes": ("idle_unload_minutes", _float_range(0.0, 7 * 24 * 60)),
    "backend": ("backend", _choice("local", "llama-server", "openai")),
    "endpoint": ("endpoint", _string),
    "apiKeyEnv": ("api_key_env", _string),
    "memoryPolicy": ("memory_policy", _choice("refuse", "shrink")),
}


def merge(base: Settings, raw: Any) -> tuple[Settings, list[str]]:
    """Apply an editor's settings object to `base`; return the result and one message per problem."""
    if raw is None or raw == []:  # Neovim encodes an empty table as []
        return base, []
    if isinstance(raw, Mapping) and isinstance(raw.get(defaults.SETTINGS_SECTION), Mapping):
        raw = raw[defaults.SETTINGS_SECTION]  # accept {"starcoder": {...}} as well as {...}
    if not isinstance(raw, Mapping):
        return base, [f"settings must be an object, got {type(raw).__name__}"]
    changes: dict[str, Any] = {}
    problems: list[str] = []
    fresh = Settings()
    for key, value in raw.items():
        if key not in _FIELDS:
            continue  # unknown keys belong to other tools (e.g. the VS Code extension's own)
        name, check = _FIELDS[key]
        if value is None:
            changes[name] = getattr(fresh, name)
            continue
        try:
            changes[name] = check(value)
        except ValueError as exc:
            problems.append(f"starcoder.{key} {exc} (got {value!r}); keeping {getattr(base, name)!r}")
    return base.replace(**changes), problems


def to_camel(settings: Settings) -> dict[str, Any]:
    """The camelCase view, for logs and for the CLI to pass settings as initializationOptions."""
    return {key: getattr(settings, name) for key, (name, _) in _FIELDS.items()}


def user_settings_path() -> Path:
    """`settings.toml` in the user's config dir: settings for when no editor sends any."""
    return Path(platformdirs.user_config_dir(defaults.APP_NAME)) / "settings.toml"


def load_user_settings(base: Settings) -> tuple[Settings, list[str]]:
    """Apply the user's settings file (camelCase keys, optionally under [starcoder]) to `base`."""
    path = user_settings_path()
    if not path.is_file():
        return base, []
    try:
        with path.open("rb") as fh:
            raw = tomllib.load(fh)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        return base, [f"{path}: {exc}; ignored"]
    settings, problems = merge(base, raw)
    return settings, [f"{path}: {p}" for p in problems]

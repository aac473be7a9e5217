"""User settings: one typed object, merged from CLI < initializationOptions < workspace/configuration.

Editors send camelCase JSON (section ``starcoder``); a bad value must never crash the server, so
each field is validated on its own: an invalid one keeps its previous value and yields a message
for ``window/showMessage``.
"""

from __future__ import annotations

import dataclasses
import re
import tomllib
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import platformdirs

from lsp_server import defaults
from lsp_server.files import FileRefused, read_bounded


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
    exclude: tuple[str, ...] = ()  # the user's own globs of files never used nor completed
    gitignore: bool = False  # also exclude what the workspace's .gitignore matches

    def load_key(self) -> tuple[object, ...]:
        """The fields that shape the loaded model: a change in any of them means a reload."""
        return (self.model, self.models_file, self.context_tokens, self.threads,
                self.n_gpu_layers, self.memory_policy, self.backend, self.endpoint,
                self.api_key_env)

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


# Only variables named for this tool: any wider pattern (`*_API_KEY`, `*_TOKEN`) admits other
# tools' credentials (OPENAI_API_KEY, GITHUB_TOKEN, AWS_SESSION_TOKEN…), and a list of names to
# refuse is never complete. A setting from a cloned repository can then read nothing else.
API_KEY_ENV = re.compile(r"STARCODER_[A-Z0-9_]{1,64}")


def _api_key_env(v: Any) -> str:
    name = _string(v)
    if not API_KEY_ENV.fullmatch(name):
        raise ValueError("must be the name of an environment variable that starts with "
                         "STARCODER_ (e.g. STARCODER_API_KEY: `export STARCODER_API_KEY=…`); "
                         "other variables hold other tools' secrets and are never read")
    return name


def _endpoint(v: Any) -> str:
    text = _string(v)
    if any(ord(c) < 33 or c == "\x7f" for c in text):
        raise ValueError("must be a URL without spaces or control characters")
    parts = urllib.parse.urlsplit(text if "://" in text else "http://" + text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an http:// or https:// URL with a host")
    if "@" in parts.netloc:
        raise ValueError("must not contain a user name or password (put the key in the "
                         "environment variable that starcoder.apiKeyEnv names)")
    if parts.query or parts.fragment:
        raise ValueError("must not have a query or fragment")
    return text


def _globs(v: Any) -> tuple[str, ...]:
    if isinstance(v, str):
        v = [v]
    if not isinstance(v, list | tuple) or not all(isinstance(g, str) for g in v):
        raise ValueError("must be a list of glob patterns (strings)")
    globs = tuple(g.strip() for g in v if g.strip())
    if len(globs) > defaults.MAX_EXCLUDE_GLOBS or any(
            len(g) > defaults.MAX_GLOB_CHARS or "\x00" in g for g in globs):
        raise ValueError(f"takes at most {defaults.MAX_EXCLUDE_GLOBS} patterns of at most "
                         f"{defaults.MAX_GLOB_CHARS} characters")
    return globs


def redact_url(text: str) -> str:
    """`text` with any user name or password of a URL in it replaced (for messages and logs)."""
    return re.sub(r"(?<=://)[^/@\s]*@", "***@", text)


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
    "endpoint": ("endpoint", _endpoint),
    "apiKeyEnv": ("api_key_env", _api_key_env),
    "memoryPolicy": ("memory_policy", _choice("refuse", "shrink")),
    "exclude": ("exclude", _globs),
    "gitignore": ("gitignore", _bool),
}


_REMOTE_KEYS = frozenset({"backend", "endpoint", "apiKeyEnv"})


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
    refused: set[str] = set()
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
            got = redact_url(repr(value))[:200]
            kept = redact_url(repr(getattr(base, name)))
            problems.append(f"starcoder.{key} {exc} (got {got}); keeping {kept}")
            refused.add(key)
    if refused & _REMOTE_KEYS:
        # They only make sense together: a refused key name with an accepted endpoint would
        # still send code (and maybe another key) somewhere. Nothing is contacted on their basis.
        for key in _REMOTE_KEYS:
            changes.pop(_FIELDS[key][0], None)
        problems.append("the remote engine settings (backend, endpoint, apiKeyEnv) were not "
                        "changed because one of them was refused")
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
    try:
        raw = tomllib.loads(read_bounded(path, defaults.MAX_CONFIG_FILE_BYTES,
                                         "settings file").decode("utf-8"))
    except FileNotFoundError:
        return base, []
    except (OSError, FileRefused, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        return base, [f"{path}: {exc}; ignored"]
    settings, problems = merge(base, raw)
    return settings, [f"{path}: {p}" for p in problems]

"""User settings: one schema, merged from CLI < initializationOptions < workspace/configuration.

Each field of `Settings` carries its own metadata (validator, `reload`, CLI flag, description), and
everything else is derived from it: the camelCase keys editors send (section ``starcoder``), the
`serve`/`complete`/`explain` flags, the key whose change means loading the model again. The README
table, the VS Code extension's `package.json` and the keys it sends are checked against it
(tests/test_settings_drift.py), so a setting cannot exist in one place and not another.

A bad value must never crash the server, so each field is validated on its own: an invalid one
keeps its previous value and yields a message for ``window/showMessage``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
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

# Where generation runs (`backend`): the only spelling of these names in Python.
LOCAL = "local"  # llama.cpp inside the server process
LLAMA_SERVER = "llama-server"  # llama.cpp's own server: native /infill
OPENAI = "openai"  # any OpenAI-compatible /v1/completions
BACKENDS = (LOCAL, LLAMA_SERVER, OPENAI)
# What to do when the model does not fit in free memory (`memoryPolicy`).
REFUSE = "refuse"
SHRINK = "shrink"  # lower the context instead
MEMORY_POLICIES = (REFUSE, SHRINK)


@dataclass(frozen=True)
class Check:
    """A validator plus what it accepts, which the CLI and the drift checks read (JSON schema terms)."""

    fn: Callable[[Any], Any]
    kind: str  # "integer" | "number" | "string" | "boolean" | "array" (of strings)
    lo: float | None = None
    hi: float | None = None
    choices: tuple[str, ...] = ()

    def __call__(self, value: Any) -> Any:
        return self.fn(value)

    def clamp(self, value: Any) -> Any:
        """`value` moved into range (for CLI flags that clamp instead of refusing)."""
        if self.lo is not None and self.hi is not None:
            return max(self.lo, min(value, self.hi))
        return value


def _int_range(lo: int, hi: int) -> Check:
    def check(v: Any) -> int:
        if isinstance(v, bool) or not isinstance(v, int | float) or int(v) != v:
            raise ValueError("must be a whole number")
        if not lo <= int(v) <= hi:
            raise ValueError(f"must be between {lo} and {hi}")
        return int(v)

    return Check(check, "integer", lo, hi)


def _float_range(lo: float, hi: float) -> Check:
    def check(v: Any) -> float:
        if isinstance(v, bool) or not isinstance(v, int | float):
            raise ValueError("must be a number")
        if not lo <= float(v) <= hi:
            raise ValueError(f"must be between {lo} and {hi}")
        return float(v)

    return Check(check, "number", lo, hi)


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


def _choice(*options: str) -> Check:
    def check(v: Any) -> str:
        if v not in options:
            raise ValueError(f"must be one of {', '.join(options)}")
        return str(v)

    return Check(check, "string", choices=options)


_TEXT = Check(_string, "string")
_FLAG = Check(_bool, "boolean")


@dataclass(frozen=True)
class Meta:
    """What one setting is, beside its type and default (which the dataclass field holds)."""

    check: Check
    doc: str  # what it does, in markdown: the README table and (without markup) the CLI's help
    reload: bool = False  # a change means loading the model (or connecting) again
    cli: bool = False  # also a flag of `serve`, `complete`, `explain`, `demo`: --kebab-case name
    cli_clamp: bool = False  # that flag's value is moved into range instead of refused
    remote: bool = False  # a remote-engine setting: these change together or not at all
    default_doc: str | None = None  # the README's default when it depends on the machine or model


def _setting(default: Any = dataclasses.MISSING, *, factory: Callable[[], Any] | None = None,
             **meta: Any) -> Any:
    """A `Settings` field carrying its `Meta` (its default is the field's own)."""
    if factory is not None:
        return field(default_factory=factory, metadata={"setting": Meta(**meta)})
    return field(default=default, metadata={"setting": Meta(**meta)})


@dataclass(frozen=True)
class Settings:
    """The server's settings; each field's `_setting(...)` is its entry in the schema."""

    model: str = _setting(
        defaults.DEFAULT_MODEL, check=_TEXT, reload=True, cli=True,
        doc="a `models.toml` name or a path to a `.gguf` file")
    models_file: str | None = _setting(
        None, check=_TEXT, reload=True, cli=True,
        doc="an extra `models.toml` (catalogue file), read after the bundled one")
    n_gpu_layers: int = _setting(
        defaults.N_GPU_LAYERS, check=_int_range(-1, 10_000), reload=True, cli=True,
        doc="layers to offload to the GPU; -1 = all when the llama.cpp build can, else 0")
    threads: int = _setting(
        factory=defaults.default_threads, check=_int_range(1, 1024), reload=True, cli=True,
        default_doc="all cores",
        doc="CPU threads for the model; llama-cpp-python alone would use half the cores")
    context_tokens: int = _setting(
        defaults.CONTEXT_TOKENS, check=_int_range(256, defaults.MAX_CONTEXT_TOKENS), reload=True,
        cli=True, cli_clamp=True, doc=f"prompt window in tokens (≤ {defaults.MAX_CONTEXT_TOKENS})")
    max_tokens: int | None = _setting(
        None, check=_int_range(1, 4096), cli=True, default_doc="the model's",
        doc="tokens to generate at most")
    temperature: float | None = _setting(
        None, check=_float_range(0.0, 2.0), default_doc="the model's (0 = greedy)",
        doc="sampling temperature")
    enable: bool = _setting(True, check=_FLAG, doc="turn completions off/on without restarting")
    idle_unload_minutes: float = _setting(
        defaults.IDLE_UNLOAD_MINUTES, check=_float_range(0.0, 7 * 24 * 60),
        doc="free the model after this idle time (0 = never); status `unloaded`, the next request "
            "loads it again")
    backend: str = _setting(
        LOCAL, check=_choice(*BACKENDS), reload=True, cli=True, remote=True,
        doc="where generation runs: `local` (in-process llama.cpp), or a remote engine, "
            "`llama-server` or `openai` (docs/team.md)")
    endpoint: str | None = _setting(
        None, check=Check(_endpoint, "string"), reload=True, cli=True, remote=True,
        doc="the remote engine's URL: llama-server's root, or an OpenAI base URL "
            "(`https://gpu:8000/v1`); no user name or password in it")
    api_key_env: str | None = _setting(
        None, check=Check(_api_key_env, "string"), reload=True, cli=True, remote=True,
        doc="the *name* of the environment variable holding the engine's API key (never logged); "
            "must start with `STARCODER_`, e.g. `STARCODER_API_KEY`")
    memory_policy: str = _setting(
        REFUSE, check=_choice(*MEMORY_POLICIES), reload=True,
        doc="when weights + KV cache exceed free memory: `refuse` with a message, or `shrink` the "
            "context (warning)")
    exclude: tuple[str, ...] = _setting(
        (), check=Check(_globs, "array"),
        doc="files never completed, explained or used as context, in `.gitignore` syntax "
            "(`[\"*.tfvars\", \"config/prod/\"]`), on top of the built-in secrets list")
    gitignore: bool = _setting(
        False, check=_FLAG, doc="also exclude what the workspace's `.gitignore` files match")
    complete_after_deletion: bool = _setting(
        False, check=_FLAG, doc="suggest after a deletion too (off: deleting shows no "
                                "suggestion until you type or ask for one)")

    def replace(self, **changes: Any) -> Settings:
        return dataclasses.replace(self, **changes)

    def load_key(self) -> tuple[object, ...]:
        """The values of the settings that shape the loaded model (or remote connection): when
        this changes, the model must be loaded again; any other change applies at once."""
        return tuple(getattr(self, f.name) for f in SCHEMA if f.reload)


@dataclass(frozen=True)
class Field:
    """One setting of the schema: its names everywhere, its validator and its metadata."""

    name: str  # the `Settings` attribute (and the argparse dest)
    key: str  # camelCase, as editors, settings.toml and package.json (`starcoder.<key>`) spell it
    meta: Meta

    @property
    def check(self) -> Check:
        return self.meta.check

    @property
    def reload(self) -> bool:
        return self.meta.reload

    @property
    def flag(self) -> str | None:
        """The CLI flag (`--context-tokens`), or None when the setting has none."""
        return "--" + self.name.replace("_", "-") if self.meta.cli else None

    def default(self) -> Any:
        return getattr(Settings(), self.name)

    @property
    def default_text(self) -> str | None:
        """The default as the README and `--help` show it (None: unset)."""
        if self.meta.default_doc is not None:
            return self.meta.default_doc
        value = self.default()
        if value is None or isinstance(value, str):
            return value
        return json.dumps(list(value) if isinstance(value, tuple) else value)

    @property
    def help(self) -> str:
        """`doc` and the default as plain text for argparse (which formats %)."""
        text = self.meta.doc + (f" (default: {self.default_text})" if self.default_text else "")
        return re.sub(r"[`*]", "", text).replace("%", "%%")


def _schema() -> tuple[Field, ...]:
    def camel(name: str) -> str:
        head, *rest = name.split("_")
        return head + "".join(part.title() for part in rest)

    return tuple(Field(f.name, camel(f.name), f.metadata["setting"]) for f in dataclasses.fields(Settings))


SCHEMA = _schema()
BY_KEY: dict[str, Field] = {f.key: f for f in SCHEMA}


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
        if key not in BY_KEY:
            continue  # unknown keys belong to other tools (e.g. the VS Code extension's own)
        f = BY_KEY[key]
        if value is None:  # `null` resets a field to its default
            changes[f.name] = getattr(fresh, f.name)
            continue
        try:
            changes[f.name] = f.check(value)
        except ValueError as exc:
            got = redact_url(repr(value))[:200]
            kept = redact_url(repr(getattr(base, f.name)))
            problems.append(f"starcoder.{key} {exc} (got {got}); keeping {kept}")
            refused.add(key)
    remote = [f for f in SCHEMA if f.meta.remote]
    if refused & {f.key for f in remote}:
        # They only make sense together: a refused key name with an accepted endpoint would
        # still send code (and maybe another key) somewhere. Nothing is contacted on their basis.
        for f in remote:
            changes.pop(f.name, None)
        problems.append(f"the remote engine settings ({', '.join(f.key for f in remote)}) were not "
                        "changed because one of them was refused")
    return base.replace(**changes), problems


def to_camel(settings: Settings) -> dict[str, Any]:
    """The camelCase view, for logs and for the CLI to pass settings as initializationOptions."""
    return {f.key: getattr(settings, f.name) for f in SCHEMA}


def user_settings_path() -> Path:
    """`settings.toml` in the user's config dir: settings for when no editor sends any."""
    return Path(platformdirs.user_config_dir(defaults.APP_NAME)) / "settings.toml"


def read_user_settings() -> tuple[dict[str, Any], list[str]]:
    """The user's settings file as a table (empty when absent), and why it could not be read."""
    path = user_settings_path()
    try:
        raw = tomllib.loads(read_bounded(path, defaults.MAX_CONFIG_FILE_BYTES,
                                         "settings file").decode("utf-8"))
    except FileNotFoundError:
        return {}, []
    except (OSError, FileRefused, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        return {}, [f"{path}: {exc}; ignored"]
    return raw, []


def load_user_settings(base: Settings) -> tuple[Settings, list[str]]:
    """Apply the user's settings file (camelCase keys, optionally under [starcoder]) to `base`."""
    raw, problems = read_user_settings()
    if problems:
        return base, problems
    settings, problems = merge(base, raw)
    return settings, [f"{user_settings_path()}: {p}" for p in problems]


def cli_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The settings given as CLI flags (argparse's namespace), camelCase; flags that clamp are
    moved into range here (the editor's values are refused instead)."""
    flags: dict[str, Any] = {}
    for f in SCHEMA:
        value = getattr(args, f.name, None) if f.flag else None
        if value is not None:
            flags[f.key] = f.check.clamp(value) if f.meta.cli_clamp and value else value
    return flags

"""The model catalogue: families (FIM markers, stop tokens), presets, and ad-hoc `.gguf` files.

`models.toml` is the user-facing source of truth; this module turns it into the frozen, validated
objects of `lsp_server.models.spec` so the rest of the server never touches raw TOML. Every
problem a user can cause (a typo, a wrong type, a missing file, a model without FIM tokens)
becomes a `CatalogError` whose message names the file, entry and field, never a traceback.
"""

from __future__ import annotations

import difflib
import os
import re
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import platformdirs

from lsp_server import defaults
from lsp_server.files import FileRefused, read_bounded
from lsp_server.models.family import pick_family
from lsp_server.models.gguf import read_gguf_info
from lsp_server.models.spec import CatalogError, Family, ModelSpec, Source, SourceKind

__all__ = [
    "Catalog",
    "bundled_catalog_path",
    "default_catalog_paths",
    "load_catalog",
    "user_catalog_path",
]

_SOURCE_KINDS: tuple[SourceKind, ...] = ("hf", "pypi", "path")
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
# What reaches `pip download` must be a plain project name and version (PEP 508 / 440 spelling):
# never an option ("--index-url=…"), a URL or a path.
_PYPI_NAME_RE = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?$")
_PYPI_VERSION_RE = re.compile(r"^[0-9][A-Za-z0-9.+!_-]*$")


@dataclass(frozen=True)
class Catalog:
    """Families and models by name, in file order, plus the files they were read from."""

    families: Mapping[str, Family]
    models: Mapping[str, ModelSpec]
    files: tuple[Path, ...] = ()

    def resolve(self, name_or_path: str) -> ModelSpec:
        """A catalogue name, or a path to a `.gguf` whose family is detected from its vocabulary."""
        text = name_or_path.strip()
        if not text:
            raise CatalogError(f"no model given; known: {', '.join(self.models)}")
        if text in self.models:
            return self.models[text]
        folded = {n.lower(): n for n in self.models}
        if text.lower() in folded:
            return self.models[folded[text.lower()]]
        if _looks_like_path(text):
            return self._resolve_path(Path(text).expanduser())
        close = difflib.get_close_matches(text, list(self.models), n=3)
        hint = f" (did you mean {', '.join(repr(c) for c in close)}?)" if close else ""
        raise CatalogError(
            f"unknown model '{text}'{hint}; known: {', '.join(self.models)}; "
            "or give the path to a .gguf file"
        )

    def _resolve_path(self, path: Path) -> ModelSpec:
        path = path.resolve()
        info = read_gguf_info(path)
        family = pick_family(info, self.families.values(), path)
        return ModelSpec(
            name=path.stem,
            family=family,
            context_length=info.context_length or defaults.CONTEXT_TOKENS,
            source=Source(kind="path", path=path),
            size_bytes=path.stat().st_size,
            description=f"local file ({info.name or info.architecture})",
        )


def _looks_like_path(text: str) -> bool:
    return (
        text.lower().endswith(".gguf")
        or "/" in text
        or os.sep in text
        or text.startswith("~")
        or Path(text).expanduser().exists()
    )


# --- loading models.toml --------------------------------------------------------------------------


def bundled_catalog_path() -> Path:
    """The catalogue shipped with the package (wheel), else the checkout's top-level models.toml."""
    here = Path(__file__).resolve()
    candidates = (
        here.parent.parent / "data" / defaults.MODELS_FILE_NAME,
        here.parents[2] / defaults.MODELS_FILE_NAME,
    )
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise CatalogError(
        f"the bundled model catalogue is missing (looked for {candidates[0]} and "
        f"{candidates[1]}); reinstall starcoder-lsp"
    )


def user_catalog_path() -> Path:
    """Where a user's own models.toml lives (it need not exist)."""
    return Path(platformdirs.user_config_dir(defaults.APP_NAME)) / defaults.MODELS_FILE_NAME


def default_catalog_paths() -> list[Path]:
    """The bundled catalogue, then the user's models.toml when it exists."""
    paths = [bundled_catalog_path()]
    user = user_catalog_path()
    if user.is_file():
        paths.append(user)
    return paths


def load_catalog(
    paths: Sequence[Path] | None = None, models_file: Path | str | None = None
) -> Catalog:
    """Read catalogue files in order; later files add entries or override fields of earlier ones.

    `paths` defaults to `default_catalog_paths()`; `models_file` (the `modelsFile` setting or
    `--models-file`) is read last. A field given in a later file replaces that field only, so a
    user can change `max_tokens` of a preset in two lines; a later `source` replaces the whole
    source table.
    """
    files = list(default_catalog_paths() if paths is None else (Path(p) for p in paths))
    if models_file:
        files.append(Path(models_file).expanduser())
    raw = _RawCatalog()
    for path in files:
        raw.merge(path, _read_toml(path))
    return raw.build(tuple(files))


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        data = read_bounded(path, defaults.MAX_CONFIG_FILE_BYTES, "models file")
        return tomllib.loads(data.decode("utf-8"))
    except FileNotFoundError:
        raise CatalogError(f"{path}: models file not found") from None
    except FileRefused as exc:
        raise CatalogError(str(exc)) from None
    except UnicodeDecodeError:
        raise CatalogError(f"{path}: not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise CatalogError(f"{path}: invalid TOML: {exc}") from None
    except OSError as exc:
        raise CatalogError(f"{path}: cannot read: {exc.strerror or exc}") from None


_FAMILY_FIELDS = frozenset(
    {
        "description", "architectures", "fim_prefix", "fim_suffix", "fim_middle", "fim_pad",
        "repo_name", "file_sep", "filename", "spm", "stop", "keep_suffix",
    }
)  # fmt: skip
_MODEL_FIELDS = frozenset(
    {
        "family", "description", "params", "context_length", "source", "sha256", "size_bytes",
        "max_tokens", "temperature",
    }
)  # fmt: skip
_SOURCE_FIELDS: dict[str, frozenset[str]] = {
    "hf": frozenset({"kind", "repo", "file", "revision"}),
    "pypi": frozenset({"kind", "package", "version", "parts", "data_file"}),
    "path": frozenset({"kind", "path"}),
}


def _where(section: str, name: str) -> str:
    key = name if _NAME_RE.match(name) and "." not in name else f'"{name}"'
    return f"[{section}.{key}]"


class _RawCatalog:
    """Merged raw entries with the file each field came from (so errors can name it)."""

    def __init__(self) -> None:
        self.entries: dict[str, dict[str, dict[str, tuple[Any, Path]]]] = {
            "families": {},
            "models": {},
        }

    def merge(self, path: Path, doc: Mapping[str, Any]) -> None:
        for section, table in doc.items():
            if section not in self.entries:
                raise CatalogError(
                    f"{path}: unknown top-level key '{section}' (expected [families.NAME] "
                    "and [models.NAME] tables)"
                )
            if not isinstance(table, dict):
                raise CatalogError(f"{path}: '{section}' must be a table of entries")
            known = _FAMILY_FIELDS if section == "families" else _MODEL_FIELDS
            for name, entry in table.items():
                where = f"{path}: {_where(section, name)}"
                if not _NAME_RE.match(name):
                    raise CatalogError(
                        f"{where}: invalid name; use letters, digits, '.', '_' and '-'"
                    )
                if not isinstance(entry, dict):
                    raise CatalogError(f"{where}: must be a table, got {entry!r}")
                merged = self.entries[section].setdefault(name, {})
                for key, value in entry.items():
                    if key not in known:
                        close = difflib.get_close_matches(key, sorted(known), n=1)
                        hint = f" (did you mean '{close[0]}'?)" if close else ""
                        raise CatalogError(
                            f"{where} {key}: unknown field{hint}; known fields: "
                            f"{', '.join(sorted(known))}"
                        )
                    merged[key] = (value, path)

    def build(self, files: tuple[Path, ...]) -> Catalog:
        families = {
            name: _build_family(name, fields) for name, fields in self.entries["families"].items()
        }
        models = {
            name: _build_model(name, fields, families)
            for name, fields in self.entries["models"].items()
        }
        return Catalog(families=families, models=models, files=files)


class _Fields:
    """Typed access to one merged entry's fields, raising `CatalogError` naming file and field."""

    def __init__(self, section: str, name: str, fields: Mapping[str, tuple[Any, Path]]) -> None:
        self.section, self.name, self.fields = section, name, fields
        # Entry-level errors (a missing field) blame the last file that touched the entry.
        origins = [p for _, p in fields.values()]
        self.origin = origins[-1] if origins else Path(defaults.MODELS_FILE_NAME)

    def error(self, key: str | None, message: str) -> CatalogError:
        origin = self.fields[key][1] if key in self.fields and key is not None else self.origin
        where = _where(self.section, self.name)
        return CatalogError(f"{origin}: {where} {key + ': ' if key else ''}{message}")

    def get(self, key: str) -> Any:
        return self.fields[key][0] if key in self.fields else None

    def typed(self, key: str, check: Callable[[Any], bool], what: str) -> Any:
        value = self.get(key)
        if value is not None and not check(value):
            raise self.error(key, f"expected {what}, got {value!r}")
        return value

    def string(self, key: str, *, required: bool = False) -> str | None:
        value: str | None = self.typed(key, lambda v: isinstance(v, str), "a string")
        if required and not value:
            raise self.error(key, "is required (a non-empty string)")
        return value

    def integer(self, key: str, *, minimum: int = 0, required: bool = False) -> int | None:
        value: int | None = self.typed(
            key,
            lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= minimum,
            f"an integer >= {minimum}",
        )
        if required and value is None:
            raise self.error(key, f"is required (an integer >= {minimum})")
        return value

    def number(self, key: str) -> float | None:
        value = self.typed(
            key,
            lambda v: isinstance(v, int | float) and not isinstance(v, bool) and v >= 0,
            "a number >= 0",
        )
        return None if value is None else float(value)

    def boolean(self, key: str) -> bool | None:
        value: bool | None = self.typed(key, lambda v: isinstance(v, bool), "true or false")
        return value

    def strings(self, key: str) -> tuple[str, ...]:
        value = self.typed(
            key,
            lambda v: isinstance(v, list) and all(isinstance(s, str) and s for s in v),
            "a list of non-empty strings",
        )
        return tuple(value or ())


def _build_family(name: str, raw: Mapping[str, tuple[Any, Path]]) -> Family:
    f = _Fields("families", name, raw)
    fam = Family(
        name=name,
        fim_prefix=f.string("fim_prefix") or "",
        fim_suffix=f.string("fim_suffix") or "",
        fim_middle=f.string("fim_middle") or "",
        fim_pad=f.string("fim_pad") or None,
        repo_name=f.string("repo_name") or None,
        file_sep=f.string("file_sep") or None,
        filename=f.string("filename") or None,
        spm=bool(f.boolean("spm")),
        stop=f.strings("stop"),
        architectures=f.strings("architectures"),
        description=f.string("description") or "",
        keep_suffix=f.boolean("keep_suffix") is not False,
    )
    given = [m for m in fam.fim_markers if m]
    if given and len(given) != 3:
        raise f.error(
            None, "give all three of fim_prefix, fim_suffix, fim_middle, or none (no-FIM family)"
        )
    if fam.spm and not fam.has_fim:
        raise f.error("spm", "cannot be true for a family without FIM markers")
    return fam


def _build_model(
    name: str, raw: Mapping[str, tuple[Any, Path]], families: Mapping[str, Family]
) -> ModelSpec:
    f = _Fields("models", name, raw)
    family_name = f.string("family", required=True)
    assert family_name is not None
    if family_name not in families:
        raise f.error("family", f"unknown family '{family_name}'; known: {', '.join(families)}")
    sha = f.string("sha256")
    if sha is not None:
        sha = sha.strip().lower()
        if not _SHA256_RE.match(sha):
            raise f.error("sha256", f"expected 64 hex digits, got {sha!r}")
    context = f.integer("context_length", minimum=1, required=True)
    assert context is not None
    max_tokens = f.integer("max_tokens", minimum=1)
    temperature = f.number("temperature")
    return ModelSpec(
        name=name,
        family=families[family_name],
        context_length=context,
        source=_build_source(f),
        sha256=sha or None,
        size_bytes=f.integer("size_bytes", minimum=1),
        max_tokens=defaults.MAX_TOKENS if max_tokens is None else max_tokens,
        temperature=defaults.TEMPERATURE if temperature is None else temperature,
        description=f.string("description") or "",
        params=f.string("params"),
    )


def _build_source(f: _Fields) -> Source:
    table = f.get("source")
    if table is None:
        raise f.error("source", 'is required: a table with kind = "hf", "pypi" or "path"')
    if not isinstance(table, dict):
        raise f.error("source", f"expected a table, got {table!r}")
    kind = table.get("kind")
    if kind not in _SOURCE_KINDS:
        raise f.error("source", f"kind must be one of {', '.join(_SOURCE_KINDS)}, got {kind!r}")
    unknown = sorted(set(table) - _SOURCE_FIELDS[kind])
    if unknown:
        raise f.error(
            "source",
            f"unknown field(s) {', '.join(unknown)} for kind '{kind}'; known: "
            f"{', '.join(sorted(_SOURCE_FIELDS[kind]))}",
        )

    def text(key: str, required: bool = True) -> str | None:
        value = table.get(key)
        if value is None and not required:
            return None
        if not isinstance(value, str) or not value.strip():
            raise f.error("source", f"{key} must be a non-empty string, got {value!r}")
        return value.strip()

    if kind == "hf":
        repo = text("repo")
        if repo is None or repo.count("/") != 1:
            raise f.error("source", f"repo must look like 'owner/name', got {repo!r}")
        revision = text("revision", required=False) or "main"
        file = text("file") or ""
        if file.startswith("/") or "\\" in file or ".." in file.split("/"):
            raise f.error("source", f"file must be a path inside the repo, got {file!r}")
        return Source(kind="hf", repo=repo, file=file, revision=revision)
    if kind == "pypi":
        parts = table.get("parts", 1)
        if not isinstance(parts, int) or isinstance(parts, bool) or parts < 1:
            raise f.error("source", f"parts must be an integer >= 1, got {parts!r}")
        src = Source(
            kind="pypi",
            package=text("package"),
            version=text("version"),
            parts=parts,
            data_file=text("data_file"),
        )
        for key, template in (("package", src.package), ("data_file", src.data_file)):
            try:
                first, last = template.format(n=1), template.format(n=parts)  # type: ignore[union-attr]
            except (KeyError, IndexError, ValueError) as exc:
                raise f.error(
                    "source", f"{key} {template!r} is not a valid template over {{n}}: {exc}"
                ) from None
            if parts > 1 and first == last:
                raise f.error("source", f"{key} must contain {{n}} when parts > 1")
            if key == "package" and not (_PYPI_NAME_RE.match(first) and _PYPI_NAME_RE.match(last)):
                raise f.error("source", f"package must be a PyPI project name (letters, digits, "
                                        f"'.', '_', '-'), got {template!r}")
        if not _PYPI_VERSION_RE.match(src.version or ""):
            raise f.error("source", f"version must be a plain version such as '1.0', got "
                                    f"{src.version!r}")
        return src
    raw_path = Path(text("path") or "").expanduser()
    if not raw_path.is_absolute():
        raw_path = f.fields["source"][1].parent / raw_path
    return Source(kind="path", path=raw_path)

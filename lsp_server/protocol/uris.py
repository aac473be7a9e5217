"""What the server does with each document an editor sends, decided by its URI; and the name the
model sees for it.

Editors open far more than files: VS Code sends Untitled buffers (`untitled:Untitled-1`), notebook
cells (`vscode-notebook-cell:/p/nb.ipynb#W0sZmlsZQ==`), files of virtual workspaces
(`vscode-vfs://github/o/r/a.py`), its own settings (`vscode-userdata:`), and, from other
extensions or clients, read-only views: a diff's old side (`git:`), output channels (`output:`),
Neovim's `fugitive://` buffers. Every scheme gets a deliberate `Policy` here (the README's table
lists them); anything unknown is treated as a read-only view: no suggestions, not context, no
errors. Paths are compared as URIs (decoded, Windows drive letters folded), never through
`os.path`, so a Windows URI, a file outside the workspace or a workspace of several folders is
just another case.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath
from urllib.parse import unquote, urlsplit

from lsp_server.context.languages import extension_for


@dataclass(frozen=True)
class Policy:
    """Whether a document is completed (inline completions, code actions) and whether its text
    may be cross-file context for other documents (also after it is closed)."""

    completes: bool
    context: bool


EDITABLE = Policy(completes=True, context=True)
PRIVATE = Policy(completes=True, context=False)  # the user's own editor settings: not project code
VIEW = Policy(completes=False, context=False)  # read-only, generated or unknown

SCHEMES: dict[str, Policy] = {
    "file": EDITABLE,
    "untitled": EDITABLE,
    "vscode-notebook-cell": EDITABLE,  # a notebook's cell: its earlier cells lead the prefix
    "vscode-interactive-input": EDITABLE,  # the Python Interactive window's input box
    "vscode-vfs": EDITABLE,  # virtual workspaces (Remote Repositories)
    "vscode-remote": EDITABLE,  # a remote workspace seen from a UI-side client
    "vscode-userdata": PRIVATE,  # settings.json, keybindings.json, user snippets
    "git": VIEW,  # the old side of a diff, a file at a commit
    "output": VIEW,  # output channels (logs)
    "vscode-notebook": VIEW,  # a notebook as a whole (its cells come one by one)
    "vscode-notebook-cell-output": VIEW,
    "vscode-notebook-cell-metadata": VIEW,
    "vscode-scm": VIEW,  # the commit message box
}
NOTEBOOK_CELL = "vscode-notebook-cell"


def policy(uri: str) -> Policy:
    return SCHEMES.get(_scheme(uri), VIEW)


def _scheme(uri: str) -> str:
    head, sep, _ = uri.partition(":")
    return head.lower() if sep and head and "/" not in head else ""


@dataclass(frozen=True)
class Location:
    """A URI reduced to what containment needs: scheme, authority and decoded path segments."""

    scheme: str
    authority: str
    segments: tuple[str, ...]

    def within(self, folder: Location) -> bool:
        n = len(folder.segments)
        return ((self.scheme, self.authority) == (folder.scheme, folder.authority)
                and len(self.segments) > n and self.segments[:n] == folder.segments)


def location(uri: str) -> Location:
    """`uri` as a Location; a notebook cell is located at its notebook."""
    cell = notebook_cell(uri)
    if cell is not None:
        uri = cell[0]
    parts = urlsplit(uri)
    path = unquote(parts.path)
    segments = tuple(s for s in path.split("/") if s)
    if segments and len(segments[0]) == 2 and segments[0][1] == ":" and segments[0][0].isalpha():
        segments = (segments[0].lower(), *segments[1:])  # Windows drive: `C:` and `c%3A` alike
    return Location(parts.scheme.lower(), parts.netloc.lower(), segments)


@dataclass(frozen=True)
class Folder:
    """A workspace folder (or the root): its URI and the name shown as the repository."""

    uri: str
    name: str = ""

    @property
    def display_name(self) -> str:
        return self.name or (location(self.uri).segments or ("",))[-1]


def containing_folder(uri: str, folders: Sequence[Folder]) -> Folder | None:
    """The innermost folder that holds `uri` (several folders may nest)."""
    here = location(uri)
    best: tuple[int, Folder] | None = None
    for folder in folders:
        where = location(folder.uri)
        if here.within(where) and (best is None or len(where.segments) > best[0]):
            best = (len(where.segments), folder)
    return best[1] if best else None


def display_path(uri: str, folders: Sequence[Folder], language: str = "") -> str:
    """The path the model sees: relative to the folder holding the document, else its name.

    Untitled buffers get an extension from their language (`Untitled-1.py`), so families trained
    with file names see the language; a notebook cell is named after its notebook, with the
    cell's language for extension (`nb.ipynb` holds Python cells: `nb.py`).
    """
    here = location(uri)
    folder = containing_folder(uri, folders)
    if folder is not None:
        path = "/".join(here.segments[len(location(folder.uri).segments):])
    else:
        path = here.segments[-1] if here.segments else ""
    if not path:
        return ""
    scheme = _scheme(uri)
    if scheme == NOTEBOOK_CELL or (scheme in ("untitled", "vscode-interactive-input")
                                   and not PurePosixPath(path).suffix):
        ext = extension_for(language)
        if ext:
            return str(PurePosixPath(path).with_suffix(ext)) if scheme == NOTEBOOK_CELL \
                else path + ext
    return path


# --- notebook cells ---------------------------------------------------------------------------------
# VS Code names a cell `vscode-notebook-cell:<notebook path>#<fragment>`, the fragment being the
# cell's handle in base 7 behind a length letter, `s`, and the notebook's scheme in base64
# (CellUri.generate in VS Code's notebookCommon.ts). Handles are given in order when a notebook
# opens, so they order its cells (a cell inserted later gets a later handle wherever it is put).
_HANDLE_LENGTH_LETTERS = "WXYZabcdef"


def notebook_cell(uri: str) -> tuple[str, int] | None:
    """(notebook URI, cell handle) of a VS Code notebook cell URI; None for anything else."""
    if _scheme(uri) != NOTEBOOK_CELL:
        return None
    body, sep, fragment = uri.partition("#")
    fragment = unquote(fragment)
    cut = fragment.find("s")
    if not sep or cut <= 0:
        return None
    digits = fragment[:cut].lstrip(_HANDLE_LENGTH_LETTERS)
    encoded = fragment[cut + 1 :].strip().rstrip("=").replace("-", "+").replace("_", "/")
    try:
        handle = int(digits, 7)
        scheme = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True).decode()
    except (ValueError, binascii.Error):  # UnicodeDecodeError is a ValueError
        return None
    if not scheme.replace("-", "").replace("+", "").replace(".", "").isalnum():
        return None
    return f"{scheme}:{body[len(NOTEBOOK_CELL) + 1 :]}", handle

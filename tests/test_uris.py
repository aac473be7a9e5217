"""Pure logic: what each URI scheme gets, the name the model sees, notebook cells and their order."""

from __future__ import annotations

import pytest

from lsp_server.context.notebook import Cell, with_earlier_cells
from lsp_server.protocol import uris
from lsp_server.protocol.uris import EDITABLE, PRIVATE, VIEW, Folder

ROOT = Folder("file:///home/u/proj")
SECOND = Folder("file:///home/u/lib", "shared-lib")
WIN = Folder("file:///C:/Users/x/proj")
VFS = Folder("vscode-vfs://github/owner/repo")
FOLDERS = [ROOT, SECOND, WIN, VFS]


@pytest.mark.parametrize("uri, policy, path", [
    ("file:///home/u/proj/src/app.py", EDITABLE, "src/app.py"),
    ("file:///home/u/proj/a%20b/c.py", EDITABLE, "a b/c.py"),
    ("file:///home/u/lib/util.py", EDITABLE, "util.py"),  # the second workspace folder
    ("file:///tmp/elsewhere/lib.py", EDITABLE, "lib.py"),  # outside every folder: its name
    ("file:///home/u/projector/x.py", EDITABLE, "x.py"),  # a prefix of a folder name is not in it
    ("file:///c%3A/Users/x/proj/win.py", EDITABLE, "win.py"),  # drive letter: case and %3A
    ("file:///c%3A/Users/x/proj/sub/w.py", EDITABLE, "sub/w.py"),
    ("file:///d%3A/other/w.py", EDITABLE, "w.py"),
    ("untitled:Untitled-1", EDITABLE, "Untitled-1.py"),
    ("untitled:/home/u/proj/new.ts", EDITABLE, "new.ts"),  # named untitled: keeps its extension
    ("vscode-notebook-cell:/home/u/proj/nb/analysis.ipynb#W0sZmlsZQ%3D%3D", EDITABLE,
     "nb/analysis.py"),
    ("vscode-interactive-input:/InteractiveInput-1", EDITABLE, "InteractiveInput-1.py"),
    ("vscode-vfs://github/owner/repo/src/a.py", EDITABLE, "src/a.py"),
    ("vscode-userdata:/home/u/.config/Code/User/settings.json", PRIVATE, "settings.json"),
    # Views are never shown to the model; another scheme is never inside a `file:` folder.
    ("git:/home/u/proj/src/app.py?%7B%22ref%22%3A%22HEAD%22%7D", VIEW, "app.py"),
    ("output:extension-output-starcoder.starcoder-lsp-%231-StarCoder", VIEW,
     "extension-output-starcoder.starcoder-lsp-#1-StarCoder"),
    ("vscode-notebook:/home/u/proj/nb/analysis.ipynb", VIEW, "analysis.ipynb"),
    ("fugitive:///home/u/proj/.git//0/src/app.py", VIEW, "app.py"),
    ("not a uri", VIEW, "not a uri"),
])
def test_policy_and_display_path(uri: str, policy: uris.Policy, path: str) -> None:
    assert uris.policy(uri) == policy
    assert uris.display_path(uri, FOLDERS, "python") == path


def test_every_scheme_in_the_table_is_deliberate() -> None:
    for scheme in ("file", "untitled", "vscode-notebook-cell", "vscode-notebook", "git", "output",
                   "vscode-userdata", "vscode-vfs"):
        assert scheme in uris.SCHEMES
    assert uris.policy("FILE:///x.py") == EDITABLE  # schemes are case-insensitive


def test_innermost_folder_and_its_name() -> None:
    inner = Folder("file:///home/u/proj/packages/core")
    folders = [ROOT, inner, SECOND]
    assert uris.containing_folder("file:///home/u/proj/packages/core/a.py", folders) == inner
    assert uris.display_path("file:///home/u/proj/packages/core/a.py", folders) == "a.py"
    assert uris.containing_folder("file:///home/u/proj/b.py", folders) == ROOT
    assert uris.containing_folder("file:///tmp/b.py", folders) is None
    assert ROOT.display_name == "proj" and SECOND.display_name == "shared-lib"
    assert WIN.display_name == "proj"


@pytest.mark.parametrize("uri, expected", [
    ("vscode-notebook-cell:/p/nb.ipynb#W0sZmlsZQ%3D%3D", ("file:/p/nb.ipynb", 0)),
    ("vscode-notebook-cell:/p/nb.ipynb#W0sZmlsZQ==", ("file:/p/nb.ipynb", 0)),
    ("vscode-notebook-cell:/p/nb.ipynb#W6sZmlsZQ", ("file:/p/nb.ipynb", 6)),
    ("vscode-notebook-cell:/p/nb.ipynb#X10sZmlsZQ", ("file:/p/nb.ipynb", 7)),  # base 7
    ("vscode-notebook-cell:/p/nb.ipynb#Y100sZmlsZQ", ("file:/p/nb.ipynb", 49)),
    ("vscode-notebook-cell://host/p/nb.ipynb#W2sdnNjb2RlLXJlbW90ZQ",
     ("vscode-remote://host/p/nb.ipynb", 2)),
    ("vscode-notebook-cell:/p/nb.ipynb", None),  # no fragment
    ("vscode-notebook-cell:/p/nb.ipynb#garbage", None),
    ("vscode-notebook-cell:/p/nb.ipynb#W0s!!!", None),
    ("file:///p/nb.ipynb#W0sZmlsZQ", None),
])
def test_notebook_cell_uris(uri: str, expected: tuple[str, int] | None) -> None:
    assert uris.notebook_cell(uri) == expected


def test_cells_of_one_notebook_share_a_location() -> None:
    a = uris.location("vscode-notebook-cell:/p/nb.ipynb#W0sZmlsZQ%3D%3D")
    b = uris.location("vscode-notebook-cell:/p/nb.ipynb#W1sZmlsZQ%3D%3D")
    other = uris.location("vscode-notebook-cell:/p/other.ipynb#W0sZmlsZQ%3D%3D")
    assert a == b == uris.location("file:///p/nb.ipynb") and a != other


def test_earlier_cells_lead_in_order_markdown_as_comments() -> None:
    cells = [
        Cell(5, "python", ["print(total)\n"]),  # a later cell: left out
        Cell(2, "python", ["total = add(1, 2)"]),  # no final newline: one is added
        Cell(0, "python", ["def add(a, b):\n", "    return a + b\n"]),
        Cell(1, "markdown", ["# Adding\n", "Numbers.\n"]),
        Cell(3, "sql", ["SELECT 1\n"]),  # another language: left out
        Cell(4, "python", ["   \n"]),  # empty: left out
    ]
    current = Cell(4, "python", ["x = tot\n", ""])
    lines, offset = with_earlier_cells([c for c in cells if c.order != 4], current)
    assert lines == ["def add(a, b):\n", "    return a + b\n", "\n",
                     "# # Adding\n", "# Numbers.\n", "\n",
                     "total = add(1, 2)\n", "\n",
                     "x = tot\n", ""]
    assert offset == 8 and lines[offset] == "x = tot\n"
    assert with_earlier_cells([], current) == (["x = tot\n", ""], 0)

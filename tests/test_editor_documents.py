"""Every document a real editor sends, all open at once beside the file being edited.

VS Code (and Neovim plugins) open Untitled buffers, notebook cells, a diff's `git:` side, output
channels, their own settings, virtual-workspace files, files outside the workspace and Windows
drive URIs. Before, one Untitled buffer made every completion in the workspace fail. Here: in
process, exactly what each document contributes to a completion request; over stdio in both
editor presets, that every request keeps answering with no error and that closing any of them
changes nothing; with Qwen, that the suggestions stay right (and that a notebook cell is completed
with its earlier cells as context).
"""

from __future__ import annotations

import asyncio
import io
import json
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

import pytest
from lsprotocol import types
from pygls.io_ import StdoutWriter

from lsp_server.protocol import actions as code_actions
from lsp_server.protocol import requests
from lsp_server.protocol import server as srv
from lsp_server.settings import Settings
from tests.conftest import Session, lsp_session
from tests.test_lsp_qwen import FIB

ROOT = "file:///home/dev/proj"
FOLDERS = [types.WorkspaceFolder(ROOT, "proj"),
           types.WorkspaceFolder("file:///home/dev/shared", "shared"),
           types.WorkspaceFolder("file:///c%3A/Users/dev/winproj", "winproj")]

REAL = f"{ROOT}/src/fib.py"
CELL = "vscode-notebook-cell:/home/dev/proj/nb/convert.ipynb#{}sZmlsZQ%3D%3D"
CELLS = [  # (uri, language, text) in notebook order; opened out of order below
    (CELL.format("W0"), "python", "def celsius_to_fahrenheit(c):\n    return c * 9 / 5 + 32\n"),
    (CELL.format("W1"), "markdown", "## Converting a temperature\n"),
    (CELL.format("W2"), "python", "print(celsius_to_"),
]
GIT = "git:/home/dev/proj/src/fib.py?" + quote(json.dumps(
    {"path": "/home/dev/proj/src/fib.py", "ref": "HEAD~1"}), safe="")
SECRET = "ghp_0123456789abcdefSECRET"
# uri -> (language, text, expected display path, completes, context)
OTHERS: dict[str, tuple[str, str, str, bool, bool]] = {
    "untitled:Untitled-1": ("python", "scratch = [1, 2, 3]\n", "Untitled-1.py", True, True),
    "file:///tmp/elsewhere/helpers.py": ("python", "def clamp(v, lo, hi):\n    return v\n",
                                         "helpers.py", True, True),
    "file:///home/dev/shared/util.py": ("python", "def unique(xs):\n    return set(xs)\n",
                                        "util.py", True, True),
    "file:///C:/Users/dev/winproj/src/win.py": ("python", "WINDOWS = True\n", "src/win.py", True,
                                                True),
    "vscode-vfs://github/dev/remote-repo/main.py": ("python", "REMOTE = 1\n", "main.py", True,
                                                    True),
    **{uri: (lang, text, "nb/convert" + (".md" if lang == "markdown" else ".py"), True, True)
       for uri, lang, text in CELLS},
    "vscode-notebook:/home/dev/proj/nb/convert.ipynb": ("json", '{"cells": []}\n', "", False,
                                                        False),
    GIT: ("python", FIB.replace("recursively", "slowly"), "", False, False),
    "output:extension-output-ms-python.python-%231-Python": ("Log", "2024 INFO started\n" * 20, "",
                                                             False, False),
    "vscode-userdata:/home/dev/.config/Code/User/settings.json": (
        "jsonc", f'{{"editor.fontSize": 14, "github.token": "{SECRET}"}}\n', "settings.json",
        True, False),
}


# --- in process: what each document contributes ----------------------------------------------------
class InProcess:
    """The real server object, fed raw messages; answers and notifications are captured."""

    def __init__(self) -> None:
        self.server = srv.create_server(Settings(enable=False))
        self.out = io.BytesIO()
        self.server.protocol.set_writer(StdoutWriter(self.out))

    def feed(self, method: str, params: dict[str, Any], msg_id: int | None = None) -> None:
        msg: dict[str, Any] = {"jsonrpc": "2.0", "method": method, "params": params}
        if msg_id is not None:
            msg["id"] = msg_id
        self.server.protocol.handle_body(json.dumps(msg).encode())

    def open(self, uri: str, language: str, text: str) -> None:
        self.feed("textDocument/didOpen", {"textDocument": {
            "uri": uri, "languageId": language, "version": 1, "text": text}})

    def close(self, uri: str) -> None:
        self.feed("textDocument/didClose", {"textDocument": {"uri": uri}})

    def request(self, uri: str, line: int = 0, character: int = 0) -> Any:
        return requests.completion_request(self.server, uri, types.Position(line, character))


async def _workspace() -> InProcess:
    p = InProcess()
    p.feed("initialize", {"capabilities": {}, "rootUri": ROOT, "initializationOptions": {},
                          "workspaceFolders": [{"uri": f.uri, "name": f.name} for f in FOLDERS]},
           1)
    p.open(REAL, "python", FIB)
    for uri, (language, text, *_) in reversed(OTHERS.items()):  # cells arrive out of order
        p.open(uri, language, text)
    await asyncio.sleep(0)
    return p


def _context(req: Any) -> set[tuple[str, str]]:
    return {(d.path, d.text) for d in req.others}


async def test_each_document_gets_what_its_scheme_says() -> None:
    p = await _workspace()
    req = p.request(REAL, 4, 4)
    assert (req.path, req.repo, req.line, req.column) == ("src/fib.py", "proj", 4, 4)
    context = _context(req)
    for uri, (_, text, path, completes, is_context) in OTHERS.items():
        assert ((path, text) in context) is is_context, uri
        other = p.request(uri)
        assert (other is not None) is completes, uri
        if other is not None and path:
            assert other.path == path, uri
        actions = code_actions.code_action(p.server, types.CodeActionParams(
            types.TextDocumentIdentifier(uri), types.Range(types.Position(0, 0),
                                                           types.Position(0, 5)),
            types.CodeActionContext(diagnostics=[])))
        assert bool(actions) is completes, uri
    assert all(SECRET not in d.text for d in req.others)
    assert p.request("file:///home/dev/shared/util.py").repo == "shared"
    assert p.request("file:///C:/Users/dev/winproj/src/win.py").repo == "winproj"
    assert p.request("file:///tmp/elsewhere/helpers.py").repo == "proj"  # outside: the root's


async def test_a_notebook_cell_is_completed_after_its_earlier_cells() -> None:
    p = await _workspace()
    last = CELLS[-1][0]
    req = p.request(last, 0, len(CELLS[-1][2]))
    before = "".join(req.lines[: req.line])
    assert before == ("def celsius_to_fahrenheit(c):\n    return c * 9 / 5 + 32\n\n"
                      "# ## Converting a temperature\n\n")
    assert req.lines[req.line] == "print(celsius_to_" and req.column == len("print(celsius_to_")
    assert req.path == "nb/convert.py"
    assert not any(d.uri.startswith("vscode-notebook-cell:") for d in req.others)
    first = p.request(CELLS[0][0], 1, 4)  # the first cell has nothing before it
    assert first.line == 1 and "".join(first.lines).startswith("def celsius_to_fahrenheit")


async def test_closing_any_of_them_changes_nothing_for_the_real_file() -> None:
    p = await _workspace()
    reference = p.request(REAL, 4, 4)
    for uri in OTHERS:
        p.close(uri)
        req = p.request(REAL, 4, 4)
        assert (req.lines, req.line, req.column, req.path, req.repo) == (
            reference.lines, reference.line, reference.column, reference.path, reference.repo)
        assert _context(req) == _context(reference), uri  # closed context is remembered
        assert p.request(uri) is None
    assert p.server.failures.total == 0


# --- over stdio, both presets --------------------------------------------------------------------
async def _open_all(s: Session) -> None:
    for uri, (language, text, *_) in OTHERS.items():
        s.open(uri, text, language)


async def _code_actions(s: Session, uri: str) -> list[Any]:
    result = await s.client.text_document_code_action_async(types.CodeActionParams(
        text_document=types.TextDocumentIdentifier(uri),
        range=types.Range(types.Position(0, 0), types.Position(0, 0)),
        context=types.CodeActionContext(diagnostics=[])))
    return list(result or [])


def _no_errors(s: Session) -> None:
    assert not [st for st in s.statuses if st.get("errors") or st["state"] == "error"], s.statuses
    assert not [m for m in s.client.messages if m.type == types.MessageType.Error]


async def test_all_of_them_open_at_once(preset: str, tiny_starcoder: Path) -> None:
    async with lsp_session(preset, {"model": str(tiny_starcoder), "threads": 1, "maxTokens": 4},
                           root_uri=ROOT, workspace_folders=FOLDERS) as s:
        await s.wait_status("ready")
        s.open(REAL, FIB)
        assert isinstance(await s.inline(REAL, 4, 4), list)
        await _open_all(s)
        for uri, (_, text, _, completes, _) in OTHERS.items():
            items = await s.inline(uri, 0, min(3, len(text)))  # an error answer would raise
            actions = await _code_actions(s, uri)
            if not completes:
                assert items == [] and actions == [], uri
            for item in items:
                assert item.range is not None and item.range.start.line == 0
        for uri in OTHERS:
            s.client.text_document_did_close(types.DidCloseTextDocumentParams(
                types.TextDocumentIdentifier(uri)))
            items = await s.inline(REAL, 4, 4)
            for item in items:
                assert item.range == types.Range(types.Position(4, 4), types.Position(4, 4))
        stats = await s.stats()
        assert stats["errors"] == 0 and stats["lastError"] is None, stats
        _no_errors(s)


# --- with the real model: the suggestions stay right -------------------------------------------------
# A short, certain answer (`n - 2)`): it comes within the generation time budget even on a loaded
# machine, where a whole body can be cut to its first line.
TYPED = "        return fibonacci(n - 1) + fibonacci("
FIB_TYPED = FIB.replace("    \n\n\n", TYPED + "\n\n\n")


def _append(s: Session, version: int, text: str) -> None:
    """Type a line at the end of the real file (a new state: the model runs again)."""
    end = FIB_TYPED.count("\n") + version - 2
    s.client.text_document_did_change(types.DidChangeTextDocumentParams(
        text_document=types.VersionedTextDocumentIdentifier(uri=REAL, version=version),
        content_changes=[types.TextDocumentContentChangePartial(
            range=types.Range(types.Position(end, 0), types.Position(end, 0)), text=text)]))


async def _fib_body(s: Session) -> str:
    items = await s.inline(REAL, 4, len(TYPED))
    assert len(items) == 1, items
    text = str(items[0].insert_text)
    assert text.replace("n-2", "n - 2").startswith("n - 2)"), text
    return text


@pytest.mark.real_model
async def test_suggestions_stay_right_with_everything_open(preset: str, qwen_gguf: Path) -> None:
    async with lsp_session(preset, {"model": str(qwen_gguf)}, root_uri=ROOT,
                           workspace_folders=FOLDERS) as s:
        assert (await s.wait_status("ready", "error"))["state"] == "ready"
        s.open(REAL, FIB_TYPED)
        await _fib_body(s)
        await _open_all(s)
        _append(s, 2, "# all open\n")
        await _fib_body(s)
        cell, _, text = CELLS[-1]
        items = await s.inline(cell, 0, len(text))  # needs the first cell to know the name
        assert items and "fahrenheit(" in str(items[0].insert_text), items
        for uri in OTHERS:
            s.client.text_document_did_close(types.DidCloseTextDocumentParams(
                types.TextDocumentIdentifier(uri)))
        _append(s, 3, "# all closed\n")
        await _fib_body(s)
        stats = await s.stats()
        assert stats["errors"] == 0, stats
        _no_errors(s)


async def test_edits_arrive_as_recent_edit_ranges_in_the_request() -> None:
    """didChange ranges become the request's recent edits (a notebook cell's in the numbering
    after its earlier cells); a secret's edits are never applied, so never recorded."""
    p = await _workspace()
    util = "file:///home/dev/proj/src/util.py"
    p.open(util, "python", "".join(f"x_{i} = {i}\n" for i in range(40)))
    p.feed("textDocument/didChange", {"textDocument": {"uri": util, "version": 2},
                                      "contentChanges": [{"range": {
                                          "start": {"line": 20, "character": 0},
                                          "end": {"line": 20, "character": 0}},
                                          "text": "def fresh_name():\n    pass\n"}]})
    cell, _, text = CELLS[-1]
    p.feed("textDocument/didChange", {"textDocument": {"uri": cell, "version": 2},
                                      "contentChanges": [{"range": {
                                          "start": {"line": 0, "character": len(text)},
                                          "end": {"line": 0, "character": len(text)}},
                                          "text": "f"}]})
    req = p.request(REAL, 4, 4)
    assert next((r.uri, r.start, r.end) for r in req.edits) == (util, 20, 23)
    in_cell = p.request(cell, 0, len(text) + 1)
    mine = [r for r in in_cell.edits if r.uri == unquote(cell)]  # kept unquoted
    assert mine and mine[0].start == in_cell.line  # after the earlier cells' lines
    secret = f"{ROOT}/.env"
    p.open(secret, "dotenv", f"TOKEN={SECRET}\n")
    p.feed("textDocument/didChange", {"textDocument": {"uri": secret, "version": 2},
                                      "contentChanges": [{"range": {
                                          "start": {"line": 0, "character": 0},
                                          "end": {"line": 0, "character": 0}},
                                          "text": "x"}]})
    assert all(r.uri != unquote(secret) for r in p.request(REAL, 4, 4).edits)

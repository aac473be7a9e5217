"""Which documents are secrets (context/secrets.py), and the line view that keeps document memory
small (context/lines.py)."""

from __future__ import annotations

import random
import time
from pathlib import Path

import pytest

from lsp_server.context.lines import DocumentLines
from lsp_server.context.secrets import SecretPolicy, parse_rules
from lsp_server.context.window import editor_lines


@pytest.mark.parametrize("name", [
    ".env", ".env.local", ".ENV.production", "server.pem", "tls.key", "id_rsa", "id_rsa.pub",
    "id_ed25519", ".npmrc", ".netrc", "credentials", "credentials.json", "vault.kdbx",
    "secrets.yaml", "Secrets.JSON", ".git-credentials", ".pgpass", "cert.p12",
])
def test_built_in_secret_names(name: str) -> None:
    assert SecretPolicy().reason(f"file:///w/sub/{name}", f"/w/sub/{name}") is not None


@pytest.mark.parametrize("name", ["app.py", "environment.py", "keys.py", "secret_santa.py",
                                  "README.md", "env.sh", "monkey.ts"])
def test_ordinary_files_are_not_secrets(name: str) -> None:
    assert SecretPolicy().reason(f"file:///w/{name}", f"/w/{name}") is None


def test_language_and_non_file_uris() -> None:
    policy = SecretPolicy()
    assert "dotenv" in (policy.reason("file:///w/settings", "/w/settings", "dotenv") or "")
    assert policy.reason("untitled:.env", None) is not None
    assert policy.reason("vscode-remote://ssh-remote%2Bhost/home/u/.ssh/id_ed25519", None)
    assert policy.reason("untitled:Untitled-1", None) is None


def test_exclude_patterns_use_gitignore_syntax() -> None:
    policy = SecretPolicy(exclude=("*.tfvars", "config/prod/", "/top.py", "**/private/*.json",
                                   "!config/prod/public.txt"), roots=("/w",))
    for rel, excluded in [("a/b/x.tfvars", True), ("config/prod/db.yaml", True),
                          ("config/prod/public.txt", False), ("config/dev/db.yaml", False),
                          ("top.py", True), ("sub/top.py", False), ("a/private/k.json", True),
                          ("private/k.json", True), ("a/private/k.txt", False), ("main.py", False)]:
        assert (policy.reason(f"file:///w/{rel}", f"/w/{rel}") is not None) is excluded, rel
    # Outside the workspace only unanchored patterns apply (to the path's own components).
    assert policy.reason("file:///elsewhere/x.tfvars", "/elsewhere/x.tfvars") is not None
    assert policy.reason("file:///elsewhere/top.py", "/elsewhere/top.py") is None


def test_gitignore_files_from_the_root_down(tmp_path: Path) -> None:
    (tmp_path / ".gitignore").write_text("# comment\nbuild/\n*.log\n/local_*.py\n")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / ".gitignore").write_text("private.py\n!keep.log\n")
    on = SecretPolicy(gitignore=True, roots=(str(tmp_path),))
    off = SecretPolicy(gitignore=False, roots=(str(tmp_path),))
    for rel, ignored in [("build/x.py", True), ("a/b.log", True), ("local_cfg.py", True),
                         ("sub/local_cfg.py", False), ("sub/private.py", True),
                         ("private.py", False), ("sub/keep.log", False), ("src/main.py", False)]:
        path = tmp_path / rel
        assert (on.reason(path.as_uri(), str(path)) is not None) is ignored, rel
        assert off.reason(path.as_uri(), str(path)) is None
    (tmp_path / ".gitignore").write_text("*.py\n")  # edited: read again
    path = tmp_path / "src" / "main.py"
    assert on.reason(path.as_uri(), str(path)) is not None


def test_a_hostile_gitignore_cannot_stall_matching(tmp_path: Path) -> None:
    (tmp_path / ".gitignore").write_text(("*a*a*a*a*a*a*a*a*a*a*a*a*b\n" * 1000)
                                         + "**/**/**/**/**/**/x*y*z\n" * 1000)
    policy = SecretPolicy(gitignore=True, roots=(str(tmp_path),))
    deep = tmp_path.joinpath(*["a" * 200] * 20, "a" * 200 + ".py")
    t0 = time.perf_counter()
    assert policy.reason(deep.as_uri(), str(deep)) is None
    assert time.perf_counter() - t0 < 10
    too_deep = "/".join(["d"] * 100)
    assert "too long" in (policy.reason(f"file:///{too_deep}", f"/{too_deep}") or "")


def test_a_gitignore_that_is_a_fifo_is_not_read(tmp_path: Path) -> None:
    import os

    os.mkfifo(tmp_path / ".gitignore")
    policy = SecretPolicy(gitignore=True, roots=(str(tmp_path),))
    assert policy.reason((tmp_path / "a.py").as_uri(), str(tmp_path / "a.py")) is None


def test_rules_parse_like_git() -> None:
    rule, = parse_rules("/a/b/")
    assert rule.anchored and rule.dir_only and rule.parts == ("a", "b")
    rule, = parse_rules("!\\#x")
    assert rule.negate and rule.parts == ("#x",)
    assert parse_rules("\n# c\n   \n") == []


# --- the line view ----------------------------------------------------------------------------------
def test_document_lines_match_splitlines_and_editor_numbering() -> None:
    rng = random.Random(7)
    alphabet = ["a", "é", "😀", "\n", "\r", "\r\n", "\u2028", "\x0b", "\x1c", "\x85", " "]
    for _ in range(3000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 14)))
        ref = tuple(text.splitlines(keepends=True))
        for editor in (False, True):
            want = tuple(editor_lines(ref)) if editor else ref
            view = DocumentLines(text, editor=editor)
            assert tuple(view) == want and len(view) == len(want)
            assert [view[i] for i in range(-len(want), len(want))] == [*want, *want]
            assert view[1:3] == list(want[1:3])
            for line in range(len(want) + 1):
                for col in range(4):
                    cur = want[line] if line < len(want) else ""
                    c = min(col, len(cur))
                    assert view.split_at(line, col) == (
                        "".join(want[:line]) + cur[:c], cur[c:] + "".join(want[line + 1:]))
    with pytest.raises(IndexError):
        DocumentLines("a\n")[1]


def test_document_lines_cost_8_bytes_a_line() -> None:
    text = "x = 1\n" * 200_000
    view = DocumentLines(text, editor=True)
    assert view.nbytes <= 8 * (200_000 + 200_000 // 1024 + 2) and view.text is text


def test_has_text_between_positions() -> None:
    view = DocumentLines("a = 1\n   \n\tb\n")
    assert view.has_text((0, 0), (0, 1)) and not view.has_text((0, 1), (0, 2))
    assert not view.has_text((1, 0), (2, 1)) and view.has_text((1, 0), (2, 2))
    assert not view.has_text((2, 2), (9, 0)) and not view.has_text((2, 0), (0, 0))


def test_document_lines_splice_matches_pygls() -> None:
    """An edit spliced from the index gives pygls' text (offsets past a checkpoint included:
    checkpoints every 4 lines here)."""
    from lsprotocol import types
    from pygls.workspace import TextDocument

    from lsp_server.context import lines as lines_module

    rng = random.Random(11)
    alphabet = ["a", "é", "😀", "\n", "\r", "\r\n", "\u2028", " ", "bc"]
    old_step = lines_module.CHECKPOINT_LINES
    lines_module.CHECKPOINT_LINES = 4
    try:
        for _ in range(3000):
            text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 40)))
            for _ in range(3):
                n = len(text.splitlines(True))
                client = types.Range(types.Position(rng.randint(0, n + 1), rng.randint(0, 5)),
                                     types.Position(rng.randint(0, n + 1), rng.randint(0, 5)))
                new = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 6)))
                doc = TextDocument("file:///a.py", source=text)
                at = doc.position_codec.range_from_client_units(doc.lines, client)  # as pygls
                doc._apply_incremental_change(
                    types.TextDocumentContentChangePartial(range=client, text=new))
                text = DocumentLines(text).splice((at.start.line, at.start.character),
                                                  (at.end.line, at.end.character), new)
                assert text == doc.source
                assert list(DocumentLines(text)) == text.splitlines(True)
    finally:
        lines_module.CHECKPOINT_LINES = old_step

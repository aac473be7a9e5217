"""FastTextDocument gives exactly pygls' text after any edit, and keeps its line split."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from lsprotocol import types
from pygls.workspace import TextDocument

from lsp_server.protocol.documents import FastPositionCodec
from lsp_server.protocol.textdoc import FastTextDocument

# Every line break Python's splitlines knows, astral characters (2 UTF-16 units) and plain text.
PIECES = ["a", "bc", " ", "\t", "\n", "\r", "\r\n", "\u2028", "\x0c", "\x85", "😀", "é", "{", ""]
texts = st.lists(st.sampled_from(PIECES), max_size=30).map("".join)
ints = st.integers(-2, 12)
changes = st.lists(st.tuples(ints, ints, ints, ints, texts), min_size=1, max_size=6)


def _change(sl: int, sc: int, el: int, ec: int, text: str) -> types.TextDocumentContentChangePartial:
    return types.TextDocumentContentChangePartial(
        range=types.Range(types.Position(max(sl, 0), max(sc, 0)),
                          types.Position(max(el, 0), max(ec, 0))), text=text)


@settings(max_examples=600, deadline=None)
@given(texts, changes)
def test_edits_match_pygls(text: str, edits: list[tuple[int, int, int, int, str]]) -> None:
    codec = FastPositionCodec(types.PositionEncodingKind.Utf16)
    ours = FastTextDocument("file:///a.py", source=text, position_codec=codec)
    theirs = TextDocument("file:///a.py", source=text, position_codec=codec)
    for edit in edits:
        ours.apply_change(_change(*edit))
        theirs.apply_change(_change(*edit))
        assert ours.source == theirs.source
        assert ours.lines == theirs.lines
        for line in range(len(ours.lines) + 1):
            pos = types.Position(line, 1)
            assert ours.offset_at_position(pos) == theirs.offset_at_position(pos)


def test_lines_are_split_once_per_text() -> None:
    doc = FastTextDocument("file:///a.py", source="x = 1\n" * 1000)
    assert doc.lines is doc.lines
    before = doc.lines
    doc.apply_change(_change(500, 0, 500, 0, "y"))
    assert doc.lines is not before and doc.lines[500] == "yx = 1\n"
    assert doc.lines[:500] == before[:500] and doc.lines[501:] == before[501:]
    doc.apply_change(types.TextDocumentContentChangeWholeDocument(text="z\n"))
    assert doc.lines == ("z\n",)

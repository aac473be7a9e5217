"""Instruction edits, the range side: what a selection (or the cursor) edits, as a user expects."""

from __future__ import annotations

import time

import pytest

from lsp_server import defaults
from lsp_server.context.lines import DocumentLines
from lsp_server.context.selection import EditRange, Refusal, common_indent, edit_range

CODE = '''\
import os


class Stack:
    def push(self, item):
        self.items.append(item)
        return self

    def pop(self):
        return self.items.pop()


total = a + b
'''
LINES = CODE.splitlines(True)


def rng(start: tuple[int, int], end: tuple[int, int], lines: list[str] | None = None,
        **kw: int) -> EditRange:
    out = edit_range(LINES if lines is None else lines, start, end, **kw)
    assert isinstance(out, EditRange), out
    return out


def refused(start: tuple[int, int], end: tuple[int, int], lines: list[str] | None = None,
            **kw: int) -> Refusal:
    out = edit_range(LINES if lines is None else lines, start, end, **kw)
    assert isinstance(out, Refusal), out
    return out


# (name, start, end) -> (start, end, text, whole lines) of the range edited
CASES = [
    ("part of a line edits exactly that text", (12, 8), (12, 13), (12, 8), (12, 13), "a + b",
     False),
    ("a selection over a line's whole code is that whole line", (5, 8), (5, 31), (5, 0), (5, 31),
     "        self.items.append(item)", True),
    ("several lines from mid-line to mid-line: those lines whole", (5, 12), (6, 9), (5, 0),
     (6, 19), "        self.items.append(item)\n        return self", True),
    ("ending at column 0 of a line leaves that line out", (4, 0), (7, 0), (4, 0), (6, 19),
     "    def push(self, item):\n        self.items.append(item)\n        return self", True),
    ("starting at the end of a line leaves that line out", (4, 25), (6, 19), (5, 0), (6, 19),
     "        self.items.append(item)\n        return self", True),
    ("blank lines at the edges are not edited", (2, 0), (5, 3), (3, 0), (5, 31),
     "class Stack:\n    def push(self, item):\n        self.items.append(item)", True),
    ("a reversed selection is the same selection", (6, 9), (5, 12), (5, 0), (6, 19),
     "        self.items.append(item)\n        return self", True),
    ("nothing selected inside a method: that method", (5, 10), (5, 10), (4, 0), (6, 19),
     "    def push(self, item):\n        self.items.append(item)\n        return self", True),
    ("nothing selected on a method's signature: that method", (8, 4), (8, 4), (8, 0), (9, 31),
     "    def pop(self):\n        return self.items.pop()", True),
    ("nothing selected on a top-level statement: that line", (12, 3), (12, 3), (12, 0),
     (12, 13), "total = a + b", True),
    ("a selection past the end stops at the last line", (12, 0), (40, 0), (12, 0), (12, 13),
     "total = a + b", True),
]


@pytest.mark.parametrize(("name", "start", "end", "r_start", "r_end", "text", "whole"), CASES,
                         ids=[c[0] for c in CASES])
def test_range(name: str, start: tuple[int, int], end: tuple[int, int], r_start: tuple[int, int],
               r_end: tuple[int, int], text: str, whole: bool) -> None:
    r = rng(start, end)
    assert (r.start, r.end, r.text, r.whole_lines) == (r_start, r_end, text, whole)
    # The range is exactly its text in the document.
    offset = sum(map(len, LINES[: r.start[0]])) + r.start[1]
    assert CODE[offset : offset + len(r.text)] == r.text
    end_offset = sum(map(len, LINES[: r.end[0]])) + r.end[1]
    assert end_offset == offset + len(r.text)


def test_the_model_sees_the_code_dedented_with_lf(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(defaults, "EDIT_CONTEXT_LINES_BEFORE", 12)
    monkeypatch.setattr(defaults, "EDIT_CONTEXT_LINES_AFTER", 4)
    r = rng((5, 0), (5, 0))
    assert r.indent == "    "
    assert r.code == "def push(self, item):\n    self.items.append(item)\n    return self"
    assert r.eol == "\n"
    assert r.before == "import os\n\n\nclass Stack:"
    assert r.after == "    def pop(self):\n        return self.items.pop()"
    monkeypatch.setattr(defaults, "EDIT_CONTEXT_LINES_BEFORE", 0)
    monkeypatch.setattr(defaults, "EDIT_CONTEXT_LINES_AFTER", 0)
    assert (rng((5, 0), (5, 0)).before, rng((5, 0), (5, 0)).after) == ("", "")


def test_part_of_a_line_knows_the_rest_of_the_line() -> None:
    r = rng((12, 8), (12, 13))
    assert (r.line_before, r.code, r.line_after, r.indent) == ("total = ", "a + b", "", "")


def test_crlf_and_tabs() -> None:
    lines = "func f() {\r\n\tif x {\r\n\t\treturn 1\r\n\t}\r\n}\r\n".splitlines(True)
    r = rng((1, 0), (4, 0), lines)
    assert r.text == "\tif x {\r\n\t\treturn 1\r\n\t}"
    assert r.eol == "\r\n" and r.indent == "\t"
    assert r.code == "if x {\n\treturn 1\n}"
    one = rng((2, 0), (2, 0), lines)  # one line: its own break decides
    assert one.eol == "\r\n"


def test_common_indent_keeps_tabs_and_spaces_apart() -> None:
    assert common_indent(["    a", "      b", "", "   "]) == "    "
    assert common_indent(["\ta", "    b"]) == ""
    assert common_indent(["\t\ta", "\tb"]) == "\t"


def test_nothing_to_edit() -> None:
    assert refused((1, 0), (1, 0)).kind == "empty_selection"  # a blank top-level line
    assert refused((1, 0), (2, 0)).kind == "empty_selection"  # only blank lines selected
    assert refused((12, 5), (12, 6)).kind == "empty_selection"  # a selected space
    assert refused((0, 0), (0, 0), []).kind == "empty_selection"
    editor = DocumentLines(CODE, editor=True)  # the editor's empty line after the last break
    assert len(editor) == len(LINES) + 1
    out = edit_range(editor, (len(LINES), 0), (len(LINES), 0))
    assert isinstance(out, Refusal) and out.kind == "empty_selection"


def test_too_large_is_refused_not_cut() -> None:
    out = refused((4, 0), (10, 0), max_chars=40)
    assert out.kind == "too_large" and "40" in out.message
    block = refused((5, 3), (5, 3), max_chars=40)  # the block around the cursor: same rule
    assert block.kind == "too_large" and "block" in block.message


def test_a_huge_selection_costs_no_more_than_the_cap() -> None:
    text = "x = 1\n" * 700_000  # 4.2 MB, all selected
    lines = DocumentLines(text)
    t0 = time.perf_counter()
    out = edit_range(lines, (0, 0), (len(lines), 0))
    assert time.perf_counter() - t0 < 0.05
    assert isinstance(out, Refusal) and out.kind == "too_large"
    assert str(defaults.EDIT_MAX_SELECTION_CHARS // 1000) in out.message


def test_context_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(defaults, "EDIT_CONTEXT_LINES_BEFORE", 12)
    monkeypatch.setattr(defaults, "EDIT_CONTEXT_LINES_AFTER", 4)
    lines = [f"line_{i} = {'x' * 200}\n" for i in range(100)]
    r = rng((50, 0), (51, 0), lines)
    assert len(r.before) <= defaults.EDIT_CONTEXT_CHARS
    assert r.before.split("\n")[-1].startswith("line_49")
    assert len(r.after.split("\n")) <= defaults.EDIT_CONTEXT_LINES_AFTER

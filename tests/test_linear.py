"""Nothing in a document can make the pattern code slow: every matcher over document text is
linear, and the block search is bounded (the lag test in test_hostile_lag.py checks the server)."""

from __future__ import annotations

import re
import time
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lsp_server import defaults
from lsp_server.context import blocks, snippets
from lsp_server.context.blocks import c_signature, enclosing_block, used_definitions

# The pattern c_signature replaces, with `=` allowed before the parameters (arrow functions), kept
# as the reference: it says exactly what a signature is, in cubic time.
OLD_C_SIGNATURE = re.compile(
    r"^\s*[\w<>\[\],.*&:= ]+\([^;]*\)\s*(?:=>\s*)?[\w<>\[\]:, ]*\{\s*$")

ALPHABET = [" ", "  ", "\t", "\n", "\r\n", "(", ")", "{", "}", ";", "=>", "=", ">", "<", "a", "_",
            "int", ",", ":", ".", "*", "&", "[", "]", "é", "\u00a0", "\x0c", "-"]


@settings(max_examples=1000, deadline=None)
@given(st.lists(st.sampled_from(ALPHABET), max_size=14).map("".join))
def test_c_signature_says_what_the_old_pattern_said(line: str) -> None:
    assert c_signature(line) == bool(OLD_C_SIGNATURE.match(line)), repr(line)


@pytest.mark.parametrize("line, expected", [
    ("int main(void) {\n", True),
    ("public String name() {\n", True),
    ("const f = (a) => {\n", True),
    ("static std::vector<int> f(const int& x) const {\r\n", True),
    ("  (a) {", True),
    ("f(a); g() {", False),
    ("x = 1;\n", False),
    ("f(a)\n", False),
])
def test_c_signature_examples(line: str, expected: bool) -> None:
    assert c_signature(line) is expected


K = 100_000
HOSTILE_LINES = {
    "spaces around a call": " " * (K // 2) + "a()" + " " * (K // 2),
    "spaces, call, no brace": "int " + " " * (K // 2) + "a(" + " " * (K // 2) + ") x",
    "brackets": "([{" * (K // 3),
    "spaces then brace": " " * K + "{",
    "parens then brace": "(" * (K // 2) + ")" * (K // 2) + " " * 100 + "{",
    "identifier soup": "a" * K + ":",
    "modifiers": "pub() " * (K // 6) + "x",
    "minified": "function a(b,c){return b+c};var x=a(1,2);" * (K // 40),
}


def _seconds(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


@pytest.mark.parametrize("name", sorted(HOSTILE_LINES))
def test_matchers_are_fast_on_hostile_lines(name: str) -> None:
    """The old C_SIGNATURE took 32 s on the first line; linear matchers take milliseconds. The
    bound is generous (a loaded machine), far below what any backtracking would need."""
    line = HOSTILE_LINES[name] + "\n"
    lines = [line] * 3
    checks: list[Callable[[], object]] = [
        lambda: c_signature(line),
        lambda: blocks.BLOCK_START.match(line),
        lambda: blocks.DEFINITION.match(line),
        lambda: blocks.IDENT.findall(line),
        lambda: snippets.identifiers(line),
        lambda: enclosing_block(lines, 1),
        lambda: used_definitions(lines, 1, 2),
    ]
    for check in checks:
        assert _seconds(check) < 1.0, name


def test_long_lines_are_not_matched() -> None:
    padded = "def f():" + " " * defaults.MATCH_LINE_CHARS + "\n"
    assert enclosing_block(["def f():\n", "    x = 1\n"], 1) == (0, 2)
    assert enclosing_block([padded, "    x = 1\n"], 1) is None


def test_block_search_is_bounded() -> None:
    n = defaults.BLOCK_SCAN_LINES
    far = ["def f():\n"] + ["    x = 1\n"] * (3 * n)
    assert enclosing_block(far, n // 2) == (0, n + 1)  # the block is cut after n lines
    assert enclosing_block(far, 2 * n) is None  # its opener is further up than the scan goes
    # Many nested openers whose blocks end before the cursor cost at most the budget.
    staircase = ["".join(" " * d + "if (x) {}\n") for d in range(n)] + [" " * (n + 1) + "y\n"]
    assert _seconds(lambda: enclosing_block(staircase, n)) < 1.0

"""Post-processing: the golden cases of every rule (tests/golden/postprocess/*.toml), the early
stop, and the helpers that are not before/after pairs."""

from __future__ import annotations

import logging
import tomllib
from pathlib import Path
from typing import Any

import pytest

from lsp_server.postprocess import PIPELINE, Situation, finish, should_stop

GOLDEN_DIR = Path(__file__).parent / "golden" / "postprocess"
CURSOR = "║"
RULES = {step.name: step.rule for step in PIPELINE}


def _load_cases() -> list[tuple[str, dict[str, Any]]]:
    cases = []
    for path in sorted(GOLDEN_DIR.glob("*.toml")):
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
        for case in doc["case"]:
            cases.append((f"{path.stem}: {case['name']}", {"rule": doc["rule"], **case}))
    return cases


CASES = _load_cases()


def at_cursor(document: str) -> Situation:
    """The situation at the one cursor marker of a golden document."""
    assert document.count(CURSOR) == 1, "a golden document has exactly one cursor marker"
    before, after = document.split(CURSOR)
    return Situation.between(before, after)


def apply(case: dict[str, Any]) -> str:
    rule = finish if case["rule"] == "finish" else RULES[case["rule"]]
    return rule(case["raw"], at_cursor(case["document"]))


@pytest.mark.parametrize("case", [c for _, c in CASES], ids=[i for i, _ in CASES])
def test_golden(case: dict[str, Any]) -> None:
    assert apply(case) == case["expected"]


def test_every_rule_has_golden_cases_where_it_fires_and_where_it_must_not() -> None:
    fires = {name: 0 for name in RULES}
    holds = {name: 0 for name in RULES}
    for _, case in CASES:
        assert case["rule"] in RULES or case["rule"] == "finish", case["rule"]
        if case["rule"] in RULES:
            (fires if case["expected"] != case["raw"] else holds)[case["rule"]] += 1
    assert [n for n, k in fires.items() if not k] == []
    assert [n for n, k in holds.items() if not k] == []


def test_finish_logs_which_rule_changed_what(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG, logger="lsp_server.postprocess"):
        assert finish("y = 2\n    return y", at_cursor("    ║\n    return y\n")) == "y = 2"
    assert "postprocess suffix_overlap: 'y = 2\\n    return y' -> 'y = 2'" in caplog.text


def test_situation_between_takes_the_cursor_line_and_the_last_code_line_above() -> None:
    s = at_cursor("def f(xs):\n\n    total = ║sum(xs)\n    return total\n")
    assert s == Situation("    total = ", "sum(xs)", "sum(xs)\n    return total\n", "def f(xs):")
    far = at_cursor("def f():\n" + "\n" * 60 + "    ║")
    assert far.previous_line == ""  # further up than the service looks


def sit(line_prefix: str, line_suffix: str = "", suffix: str | None = None) -> Situation:
    return Situation(line_prefix, line_suffix, suffix if suffix is not None else line_suffix)


def test_multiline_decision() -> None:
    assert not sit("x = foo(", "a)").multiline  # text right of the cursor: finish the line
    assert sit("def f():").multiline  # block opener at the end of the line
    assert sit("    ").multiline  # empty line
    assert sit("    x = call(", ")").multiline  # only a closer follows
    assert not sit("    return x").multiline  # mid-statement at end of line: one line


def test_before_code_is_multiline_and_mid_line_is_not_before_code() -> None:
    s = Situation("", "    return total", "    return total\n", "def f(xs):\n")
    assert s.before_code and s.multiline
    assert not Situation("x = ", "foo", "foo\n").before_code


def test_should_stop_single_line_at_newline() -> None:
    s = sit("x = f(", "a)")
    assert not should_stop("1, ", s)
    assert should_stop("1, 2\n", s)


def test_should_stop_multiline_after_dedent() -> None:
    s = sit("    ")
    assert not should_stop("a = 1\n    b = 2\n", s)
    assert should_stop("a = 1\n    b = 2\nprint(a)\n", s)


def test_should_stop_waits_to_confirm_a_later_line() -> None:
    # `return False` is the suffix's second line: while streaming, the line after it decides.
    s = Situation("", "        if month == 2:", "        if month == 2:\n            return False\n")
    assert not should_stop("        if day > 31:\n            return False\n", s)


def test_should_stop_when_the_model_retypes_the_following_code() -> None:
    s = Situation("", "            m = e", "            m = e\n    return m\n")
    assert not should_stop("    for e in l:\n        if e > m:\n", s)
    assert not should_stop("    for e in l:\n        if e > m:\n            m = e", s)  # may grow
    assert should_stop("    for e in l:\n        if e > m:\n            m = e\n    return m\n", s)
    assert should_stop("    x = compute(items)\n    total = 0\n",
                       Situation("", "    total = 0", "    total = 0\n    return total\n")) is False
    long_line = Situation("", "    total = compute(items)", "    total = compute(items)\n")
    assert should_stop("    items = load()\n    total = compute(items)\n", long_line)

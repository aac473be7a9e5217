"""Token-budgeted windows: budgets hold, edges stay put while typing, unused budget flows."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from lsp_server import defaults
from lsp_server.context.window import LineTokenCache, build_window, editor_lines


def count(text: str) -> int:
    """A stand-in tokenizer for pure-logic tests: one token per 4 characters, rounded up."""
    return -(-len(text) // 4)


def lines_of(n: int, width: int = 20) -> list[str]:
    return [f"line {i:05d} ".ljust(width, "x") + "\n" for i in range(n)]


def test_small_file_fits_whole() -> None:
    lines = lines_of(10)
    w = build_window(lines, 5, 3, 10_000, count)
    assert w.prefix == "".join(lines[:5]) + lines[5][:3]
    assert w.suffix == lines[5][3:] + "".join(lines[6:])
    assert not w.prefix_cut and not w.suffix_cut


def test_budget_split_and_cut() -> None:
    lines = lines_of(2000)
    budget = 1000
    w = build_window(lines, 1000, 0, budget, count)
    assert w.prefix_cut and w.suffix_cut
    assert count(w.prefix) + count(w.suffix) <= budget + 2
    assert w.prefix_tokens > 2 * w.suffix_tokens  # ~3:1 in favour of the prefix


def test_unused_prefix_budget_flows_to_suffix() -> None:
    lines = lines_of(2000)
    w = build_window(lines, 2, 0, 1000, count)
    assert not w.prefix_cut
    # All but at most one grid step of lines (the price of stable edges) goes to the suffix.
    assert w.prefix_tokens + w.suffix_tokens > 1000 - defaults.WINDOW_LINE_STEP * count(lines[0])
    assert w.suffix_tokens > int(1000 * (1 - defaults.PREFIX_SHARE))


def test_unused_suffix_budget_flows_to_prefix() -> None:
    lines = lines_of(2000)
    w = build_window(lines, 1998, 0, 1000, count)
    assert not w.suffix_cut
    # All but at most one grid step of lines (the price of stable edges) goes to the prefix.
    assert w.prefix_tokens + w.suffix_tokens > 1000 - defaults.WINDOW_LINE_STEP * count(lines[0])
    assert w.prefix_tokens > int(1000 * defaults.PREFIX_SHARE)


def test_start_line_stays_put_while_typing() -> None:
    """Typing 50 characters at one place: the window's first line never moves."""
    lines = lines_of(3000)
    line = 1500
    starts = set()
    for n in range(50):
        typed = [*lines[:line], "    value = compute(" + "a" * n + "\n", *lines[line + 1:]]
        w = build_window(typed, line, 20 + n, 2000, count)
        starts.add(w.start_line)
        assert w.start_line % defaults.WINDOW_LINE_STEP == 0
    assert len(starts) <= 2  # at most one grid step over 50 characters


def test_suffix_end_stays_put_after_enter() -> None:
    """Enter at the cursor inserts a line above the suffix's end: the suffix keeps its last line
    (its cached tokens stay the prompt's tail), at every cursor line, both grids."""
    lines = lines_of(3000)
    for step in (defaults.WINDOW_LINE_STEP, defaults.QUICK_WINDOW_LINE_STEP):
        for line in range(1400, 1440):
            before = build_window(lines, line, 20, 1000, count, line_step=step)
            entered = [*lines[:line], lines[line], "    \n", *lines[line + 1:]]
            after = build_window(entered, line + 1, 4, 1000, count, line_step=step)
            assert before.suffix_cut and after.suffix_cut
            assert after.suffix.endswith(before.suffix.rsplit("\n", 2)[-2] + "\n"), (step, line)
            assert after.end_line == before.end_line + 1, (step, line)


def test_enormous_single_line_is_cut_safely() -> None:
    lines = ["x" * 100_000 + "\n"]
    w = build_window(lines, 0, 60_000, 2000, count)
    assert count(w.prefix) <= int(2000 * defaults.PREFIX_SHARE) + 1
    assert count(w.prefix) + count(w.suffix) <= 2000
    assert w.prefix_cut and w.suffix_cut


def test_ten_megabyte_file_keeps_budget() -> None:
    lines = lines_of(10 * 1024 * 1024 // 64, width=63)
    w = build_window(lines, len(lines) // 2, 5, 8192 - 128 - 4, count)
    assert count(w.prefix) + count(w.suffix) <= 8192 - 128 - 4


def test_cursor_past_end_is_clamped() -> None:
    lines = lines_of(3)
    w = build_window(lines, 99, 999, 100, count)
    assert w.suffix in ("\n", "")


def test_empty_document() -> None:
    w = build_window([], 0, 0, 100, count)
    assert (w.prefix, w.suffix) == ("", "")


def test_line_token_cache_counts_once() -> None:
    calls: list[str] = []

    def counting(text: str) -> int:
        calls.append(text)
        return len(text)

    cache = LineTokenCache(counting)
    assert cache("abc") == cache("abc") == 3
    assert calls == ["abc"]


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.text(max_size=300), min_size=1, max_size=60),
    st.integers(min_value=0, max_value=80),
    st.integers(min_value=0, max_value=400),
    st.integers(min_value=0, max_value=3000),
)
def test_budget_never_exceeded(raw: list[str], line: int, col: int, budget: int) -> None:
    lines = [t.replace("\n", " ") + "\n" for t in raw]
    w = build_window(lines, line, col, budget, count)
    # Per-line counts are exact for this counter, so the joined text is within budget.
    assert sum(count(x) for x in w.prefix.splitlines(keepends=True)) <= budget + 1
    assert w.prefix_tokens + w.suffix_tokens <= budget


def test_the_line_after_a_final_newline_is_the_editors_last_line() -> None:
    lines = editor_lines(["def f():\n", "    if x:\n"])
    assert lines == ("def f():\n", "    if x:\n", "")
    window = build_window(lines, 2, 0, 1000, lambda s: len(s))
    assert window.prefix == "def f():\n    if x:\n" and window.suffix == ""
    assert editor_lines(["a\n", "b"]) == ["a\n", "b"]  # no final newline: nothing to add
    assert editor_lines([]) == ("",)

"""Recent edits as context (context/edits.py): which ranges are remembered, how later edits move
and merge them, and which excerpts reach the prompt, in which order."""

from __future__ import annotations

from lsp_server import defaults
from lsp_server.context.edits import EditedRange, EditLog, excerpts
from lsp_server.context.snippets import Snippet, SourceDoc, identifiers


def count(text: str) -> int:
    return -(-len(text) // 4)


def spans(log: EditLog) -> list[tuple[str, int, int]]:
    return [(r.uri, r.start, r.end) for r in log.ranges()]


def numbered(name: str, n: int = 100) -> str:
    return "".join(f"{name}_{i} = {i}\n" for i in range(n))


def test_a_typed_character_is_one_line_and_enter_makes_it_two() -> None:
    log = EditLog()
    log.record("file:///a.py", 10, 10, "x")
    assert spans(log) == [("file:///a.py", 10, 11)]
    log.record("file:///a.py", 10, 10, "\n    ")
    assert spans(log) == [("file:///a.py", 10, 12)]


def test_typing_along_a_line_stays_one_range() -> None:
    log = EditLog()
    for col in range(20):
        log.record("file:///a.py", 5, 5, "abcdefghijklmnopqrst"[col])
    assert spans(log) == [("file:///a.py", 5, 6)]


def test_lines_added_above_move_a_range_down_and_removed_lines_move_it_up() -> None:
    log = EditLog()
    log.record("file:///a.py", 50, 50, "y")
    log.record("file:///a.py", 2, 2, "one\ntwo\nthree\n")  # three lines added at line 2
    assert ("file:///a.py", 53, 54) in spans(log)
    log.record("file:///a.py", 10, 20, "")  # ten lines removed
    assert ("file:///a.py", 43, 44) in spans(log)


def test_a_nearby_edit_extends_the_range_and_makes_it_the_newest() -> None:
    log = EditLog()
    log.record("file:///a.py", 10, 10, "a")
    log.record("file:///b.py", 3, 3, "b")
    log.record("file:///a.py", 12, 12, "c")  # within RECENT_EDIT_MERGE_LINES
    assert spans(log) == [("file:///b.py", 3, 4), ("file:///a.py", 10, 13)]


def test_far_edits_are_separate_ranges_and_the_log_is_bounded() -> None:
    log = EditLog(kept=4)
    for i in range(10):
        log.record("file:///a.py", i * 100, i * 100, "z")
    assert [r.start for r in log.ranges()] == [600, 700, 800, 900]


def test_uris_are_one_whatever_their_quoting_and_forget_drops_them() -> None:
    log = EditLog()
    log.record("file:///my%20dir/a.py", 1, 1, "a")
    log.record("file:///my dir/a.py", 2, 2, "b")
    assert len(log.ranges()) == 1
    log.forget("file:///my%20dir/a.py")
    assert log.ranges() == []


OTHER = SourceDoc("file:///p/billing.py", "billing.py", numbered("rate"), "python")
HERE = SourceDoc("file:///p/main.py", "main.py", "", "python")
HERE_LINES = numbered("main", 400).splitlines(keepends=True)
NEAR = frozenset(identifiers(numbered("rate")))  # the code at the cursor uses billing's names


def never(start: int, end: int) -> bool:
    return False


def test_an_edit_in_another_file_is_an_excerpt_with_context_lines() -> None:
    got = excerpts([EditedRange("file:///p/billing.py", 40, 41)], HERE, HERE_LINES, never,
                   [OTHER], 500, count, query=NEAR)
    assert len(got) == 1
    ctx = defaults.RECENT_EDIT_CONTEXT_LINES
    assert got[0].path == "billing.py" and got[0].start_line == 40 - ctx
    assert got[0].text == "".join(f"rate_{i} = {i}\n" for i in range(40 - ctx, 41 + ctx))


def test_newest_edits_win_the_budget_and_come_last() -> None:
    ranges = [EditedRange("file:///p/billing.py", n, n + 1) for n in (10, 30, 50, 70, 90)]
    got = excerpts(ranges, HERE, HERE_LINES, never, [OTHER], 10_000, count, query=NEAR)
    assert [s.start_line + defaults.RECENT_EDIT_CONTEXT_LINES for s in got] == [50, 70, 90]
    small = excerpts(ranges, HERE, HERE_LINES, never, [OTHER], got[-1].tokens, count, query=NEAR)
    assert [s.start_line for s in small] == [got[-1].start_line]


def test_this_files_edits_only_where_the_window_does_not_reach() -> None:
    ranges = [EditedRange("file:///p/main.py", 10, 11), EditedRange("file:///p/main.py", 300, 301)]

    def window(start: int, end: int) -> bool:
        return start < 350 and end > 250

    got = excerpts(ranges, HERE, HERE_LINES, window, [OTHER], 10_000, count)
    assert [s.path for s in got] == ["main.py"] and "main_10 = 10\n" in got[0].text


def test_closed_secret_or_unknown_documents_give_nothing() -> None:
    ranges = [EditedRange("file:///p/.env", 1, 2), EditedRange("file:///p/gone.py", 1, 2)]
    assert excerpts(ranges, HERE, HERE_LINES, never, [OTHER], 10_000, count) == []


def test_what_a_cross_file_snippet_shows_is_not_repeated() -> None:
    shown = [Snippet("billing.py", "python", numbered("rate")[:400], 30, 0.5, 100)]
    ranges = [EditedRange("file:///p/billing.py", 35, 36), EditedRange("file:///p/billing.py", 80, 81)]
    got = excerpts(ranges, HERE, HERE_LINES, never, [OTHER], 10_000, count, shown, NEAR)
    assert [s.start_line for s in got] == [80 - defaults.RECENT_EDIT_CONTEXT_LINES]


def test_minified_and_blank_ranges_are_left_out() -> None:
    long_line = SourceDoc("file:///p/min.js", "min.js", "x" * (defaults.MATCH_LINE_CHARS + 1)
                          + "\n", "javascript")
    blank = SourceDoc("file:///p/blank.py", "blank.py", "\n" * 20, "python")
    ranges = [EditedRange("file:///p/min.js", 0, 1), EditedRange("file:///p/blank.py", 5, 6)]
    assert excerpts(ranges, HERE, HERE_LINES, never, [long_line, blank], 10_000, count) == []


def test_a_long_paste_is_shown_by_its_end() -> None:
    got = excerpts([EditedRange("file:///p/billing.py", 0, 90)], HERE, HERE_LINES, never,
                   [OTHER], 10_000, count, query=NEAR)
    assert got[0].text.count("\n") == defaults.RECENT_EDIT_MAX_LINES
    assert got[0].text.endswith("rate_92 = 92\n")


def test_another_files_edit_needs_shared_names_and_a_related_language() -> None:
    """An edit in an unrelated buffer (another project's, a scratch file, another language) is
    noise the model would copy: only one sharing names with the code at the cursor goes in."""
    edit = [EditedRange("file:///p/billing.py", 40, 41)]
    assert excerpts(edit, HERE, HERE_LINES, never, [OTHER], 500, count,
                    query=frozenset({"scale_prices", "factor"})) == []
    assert excerpts(edit, HERE, HERE_LINES, never, [OTHER], 500, count) == []  # no query
    # `import billing` at the cursor names billing.py: its new function is what comes next
    assert len(excerpts(edit, HERE, HERE_LINES, never, [OTHER], 500, count,
                        query=frozenset({"billing", "load_config", "path"}))) == 1
    as_js = SourceDoc(OTHER.uri, "billing.js", OTHER.text, "javascript")
    assert excerpts(edit, HERE, HERE_LINES, never, [as_js], 500, count, query=NEAR) == []
    as_text = SourceDoc(OTHER.uri, "billing.txt", OTHER.text, "plaintext")  # goes with anything
    assert len(excerpts(edit, HERE, HERE_LINES, never, [as_text], 500, count, query=NEAR)) == 1

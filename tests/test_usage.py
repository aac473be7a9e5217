"""The local usage counters: how each shown suggestion ends, latency per language and model, and
the report the editors show."""

from __future__ import annotations

from lsp_server.pipelines.usage import Usage, percentile

URI = "file:///w/a.py"
PREFIX = "def add(a, b):\n    return "
TEXT = "a + b"


def shown_once() -> Usage:
    u = Usage()
    u.request(URI, PREFIX)
    u.offered(URI, PREFIX, TEXT)
    return u


def test_the_accept_command_counts_the_whole_suggestion() -> None:
    u = shown_once()
    u.accepted_whole(URI, TEXT)
    u.request(URI, PREFIX + TEXT)  # the next request after the accept changes nothing
    assert (u.shown, u.accepted, u.partial, u.dismissed, u.accepted_chars) == (1, 1, 0, 0, 5)


def test_typing_all_of_it_is_an_accept_and_typing_its_start_a_partial_accept() -> None:
    u = shown_once()
    u.request(URI, PREFIX + TEXT)
    assert (u.accepted, u.partial, u.accepted_chars) == (1, 0, 5)
    u = shown_once()
    u.request(URI, PREFIX + "a ")  # accept-word, or typed the start of it
    assert (u.accepted, u.partial, u.dismissed, u.accepted_chars) == (0, 1, 0, 2)


def test_typing_something_else_deleting_or_moving_away_dismisses() -> None:
    for prefix in (PREFIX + "b", PREFIX[:-1], "x" + PREFIX, PREFIX.replace("add", "sub")):
        u = shown_once()
        u.request(URI, prefix)
        assert (u.accepted, u.partial, u.dismissed) == (0, 0, 1), prefix


def test_asking_again_at_the_same_place_or_in_another_file_keeps_it_on_screen() -> None:
    u = shown_once()
    u.request(URI, PREFIX)
    u.request("file:///w/b.py", "x = ")
    assert (u.accepted, u.partial, u.dismissed) == (0, 0, 0)
    u.accepted_whole(URI, TEXT)
    assert u.accepted == 1


def test_an_accept_for_a_suggestion_no_longer_on_screen_is_not_counted_twice() -> None:
    u = shown_once()
    u.request(URI, PREFIX + TEXT)
    u.accepted_whole(URI, TEXT)
    assert (u.accepted, u.accepted_chars) == (1, 5)


def test_latency_per_language_and_model_and_time_to_first_suggestion() -> None:
    u = Usage()
    u.opened(URI)
    for s in (0.1, 0.2, 0.3, 0.4, 2.0):
        u.answered(URI, "python", "qwen2.5-coder-0.5b", s)
    u.answered("file:///w/x.rs", "rust", "qwen2.5-coder-0.5b", 0.5)
    snap = u.snapshot()
    rows = {r["language"]: r for r in snap["latency"]}
    assert rows["python"]["count"] == 5 and rows["python"]["p50"] == 0.3
    assert rows["python"]["p95"] == 2.0 and rows["rust"]["p50"] == 0.5
    assert snap["firstSuggestionP50"] is not None and snap["firstSuggestionP50"] >= 0
    assert snap["acceptanceRate"] is None  # nothing decided yet


def test_the_report_and_the_summary_say_it_in_words() -> None:
    u = shown_once()
    u.answered(URI, "python", "qwen2.5-coder-0.5b", 0.25)
    u.accepted_whole(URI, TEXT)
    u.offered(URI, PREFIX + TEXT + "\n", "print(add(1, 2))")
    u.request(URI, PREFIX + TEXT + "\nfoo")
    report = u.report()
    assert "never sent anywhere" in report
    assert "| Accepted | 1 |" in report and "| Dismissed | 1 |" in report
    assert "| Acceptance rate | 50% |" in report
    assert "| python | qwen2.5-coder-0.5b | 1 | 0.25 s | 0.25 s |" in report
    assert u.summary() == "1 of 2 suggestions accepted (50%) · p50 0.25 s"
    assert Usage().summary() == "no suggestions yet"


def test_percentile_by_nearest_rank() -> None:
    assert percentile([], 0.5) == 0.0
    assert percentile([3.0, 1.0, 2.0], 0.5) == 2.0
    assert percentile([1.0, 2.0], 0.95) == 2.0

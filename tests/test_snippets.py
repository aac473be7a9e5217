"""Cross-file snippets: ranking, budget, dedup, stability, recently closed buffers, languages."""

from __future__ import annotations

import pytest

from lsp_server.context.languages import comment, language_of
from lsp_server.context.snippets import RecentDocuments, SnippetSelector, SourceDoc, chunk_lines


def count(text: str) -> int:
    return -(-len(text) // 4)


SHIPPING = SourceDoc("file:///p/shipping.py", "shipping.py",
                     "".join(f"# filler line {i}\n" for i in range(30))
                     + "def compute_weighted_shipping_quote(parcel_weight, zone_multiplier):\n"
                     "    return parcel_weight * zone_multiplier\n", "python")
NOISE = SourceDoc("file:///p/noise.py", "noise.py",
                  "".join(f"unrelated_{i} = {i}\n" for i in range(50)), "python")
CURRENT = ["from shipping import compute_weighted_shipping_quote\n", "\n",
           "def checkout(parcel_weight, zone_multiplier):\n", "    quote = \n"]


def test_relevant_chunk_ranks_first_and_noise_is_dropped() -> None:
    sel = SnippetSelector()
    snips = sel.select("file:///p/main.py", 3, CURRENT, [NOISE, SHIPPING], 1000, count)
    assert snips and snips[0].path == "shipping.py"
    assert "compute_weighted_shipping_quote" in snips[0].text
    assert all(s.path != "noise.py" for s in snips)


def test_budget_is_respected() -> None:
    sel = SnippetSelector()
    assert sel.select("file:///p/main.py", 3, CURRENT, [SHIPPING], 5, count) == []
    snips = sel.select("file:///p/other.py", 3, CURRENT, [SHIPPING, NOISE], 200, count)
    assert sum(s.tokens for s in snips) <= 200


def test_current_document_is_never_a_snippet() -> None:
    sel = SnippetSelector()
    me = SourceDoc("file:///p/main.py", "main.py", "".join(CURRENT), "python")
    assert sel.select(me.uri, 3, CURRENT, [me], 1000, count) == []


def test_selection_is_sticky_while_typing_and_keeps_order() -> None:
    sel = SnippetSelector()
    first = sel.select("file:///p/main.py", 3, CURRENT, [NOISE, SHIPPING], 1000, count)
    typed = [*CURRENT[:3], "    quote = compute_weighted\n"]
    again = sel.select("file:///p/main.py", 3, typed, [NOISE, SHIPPING], 1000, count)
    assert again is first  # not even recomputed
    # A new document: survivors keep their place, newcomers are appended.
    extra = SourceDoc("file:///p/zones.py", "zones.py",
                      "def zone_multiplier_for(parcel_weight):\n    return 2\n", "python")
    after = sel.select("file:///p/main.py", 3, CURRENT, [NOISE, SHIPPING, extra], 1000, count)
    assert [s.key for s in after[: len(first)]] == [s.key for s in first]


def test_chunks_already_in_the_window_are_skipped() -> None:
    sel = SnippetSelector()
    copy = SourceDoc("file:///p/copy.py", "copy.py", "".join(CURRENT), "python")
    assert sel.select("file:///p/main.py", 3, CURRENT, [copy], 1000, count) == []


def test_chunk_lines_overlap_and_cover() -> None:
    chunks = chunk_lines("".join(f"l{i}\n" for i in range(50)), size=20)
    assert [c.start_line for c in chunks] == [0, 10, 20, 30]
    assert chunks[-1].text.endswith("l49\n")


def test_recent_documents_expire_and_are_bounded() -> None:
    recent = RecentDocuments(max_docs=2, max_age_s=1000)
    for i in range(3):
        recent.remember(SourceDoc(f"file:///{i}", f"{i}.py", "x", "python"))
    assert [d.uri for d in recent.docs()] == ["file:///1", "file:///2"]
    expired = RecentDocuments(max_age_s=-1)
    expired.remember(SHIPPING)
    assert expired.docs() == []


def test_languages_and_comments() -> None:
    assert language_of("", "src/lib.rs") == "rust"
    assert language_of("typescriptreact", "x.tsx") == "typescriptreact"
    assert language_of("plaintext", "Makefile") == "makefile"
    assert comment("python", "a.py") == "# a.py"
    assert comment("go", "a.go") == "// a.go"
    assert comment("lua", "a.lua") == "-- a.lua"
    assert comment("html", "a.html") == "<!-- a.html -->"
    assert comment("unknown-lang", "a") == "# a"


def test_other_languages_are_not_context_and_module_names_match() -> None:
    sel = SnippetSelector()
    go = SourceDoc("file:///p/main.go", "main.go", "func computeWeightedShippingQuote() {}\n", "go")
    registry = SourceDoc("file:///p/plugins/registry.py", "plugins/registry.py",
                         "def add(plugin):\n    PLUGINS.append(plugin)\n", "python")
    lines = ["from plugins import registry\n", "\n", "registry.\n"]
    snips = sel.select("file:///p/app.py", 2, lines, [go, registry], 1000, count, "python")
    assert [s.path for s in snips] == ["plugins/registry.py"]


def test_the_cross_file_index_stays_within_its_memory_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    """Documents past the index budget (or too large for context) are left out, not indexed."""
    from lsp_server import defaults

    big = SourceDoc("file:///p/big.py", "big.py", "x = 1\n" * (defaults.SNIPPET_DOC_MAX_CHARS // 5),
                    "python")
    sel = SnippetSelector(max_index_bytes=50_000)
    many = [SourceDoc(f"file:///p/f{i}.py", f"f{i}.py", SHIPPING.text, "python") for i in range(40)]
    snips = sel.select("file:///p/main.py", 3, CURRENT, [big, *many], 2000, count)
    assert snips and all(s.path != "big.py" for s in snips)
    indexed = sum(size for _, _, size in sel._chunks.values())
    assert indexed <= 50_000 and 0 < len(sel._chunks) < 40
    # Asked again: the left-out documents are not chunked again for every request.
    monkeypatch.setattr("lsp_server.context.snippets.chunk_lines",
                        lambda *a, **k: (_ for _ in ()).throw(AssertionError("re-chunked")))
    sel.select("file:///p/main.py", 3 + defaults.SNIPPET_REFRESH_LINES, CURRENT, [big, *many],
               2000, count)


def test_recent_documents_are_bounded_in_memory() -> None:
    recent = RecentDocuments(max_docs=100, max_bytes=10_000)
    for i in range(10):
        recent.remember(SourceDoc(f"file:///r{i}.py", f"r{i}.py", "y" * 3000, "python"))
    kept = recent.docs()
    assert len(kept) == 3 and kept[-1].uri == "file:///r9.py"  # the newest, within 10,000 bytes
    recent.remember(SourceDoc("file:///huge.py", "huge.py", "z" * 20_000, "python"))
    assert all(d.uri != "file:///huge.py" for d in recent.docs())

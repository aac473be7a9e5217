"""FIM layouts are exactly the documented token sequences; healing splits where BPE needs it."""

from __future__ import annotations

import pytest

from lsp_server.prompt.fim import FimIds, Header, build_header, build_prompt, heal_split

IDS = FimIds(prefix=1, suffix=3, middle=2, pad=4)


def fake_tokenize(text: str) -> list[int]:
    return [1000 + ord(c) for c in text]


def test_psm_layout() -> None:
    p = build_prompt("ab\n", "cd", IDS, fake_tokenize, heal=False)
    assert p.ids == [1, *fake_tokenize("ab\n"), 3, *fake_tokenize("cd"), 2]


def test_spm_layout_is_bigcode_variant() -> None:
    p = build_prompt("ab\n", "cd", IDS, fake_tokenize, order="spm", heal=False)
    assert p.ids == [1, 3, *fake_tokenize("cd"), 2, *fake_tokenize("ab\n")]


def test_header_comes_first_and_is_counted() -> None:
    p = build_prompt("x", "", IDS, fake_tokenize, header=Header((7, 8, 9)), heal=False)
    assert p.ids[:3] == [7, 8, 9]
    assert p.header_tokens == 3


@pytest.mark.parametrize(
    ("prefix", "kept", "healed"),
    [("    ret", "    ", "ret"), ("x = foo_ba", "x = ", "foo_ba"), ("ab1", "", "ab1")],
)
def test_heal_split_words(prefix: str, kept: str, healed: str) -> None:
    assert heal_split(prefix) == (kept, healed)


def test_heal_split_trailing_spaces() -> None:
    assert heal_split("x = ") == ("x =", " ")
    assert heal_split("return  ") == ("return", "  ")


def test_heal_split_does_not_fire_on_indentation_or_punctuation() -> None:
    assert heal_split("def f():\n    ") == ("def f():\n    ", "")
    assert heal_split("foo(") == ("foo(", "")
    assert heal_split("") == ("", "")


def test_healed_text_is_removed_from_prompt() -> None:
    p = build_prompt("    ret", "", IDS, fake_tokenize)
    assert p.heal == "ret"
    assert p.ids == [1, *fake_tokenize("    "), 3, 2]


def test_marker_text_in_user_code_is_not_special() -> None:
    # The tokenizer is always called on raw text; the only control ids are the template's.
    p = build_prompt("<fim_middle>", "", IDS, fake_tokenize, heal=False)
    assert p.ids.count(2) == 1 and p.ids[-1] == 2


def hash_comment(language: str, text: str) -> str:
    return f"# {text}"


REPO_IDS = FimIds(prefix=1, suffix=3, middle=2, repo_name=10, file_sep=11)
STARCODER_IDS = FimIds(prefix=1, suffix=3, middle=2, filename=5, document_end=(0,))
SNIPS = [("util.py", "def helper():\n    pass\n")]


def test_repo_token_header_layout() -> None:
    """StarCoder2 / Qwen: [repo] repo\\n ([sep] path\\n text)* [sep] current\\n, then FIM."""
    h = build_header(SNIPS, "app/main.py", REPO_IDS, fake_tokenize, repo="proj",
                     comment=hash_comment, language="python")
    t = fake_tokenize
    assert list(h.ids) == [10, *t("proj\n"), 11, *t("util.py\ndef helper():\n    pass\n"),
                           11, *t("app/main.py\n")]
    assert h.text == ""
    p = build_prompt("x = ", "", REPO_IDS, t, header=h, heal=False)
    assert p.ids[: len(h.ids)] == list(h.ids) and p.ids[len(h.ids)] == 1


def test_starcoder_filename_header_layout() -> None:
    """StarCoder: ([filename] path\\n text [eot])* [filename] current\\n, then FIM."""
    h = build_header(SNIPS, "main.py", STARCODER_IDS, fake_tokenize, repo="proj",
                     comment=hash_comment, language="python")
    t = fake_tokenize
    assert list(h.ids) == [5, *t("util.py\ndef helper():\n    pass\n"), 0, 5, *t("main.py\n")]


def test_comment_header_goes_inside_the_prefix() -> None:
    h = build_header(SNIPS, "main.py", IDS, fake_tokenize, repo="proj", comment=hash_comment,
                     language="python")
    assert h.ids == ()
    assert h.text == "# util.py\ndef helper():\n    pass\n\n# main.py\n"
    p = build_prompt("x = 1\n", "", IDS, fake_tokenize, header=h, heal=False)
    assert p.ids[0] == 1 and p.ids[1 : 1 + len(h.text)] == fake_tokenize(h.text)


def test_no_snippets_no_header_in_any_format() -> None:
    """Single-file prompts stay the family's reference FIM layout."""
    for ids in (IDS, REPO_IDS, STARCODER_IDS):
        h = build_header([], "main.py", ids, fake_tokenize, repo="p", comment=hash_comment,
                         language="python")
        assert h == Header()

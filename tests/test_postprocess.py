"""Each post-processing rule, with cases where it must fire and where it must not."""

from __future__ import annotations

from lsp_server.postprocess.rules import (
    Situation,
    balance_brackets,
    balance_quotes,
    body_already_there,
    dangling_opener,
    duplicated_indentation,
    finish,
    indentation_scope,
    repetition,
    should_stop,
    single_line,
    suffix_overlap,
    trim_trailing,
)


def sit(line_prefix: str, line_suffix: str = "", suffix: str | None = None) -> Situation:
    return Situation(line_prefix, line_suffix, suffix if suffix is not None else line_suffix)


def test_multiline_decision() -> None:
    assert not sit("x = foo(", "a)").multiline  # text right of the cursor: finish the line
    assert sit("def f():").multiline  # block opener at the end of the line
    assert sit("    ").multiline  # empty line
    assert sit("    x = call(", ")").multiline  # only a closer follows
    assert not sit("    return x").multiline  # mid-statement at end of line: one line


def test_single_line_keeps_first_line_only_when_inside_a_line() -> None:
    assert single_line("a)\nmore", sit("f(", "")) == "a)\nmore"
    assert single_line("1, 2\nmore", sit("f(", "z)")) == "1, 2"


def test_indentation_scope_cuts_dedent() -> None:
    text = "total = 0\n    for x in xs:\n        total += x\n    return total\nprint(1)"
    assert indentation_scope(text, sit("    ")) == "total = 0\n    for x in xs:\n" \
        "        total += x\n    return total"


def test_indentation_scope_keeps_else_after_if_body() -> None:
    text = "\n        return 1\n    else:\n        return 2\n    y = 3"
    assert indentation_scope(text, sit("    if x:", "", "\n    return y\n")) == \
        "\n        return 1\n    else:\n        return 2"


def test_indentation_scope_at_the_end_of_a_file_closes_blocks_but_stays_inside() -> None:
    # Nothing follows: the hole may end the inner block and go on in the function...
    text = "            end = center\n    return begin\n\n# Test cases\nprint(f(1))"
    assert indentation_scope(text, sit("", "", "")) == "            end = center\n    return begin\n"
    # ...but with code after the cursor the suggestion stays in its block.
    assert indentation_scope(text, sit("", "", "\n    x = 1\n")) == "            end = center"
    # At the top level nothing is a dedent.
    assert indentation_scope("x = 1\ny = 2", sit("", "", "")) == "x = 1\ny = 2"


def test_indentation_scope_does_not_fire_inside_block() -> None:
    text = "a = 1\n    b = 2"
    assert indentation_scope(text, sit("    ")) == text


def test_indentation_scope_stops_at_two_blank_lines() -> None:
    text = "x = 1\n\n\ndef other():\n    pass"
    assert indentation_scope(text, sit("")) == "x = 1\n"


def test_suffix_overlap_removes_repeated_lines() -> None:
    text = "y = 2\n    return y"
    assert suffix_overlap(text, sit("    ", "", "\n    return y\n")) == "y = 2"


def test_suffix_overlap_cuts_where_the_model_retypes_the_following_code_then_rambles() -> None:
    # Cursor at column 0 above `            m = e`: the model fills the hole, re-types the rest
    # of the function and goes on with another one.
    following = "            m = e\n    return m\n"
    s = Situation("", "            m = e", following)
    text = "    for e in l:\n        if e > m:\n            m = e\n    return m\n\ndef g():\n    pass"
    assert suffix_overlap(text, s) == "    for e in l:\n        if e > m:"
    assert finish(text, s) == "    for e in l:\n        if e > m:\n"


def test_suffix_overlap_cuts_at_the_models_variant_of_the_next_line() -> None:
    s = Situation("", '        new_text += "_"', '        new_text += "_"\n    return t\n')
    text = '    if n > 2:\n        new_text += "-"\n    elif n > 0:\n        new_text += "_" * n\n'
    assert suffix_overlap(text, s) == '    if n > 2:\n        new_text += "-"\n    elif n > 0:'


def test_suffix_overlap_short_lines_need_the_next_line_too() -> None:
    # `break` is common: inside the hole it is not a re-typing of the following code...
    s = Situation("    ", "", "\n    break\n    x = 1\n")
    text = "if a:\n        break\n    break\n    y = 2"
    assert suffix_overlap(text, s) == text
    # ...followed by the next line of the suffix (or ending the text) it is.
    assert suffix_overlap("if a:\n        go()\n    break\n    x = 1", s) == "if a:\n        go()"
    assert suffix_overlap("if a:\n        go()\n    break", s) == "if a:\n        go()"


def test_suffix_overlap_needs_the_same_indentation() -> None:
    s = Situation("    ", "", "\n    total = compute(items)\n")
    text = "for x in xs:\n        total = compute(items)"
    assert suffix_overlap(text, s) == text


def test_suffix_overlap_removes_closing_text_on_the_line() -> None:
    assert suffix_overlap("a, b)", sit("f(", ")", ")\n")) == "a, b"


def test_suffix_overlap_does_not_fire_without_overlap() -> None:
    assert suffix_overlap("a, b", sit("f(", ")", ")\n")) == "a, b"
    assert suffix_overlap("x = 1\ny = 2", sit("", "", "\nprint(z)\n")) == "x = 1\ny = 2"


def test_repetition_cut() -> None:
    assert repetition("a\nb\nb\nb\nb", sit("")) == "a\nb"
    assert repetition("a\nb\nb", sit("")) == "a\nb\nb"


def test_trim_trailing() -> None:
    assert trim_trailing("x = 1   \n\n  ", sit("")) == "x = 1"
    assert trim_trailing("  x", sit("")) == "  x"


def test_finish_drops_empty_and_already_present_text() -> None:
    assert finish("   \n", sit("")) == ""
    assert finish(")", sit("f(x", ")", ")\n")) == ""


def test_should_stop_single_line_at_newline() -> None:
    s = sit("x = f(", "a)")
    assert not should_stop("1, ", s)
    assert should_stop("1, 2\n", s)


def test_should_stop_multiline_after_dedent() -> None:
    s = sit("    ")
    assert not should_stop("a = 1\n    b = 2\n", s)
    assert should_stop("a = 1\n    b = 2\nprint(a)\n", s)


def test_duplicated_indentation_dropped_at_the_right_depth() -> None:
    s = Situation("    ", "", "\n", "def circle_area(radius):\n")
    assert duplicated_indentation("    return 3.14 * radius ** 2", s) == "return 3.14 * radius ** 2"
    same = Situation("    ", "", "\n", "    x = 1\n")
    assert duplicated_indentation("    y = 2\n    z = 3", same) == "y = 2\n    z = 3"


def test_duplicated_indentation_kept_when_deeper_is_meant() -> None:
    # Cursor at column 0 of a body line: the model's indentation is needed.
    assert duplicated_indentation("    return 1", Situation("", "", "", "def f():\n")) == \
        "    return 1"
    # Cursor shallower than the block calls for: more indentation is right.
    s = Situation("    ", "", "", "    if x:\n")
    assert duplicated_indentation("    return 1", s) == "    return 1"
    # Text without leading whitespace is untouched.
    assert duplicated_indentation("return 1", Situation("    ", "", "", "def f():\n")) == \
        "return 1"


def test_balance_brackets_cuts_an_extra_closer() -> None:
    s = sit("    return fibonacci(n-1) + fibonacci(n")
    assert balance_brackets("-2))  # Example usage", s) == "-2)"
    assert balance_brackets("x))\n}", sit("  foo(")) == "x)"


def test_balance_brackets_leaves_a_closer_starting_a_later_line_to_the_scope() -> None:
    s = Situation("", "    return sorted(x)", "    return sorted(x)\n")
    text = "        'eight': 8,\n        'nine': 9\n    }"
    assert balance_brackets(text, s) == text
    assert finish(text + "\n    return sorted(x)", s) == text + "\n"


def test_balance_brackets_leaves_balanced_text_and_strings_alone() -> None:
    s = sit("    print(")
    assert balance_brackets('"a)" + str(x))', s) == '"a)" + str(x))'
    assert balance_brackets("len(items) > 0", sit("    if ")) == "len(items) > 0"
    assert balance_brackets("[1, 2])", sit("    f(")) == "[1, 2])"


def test_lines_inserted_above_existing_code_end_with_a_newline() -> None:
    s = Situation("", "    return total", "    return total\n", "def f(xs):\n")
    assert s.before_code and s.multiline
    assert finish("    total = sum(xs)", s) == "    total = sum(xs)\n"
    indented = Situation("    ", "return total", "return total\n", "def f(xs):\n")
    assert finish("total = sum(xs)", indented) == "total = sum(xs)\n    "


def test_mid_line_is_not_before_code() -> None:
    assert not Situation("x = ", "foo", "foo\n").before_code


def test_body_already_there_keeps_only_the_opener() -> None:
    s = Situation("", "            if p % k == 0:", "            if p % k == 0:\n")
    text = "        for k in range(2, p):\n            if k * k > p:\n                break"
    assert body_already_there(text, s) == "        for k in range(2, p):"


def test_body_already_there_leaves_a_retyped_body_to_suffix_overlap() -> None:
    # The model wrote the existing body again: the opener *and* the lines before the copy stay.
    s = Situation("", "            if p % k == 0:", "            if p % k == 0:\n")
    text = "        for k in range(2, p):\n            if p % k == 0:\n                return False"
    assert body_already_there(text, s) == text
    assert finish(text, s) == "        for k in range(2, p):\n"


def test_body_already_there_cuts_a_second_version_of_the_next_line() -> None:
    s = Situation("", "    return sum(x) / n", "    return sum(x) / n\n")
    text = "    n = len(x)\n    return mean(x)"
    assert body_already_there(text, s) == "    n = len(x)"


def test_body_already_there_does_not_fire_for_new_independent_lines() -> None:
    s = Situation("", "    return total", "    return total\n")
    text = "    total = 0\n    for x in xs:\n        total += x"
    assert body_already_there(text, s) == text
    assert body_already_there("x = 1\ny = 2", Situation("a = ", "", "")) == "x = 1\ny = 2"


def test_balance_quotes_cuts_a_string_left_open() -> None:
    assert balance_quotes('print("done', sit("    ")) == "print("
    assert balance_quotes("x, 'abc", sit("    f(")) == "x,"


def test_balance_quotes_leaves_closed_and_user_strings_alone() -> None:
    assert balance_quotes('print("a \\" b")', sit("    ")) == 'print("a \\" b")'
    # The user is typing inside a string: completing its text is the point.
    assert balance_quotes("world", sit('    print("hello ', '")')) == "world"
    # An apostrophe in a comment, a docstring start, and multi-line text are not strings to close.
    assert balance_quotes("x = 1  # don't", sit("    ")) == "x = 1  # don't"
    assert balance_quotes('"""Return the sum.', sit("    ")) == '"""Return the sum.'
    assert balance_quotes('"a\n"b', sit("    ")) == '"a\n"b'


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


def test_suffix_overlap_finds_a_skipped_line() -> None:
    # The model wrote the missing line, skipped `odds = ...` and re-typed the two after it.
    following = "    odds = l[1::2]\n    evens.sort()\n    ans = []\n    return ans\n"
    s = Situation("", "    odds = l[1::2]", following)
    text = "    evens = l[::2]\n    evens.sort()\n    ans = []\n    return ans"
    assert suffix_overlap(text, s) == "    evens = l[::2]"


def test_suffix_overlap_later_lines_never_cut_the_first_line_or_a_common_line() -> None:
    following = "    if y % 2 == 0:\n        return y\n    if x == y:\n        return -1\n"
    s = Situation("", "    if y % 2 == 0:", following)
    # `return -1` is also a later line of the suffix, but it is what the hole needs.
    assert suffix_overlap("        return -1", s) == "        return -1"
    # One short common line in the middle is not a re-typing either.
    text = "    x = 1\n        return -1\n    y = 2"
    assert suffix_overlap(text, s) == text


def test_dangling_opener_dropped_when_its_body_is_missing() -> None:
    s = Situation("", "    i = 0", "    i = 0\n    while i < n:\n")
    assert dangling_opener("    maxx = 0\n    for i in lst:", s) == "    maxx = 0"
    assert finish("    for i in lst:", s) == ""  # above code at the same depth: nothing useful
    eof = Situation("    ", "", "")
    assert dangling_opener("x = 1\n    if x:\n", eof) == "x = 1"


def test_dangling_opener_kept_when_the_following_code_is_its_body_or_the_user_types_it() -> None:
    body = Situation("", "        total += 1", "        total += 1\n")
    assert dangling_opener("    for x in xs:", body) == "    for x in xs:"
    # A lone opener on an empty line: the user types its body next.
    assert dangling_opener("for x in xs:", Situation("    ", "", "\n    return 1\n")) == \
        "for x in xs:"
    # Finishing the cursor's own line with an opener is the point.
    assert dangling_opener("a, b):", Situation("def f(", "", "\n")) == "a, b):"


def test_indentation_scope_keeps_a_closing_bracket_then_ends() -> None:
    s = Situation("", "    return x", "    return x\n")
    text = "        'eight': 8,\n        'nine': 9\n    }\n    return sorted(x)"
    assert indentation_scope(text, s) == "        'eight': 8,\n        'nine': 9\n    }"


def test_indentation_scope_keeps_an_elif_when_the_following_code_is_inside_one() -> None:
    s = Situation("", '            grade.append("D-")', '            grade.append("D-")\n')
    text = '            grade.append("A")\n        elif gpa > 3.0:\n            grade.append("B")'
    assert indentation_scope(text, s) == text
    # With the following code outside the if/else, an `else:` one level out is the model
    # writing its own version of the rest: cut.
    out = Situation("", "    sorted_array = sorted(arr)", "    sorted_array = sorted(arr)\n")
    assert indentation_scope("        return True\n    else:\n        x = 1", out) == \
        "        return True"

"""The post-processing pipeline: every rule, in the one order they run, and the early stop.

Rules are pure functions of (text, situation), one per module; they do not call each other, so
the order below is the only thing that ties them together. A step may also say when a text still
being generated has already been cut by its rule (`stop`): `should_stop` asks those, so the
decode ends as soon as `finish` would throw the rest away.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from lsp_server.postprocess.balance_brackets import balance_brackets
from lsp_server.postprocess.balance_quotes import balance_quotes
from lsp_server.postprocess.body_already_there import body_already_there
from lsp_server.postprocess.dangling_opener import dangling_opener
from lsp_server.postprocess.drop_empty import drop_empty
from lsp_server.postprocess.drop_present import drop_present
from lsp_server.postprocess.duplicated_indentation import duplicated_indentation
from lsp_server.postprocess.indentation_scope import indentation_scope, indentation_scope_stop
from lsp_server.postprocess.repetition import repetition
from lsp_server.postprocess.single_line import single_line, single_line_stop
from lsp_server.postprocess.situation import Situation
from lsp_server.postprocess.suffix_overlap import suffix_overlap, suffix_overlap_stop
from lsp_server.postprocess.trim_trailing import trim_trailing
from lsp_server.postprocess.whole_lines import lines_above_code

log = logging.getLogger(__name__)

Rule = Callable[[str, Situation], str]
StopCheck = Callable[[str, Situation], bool]


@dataclass(frozen=True)
class Step:
    """One rule of the pipeline, and optionally its early-stop check for streamed text."""

    rule: Rule
    # True once the complete lines of a text still being generated are already cut by `rule`,
    # so no further token could reach the suggestion.
    stop: StopCheck | None = None

    @property
    def name(self) -> str:
        return self.rule.__name__


PIPELINE: tuple[Step, ...] = (
    # First: it fixes the first line's indentation, and every later rule measures the block
    # from that line's width.
    Step(duplicated_indentation),
    # Inside a line only the first line survives; cutting it before the block rules leaves them
    # one line to judge. While streaming, the first newline ends the decode.
    Step(single_line, stop=single_line_stop),
    # Bound the text to the cursor's block before anything looks for re-typed code in it: a
    # dedent is the model writing its own version of what follows.
    Step(indentation_scope, stop=indentation_scope_stop),
    # Before suffix_overlap: it leaves a text that re-types the following code to that rule, so
    # it must still see the copy that suffix_overlap would cut away.
    Step(body_already_there),
    # A loop cut before the overlap check, which counts "the text ends here" as confirming a
    # short copy of the next line: it must see where the text really ends, not a run-on loop.
    Step(repetition),
    # Where the model re-types the code after the cursor, the suggestion ends.
    Step(suffix_overlap, stop=suffix_overlap_stop),
    # After every cut above: a cut can leave a trailing block opener whose body is gone.
    Step(dangling_opener),
    # Bracket and quote balance are judged on the text that survived the line cuts; a closer
    # starting a later line was already judged by indentation_scope. Quotes only touch a
    # one-line text, which the cuts may just have made.
    Step(balance_brackets),
    Step(balance_quotes),
    # The cuts leave trailing blank lines and spaces behind: trim after all of them.
    Step(trim_trailing),
    # What the cuts reduced to whitespace is no suggestion.
    Step(drop_empty),
    # Compared with what follows the cursor once the text is final.
    Step(drop_present),
    # Last, so no rule (trim_trailing) takes it away: the newline and indentation that keep the
    # code after the cursor on its own line.
    Step(lines_above_code),
)


def finish(raw: str, sit: Situation) -> str:
    """Apply every step in order; '' means no suggestion. `-v` logs which rule changed what."""
    text = raw
    for step in PIPELINE:
        new = step.rule(text, sit)
        if new != text:
            log.debug("postprocess %s: %r -> %r", step.name, text, new)
        text = new
    if not text and raw:
        log.debug("postprocess: no suggestion left (raw %r)", raw)
    return text


def should_stop(text: str, sit: Situation) -> bool:
    """Early stop during generation: the suggestion is already as long as `finish` would keep."""
    return any(step.stop(text, sit) for step in PIPELINE if step.stop is not None)

"""Instruction edits on the real Qwen2.5-Coder-0.5B: our chat prompt (the GGUF's own template,
rendered in the sandbox) through llama-cpp-python directly, greedy, then our extractor; the fixed
function runs against its check in a sandboxed subprocess. ~2 s after the model loads."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.edit_bench import Model, apply_range
from benchmarks.edit_tasks import run_program
from lsp_server.context.selection import EditRange, edit_range
from lsp_server.postprocess.edit import finish
from lsp_server.prompt.edit import EditRequest, edit_prompt, max_new_tokens

pytestmark = pytest.mark.real_model

DOCUMENT = '''\
import sys


def largest(values):
    best = values[0]
    for v in values:
        if v < best:
            best = v
    return best


def main():
    print(largest([int(a) for a in sys.argv[1:]]))
'''
CHECK = "\nassert largest([3, 9, 2]) == 9\nassert largest([-5, -1, -7]) == -1\n"


def test_fix_bugs_on_a_mutated_function(qwen_gguf: Path) -> None:
    assert not run_program(DOCUMENT + CHECK)[0]  # the bug is real
    model = Model(qwen_gguf, threads=2)
    try:
        lines = DOCUMENT.splitlines(True)
        rng = edit_range(lines, (5, 8), (5, 8))  # the cursor inside: the function around it
        assert isinstance(rng, EditRange) and (rng.start, rng.end) == ((3, 0), (8, 15))
        prompt = edit_prompt(EditRequest.of(rng, "Fix bugs in largest.", "python", "util.py"),
                             chat_template=model.chat_template, bos=model.bos_text,
                             eos=model.eos_text, is_single_token=model.is_single_token)
        assert prompt.format == "chat" and "<|im_start|>" in prompt.pieces[0][0]
        reply, _ = model.complete(prompt, max_new_tokens(len(model.plain(rng.code))))
    finally:
        model.close()
    new = finish(reply, rng, prompt)
    assert isinstance(new, str), (new, reply)
    edited = apply_range(DOCUMENT, rng, new)
    # Only the function changed: everything around it is the same text.
    assert edited.startswith("import sys\n\n\ndef largest(values):\n")
    assert edited.endswith("    return best\n\n\ndef main():\n"
                           "    print(largest([int(a) for a in sys.argv[1:]]))\n")
    ok, err = run_program(edited + CHECK)
    assert ok, (err, new)

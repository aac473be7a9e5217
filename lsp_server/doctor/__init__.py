"""`starcoder-lsp doctor`: what this install and machine can do, measured, and what to fix.

Setup friction is what users of local completion tools complain about most (a wrong binary, no
model, a CPU-only llama.cpp on a GPU machine, a model too large for the machine). One command that
measures instead of guessing shows all of it at once, and its output is what a bug report needs.

`probe` measures (imports llama.cpp, reads the model cache, runs a ~5 s speed test); `checks`
judges, purely, so the rules that decide the exit status are unit-tested without a model;
`report` prints.
Exit status (DESIGN.md): 0 healthy, 1 warnings, 2 something the user must fix — each finding
prints its fix.
"""

from __future__ import annotations

from lsp_server.doctor.report import add_parser, run

__all__ = ["add_parser", "run"]

"""Turning raw FIM output into a suggestion a user can accept with Tab.

One rule per module, each a small pure function of (text, situation) pinned by golden cases
(`tests/golden/postprocess/`), including the cases where it must not fire. `pipeline` holds their
order in one place; `finish` applies it and logs (debug) which rule dropped or changed a
suggestion, and `should_stop` ends a decode once `finish` would cut the rest.
"""

from __future__ import annotations

from lsp_server.postprocess.pipeline import PIPELINE, Step, finish, should_stop
from lsp_server.postprocess.situation import Situation
from lsp_server.postprocess.whole_lines import whole_lines

__all__ = ["PIPELINE", "Situation", "Step", "finish", "should_stop", "whole_lines"]

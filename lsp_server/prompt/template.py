"""Render a model's chat template in a separate process with a time and memory limit.

A GGUF's chat template is Jinja code written by whoever made the file. Jinja's sandbox stops it
from reaching Python internals, but not from running long or allocating much: nested loops over
`range(100000)`, `'x' * 10**9`, a filter with a huge width. Run in the server, such a template
would stall the engine worker (and the event loop, for a remote engine) or exhaust memory. Here it
renders in a child interpreter (`python -I`: no user site, no PYTHON* variables, no cwd on the
path) under an address-space and CPU limit, killed at a wall-clock timeout.

The rendering depends only on the template and the model's BOS/EOS text (the user's code goes in
later, through a placeholder), so each template renders once per process and is cached — the
child costs ~0.1 s once per model, not per explanation. No user text ever reaches the child.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import threading
from typing import Any

from lsp_server import defaults

log = logging.getLogger(__name__)


class TemplateError(Exception):
    """The template failed, ran too long, used too much memory, or produced too much text."""


_cache: dict[tuple[str, str, str, str], str | TemplateError] = {}
_lock = threading.Lock()


def render(template: str, messages: list[dict[str, str]], bos: str, eos: str) -> str:
    """The template rendered for `messages` with a generation prompt (cached; raises
    TemplateError, also cached, so a bad template costs its timeout once)."""
    key = (template, json.dumps(messages), bos, eos)
    with _lock:
        cached = _cache.get(key)
    if cached is None:
        try:
            cached = _render_in_child(template, messages, bos, eos)
        except TemplateError as exc:
            cached = exc
        with _lock:
            if len(_cache) >= 16:
                _cache.clear()
            _cache[key] = cached
    if isinstance(cached, TemplateError):
        raise cached
    return cached


def _render_in_child(template: str, messages: list[dict[str, str]], bos: str, eos: str) -> str:
    job = json.dumps({"template": template, "messages": messages, "bos": bos, "eos": eos,
                      "max_bytes": defaults.CHAT_TEMPLATE_MAX_MEMORY_BYTES,
                      "cpu_s": int(defaults.CHAT_TEMPLATE_TIMEOUT_S) + 1})
    argv = [sys.executable, "-I", "-m", "lsp_server.prompt.template"]
    try:
        proc = subprocess.run(argv, input=job, capture_output=True, text=True, check=False,
                              timeout=defaults.CHAT_TEMPLATE_TIMEOUT_S, cwd=os.path.abspath(os.sep))
    except subprocess.TimeoutExpired:
        raise TemplateError(f"the chat template took over {defaults.CHAT_TEMPLATE_TIMEOUT_S:g} s "
                            "to render") from None
    except OSError as exc:
        raise TemplateError(f"cannot start the template renderer: {exc}") from None
    if proc.returncode != 0:
        lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
        why = lines[-1].strip()[:200] if lines else f"exit status {proc.returncode}"
        raise TemplateError(f"the chat template failed: {why}")
    try:
        rendered = json.loads(proc.stdout)["rendered"]
    except (ValueError, KeyError, TypeError):
        raise TemplateError("the template renderer gave no result") from None
    if not isinstance(rendered, str) or len(rendered) > defaults.CHAT_TEMPLATE_MAX_CHARS:
        raise TemplateError(f"the chat template produced more than "
                            f"{defaults.CHAT_TEMPLATE_MAX_CHARS} characters")
    return rendered


def _child(job: dict[str, Any]) -> str:
    """In the child: limit ourselves, then render in Jinja's immutable sandbox."""
    try:
        import resource

        limit = int(job["max_bytes"])
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        resource.setrlimit(resource.RLIMIT_CPU, (int(job["cpu_s"]), int(job["cpu_s"])))
    except (ImportError, ValueError, OSError):  # not on this platform: the timeout still holds
        pass
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)

    def raise_exception(message: str) -> None:
        raise ValueError(message)

    env.globals["raise_exception"] = raise_exception
    out: str = env.from_string(job["template"]).render(
        messages=job["messages"], add_generation_prompt=True, bos_token=job["bos"],
        eos_token=job["eos"])
    return out


if __name__ == "__main__":
    sys.stdout.write(json.dumps({"rendered": _child(json.loads(sys.stdin.read()))}))

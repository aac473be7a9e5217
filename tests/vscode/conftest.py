"""The real VS Code session the suite drives: one code-server + Chromium for the module, our .vsix
installed, the real Qwen2.5-Coder-0.5B, the server from this checkout's virtual environment.

Screenshots (one per step, plus one of any failure) and the logs go to a `screenshots` dir under
the session's tmp dir, printed at the start and end; copied to $STARCODER_TEST_ARTIFACTS/vscode
when that is set.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.vscode.codeserver import CodeServer, Missing, Workbench, browser_page, check_prerequisites
from tests.vscode.files import FILES


def _say(config: pytest.Config, text: str) -> None:
    """Print past pytest's output capture: where the screenshots are matters when tests pass."""
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    capture = config.pluginmanager.get_plugin("capturemanager")
    if reporter is None:
        return
    with capture.global_and_fixture_disabled() if capture is not None else contextlib.nullcontext():
        reporter.write_line(text)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    setattr(item, f"report_{report.when}", report)


@pytest.fixture(scope="module")
def vscode(qwen_gguf: Path, tmp_path_factory: pytest.TempPathFactory,
           request: pytest.FixtureRequest) -> Iterator[Workbench]:
    server_path = Path(sys.executable).parent / "starcoder-lsp"
    try:
        check_prerequisites(server_path)
    except Missing as exc:
        pytest.fail(str(exc), pytrace=False)  # a missing VS Code fails the suite, never skips it
    root = tmp_path_factory.mktemp("vscode")
    shots = root / "screenshots"
    shots.mkdir()
    user: dict[str, Any] = {
        # A first start without prompts, tours or AI features of VS Code's own.
        "security.workspace.trust.enabled": False,
        "workbench.startupEditor": "none",
        "workbench.tips.enabled": False,
        "chat.disableAIFeatures": True,
        "telemetry.telemetryLevel": "off",
        "extensions.ignoreRecommendations": True,
        "editor.minimap.enabled": False,
        # VS Code in a browser saves after a delay by default: the tests save with Ctrl+S, so
        # what is on disk is what the step accepted (and a tab shows when it is unsaved).
        "files.autoSave": "off",
        "starcoder.maxTokens": 32,  # short suggestions: fast on 2 cores
        # VS Code takes the inline-completion request while its word-based suggest widget is open
        # (typing "return" matches the file's own "return") and does not ask again when typing a
        # space closes it: ghost text would come or not by a race no provider can change.
        "editor.wordBasedSuggestions": "off",
    }
    # What a user of this checkout sets, in the remote settings (see CodeServer.machine_settings).
    # The server's debug log goes to a file (not the output panel): a failed step shows its tail.
    machine: dict[str, Any] = {"starcoder.server.path": str(server_path), "starcoder.model": str(qwen_gguf),
                               "starcoder.server.args": ["--log-file", str(root / "server.log")]}
    server = CodeServer(root, user, machine)
    server.prepare(FILES, [qwen_gguf])
    _say(request.config, f"\nVS Code end-to-end: screenshots in {shots}")
    console: list[str] = []
    server.start()
    try:
        with browser_page(server.url, console) as (_, _, page):
            yield Workbench(page, server, shots, console)
    finally:
        server.stop()
        (shots / "StarCoder.log").write_text(server.extension_log(), encoding="utf-8")
        (shots / "browser-console.log").write_text("\n".join(console), encoding="utf-8")
        shutil.copy2(server.log, shots / "code-server.log")
        if (root / "server.log").exists():
            shutil.copy2(root / "server.log", shots / "server.log")
        artifacts = os.environ.get("STARCODER_TEST_ARTIFACTS")
        if artifacts:
            dest = Path(artifacts) / "vscode"
            shutil.copytree(shots, dest, dirs_exist_ok=True)
            _say(request.config, f"\nVS Code end-to-end: screenshots and logs in {shots}, copied to {dest}")
        else:
            _say(request.config, f"\nVS Code end-to-end: screenshots and logs in {shots}")


@pytest.fixture(autouse=True)
def _screenshot_on_failure(request: pytest.FixtureRequest) -> Iterator[None]:
    """A screenshot of the window a failed test drove (whichever VS Code session it used)."""
    yield
    report = getattr(request.node, "report_call", None)
    if report is not None and report.failed:
        for value in getattr(request.node, "funcargs", {}).values():
            if isinstance(value, Workbench):
                value.shot(f"FAILED-{request.node.name}")

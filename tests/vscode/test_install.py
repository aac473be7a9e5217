"""A new user's first start: VS Code with our extension and no server anywhere. The notification
offers "Install the Server"; one click creates the extension's private venv in its global storage
and installs this checkout's wheel into it, offline (PIP_NO_INDEX=1; the dependencies from a
wheelhouse repacked from this venv and llama-cpp-python from the cached no-AMX wheel, through
PIP_FIND_LINKS); the model is the cached Qwen 0.5B by path, so nothing is pulled. Then the server
starts by itself and ghost text comes from the real model. A fresh user-data dir, extensions dir,
HOME and caches, all under a temp dir; no terminal.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lsp_server import __version__
from tests.vscode.codeserver import (
    EXTENSION_ID,
    READY_TIMEOUT,
    SUGGESTION_TIMEOUT,
    UI_TIMEOUT,
    CodeServer,
    Missing,
    Workbench,
    browser_page,
    check_prerequisites,
    wait_until,
)
from tests.vscode.files import FACT, FILES
from tests.vscode.wheelhouse import LLAMA_WHEELS, build_wheel, wheelhouse

pytestmark = [pytest.mark.real_model, pytest.mark.timeout(1800)]

# From the click to a working server: venv + pip from local wheels takes ~30-90 s on 2 busy cores;
# compiling llama.cpp (not done here: the cached wheel is used) would be ~6 min.
INSTALL_TIMEOUT = 600
OFFER = "none was found"


def _offline_env(root: Path, wheels: Path) -> dict[str, str]:
    """What changes in VS Code's environment: pip offline, a home of its own, no starcoder-lsp on
    PATH, and the Python this venv was made from first. (code-server's extension host may take PATH
    from a login shell instead, where /usr/bin/python3 comes first: the repacked wheels need the
    same Python minor version as this venv; the log line "Python for the server" says which.)"""
    path = [d for d in os.environ.get("PATH", "").split(os.pathsep)
            if d and not (Path(d) / "starcoder-lsp").exists() and ".pyenv/shims" not in d]
    home = root / "home"
    home.mkdir()
    return {
        "PATH": os.pathsep.join([str(Path(sys.base_prefix) / "bin"), *path]),
        "HOME": str(home),
        "PIP_NO_INDEX": "1",
        "PIP_FIND_LINKS": f"{wheels} {LLAMA_WHEELS}",
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
    }


@pytest.fixture(scope="module")
def fresh(qwen_gguf: Path, tmp_path_factory: pytest.TempPathFactory,
          request: pytest.FixtureRequest) -> Iterator[tuple[Workbench, Path]]:
    try:
        check_prerequisites(Path(sys.executable).parent / "starcoder-lsp")
    except Missing as exc:
        pytest.fail(str(exc), pytrace=False)
    if not sorted(LLAMA_WHEELS.glob("llama_cpp_python-0.3.36-*.whl")):
        pytest.fail(f"no cached llama-cpp-python wheel in {LLAMA_WHEELS}: run `make install`", pytrace=False)
    root = tmp_path_factory.mktemp("vscode-install")
    shots = root / "screenshots"
    shots.mkdir()
    wheel = build_wheel(root / "dist")
    wheels = root / "wheelhouse"
    wheelhouse(wheels)
    user: dict[str, Any] = {
        "security.workspace.trust.enabled": False,
        "workbench.startupEditor": "none",
        "workbench.tips.enabled": False,
        "chat.disableAIFeatures": True,
        "telemetry.telemetryLevel": "off",
        "extensions.ignoreRecommendations": True,
        "editor.minimap.enabled": False,
        "files.autoSave": "off",
        "editor.wordBasedSuggestions": "off",
        "starcoder.maxTokens": 32,
    }
    # No server.path, no pythonPath: only what to install from (and the model, by path).
    machine: dict[str, Any] = {"starcoder.server.installFrom": str(wheel), "starcoder.model": str(qwen_gguf),
                               "starcoder.server.args": ["--log-file", str(root / "server.log")]}
    server = CodeServer(root, user, machine)
    server.prepare(FILES, [qwen_gguf])
    server.env.update(_offline_env(root, wheels))
    console: list[str] = []
    server.start()
    try:
        with browser_page(server.url, console) as (_, _, page):
            yield Workbench(page, server, shots, console), wheel
    finally:
        server.stop()
        (shots / "StarCoder.log").write_text(server.extension_log(), encoding="utf-8")
        (shots / "browser-console.log").write_text("\n".join(console), encoding="utf-8")
        shutil.copy2(server.log, shots / "code-server.log")
        artifacts = os.environ.get("STARCODER_TEST_ARTIFACTS")
        if artifacts:
            shutil.copytree(shots, Path(artifacts) / "vscode-install", dirs_exist_ok=True)
        print(f"\nVS Code install test: screenshots and logs in {shots}")


def test_install_the_server_from_a_local_wheel_then_complete(fresh: tuple[Workbench, Path]) -> None:
    vscode, wheel = fresh
    storage = vscode.server.user_data / "User" / "globalStorage" / EXTENSION_ID / "server"

    # No server anywhere: the status says so and the notification offers the install.
    vscode.wait_status("warning", "server not found", READY_TIMEOUT)
    note = vscode.wait_notification(OFFER)
    assert "Install it into a private environment" in note, note
    toast = vscode.page.locator(".notification-toast", has_text=OFFER)
    buttons = toast.locator("a.monaco-button").all_inner_texts()
    assert buttons == ["Install the Server", "Choose Executable…", "Setup Guide"], buttons
    vscode.shot("offer-install")
    clicked = time.monotonic()
    vscode.click_notification_button(OFFER, "Install the Server")

    # The progress notification names what it installs; pip's output goes to the StarCoder log.
    progress = vscode.wait_notification("installing the server", UI_TIMEOUT)
    assert wheel.name in progress, progress
    vscode.shot("installing")
    seen: list[str] = []

    def installed() -> bool:
        seen.extend(n for n in vscode.notifications() if "installing the server" in n and n not in seen)
        log = vscode.server.extension_log()
        if "installing the server failed" in log:  # fail now, not at the timeout
            raise AssertionError(f"the install failed:\n{log[-4000:]}")
        return "installed starcoder-lsp" in log
    wait_until("the install to finish", installed, INSTALL_TIMEOUT, vscode.diagnose)
    install_s = time.monotonic() - clicked
    # The notification followed pip (e.g. "collecting numpy…", "installing the packages…").
    assert any("collecting " in n or "installing the packages" in n for n in seen), seen
    ready = vscode.wait_status("sparkle", "ready", READY_TIMEOUT)
    ready_s = time.monotonic() - clicked
    vscode.shot("installed-ready")
    print(f"install: {install_s:.0f} s from the click to an installed server; ready after {ready_s:.0f} s")

    log = vscode.server.extension_log()
    python = re.search(r"Python for the server: (\S+) \((\d+\.\d+)", log)
    assert python, log[-3000:]
    print(f"install: the venv was made with {python.group(1)} ({python.group(2)})")
    record = json.loads((storage / "installed.json").read_text(encoding="utf-8"))
    venv = Path(record["venv"])
    assert venv.parent == storage and venv.is_dir(), record
    assert (record["version"], record["from"], record["build"]) == (__version__, str(wheel), "cpu"), record
    exe = venv / "bin" / "starcoder-lsp"
    assert f"starting {exe} serve" in log and "(found via managed)" in log, log[-3000:]
    assert "pip settings from the environment: " in log and "PIP_NO_INDEX=1" in log
    pip_done = r"pip: Successfully installed .*starcoder-lsp-" + re.escape(__version__)
    assert re.search(pip_done, log), log[-3000:]
    assert "llama-cpp-python-0.3.36" in log
    history = vscode.status_history()
    assert any(s.tooltip.startswith("starcoder-lsp: installing the server") for s in history), history
    assert f"{Path(vscode.server.machine['starcoder.model']).stem}" in ready.tooltip
    # Nothing outside the temp dir: the venv is in VS Code's global storage under it.
    assert venv.is_relative_to(vscode.server.root)

    # And completions start: ghost text from the real model, accepted with Tab.
    vscode.open_file("fact.py")
    vscode.go_to_line(5)
    vscode.type("return ")
    ghost = vscode.wait_ghost_text(SUGGESTION_TIMEOUT)
    vscode.shot("ghost-text-after-install")
    assert "factorial(" in ghost, ghost
    vscode.press("Tab")
    saved = vscode.save("fact.py", lambda text: text != FACT)
    assert "factorial(" in saved.splitlines()[4], saved


def _record(vscode: Workbench) -> dict[str, Any]:
    path = vscode.server.user_data / "User" / "globalStorage" / EXTENSION_ID / "server" / "installed.json"
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def _venvs(vscode: Workbench) -> list[str]:
    storage = vscode.server.user_data / "User" / "globalStorage" / EXTENSION_ID / "server"
    return sorted(p.name for p in storage.glob("venv-*"))


def test_reinstall_can_be_cancelled_and_keeps_the_working_server(fresh: tuple[Workbench, Path]) -> None:
    vscode, _ = fresh
    before, venvs = _record(vscode), _venvs(vscode)
    vscode.command("StarCoder: Reinstall Server")
    vscode.wait_notification("reinstalling the server")
    vscode.shot("reinstalling")
    vscode.click_notification_button("reinstalling the server", "Cancel")
    vscode.wait_notification("the server install was cancelled")
    cancelled = "installing the server was cancelled; nothing was kept"
    wait_until("the cancel to be logged", lambda: cancelled in vscode.server.extension_log(), UI_TIMEOUT,
               vscode.diagnose)
    vscode.shot("reinstall-cancelled")
    # The half-made venv is gone, the record and the running server are as they were.
    assert _record(vscode) == before
    assert _venvs(vscode) == venvs
    status = vscode.status()
    assert status is not None and status.icon == "sparkle", status


def test_reinstall_replaces_the_venv_and_completes_again(fresh: tuple[Workbench, Path]) -> None:
    vscode, _ = fresh
    old = _record(vscode)
    history = len(vscode.status_history())
    vscode.command("StarCoder: Reinstall Server")
    vscode.wait_notification("reinstalling the server")
    wait_until("the reinstall to finish",
               lambda: vscode.server.extension_log().count("installed starcoder-lsp ") >= 2,
               INSTALL_TIMEOUT, vscode.diagnose)
    wait_until("the server to restart",
               lambda: any(s.icon != "sparkle" for s in vscode.status_history()[history:]), UI_TIMEOUT)
    vscode.wait_status("sparkle", "ready", READY_TIMEOUT)
    new = _record(vscode)
    assert new["venv"] != old["venv"] and new["version"] == __version__, (old, new)
    # The old venv is removed once the new server runs.
    wait_until("the old venv to be removed", lambda: _venvs(vscode) == [Path(new["venv"]).name], UI_TIMEOUT,
               lambda: str(_venvs(vscode)))
    assert f"starting {Path(new['venv']) / 'bin' / 'starcoder-lsp'} serve" in vscode.server.extension_log()
    vscode.open_file("triple.py")
    vscode.go_to_line(3)
    vscode.type("return ")
    ghost = vscode.wait_ghost_text(SUGGESTION_TIMEOUT)
    vscode.shot("ghost-text-after-reinstall")
    assert "x" in ghost, ghost

"""The acceptance test of the playground (issue #21): headless Chromium opens the page
`starcoder-lsp playground` serves, types, sees ghost text from the real Qwen2.5-Coder-0.5B,
accepts it with Tab, runs Explain, and pages of other origins cannot connect.

The screenshot the README shows is taken here (into the test's temp dir, copied to
$STARCODER_TEST_ARTIFACTS/playground when set, and to $STARCODER_PLAYGROUND_SCREENSHOT — e.g.
docs/playground.png — when that is set).
"""

from __future__ import annotations

import http.server
import os
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, sync_playwright

from tests.playground.conftest import Playground
from tests.ports import free_port
from tests.vscode.codeserver import CHROMIUM, EXPLAIN_TIMEOUT, SUGGESTION_TIMEOUT, TYPING_DELAY_MS, wait_until

pytestmark = pytest.mark.real_model

READY_TIMEOUT = 120
GHOST = ".monaco-editor .ghost-text-decoration, .monaco-editor .ghost-text"


@pytest.fixture(scope="module")
def playground(qwen_gguf: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Playground]:
    if not CHROMIUM.exists():
        pytest.fail(f"Chromium not found at {CHROMIUM}: run `bash tests/vscode/install.sh`", pytrace=False)
    pg = Playground(qwen_gguf, tmp_path_factory.mktemp("playground"), "--max-tokens", "24")
    try:
        yield pg.wait_listening()
    finally:
        pg.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=["--no-sandbox"])
        try:
            yield b
        finally:
            b.close()


def _state(page: Page) -> Any:
    return page.evaluate("window.playground")


def _keep(shot: Path) -> None:
    artifacts = os.environ.get("STARCODER_TEST_ARTIFACTS")
    if artifacts:
        (Path(artifacts) / "playground").mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, Path(artifacts) / "playground" / shot.name)
    wanted = os.environ.get("STARCODER_PLAYGROUND_SCREENSHOT")
    if wanted and shot.name == "playground.png":
        shutil.copy(shot, wanted)


def test_ghost_text_tab_and_explain_in_the_page(playground: Playground, browser: Any) -> None:
    page = browser.new_page(viewport={"width": 1280, "height": 760})
    console: list[str] = []
    page.on("console", lambda m: console.append(f"{m.type}: {m.text}"[:300]))
    page.on("pageerror", lambda e: console.append(f"pageerror: {e}"[:300]))
    detail = lambda: f"page: {_state(page)}\nconsole: {console[-10:]}\nserver: {playground.stderr()[-2000:]}"  # noqa: E731
    try:
        page.goto(playground.url)
        assert "token" not in page.url  # moved out of the address bar at once
        wait_until("status ready", lambda: any(s["state"] == "ready" for s in _state(page)["status"]),
                   READY_TIMEOUT, detail)
        # The cursor starts in the empty body of `variance` (stats.py); type its start.
        page.locator(".monaco-editor textarea").focus()
        page.keyboard.type("return sum((v - ", delay=TYPING_DELAY_MS)
        ghost = wait_until("ghost text", lambda: page.locator(GHOST).all_text_contents(),
                           SUGGESTION_TIMEOUT, detail)
        suggestion = _state(page)["suggestions"][-1]
        assert suggestion["text"] and suggestion["latencyMs"] > 0
        assert "".join(ghost).replace("\xa0", " ").strip()[:8] in suggestion["text"]
        wait_until("the latency in the panel", lambda: "ms" in page.locator("#suggestions").inner_text(),
                   10, detail)
        page.keyboard.press("Tab")
        line = lambda: page.evaluate(  # noqa: E731
            "(() => { const e = window.playgroundEditor; const p = e.getPosition();"
            " return e.getModel().getLineContent(p.lineNumber); })()")
        wait_until("the suggestion inserted", lambda: suggestion["text"] in line(), 10, detail)
        assert line().strip().startswith("return sum((v - ")
        wait_until("the accept command sent", lambda: _state(page)["accepted"] >= 1, 10, detail)
        # The server counted it: starcoder/stats, refreshed on the page.
        wait_until("tokens evaluated in the stats",
                   lambda: "evaluated:" in page.locator("#stats").inner_text(), 15, detail)
        page.evaluate("window.playgroundEditor.setPosition({lineNumber: 2, column: 5})")  # in `mean`
        page.click("#explain")
        explanation = wait_until(
            "an explanation", lambda: (_state(page)["explanations"] or [None])[-1], EXPLAIN_TIMEOUT, detail)
        assert len(explanation) > 20
        assert page.locator("#explanation").inner_text().strip() == explanation.strip()
        shot = playground.tmp / "playground.png"
        page.screenshot(path=str(shot))
        _keep(shot)
    except BaseException:
        page.screenshot(path=str(playground.tmp / "failure.png"))
        _keep(playground.tmp / "failure.png")
        raise
    finally:
        page.close()


class _OtherSite(http.server.SimpleHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b"<!doctype html><title>another origin</title>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


# Opens a WebSocket to the playground and reports how it ended: "refused" when it never opened,
# or the first message the server sent after an initialize (with the token given, if any).
TRY_CONNECT = """
async ([url, token]) => await new Promise((resolve) => {
  let ws;
  try { ws = new WebSocket(url); } catch (e) { return resolve('refused: ' + e); }
  let opened = false;
  ws.onopen = () => {
    opened = true;
    const options = token === null ? {} : {token};
    ws.send(JSON.stringify({jsonrpc: '2.0', id: 1, method: 'initialize', params: {
      processId: null, rootUri: null, capabilities: {}, initializationOptions: options}}));
  };
  ws.onmessage = (m) => resolve('message: ' + m.data);
  ws.onclose = () => resolve(opened ? 'closed' : 'refused');
  setTimeout(() => resolve('timeout'), 20000);
})
"""


def test_other_origins_cannot_connect(playground: Playground, browser: Any, tmp_path: Path) -> None:
    ws_url = f"ws://127.0.0.1:{playground.port}/lsp"
    other = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), _OtherSite)
    threading.Thread(target=other.serve_forever, daemon=True).start()
    (tmp_path / "page.html").write_text("<!doctype html><title>a file</title>")
    try:
        page = browser.new_page()
        for where in (f"http://127.0.0.1:{other.server_address[1]}/", f"http://localhost:{other.server_address[1]}/",
                      "data:text/html,<title>data</title>", (tmp_path / "page.html").as_uri()):
            page.goto(where)
            # Even with the right token: the upgrade itself is refused (HTTP 403).
            assert page.evaluate(TRY_CONNECT, [ws_url, playground.token]) == "refused", where
            # Nor can it read the page's settings.
            read = page.evaluate("""async (u) => { try { return await (await fetch(u)).text(); }
                                    catch (e) { return 'blocked'; } }""", f"{playground.origin}/config.json")
            assert read == "blocked", where
        # The page's own origin without the token: an error, then the socket is closed. (The
        # previous test's session may still be closing: one session at a time, so wait for it.)
        page.goto(f"{playground.origin}/")

        def unauthorized() -> bool:
            answer = page.evaluate(TRY_CONNECT, [ws_url, None])
            return '"code": -32001' in answer or '"code":-32001' in answer
        wait_until("the token refusal (-32001)", unauthorized, 60)
        wrong = page.evaluate(TRY_CONNECT, [ws_url, "x" * 43])
        assert "-32001" in wrong or "-32002" in wrong
        page.close()
    finally:
        other.shutdown()

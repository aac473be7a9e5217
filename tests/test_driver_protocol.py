"""The driver's client protocol leans on two private pygls names (`_handle_response`,
`_request_futures`) to drop answers to requests it cancelled: pinned here, so a pygls upgrade that
renames them fails this test instead of bringing back a traceback per superseded keystroke."""

from __future__ import annotations

import asyncio

from pygls.client import JsonRPCClient
from pygls.lsp.client import LanguageClient
from pygls.protocol import JsonRPCProtocol

from lsp_server.driver.session import _ClientProtocol


def test_the_pygls_names_the_driver_overrides_exist() -> None:
    assert callable(getattr(JsonRPCProtocol, "_handle_response", None))
    client = LanguageClient("pin", "0", protocol_cls=_ClientProtocol)
    assert isinstance(client, JsonRPCClient)
    assert isinstance(client.protocol._request_futures, dict)


def test_an_answer_to_a_cancelled_request_is_dropped_and_others_still_land() -> None:
    async def run() -> None:
        client = LanguageClient("pin", "0", protocol_cls=_ClientProtocol)
        proto = client.protocol
        loop = asyncio.get_running_loop()
        cancelled, live = loop.create_future(), loop.create_future()
        cancelled.cancel()
        proto._request_futures["a"] = cancelled
        proto._request_futures["b"] = live
        proto._handle_response("a", {"x": 1})  # no InvalidStateError
        proto._handle_response("b", {"x": 2})
        assert "a" not in proto._request_futures and live.result() == {"x": 2}

    asyncio.run(run())

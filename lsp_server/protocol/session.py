"""The session: initialization, settings from the client, counters, shutdown."""

from __future__ import annotations

from typing import Any

from lsprotocol import types

from lsp_server import defaults
from lsp_server.protocol.logs import forward_logs
from lsp_server.protocol.server import StarcoderServer  # at run time: pygls reads the hints
from lsp_server.settings import merge

STATS_METHOD = "starcoder/stats"


def initialize(ls: StarcoderServer, params: types.InitializeParams) -> None:
    forward_logs(ls)
    settings, problems = merge(ls.cli_settings, params.initialization_options)
    ls.assistant.settings = settings
    ls.show_problems(problems)


async def initialized(ls: StarcoderServer, params: types.InitializedParams) -> None:
    ls.send_status("loading", ls.assistant.settings.model, "starting")

    async def start() -> None:
        raw = await ls.pull_configuration()
        settings, problems = merge(ls.assistant.settings, raw)
        ls.show_problems(problems)
        ls.assistant.settings = settings
        ls.recheck_secrets()
        if not settings.enable:
            await ls.assistant.apply_settings(settings)
            return
        await ls.load_with_progress()

    ls.spawn(start())


async def did_change_configuration(
    ls: StarcoderServer, params: types.DidChangeConfigurationParams
) -> None:
    async def update() -> None:
        raw = params.settings
        has_section = isinstance(raw, dict) and isinstance(raw.get(defaults.SETTINGS_SECTION),
                                                           dict)
        if not has_section:
            raw = await ls.pull_configuration()
        settings, problems = merge(ls.assistant.settings, raw)
        ls.show_problems(problems)
        ls.assistant.settings = settings  # (what to load is decided from what was loaded)
        ls.recheck_secrets()
        await ls.assistant.apply_settings(settings, ls.load_with_progress)

    ls.spawn(update())


def stats(ls: StarcoderServer, params: Any) -> dict[str, Any]:
    """Counters (tokens evaluated, cache hits): for benchmarks and bug reports."""
    return {**ls.assistant.stats(), **ls.failures.stats(), **ls.lag.snapshot()}


def shutdown(ls: StarcoderServer, params: Any) -> None:
    ls.assistant.shutdown()
    ls.lag.stop()
    ls.background.cancel_all()


def setup(server: StarcoderServer) -> None:
    server.feature(types.INITIALIZE)(initialize)
    server.feature(types.INITIALIZED)(initialized)
    server.feature(types.WORKSPACE_DID_CHANGE_CONFIGURATION)(did_change_configuration)
    server.feature(STATS_METHOD)(stats)
    server.feature(types.SHUTDOWN)(shutdown)

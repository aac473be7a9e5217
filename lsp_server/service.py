"""The model-backed features, independent of LSP: one lifecycle manager and the pipelines over it,
so the LSP server and the CLI share exactly the same behaviour."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from lsp_server.engine.model import load_model
from lsp_server.lifecycle import Loader, ModelManager, StatusCallback
from lsp_server.pipelines.completion import CompletionPipeline, CompletionRequest, Suggestion
from lsp_server.pipelines.edit import EditPipeline
from lsp_server.pipelines.explain import ExplainPipeline, Explanation
from lsp_server.settings import Settings

__all__ = ["Assistant", "CompletionRequest", "Explanation", "Suggestion"]


class Assistant:
    """Wiring: the manager owns the engine; each pipeline asks it for the engine per request."""

    def __init__(self, settings: Settings, on_status: StatusCallback | None = None,
                 on_warning: Callable[[str], None] | None = None, *,
                 loader: Loader = load_model, naive: bool = False) -> None:
        self.manager = ModelManager(settings, on_status, on_warning, loader)
        self.completion = CompletionPipeline(self.manager, naive=naive)
        self.explainer = ExplainPipeline(self.manager)
        self.complete = self.completion.complete
        self.explain = self.explainer.explain
        self.edit = EditPipeline(self.manager).edit
        self.load = self.manager.load

    @property
    def settings(self) -> Settings:
        return self.manager.settings

    @settings.setter
    def settings(self, value: Settings) -> None:
        self.manager.settings = value

    @property
    def state(self) -> str:
        return self.manager.state

    @property
    def message(self) -> str:
        return self.manager.message

    @property
    def ready(self) -> bool:
        return self.manager.ready

    @property
    def worker(self) -> Any:
        """The thread that owns a local model (tests queue jobs on it)."""
        return self.manager.worker

    async def apply_settings(self, settings: Settings,
                             load: Callable[[], Awaitable[None]] | None = None) -> None:
        await self.manager.apply_settings(settings, load)

    def stats(self) -> dict[str, Any]:
        """Counters for benchmarks and bug reports (`starcoder/stats`)."""
        engine = self.manager.engine
        return {"state": self.state, "model": self.manager.model,
                "evaluated": 0, **(engine.stats() if engine else {}), **self.completion.stats()}

    async def aclose(self) -> None:
        self.completion.shutdown()
        await self.manager.aclose()

    def shutdown(self) -> None:
        self.completion.shutdown()
        self.manager.shutdown()

"""What an LSP request means for the pipelines: which open documents count, how their paths and
folders read to the model, and the `CompletionRequest` at a position (notebook cells included)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

import platformdirs
from lsprotocol import types

from lsp_server import defaults
from lsp_server.context.edits import EditedRange
from lsp_server.context.notebook import Cell, with_earlier_cells
from lsp_server.context.snippets import SourceDoc
from lsp_server.pipelines.completion import CompletionRequest
from lsp_server.protocol import uris

if TYPE_CHECKING:
    from lsp_server.protocol.server import StarcoderServer


def folders(ls: StarcoderServer) -> list[uris.Folder]:
    """The workspace folders, and the root when the client sent one outside them."""
    ws = ls.workspace
    found = [uris.Folder(f.uri, f.name) for f in ws.folders.values()]
    if ws.root_uri and all(f.uri != ws.root_uri for f in found):
        found.append(uris.Folder(ws.root_uri))
    return found


def display_path(doc: Any, folders: list[uris.Folder]) -> str:
    """Workspace-relative path for the model (it saw repository paths in training)."""
    return uris.display_path(doc.uri, folders, doc.language_id or "") or "untitled"


def source_doc(doc: Any, folders: list[uris.Folder]) -> SourceDoc:
    return SourceDoc(doc.uri, display_path(doc, folders), doc.source, doc.language_id or "")


def explanations_dir() -> Path:
    return Path(platformdirs.user_cache_dir(defaults.APP_NAME)) / "explanations"


def _is_our_output(path: str | None, ours: Path | None = None) -> bool:
    """Explanation files the server wrote and showed: never context, never completed."""
    return bool(path) and Path(str(path)).parent == (ours or explanations_dir())


def completes(doc: Any) -> bool:
    """Whether the document gets suggestions and code actions (uris.SCHEMES decides)."""
    return uris.policy(doc.uri).completes and not _is_our_output(doc.path)


def is_context(doc: Any, ours: Path | None = None) -> bool:
    """Whether the document's text may inform completions in other documents."""
    return uris.policy(doc.uri).context and not _is_our_output(doc.path, ours)


def _cell_lines(ls: StarcoderServer, doc: Any, handle: int, lines: Any) -> tuple[list[str], int]:
    """A notebook cell's lines after those of the notebook's earlier open cells."""
    here = uris.location(doc.uri)
    cells = []
    for key, other in ls.workspace.text_documents.items():
        cell = uris.notebook_cell(other.uri)
        if (other is doc or cell is None or not ls.protocol.is_usable(key)
                or uris.location(other.uri) != here):
            continue
        cells.append(Cell(cell[1], other.language_id or "", ls.protocol.lines(other)))
    return with_earlier_cells(cells, Cell(handle, doc.language_id or "", lines))


def completion_request(ls: StarcoderServer, uri: str, position: types.Position) -> CompletionRequest | None:
    doc = ls.protocol.open_document(uri)  # never a file the client did not open (no disk reads)
    if doc is None or not completes(doc):
        return None
    lines: Sequence[str] = ls.protocol.lines(doc, editor=True)  # a view: no string per line
    line = min(max(position.line, 0), len(lines) - 1)
    # The codec with the lines already split (doc.position_from_client_units splits them again).
    pos = doc.position_codec.position_from_client_units(
        lines, types.Position(line, max(position.character, 0)))
    known = folders(ls)
    ours = explanations_dir()
    cell = uris.notebook_cell(doc.uri)
    notebook = uris.location(doc.uri) if cell is not None else None

    def wanted(other: SourceDoc | Any) -> bool:  # a notebook's own cells are in the prefix
        return notebook is None or uris.notebook_cell(other.uri) is None \
            or uris.location(other.uri) != notebook

    others = [source_doc(d, known) for u, d in ls.workspace.text_documents.items()
              if d is not doc and ls.protocol.is_usable(u) and is_context(d, ours)
              and wanted(d)]
    open_uris = {d.uri for d in others}
    others += [d for d in ls.recent.docs()
               if d.uri not in open_uris and d.uri != uri and wanted(d)]
    offset = 0
    if cell is not None:
        lines, offset = _cell_lines(ls, doc, cell[1], lines)
    folder = uris.containing_folder(doc.uri, known) or (known[0] if known else None)
    repo = (folder.display_name if folder else "") or defaults.DEFAULT_REPO_NAME
    return CompletionRequest(lines, offset + pos.line, pos.character, uri, doc.language_id or "",
                             display_path(doc, known), others, repo,
                             _edits(ls.protocol.edits.ranges(), uri, offset))


def _edits(ranges: list[EditedRange], uri: str, offset: int) -> list[EditedRange]:
    """The edit log with this document's ranges in the request's numbering (a notebook cell's
    lines come after its earlier cells')."""
    if not offset:
        return ranges
    here = unquote(uri)
    return [EditedRange(r.uri, r.start + offset, r.end + offset) if r.uri == here else r
            for r in ranges]

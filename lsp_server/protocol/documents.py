"""Which document text the server keeps: bounded in size, only for documents the client opened.

A document over `defaults.MAX_DOCUMENT_BYTES` characters or `defaults.MAX_DOCUMENT_LINES` lines
(each edit's bookkeeping grows with the line count), or one that would take the open
documents past `defaults.MAX_TOTAL_DOCUMENT_BYTES`, is kept as an empty placeholder (memory stays
bounded, completions answer empty) and the user is told once; it is admitted again when a
full-text change brings it within the limits. Edits for documents that were never opened, or that
cannot be applied, are logged and dropped instead of raising inside pygls.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Generator, Sequence
from typing import Any
from urllib.parse import unquote

import attrs
from lsprotocol import types
from pygls.protocol.language_server import lsp_method
from pygls.workspace import PositionCodec, TextDocument
from pygls.workspace.position_codec import ServerTextPosition

from lsp_server import defaults
from lsp_server.protocol.rpc import RobustProtocol
from lsp_server.protocol.textdoc import use_fast_documents

log = logging.getLogger(__name__)


def _name(uri: str) -> str:
    return unquote(uri.rsplit("/", 1)[-1]) or uri


def too_large_message(uri: str) -> str:
    return (f"{_name(uri)} is larger than {defaults.MAX_DOCUMENT_BYTES // 2**20} MB: no "
            "completions for it (the server keeps no text of files this large).")


def too_many_lines_message(uri: str) -> str:
    return (f"{_name(uri)} has more than {defaults.MAX_DOCUMENT_LINES:,} lines: no completions for "
            "it (generated data, not code to complete).")


def over_total_message(uri: str) -> str:
    return (f"{_name(uri)} is not kept: the open documents already hold "
            f"{defaults.MAX_TOTAL_DOCUMENT_BYTES // 2**20} MB of text. Close some to get "
            "completions in it.")


class FastPositionCodec(PositionCodec):
    """pygls' codec, converting in C instead of one character at a time in Python.

    pygls walks a line in Python for every position it converts (twice per edit): 70 ms per
    keystroke on a 100,000-character line in UTF-16, and 1.8 s for a code action on a 1 MB minified
    line in UTF-8 (what Neovim negotiates). Here the line is encoded once and the column found by
    slicing; the result is exactly pygls' (its clamp of a column past the end to the last character,
    a column inside a character counting that character), checked against pygls by a property
    test. Lines with lone surrogates (pygls counts their halves apart) take pygls' own path.
    """

    def _kind(self) -> types.PositionEncodingKind:
        for kind in (types.PositionEncodingKind.Utf8, types.PositionEncodingKind.Utf32):
            if self.encoding == kind:
                return kind
        return types.PositionEncodingKind.Utf16  # pygls' default for anything else

    def _encoded(self, line: str) -> tuple[bytes, int] | None:
        """The line in the client's units (bytes, bytes per unit); None for lone surrogates."""
        kind = self._kind()
        try:
            if kind == types.PositionEncodingKind.Utf8:
                return line.encode("utf-8"), 1
            if kind == types.PositionEncodingKind.Utf32:
                return line.encode("utf-32-le"), 4
            return line.encode("utf-16-le"), 2
        except UnicodeEncodeError:
            return None

    def position_from_client_units(self, lines: Sequence[str], position: types.Position
                                   ) -> ServerTextPosition:
        if position.line < 0 or (position.line < len(lines) and not lines[position.line].isascii()
                                 and self._encoded(lines[position.line]) is None):
            return super().position_from_client_units(lines, position)
        if position.line >= len(lines):  # pygls: the last line's length in client units
            if not lines:
                return ServerTextPosition(0, 0)
            encoded = self._encoded(lines[-1])
            if encoded is None:
                return super().position_from_client_units(lines, position)
            return ServerTextPosition(len(lines) - 1, len(encoded[0]) // encoded[1])
        line = lines[position.line].replace("\r\n", "\n")
        ch = position.character
        if line.isascii():
            n = len(line)
            if n == 0:
                return ServerTextPosition(position.line, 0)
            return ServerTextPosition(position.line, ch if ch <= n else n - 1)
        data, width = self._encoded(line) or (b"", 1)
        units = len(data) // width
        ch = ch if ch <= units else units - 1
        if width == 4:
            return ServerTextPosition(position.line, ch)
        cut = ch * width
        codec = "utf-8" if width == 1 else "utf-16-le"
        # Characters that start before the cut: a cut inside one counts it (pygls walks past it).
        index = len(data[:cut].decode(codec, "ignore"))
        if cut < len(data) and _inside_character(data, cut, width):
            index += 1
        return ServerTextPosition(position.line, index)


def _inside_character(data: bytes, cut: int, width: int) -> bool:
    """Whether byte offset `cut` falls inside a multi-unit character."""
    if width == 1:
        return 0x80 <= data[cut] < 0xC0  # a UTF-8 continuation byte
    return 0xDC <= data[cut + 1] <= 0xDF  # the low half of a UTF-16 surrogate pair


class BoundedDocuments(RobustProtocol):
    """pygls' document sync with size limits and tolerance for out-of-order notifications."""

    too_large: set[str]
    on_too_large: Callable[[str], None] | None = None  # shows a message to the user

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.too_large = set()
        self._told: set[str] = set()
        self._kept: dict[str, int] = {}  # characters kept per document (for the total limit)
        self.kept_total = 0

    def open_document(self, uri: str) -> TextDocument | None:
        """The document if the client opened it and it is within the limits; never reads disk."""
        key = unquote(uri)
        if key in self.too_large:
            return None
        doc: TextDocument | None = self.workspace.text_documents.get(key)
        return doc

    def _keep(self, key: str, size: int) -> None:
        self.kept_total += size - self._kept.get(key, 0)
        self._kept[key] = size

    def _forget(self, key: str) -> None:
        self.kept_total -= self._kept.pop(key, 0)

    def _refusal(self, key: str, text: str) -> Callable[[str], str] | None:
        """Why a document with `text` cannot be kept, as a message maker; None if it can."""
        size = len(text)
        if size > defaults.MAX_DOCUMENT_BYTES:
            return too_large_message
        if max(text.count("\n"), text.count("\r")) > defaults.MAX_DOCUMENT_LINES:
            return too_many_lines_message
        if self.kept_total - self._kept.get(key, 0) + size > defaults.MAX_TOTAL_DOCUMENT_BYTES:
            return over_total_message
        return None

    def _drop(self, uri: str, message: Callable[[str], str]) -> None:
        """Keep only an empty placeholder for `uri`; tell the user once per document."""
        key = unquote(uri)
        self.too_large.add(key)
        self._forget(key)
        doc = self.workspace.text_documents.get(key)
        if doc is not None:
            doc.apply_change(types.TextDocumentContentChangeWholeDocument(text=""))
        if key not in self._told:
            self._told.add(key)
            log.warning("%s", message(uri))
            if self.on_too_large is not None:
                self.on_too_large(message(uri))

    @lsp_method(types.INITIALIZE)
    def lsp_initialize(self, params: types.InitializeParams
                       ) -> Generator[Any, Any, types.InitializeResult]:
        result = yield from super().lsp_initialize(params)
        # pygls has no hook for the codec: documents opened from now on share this one.
        self.workspace._position_codec = FastPositionCodec(self.workspace.position_codec.encoding)
        use_fast_documents(self.workspace)
        return result

    @lsp_method(types.TEXT_DOCUMENT_DID_OPEN)
    def lsp_text_document__did_open(self, params: types.DidOpenTextDocumentParams
                                    ) -> Generator[Any, Any, None]:
        item = params.text_document
        key = unquote(item.uri)
        refusal = self._refusal(key, item.text)
        if refusal is not None:
            params = attrs.evolve(params, text_document=attrs.evolve(item, text=""))
            yield from super().lsp_text_document__did_open(params)
            self._drop(item.uri, refusal)
            return
        self.too_large.discard(key)
        self._keep(key, len(item.text))
        yield from super().lsp_text_document__did_open(params)

    @lsp_method(types.TEXT_DOCUMENT_DID_CHANGE)
    def lsp_text_document__did_change(self, params: types.DidChangeTextDocumentParams
                                      ) -> Generator[Any, Any, None]:
        uri = params.text_document.uri
        key = unquote(uri)
        doc = self.workspace.text_documents.get(key)
        if doc is None:
            log.warning("didChange for %s, which is not open: ignored", uri)
            return
        if params.text_document.version is not None and doc.version is not None \
                and params.text_document.version <= doc.version:
            log.info("didChange for %s goes from version %s back to %s: applied as sent", uri,
                     doc.version, params.text_document.version)
        for change in params.content_changes:
            whole = not isinstance(change, types.TextDocumentContentChangePartial)
            if key in self.too_large:
                if not whole or self._refusal(key, change.text) is not None:
                    continue  # an edit of text we do not keep
                self.too_large.discard(key)  # the client sent the full text again, and it fits
            try:
                doc.apply_change(change)
            except Exception:  # e.g. a range that does not fit the document
                log.warning("could not apply an edit to %s: ignored", uri, exc_info=True)
                continue
            refusal = self._refusal(key, doc.source)
            if refusal is not None:
                self._drop(uri, refusal)
            else:
                self._keep(key, len(doc.source))
        doc.version = params.text_document.version
        if (handler := self.fm.features.get(types.TEXT_DOCUMENT_DID_CHANGE)) is not None:
            yield handler, (params,), None

    @lsp_method(types.TEXT_DOCUMENT_DID_CLOSE)
    def lsp_text_document__did_close(self, params: types.DidCloseTextDocumentParams
                                     ) -> Generator[Any, Any, None]:
        key = unquote(params.text_document.uri)
        self.too_large.discard(key)
        self._told.discard(key)
        self._forget(key)
        yield from super().lsp_text_document__did_close(params)

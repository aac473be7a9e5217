"""Which document text the server keeps: bounded in memory, only for documents the client opened,
never for secrets.

A document over `defaults.MAX_DOCUMENT_BYTES` characters or `defaults.MAX_DOCUMENT_LINES` lines
(each edit re-indexes the lines), or one that would take the open documents past
`defaults.MAX_DOCUMENT_MEMORY_BYTES` of memory, is kept as an empty placeholder (completions answer
empty) and the user is told once; it is admitted again when a full-text change brings it within the
limits. Memory is counted as Python holds it (`document_memory`: 1, 2 or 4 bytes per character,
whichever the widest character needs, plus the line index), not in characters: a page of emoji
takes four times the memory of ASCII. Lines are served as a `DocumentLines` view (8 bytes per
line), never as a string per line per request, and an incremental edit is spliced from that index.

A secrets document (`context.secrets`: `.env`, keys, the user's `exclude` patterns) is kept empty
from the start: its text never reaches context, a prompt or an explanation, and the user is told
that completions are off for it. Edits for documents that were never opened, or that cannot be
applied, are logged and dropped instead of raising inside pygls.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Generator, Sequence
from typing import Any
from urllib.parse import unquote

import attrs
from lsprotocol import types
from pygls.protocol.language_server import lsp_method
from pygls.workspace import PositionCodec, TextDocument
from pygls.workspace.position_codec import ServerTextPosition

from lsp_server import defaults
from lsp_server.context.edits import EditLog
from lsp_server.context.lines import DocumentLines
from lsp_server.protocol.rpc import RobustProtocol

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
    return (f"{_name(uri)} is not kept: the open documents already take "
            f"{defaults.MAX_DOCUMENT_MEMORY_BYTES // 2**20} MB of memory. Close some to get "
            "completions in it.")


def document_memory(text: str) -> int:
    """Bytes a kept document costs: its string as CPython stores it, plus its line index
    (`DocumentLines`, 8 bytes per line)."""
    return _memory(text, text.count("\n") + text.count("\r"))


def _memory(text: str, breaks: int) -> int:
    return sys.getsizeof(text) + 8 * (breaks + 2)


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


def _deletes(change: Any) -> bool:
    """An incremental change that removes text and inserts none (a whole-text change is not
    judged: it says nothing about what the user did)."""
    if not isinstance(change, types.TextDocumentContentChangePartial) or change.text:
        return False
    r = change.range
    return (r.start.line, r.start.character) != (r.end.line, r.end.character)


def _inside_character(data: bytes, cut: int, width: int) -> bool:
    """Whether byte offset `cut` falls inside a multi-unit character."""
    if width == 1:
        return 0x80 <= data[cut] < 0xC0  # a UTF-8 continuation byte
    return 0xDC <= data[cut + 1] <= 0xDF  # the low half of a UTF-16 surrogate pair


class BoundedDocuments(RobustProtocol):
    """pygls' document sync with size limits and tolerance for out-of-order notifications."""

    too_large: set[str]
    on_too_large: Callable[[str], None] | None = None  # shows a message to the user
    # (uri, path, language id) -> why the document is a secret, or None (context.secrets).
    secret_reason: Callable[[str, str | None, str], str | None] | None = None
    on_secret: Callable[[str, str], None] | None = None  # (uri, reason): tell the user

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.too_large = set()
        self.secret: dict[str, str] = {}  # uri key -> why its text is not kept
        self._told: set[str] = set()
        self._kept: dict[str, int] = {}  # memory per kept document (for the total limit)
        self.kept_total = 0
        self._lines: dict[str, DocumentLines] = {}  # uri key -> view of its current text
        self._deleted: set[str] = set()  # uri keys whose last change only deleted text
        self.edits = EditLog()  # where the user edited lately (recent-edit context)

    def just_deleted(self, uri: str) -> bool:
        """Whether the document's last change only deleted text (Backspace, Delete, cut)."""
        return unquote(uri) in self._deleted

    def open_document(self, uri: str) -> TextDocument | None:
        """The document if the client opened it, it is within the limits and not a secret;
        never reads disk."""
        key = unquote(uri)
        if key in self.too_large or key in self.secret:
            return None
        doc: TextDocument | None = self.workspace.text_documents.get(key)
        return doc

    def is_usable(self, uri: str) -> bool:
        """Whether the document's text is kept (not too large, not a secret)."""
        key = unquote(uri)
        return key not in self.too_large and key not in self.secret

    def lines(self, doc: TextDocument, *, editor: bool = False) -> DocumentLines:
        """The document's lines (with `editor`: numbered as the editor shows them, see
        `window.editor_lines`), shared by every request on this version of its text."""
        key = unquote(doc.uri)
        text = doc.source
        view = self._lines.get(key)
        if view is None or view.text is not text:
            view = self._lines[key] = DocumentLines(text, editor=True)
        return view if editor else view.without_editor_line()

    def _apply(self, doc: TextDocument, change: Any) -> None:
        """pygls' `apply_change`, with incremental edits spliced from the line index: pygls
        rebuilds the text from a string per line (~15 MB of objects, and ~70 ms, per keystroke
        in a 200,000-line file)."""
        if not (isinstance(change, types.TextDocumentContentChangePartial)
                and doc._is_sync_kind_incremental):
            doc.apply_change(change)
            return
        view = self.lines(doc)
        rng = doc.position_codec.range_from_client_units(view, change.range)
        doc._source = view.splice((rng.start.line, rng.start.character),
                                  (rng.end.line, rng.end.character), change.text)

    def _check_secret(self, uri: str, path: str | None, language: str) -> str | None:
        if self.secret_reason is None:
            return None
        try:
            return self.secret_reason(uri, path, language)
        except Exception:  # a bug in matching must not open the door: treat it as a secret
            log.exception("the secrets check failed for %s", uri)
            return "the secrets check failed (see the log)"

    def _hide(self, uri: str, reason: str) -> None:
        """Keep only an empty placeholder for a secrets document; tell the user once."""
        key = unquote(uri)
        first = key not in self.secret
        self.secret[key] = reason
        self._forget(key)
        doc = self.workspace.text_documents.get(key)
        if doc is not None and doc.source:
            doc.apply_change(types.TextDocumentContentChangeWholeDocument(text=""))
        if first:
            log.info("%s: its text is not kept (%s)", _name(uri), reason)
            if self.on_secret is not None:
                self.on_secret(uri, reason)

    def recheck_secrets(self) -> list[str]:
        """After a settings change: hide documents that became secrets; return the URIs that are
        no longer secrets (their text is gone: the user must reopen them)."""
        released = []
        for key, doc in list(self.workspace.text_documents.items()):
            reason = self._check_secret(doc.uri, doc.path, doc.language_id or "")
            if reason is not None:
                self._hide(doc.uri, reason)
            elif key in self.secret:
                released.append(doc.uri)
        return released

    def _forget(self, key: str) -> None:
        self.kept_total -= self._kept.pop(key, 0)
        self._lines.pop(key, None)

    def _admit(self, key: str, text: str) -> Callable[[str], str] | None:
        """Count `text` as the document's memory if it fits the limits (None); else why not, as a
        message maker. One pass per line-break kind: this runs on every keystroke."""
        if len(text) > defaults.MAX_DOCUMENT_BYTES:
            return too_large_message
        lf, cr = text.count("\n"), text.count("\r")
        if max(lf, cr) > defaults.MAX_DOCUMENT_LINES:
            return too_many_lines_message
        memory, before = _memory(text, lf + cr), self._kept.get(key, 0)
        if self.kept_total - before + memory > defaults.MAX_DOCUMENT_MEMORY_BYTES:
            return over_total_message
        self.kept_total += memory - before
        self._kept[key] = memory
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
        return result

    @lsp_method(types.TEXT_DOCUMENT_DID_OPEN)
    def lsp_text_document__did_open(self, params: types.DidOpenTextDocumentParams
                                    ) -> Generator[Any, Any, None]:
        item = params.text_document
        key = unquote(item.uri)
        secret = self._check_secret(item.uri, _path_of(item.uri), item.language_id or "")
        if secret is not None:
            params = attrs.evolve(params, text_document=attrs.evolve(item, text=""))
            yield from super().lsp_text_document__did_open(params)
            self._hide(item.uri, secret)
            return
        self.secret.pop(key, None)
        self.edits.forget(key)  # ranges of an earlier text of it would show the wrong lines
        refusal = self._admit(key, item.text)
        if refusal is not None:
            params = attrs.evolve(params, text_document=attrs.evolve(item, text=""))
            yield from super().lsp_text_document__did_open(params)
            self._drop(item.uri, refusal)
            return
        self.too_large.discard(key)
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
            if key in self.secret:
                break  # never applied: a secret's text is not kept, even for a moment
            whole = not isinstance(change, types.TextDocumentContentChangePartial)
            if key in self.too_large:
                if not whole:
                    continue  # an edit of text we do not keep
                self.too_large.discard(key)  # the full text again: kept below if it now fits
            try:
                self._apply(doc, change)
            except Exception:  # e.g. a range that does not fit the document
                log.warning("could not apply an edit to %s: ignored", uri, exc_info=True)
                continue
            if isinstance(change, types.TextDocumentContentChangePartial):
                self.edits.record(key, change.range.start.line, change.range.end.line,
                                  change.text)
            refusal = self._admit(key, doc.source)
            if refusal is not None:
                self._drop(uri, refusal)
        doc.version = params.text_document.version
        if params.content_changes and all(_deletes(c) for c in params.content_changes):
            self._deleted.add(key)
        else:
            self._deleted.discard(key)
        if (handler := self.fm.features.get(types.TEXT_DOCUMENT_DID_CHANGE)) is not None:
            yield handler, (params,), None

    @lsp_method(types.TEXT_DOCUMENT_DID_CLOSE)
    def lsp_text_document__did_close(self, params: types.DidCloseTextDocumentParams
                                     ) -> Generator[Any, Any, None]:
        key = unquote(params.text_document.uri)
        self.too_large.discard(key)
        self.secret.pop(key, None)
        self._told.discard(key)
        self._deleted.discard(key)
        self._forget(key)
        yield from super().lsp_text_document__did_close(params)


def _path_of(uri: str) -> str | None:
    """The file path of a `file:` URI (as pygls derives it), else None."""
    from pygls.uris import to_fs_path

    try:
        return to_fs_path(uri) if uri.startswith("file:") else None
    except Exception:
        return None

"""The language server: the same engine and rules as ``losslint check``, in an
editor.

- Diagnostics on open, change and save: code, severity, the message, and a link to
  the rule's documentation (the text of ``losslint rule CODE``, written once per
  version as Markdown under the user's cache directory, opened by the editor).
- Code actions: each finding's fix as a quick fix (unsafe fixes say so in their
  title), and "fix all" (the safe fixes, plus the unsafe ones when the
  configuration sets ``unsafe-fixes = true``), also as ``source.fixAll.losslint``
  for editors' fix-on-save.
- Quick fixes are offered for a diagnostic when the requested range touches any
  of its lines (not only its columns), and for every diagnostic the client lists in
  ``context.diagnostics``.
- Configuration: the file's nearest ``[tool.losslint]`` (pyproject.toml,
  losslint.toml), as for ``losslint check``. Facts from the project's other files
  come from ``losslint.single_file``; saving a file refreshes them. The server asks
  the client to watch the configuration files (``workspace/didChangeWatchedFiles``):
  when one changes, the settings are read again and every open document linted.
- Training configs (YAML/JSON/TOML that the code reads, ``analysis/configs.py``):
  an open config gets the diagnostics ``losslint check`` reports in it; the open
  scripts that read a config are linted again when it changes, in its buffer
  (unsaved text included: scripts are judged on it) or on disk (watched files).

The protocol (JSON-RPC over stdin/stdout, ``Connection``) is spoken here, on
plain dicts: the messages this server sends and reads are a dozen, and a
protocol library's typed classes cost more to import than the first lint of a
1,000-line file (pygls and lsprotocol: about 400 ms of CPU at every start).
Changes that arrive while a lint runs are applied together and linted once.

Speed: the rule modules are imported by a thread once the client is initialized
(or by the first lint, whichever comes first), libcst only when a fix is asked
for; the objects that live for the session (modules, the project's facts) are
frozen out of the garbage collector's sight after the first lint.

Positions: the engine counts columns in characters (code points); the client's
position encoding is negotiated at ``initialize`` (UTF-32, then UTF-8, from the
client's ``general.positionEncodings``; UTF-16 by default, as the protocol says),
and columns are converted only on lines that are not ASCII.
"""

from __future__ import annotations

import difflib
import gc
import json
import os
import queue
import re
import sys
import threading
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Callable
from urllib.parse import unquote, urlparse

from losslint import __version__
from losslint.config import user_cache_dir
from losslint.findings import Applicability, Finding, RelatedLocation, Severity, Span
from losslint.project import file_key
from losslint.single_file import forget_project_facts, forget_settings, prepare, settings_for

SOURCE = "losslint"
FIX_ALL_KIND = "source.fixAll.losslint"
QUICK_FIX, SOURCE_FIX_ALL = "quickfix", "source.fixAll"
SETTINGS_FILES = ("pyproject.toml", "losslint.toml", ".losslint.toml")
CONFIG_GLOBS = tuple(f"**/{name}" for name in SETTINGS_FILES)
# the training configs code may read (analysis/configs.CONFIG_SUFFIXES)
TRAINING_CONFIG_GLOBS = ("**/*.yaml", "**/*.yml", "**/*.json", "**/*.toml")
LINTED_SUFFIXES = (".py", ".pyi", ".yaml", ".yml", ".json", ".toml")
# DiagnosticSeverity, MessageType, FileChangeType, TextDocumentSyncKind of the protocol
_SEVERITY = {Severity.ERROR: 1, Severity.WARNING: 2, Severity.INFO: 3}
ERROR_MESSAGE, WARNING_MESSAGE = 1, 2
FILE_CHANGED = 2
INCREMENTAL_SYNC = 2
# JSON-RPC error codes
METHOD_NOT_FOUND, INVALID_REQUEST, INTERNAL_ERROR, PARSE_ERROR = -32601, -32600, -32603, -32700
# an LSP line ends at \n, \r\n or \r only (str.splitlines also splits at \x0b, \x0c, ...)
_LINES = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+\Z")


_DOC_URIS: dict[str, str] = {}


def rule_doc_uri(code: str) -> str:
    """A file: URI of the rule's documentation, written on first use."""
    if code in _DOC_URIS:
        return _DOC_URIS[code]
    from losslint.rule_docs import rule_documentation  # the text of `losslint rule CODE`
    from losslint.rules.base import all_rules

    base = user_cache_dir() / "rules" / __version__
    path = base / f"{code}.md"
    if not path.is_file():
        rule = next((r for r in all_rules() if r.code == code), None)
        if rule is not None:
            try:
                base.mkdir(parents=True, exist_ok=True)
                temporary = path.with_suffix(f".{os.getpid()}.tmp")
                temporary.write_text(rule_documentation(rule) + "\n", encoding="utf-8")
                os.replace(temporary, path)
            except OSError:
                pass
    _DOC_URIS[code] = path.as_uri()
    return _DOC_URIS[code]


def uri_to_path(uri: str) -> Path:
    parsed = urlparse(uri)
    if parsed.scheme != "file":
        return Path(unquote(parsed.path) or "untitled.py")
    return Path(unquote(parsed.path))


def split_lines(text: str) -> list[str]:
    """The text's lines as the protocol counts them, each with its line ending."""
    return _LINES.findall(text)


# -- positions: characters (code points) <-> the client's units ------------------------
def units_of(text: str, encoding: str) -> int:
    """How many of the encoding's units ``text`` takes."""
    if encoding == "utf-32" or text.isascii():
        return len(text)
    if encoding == "utf-8":
        return len(text.encode("utf-8"))
    return len(text) + sum(1 for char in text if ord(char) > 0xFFFF)  # UTF-16: two units beyond the BMP


def characters_in(line: str, units: int, encoding: str) -> int:
    """How many characters of ``line`` the first ``units`` units cover (at most the
    line, its ending excluded)."""
    content = line.rstrip("\r\n")
    if encoding == "utf-32" or content.isascii():
        return min(units, len(content))
    count = 0
    for index, char in enumerate(content):
        count += units_of(char, encoding)
        if count > units:
            return index
    return len(content)


@dataclass
class Document:
    uri: str
    text: str
    version: int | None = None
    _lines: list[str] | None = None

    @property
    def lines(self) -> list[str]:
        if self._lines is None:
            self._lines = split_lines(self.text)
        return self._lines

    def offset(self, position: dict, encoding: str) -> int:
        """An LSP position as an index into the text (past the end: the end)."""
        lines = self.lines
        line = position["line"]
        if line >= len(lines):
            return len(self.text)
        return sum(map(len, lines[:line])) + characters_in(lines[line], position["character"], encoding)

    def apply(self, change: dict, encoding: str) -> None:
        """A ``didChange`` content change: the whole text, or a range replaced."""
        if change.get("range") is None:
            self.text = change["text"]
        else:
            start, end = self.offset(change["range"]["start"], encoding), self.offset(change["range"]["end"], encoding)
            self.text = self.text[:start] + change["text"] + self.text[max(start, end) :]
        self._lines = None


class Connection:
    """JSON-RPC messages over a byte stream pair (the base protocol's
    ``Content-Length`` framing)."""

    def __init__(self, reader: BinaryIO, writer: BinaryIO) -> None:
        self.reader, self.writer = reader, writer

    def read(self) -> dict | None:
        """The next message (None at the end of the input; a message that is not
        JSON becomes ``{"invalid": ...}``)."""
        length = None
        while True:
            line = self.reader.readline()
            if not line:
                return None
            line = line.strip()
            if not line:
                if length is None:
                    continue  # a stray blank line between messages
                break
            name, _, value = line.decode("ascii", "replace").partition(":")
            if name.strip().lower() == "content-length":
                length = int(value.strip())
        body = self.reader.read(length)
        if len(body) < length:
            return None
        try:
            message = json.loads(body)
        except ValueError as error:
            return {"invalid": str(error)}
        return message if isinstance(message, dict) else {"invalid": "not a JSON object"}

    def write(self, message: dict) -> None:
        body = json.dumps({"jsonrpc": "2.0", **message}, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        self.writer.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
        self.writer.flush()


class LosslintServer:
    def __init__(self) -> None:
        self.documents: dict[str, Document] = {}  # the open documents, as the client has them
        self.findings: dict[str, list[Finding]] = {}  # uri -> findings of the text last linted
        self.texts: dict[str, str] = {}
        self.uris: dict[str, str] = {}  # a related location's path -> its URI
        self.reads: dict[str, frozenset[str]] = {}  # an open script's uri -> the configs (file keys) it reads
        self.encoding = "utf-16"
        self.client_capabilities: dict = {}
        self.frozen = False
        self.shutting_down = False
        self.stale: dict[str, None] = {}  # documents changed and not linted yet, in order
        self.connection: Connection | None = None
        self.next_request = 0
        self.requests: dict[str, Callable[[LosslintServer, Any], Any]] = {
            "initialize": LosslintServer.initialize,
            "shutdown": LosslintServer.shutdown,
            "textDocument/codeAction": LosslintServer.code_actions,
        }
        self.notifications: dict[str, Callable[[LosslintServer, Any], None]] = {
            "initialized": LosslintServer.initialized,
            "textDocument/didOpen": LosslintServer.did_open,
            "textDocument/didChange": LosslintServer.did_change,
            "textDocument/didSave": LosslintServer.did_save,
            "textDocument/didClose": LosslintServer.did_close,
            "workspace/didChangeWatchedFiles": LosslintServer.watched_files_changed,
        }

    # -- the protocol -------------------------------------------------------------
    def start_io(self) -> None:
        """Serve over stdin/stdout until the client says ``exit`` or closes stdin."""
        sys.exit(self.serve(Connection(sys.stdin.buffer, sys.stdout.buffer)))

    def serve(self, connection: Connection) -> int:
        """Answer the messages on ``connection``; the exit code (0 after ``shutdown``).
        A thread reads the messages, so that changes arriving during a lint are
        applied together and the document linted once."""
        self.connection = connection
        inbox: queue.Queue = queue.Queue()

        def read() -> None:
            # (stops at ``exit``: a thread still reading stdin when the interpreter
            # finalizes it aborts the process)
            while True:
                message = connection.read()
                inbox.put(message)
                if message is None or message.get("method") == "exit":
                    return

        threading.Thread(target=read, name="losslint-reader", daemon=True).start()
        while True:
            message = inbox.get()
            if message is None:
                return 0 if self.shutting_down else 1
            if message.get("method") != "textDocument/didChange":
                self.lint_stale()  # what came before is answered on the text it saw
            if message.get("method") == "exit":
                return 0 if self.shutting_down else 1
            self.handle(message)
            if inbox.empty():
                self.lint_stale()

    def handle(self, message: dict) -> None:
        method, ident = message.get("method"), message.get("id")
        if "invalid" in message:
            self.send({"id": None, "error": {"code": PARSE_ERROR, "message": message["invalid"]}})
            return
        if method is None:
            return  # the client's answer to one of our requests (registerCapability)
        if ident is None:
            handler = self.notifications.get(method)
            if handler is not None:
                try:
                    handler(self, message.get("params"))
                except Exception:  # a bug of ours must not end the session
                    self.log_error(f"losslint: {method} failed:\n{traceback.format_exc()}")
            return  # other notifications ($/cancelRequest, $/setTrace, ...) need nothing
        request = self.requests.get(method)
        if request is None:
            self.send({"id": ident, "error": {"code": METHOD_NOT_FOUND, "message": f"Method Not Found: {method}"}})
        elif self.shutting_down:
            self.send({"id": ident, "error": {"code": INVALID_REQUEST, "message": "the server is shutting down"}})
        else:
            try:
                self.send({"id": ident, "result": request(self, message.get("params"))})
            except Exception as error:
                self.log_error(f"losslint: {method} failed:\n{traceback.format_exc()}")
                self.send({"id": ident, "error": {"code": INTERNAL_ERROR, "message": f"{type(error).__name__}: {error}"}})

    def send(self, message: dict) -> None:
        assert self.connection is not None
        self.connection.write(message)

    def notify(self, method: str, params: dict) -> None:
        self.send({"method": method, "params": params})

    def request(self, method: str, params: dict) -> None:
        """A request to the client (its answer is not waited for)."""
        self.next_request += 1
        self.send({"id": f"losslint-{self.next_request}", "method": method, "params": params})

    def show_message(self, kind: int, message: str) -> None:
        self.notify("window/showMessage", {"type": kind, "message": message})

    def log_error(self, message: str) -> None:
        print(message, file=sys.stderr)
        self.notify("window/logMessage", {"type": ERROR_MESSAGE, "message": message})

    # -- lifecycle ----------------------------------------------------------------
    def initialize(self, params: dict) -> dict:
        self.client_capabilities = params.get("capabilities") or {}
        offered = (self.client_capabilities.get("general") or {}).get("positionEncodings") or ["utf-16"]
        # columns are code points in the engine: UTF-32 needs no conversion, UTF-8 less than UTF-16
        self.encoding = next((e for e in ("utf-32", "utf-8", "utf-16") if e in offered), "utf-16")
        return {
            "capabilities": {
                "positionEncoding": self.encoding,
                "textDocumentSync": {"openClose": True, "change": INCREMENTAL_SYNC, "save": True},
                "codeActionProvider": {"codeActionKinds": [QUICK_FIX, SOURCE_FIX_ALL, FIX_ALL_KIND]},
                "workspace": {"workspaceFolders": {"supported": True, "changeNotifications": True}},
            },
            "serverInfo": {"name": "losslint", "version": __version__},
        }

    def initialized(self, params: dict) -> None:
        threading.Thread(target=load_rules, name="losslint-warm-up", daemon=True).start()
        watched = (self.client_capabilities.get("workspace") or {}).get("didChangeWatchedFiles") or {}
        if watched.get("dynamicRegistration"):
            watchers = [{"globPattern": glob} for glob in (*CONFIG_GLOBS, *TRAINING_CONFIG_GLOBS)]
            self.request(
                "client/registerCapability",
                {
                    "registrations": [
                        {"id": "losslint-configuration", "method": "workspace/didChangeWatchedFiles", "registerOptions": {"watchers": watchers}}
                    ]
                },
            )

    def shutdown(self, params: None) -> None:
        self.shutting_down = True

    # -- documents ----------------------------------------------------------------
    def document(self, uri: str) -> Document:
        """The open document, or the file on disk (a document the client did not open)."""
        if uri in self.documents:
            return self.documents[uri]
        try:
            text = uri_to_path(uri).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            text = ""
        return Document(uri, text)

    def did_open(self, params: dict) -> None:
        opened = params["textDocument"]
        self.documents[opened["uri"]] = Document(opened["uri"], opened["text"], opened.get("version"))
        self.lint(opened["uri"])

    def did_change(self, params: dict) -> None:
        uri = params["textDocument"]["uri"]
        document = self.documents.setdefault(uri, self.document(uri))
        for change in params["contentChanges"]:
            document.apply(change, self.encoding)
        document.version = params["textDocument"].get("version")
        self.stale[uri] = None  # linted once the changes that arrived meanwhile are applied

    def lint_stale(self) -> None:
        from losslint.analysis.configs import is_config_path

        while self.stale:
            uri = next(iter(self.stale))
            del self.stale[uri]
            path = uri_to_path(uri)
            if is_config_path(path.name):
                self.relint_readers(path)  # (itself included)
            elif uri in self.documents:
                self.lint(uri)

    def did_save(self, params: dict) -> None:
        from losslint.analysis.configs import is_config_path

        path = uri_to_path(params["textDocument"]["uri"])
        if is_config_path(path.name) and path.name not in SETTINGS_FILES:
            self.relint_readers(path)  # no file's facts come from a config
            return
        forget_project_facts()  # another file's facts may read what was just saved
        for uri in list(self.findings):
            self.lint(uri)
        if params["textDocument"]["uri"] not in self.findings:
            self.lint(params["textDocument"]["uri"])

    def did_close(self, params: dict) -> None:
        uri = params["textDocument"]["uri"]
        for held in (self.documents, self.findings, self.texts, self.reads, self.stale):
            held.pop(uri, None)
        self.notify("textDocument/publishDiagnostics", {"uri": uri, "diagnostics": []})

    def watched_files_changed(self, params: dict) -> None:
        # A configuration file was created, changed or deleted: which settings apply
        # (and which file holds them) may differ now.
        changes = params["changes"]
        changed = [uri_to_path(change["uri"]) for change in changes]
        if any(path.name in SETTINGS_FILES for path in changed):
            forget_settings()
            self.relint_open_documents()
        elif any(change["type"] != FILE_CHANGED for change in changes):
            self.relint_open_documents()  # created or deleted: a script's read may reach another file now
        else:  # a training config edited on disk: the open scripts that read it
            for path in changed:
                self.relint_readers(path)

    # -- linting ------------------------------------------------------------------
    def lint(self, uri: str) -> None:
        document = self.document(uri)
        path = uri_to_path(uri)
        if path.suffix.lower() not in LINTED_SUFFIXES:
            return
        settings, error = settings_for(path)
        if error:
            self.show_message(WARNING_MESSAGE, f"losslint: {error}")
        load_rules()  # (waits for the warm-up thread, if it is importing them)
        prepared = prepare(path, document.text, display=path.as_posix(), settings=settings, unsaved=self.unsaved_configs(uri))
        findings = prepared.findings()
        self.findings[uri], self.texts[uri] = findings, document.text
        if prepared.source.tree is not None:
            from losslint.analysis.configs import reads_of

            self.reads[uri] = frozenset(key for _, key in reads_of(prepared.project, file_key(str(path))))
        lines = document.lines
        diagnostics = [self.diagnostic(f, lines) for f in findings]
        published = {"uri": uri, "diagnostics": diagnostics}
        if document.version is not None:
            published["version"] = document.version
        self.notify("textDocument/publishDiagnostics", published)
        if not self.frozen:  # the imports and the project's facts live for the session
            gc.freeze()
            self.frozen = True

    def unsaved_configs(self, linted: str) -> dict[Path, str]:
        """The open config buffers (but ``linted``'s own) whose text is not on disk."""
        from losslint.analysis.configs import is_config_path

        buffers = {}
        for uri, document in self.documents.items():
            path = uri_to_path(uri)
            if uri == linted or not is_config_path(path.name):
                continue
            try:
                on_disk = path.read_text(encoding="utf-8-sig")
            except (OSError, UnicodeDecodeError):
                on_disk = None
            if document.text != on_disk:
                buffers[path] = document.text
        return buffers

    def relint_readers(self, config: Path) -> None:
        """A config changed (its buffer or on disk): lint it if open, and the open
        scripts that read it."""
        key = file_key(str(config))
        for uri in list(self.documents):
            if key in self.reads.get(uri, ()) or (uri in self.findings and file_key(str(uri_to_path(uri))) == key):
                self.lint(uri)

    def relint_open_documents(self) -> None:
        for uri in list(self.documents):
            self.lint(uri)

    def range_of(self, finding: Finding, lines: list[str]) -> dict:
        return self.client_range(finding.span, lines)

    def client_range(self, span: Span, lines: list[str] | None) -> dict:
        """A span (1-based lines, character columns) as an LSP range; ``lines``: the
        document's, to count columns in the client's units (None: another file's)."""
        start, end = (max(span.line - 1, 0), span.column), (max(span.end_line - 1, 0), span.end_column)
        end = max(start, end)
        return {"start": self.client_position(lines, *start), "end": self.client_position(lines, *end)}

    def client_position(self, lines: list[str] | None, line: int, character: int) -> dict:
        if lines is not None and line < len(lines):
            character = units_of(lines[line][:character], self.encoding)
        return {"line": line, "character": character}

    def diagnostic(self, finding: Finding, lines: list[str]) -> dict:
        message = finding.message
        if finding.fix is not None:
            message += f" [fix: {finding.fix.description}" + (", unsafe]" if finding.fix.applicability is Applicability.UNSAFE else "]")
        diagnostic = {
            "range": self.range_of(finding, lines),
            "message": message,
            "severity": _SEVERITY[finding.severity],
            "code": finding.code,
            "codeDescription": {"href": rule_doc_uri(finding.code)},
            "source": SOURCE,
            "data": {"name": finding.name},
        }
        if finding.related_locations:
            diagnostic["relatedInformation"] = [
                self.related_information(place, lines if place.path == finding.path else None) for place in finding.related_locations
            ]
        return diagnostic

    def related_information(self, place: RelatedLocation, lines: list[str] | None) -> dict:
        """A finding's related location (the optimizer's construction, a linked
        finding). ``lines``: the document's, when the place is in it (columns then
        in the client's units); a notebook's cell is named in the message."""
        message = place.message if place.cell is None else f"cell {place.cell}, line {place.span.line}: {place.message}"
        if place.path not in self.uris:
            self.uris[place.path] = Path(place.path).resolve().as_uri()
        return {"location": {"uri": self.uris[place.path], "range": self.client_range(place.span, lines)}, "message": message}

    # -- fixes --------------------------------------------------------------------
    def text_edits(self, before: str, after: str) -> list[dict]:
        """The change as whole-line replacements (kept small with difflib)."""
        a, b = split_lines(before), split_lines(after)

        def position(index: int) -> dict:
            if index < len(a):
                return {"line": index, "character": 0}
            if not a:
                return {"line": 0, "character": 0}
            if a[-1].endswith(("\n", "\r")):
                return {"line": len(a), "character": 0}
            return {"line": len(a) - 1, "character": units_of(a[-1], self.encoding)}

        edits = []
        for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(a=a, b=b, autojunk=False).get_opcodes():
            if tag != "equal":
                edits.append({"range": {"start": position(i1), "end": position(i2)}, "newText": "".join(b[j1:j2])})
        return edits

    def code_actions(self, params: dict) -> list[dict]:
        uri = params["textDocument"]["uri"]
        document = self.document(uri)
        if self.texts.get(uri) != document.text:
            self.lint(uri)
        text, findings = self.texts.get(uri), self.findings.get(uri, [])
        if text is None:
            return []
        context = params.get("context") or {}
        wanted = [str(kind) for kind in context.get("only") or ()]
        requested = params["range"]
        actions: list[dict] = []
        lines = document.lines
        if not wanted or any(kind.startswith(QUICK_FIX) for kind in wanted):
            listed = {
                (d.get("code"), d["range"]["start"]["line"], d["range"]["start"]["character"])
                for d in context.get("diagnostics") or ()
                if d.get("source") in (SOURCE, None)
            }
            for finding in findings:
                if finding.fix is None:
                    continue
                where = self.range_of(finding, lines)
                on_its_lines = where["start"]["line"] <= requested["end"]["line"] and requested["start"]["line"] <= where["end"]["line"]
                if not on_its_lines and (finding.code, where["start"]["line"], where["start"]["character"]) not in listed:
                    continue
                try:
                    fixed = self.fixed_by(uri, text, finding)
                except Exception:  # a fix that cannot apply is not offered
                    continue
                unsafe = finding.fix.applicability is Applicability.UNSAFE
                title = f"{finding.code}: {finding.fix.description}" + (" (unsafe: changes training dynamics)" if unsafe else "")
                actions.append(
                    {
                        "title": title,
                        "kind": QUICK_FIX,
                        "diagnostics": [self.diagnostic(finding, lines)],
                        "isPreferred": not unsafe,
                        "edit": self._edit(uri, document.version, text, fixed),
                    }
                )
        if any(f.fix is not None for f in findings) and (not wanted or any(kind in (QUICK_FIX, "source", SOURCE_FIX_ALL, FIX_ALL_KIND) for kind in wanted)):
            path = uri_to_path(uri)
            settings, _ = settings_for(path)
            fixed = prepare(path, text, display=path.as_posix(), settings=settings).fixed_text(settings.unsafe_fixes)
            if fixed != text:
                kind = QUICK_FIX if not wanted or QUICK_FIX in wanted else FIX_ALL_KIND
                actions.append({"title": "losslint: fix all", "kind": kind, "edit": self._edit(uri, document.version, text, fixed)})
        return actions

    def fixed_by(self, uri: str, text: str, finding: Finding) -> str:
        """The text with the finding's fix applied: a config's fix is positional
        edits; a Python fix is applied with libcst (imported now, when a fix is asked for)."""
        from losslint.analysis.configs import apply_edits, is_config_path

        assert finding.fix is not None
        if is_config_path(uri_to_path(uri).name):
            return apply_edits(text, finding.fix.edits)  # type: ignore[arg-type]
        from losslint.fixes import apply_fixes

        return apply_fixes(text, [finding.fix])

    def _edit(self, uri: str, version: int | None, before: str, after: str) -> dict:
        edits = self.text_edits(before, after)
        if version is None:
            return {"changes": {uri: edits}}
        return {"documentChanges": [{"textDocument": {"uri": uri, "version": version}, "edits": edits}]}


_LOADING = threading.Lock()


def load_rules() -> None:
    """Import the rule modules, once (from the warm-up thread or the first lint,
    one at a time: two threads importing one package's modules may deadlock)."""
    from losslint.rules import load_all

    with _LOADING:
        load_all()


def create_server() -> LosslintServer:
    return LosslintServer()

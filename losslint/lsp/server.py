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

Speed: the rule modules are imported by a thread once the client is initialized
(or by the first lint, whichever comes first), libcst only when a fix is asked
for; the objects that live for the session (modules, the project's facts) are
frozen out of the garbage collector's sight after the first lint; positions on
ASCII lines skip the encoding's character-by-character count.

Positions: the engine counts columns in characters; pygls converts them to the
encoding the client negotiated (UTF-16 by default).
"""

from __future__ import annotations

import difflib
import gc
import os
import threading
from pathlib import Path
from urllib.parse import unquote, urlparse

from lsprotocol import types
from pygls.lsp.server import LanguageServer

from losslint import __version__
from losslint.findings import Applicability, Finding, RelatedLocation, Severity, Span
from losslint.config import user_cache_dir
from losslint.single_file import forget_project_facts, forget_settings, prepare, settings_for
from losslint.project import file_key

SOURCE = "losslint"
FIX_ALL_KIND = "source.fixAll.losslint"
SETTINGS_FILES = ("pyproject.toml", "losslint.toml", ".losslint.toml")
CONFIG_GLOBS = tuple(f"**/{name}" for name in SETTINGS_FILES)
# the training configs code may read (analysis/configs.CONFIG_SUFFIXES)
TRAINING_CONFIG_GLOBS = ("**/*.yaml", "**/*.yml", "**/*.json", "**/*.toml")
LINTED_SUFFIXES = (".py", ".pyi", ".yaml", ".yml", ".json", ".toml")
_SEVERITY = {
    Severity.ERROR: types.DiagnosticSeverity.Error,
    Severity.WARNING: types.DiagnosticSeverity.Warning,
    Severity.INFO: types.DiagnosticSeverity.Information,
}


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


class LosslintServer(LanguageServer):
    def __init__(self) -> None:
        super().__init__("losslint", __version__)
        self.findings: dict[str, list[Finding]] = {}  # uri -> findings of the text last linted
        self.texts: dict[str, str] = {}
        self.uris: dict[str, str] = {}  # a related location's path -> its URI
        self.reads: dict[str, frozenset[str]] = {}  # an open script's uri -> the configs (file keys) it reads
        self.frozen = False

    # -- linting ------------------------------------------------------------------
    def lint(self, uri: str) -> None:
        document = self.workspace.get_text_document(uri)
        path = uri_to_path(uri)
        if path.suffix.lower() not in LINTED_SUFFIXES:
            return
        settings, error = settings_for(path)
        if error:
            self.window_show_message(types.ShowMessageParams(type=types.MessageType.Warning, message=f"losslint: {error}"))
        load_rules()  # (waits for the warm-up thread, if it is importing them)
        prepared = prepare(path, document.source, display=path.as_posix(), settings=settings, unsaved=self.unsaved_configs(uri))
        findings = prepared.findings()
        self.findings[uri], self.texts[uri] = findings, document.source
        if prepared.source.tree is not None:
            from losslint.analysis.configs import reads_of

            self.reads[uri] = frozenset(key for _, key in reads_of(prepared.project, file_key(str(path))))
        lines = document.lines
        diagnostics = [self.diagnostic(f, lines) for f in findings]
        self.text_document_publish_diagnostics(types.PublishDiagnosticsParams(uri=uri, diagnostics=diagnostics, version=document.version))
        if not self.frozen:  # the imports and the project's facts live for the session
            gc.freeze()
            self.frozen = True

    def unsaved_configs(self, linted: str) -> dict[Path, str]:
        """The open config buffers (but ``linted``'s own) whose text is not on disk."""
        from losslint.analysis.configs import is_config_path

        buffers = {}
        for uri, document in list(self.workspace.text_documents.items()):
            path = uri_to_path(uri)
            if uri == linted or not is_config_path(path.name):
                continue
            try:
                on_disk = path.read_text(encoding="utf-8-sig")
            except (OSError, UnicodeDecodeError):
                on_disk = None
            if document.source != on_disk:
                buffers[path] = document.source
        return buffers

    def relint_readers(self, config: Path) -> None:
        """A config changed (its buffer or on disk): lint it if open, and the open
        scripts that read it."""
        key = file_key(str(config))
        for uri in list(self.workspace.text_documents):
            if key in self.reads.get(uri, ()) or (uri in self.findings and file_key(str(uri_to_path(uri))) == key):
                self.lint(uri)

    def range_of(self, finding: Finding, lines: list[str]) -> types.Range:
        return self.client_range(finding.span, lines)

    def client_range(self, span: Span, lines: list[str] | None) -> types.Range:
        """A span (1-based lines, character columns) as an LSP range; ``lines``: the
        document's, to count columns in the client's units (None: another file's)."""
        start, end = (max(span.line - 1, 0), span.column), (max(span.end_line - 1, 0), span.end_column)
        end = max(start, end)
        return types.Range(start=self.client_position(lines, *start), end=self.client_position(lines, *end))

    def client_position(self, lines: list[str] | None, line: int, character: int) -> types.Position:
        # Before the column, an ASCII line (most are) counts the same in every
        # encoding: pygls's codec, which counts character by character, is left to the rest.
        if lines is None or (line < len(lines) and lines[line][:character].isascii()):
            return types.Position(line=line, character=character)
        return self.workspace.position_codec.position_to_client_units(lines, types.Position(line=line, character=character))

    def diagnostic(self, finding: Finding, lines: list[str]) -> types.Diagnostic:
        message = finding.message
        if finding.fix is not None:
            message += f" [fix: {finding.fix.description}" + (", unsafe]" if finding.fix.applicability is Applicability.UNSAFE else "]")
        return types.Diagnostic(
            range=self.range_of(finding, lines),
            message=message,
            severity=_SEVERITY[finding.severity],
            code=finding.code,
            code_description=types.CodeDescription(href=rule_doc_uri(finding.code)),
            source=SOURCE,
            data={"name": finding.name},
            related_information=[self.related_information(place, lines if place.path == finding.path else None) for place in finding.related_locations] or None,
        )

    def related_information(self, place: RelatedLocation, lines: list[str] | None) -> types.DiagnosticRelatedInformation:
        """A finding's related location (the optimizer's construction, a linked
        finding). ``lines``: the document's, when the place is in it (columns then
        in the client's units); a notebook's cell is named in the message."""
        message = place.message if place.cell is None else f"cell {place.cell}, line {place.span.line}: {place.message}"
        if place.path not in self.uris:
            self.uris[place.path] = Path(place.path).resolve().as_uri()
        return types.DiagnosticRelatedInformation(
            location=types.Location(uri=self.uris[place.path], range=self.client_range(place.span, lines)), message=message
        )

    # -- fixes --------------------------------------------------------------------
    def text_edits(self, before: str, after: str) -> list[types.TextEdit]:
        """The change as whole-line replacements (kept small with difflib)."""
        a, b = before.splitlines(keepends=True), after.splitlines(keepends=True)
        lines = before.splitlines()

        def position(index: int) -> types.Position:
            if index < len(a):
                return types.Position(line=index, character=0)
            if not a:
                return types.Position(line=0, character=0)
            if a[-1].endswith(("\n", "\r")):
                return types.Position(line=len(a), character=0)
            last = types.Position(line=len(a) - 1, character=len(a[-1]))
            return self.workspace.position_codec.position_to_client_units(lines, last)

        edits = []
        for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(a=a, b=b, autojunk=False).get_opcodes():
            if tag != "equal":
                edits.append(types.TextEdit(range=types.Range(start=position(i1), end=position(i2)), new_text="".join(b[j1:j2])))
        return edits

    def code_actions(self, params: types.CodeActionParams) -> list[types.CodeAction]:
        uri = params.text_document.uri
        document = self.workspace.get_text_document(uri)
        if self.texts.get(uri) != document.source:
            self.lint(uri)
        text, findings = self.texts.get(uri), self.findings.get(uri, [])
        if text is None:
            return []
        wanted = params.context.only
        actions: list[types.CodeAction] = []
        lines = document.lines
        if not wanted or any(str(k).startswith("quickfix") for k in wanted):
            listed = {(d.code, d.range.start.line, d.range.start.character) for d in params.context.diagnostics if d.source in (SOURCE, None)}
            for finding in findings:
                if finding.fix is None:
                    continue
                where = self.range_of(finding, lines)
                on_its_lines = where.start.line <= params.range.end.line and params.range.start.line <= where.end.line
                if not on_its_lines and (finding.code, where.start.line, where.start.character) not in listed:
                    continue
                try:
                    fixed = self.fixed_by(uri, text, finding)
                except Exception:  # a fix that cannot apply is not offered
                    continue
                unsafe = finding.fix.applicability is Applicability.UNSAFE
                title = f"{finding.code}: {finding.fix.description}" + (" (unsafe: changes training dynamics)" if unsafe else "")
                actions.append(
                    types.CodeAction(
                        title=title,
                        kind=types.CodeActionKind.QuickFix,
                        diagnostics=[self.diagnostic(finding, lines)],
                        is_preferred=not unsafe,
                        edit=self._edit(uri, document.version, text, fixed),
                    )
                )
        if any(f.fix is not None for f in findings) and (
            not wanted or any(str(k) in ("quickfix", "source", "source.fixAll", FIX_ALL_KIND) for k in wanted)
        ):
            path = uri_to_path(uri)
            settings, _ = settings_for(path)
            fixed = prepare(path, text, display=path.as_posix(), settings=settings).fixed_text(settings.unsafe_fixes)
            if fixed != text:
                kind = types.CodeActionKind.QuickFix if not wanted or "quickfix" in [str(k) for k in wanted] else FIX_ALL_KIND
                actions.append(types.CodeAction(title="losslint: fix all", kind=kind, edit=self._edit(uri, document.version, text, fixed)))
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

    def _edit(self, uri: str, version: int | None, before: str, after: str) -> types.WorkspaceEdit:
        edits = self.text_edits(before, after)
        if version is None:
            return types.WorkspaceEdit(changes={uri: edits})
        identifier = types.OptionalVersionedTextDocumentIdentifier(uri=uri, version=version)
        return types.WorkspaceEdit(document_changes=[types.TextDocumentEdit(text_document=identifier, edits=edits)])

    def relint_open_documents(self) -> None:
        for uri in list(self.workspace.text_documents):
            self.lint(uri)


_LOADING = threading.Lock()


def load_rules() -> None:
    """Import the rule modules, once (from the warm-up thread or the first lint,
    one at a time: two threads importing one package's modules may deadlock)."""
    from losslint.rules import load_all

    with _LOADING:
        load_all()


def create_server() -> LosslintServer:
    server = LosslintServer()

    @server.feature(types.TEXT_DOCUMENT_DID_OPEN)
    def did_open(ls: LosslintServer, params: types.DidOpenTextDocumentParams) -> None:
        ls.lint(params.text_document.uri)

    @server.feature(types.TEXT_DOCUMENT_DID_CHANGE)
    def did_change(ls: LosslintServer, params: types.DidChangeTextDocumentParams) -> None:
        from losslint.analysis.configs import is_config_path

        path = uri_to_path(params.text_document.uri)
        if is_config_path(path.name):
            ls.relint_readers(path)  # (itself included)
        else:
            ls.lint(params.text_document.uri)

    @server.feature(types.TEXT_DOCUMENT_DID_SAVE)
    def did_save(ls: LosslintServer, params: types.DidSaveTextDocumentParams) -> None:
        from losslint.analysis.configs import is_config_path

        path = uri_to_path(params.text_document.uri)
        if is_config_path(path.name) and path.name not in SETTINGS_FILES:
            ls.relint_readers(path)  # no file's facts come from a config
            return
        forget_project_facts()  # another file's facts may read what was just saved
        for uri in list(ls.findings):
            ls.lint(uri)
        if params.text_document.uri not in ls.findings:
            ls.lint(params.text_document.uri)

    @server.feature(types.INITIALIZED)
    def initialized(ls: LosslintServer, params: types.InitializedParams) -> None:
        threading.Thread(target=load_rules, name="losslint-warm-up", daemon=True).start()
        watched = ls.client_capabilities.workspace and ls.client_capabilities.workspace.did_change_watched_files
        if watched and watched.dynamic_registration:
            watchers = [types.FileSystemWatcher(glob_pattern=glob) for glob in (*CONFIG_GLOBS, *TRAINING_CONFIG_GLOBS)]
            ls.client_register_capability(
                types.RegistrationParams(
                    registrations=[
                        types.Registration(
                            id="losslint-configuration",
                            method=types.WORKSPACE_DID_CHANGE_WATCHED_FILES,
                            register_options=types.DidChangeWatchedFilesRegistrationOptions(watchers=watchers),
                        )
                    ]
                )
            )

    @server.feature(types.WORKSPACE_DID_CHANGE_WATCHED_FILES)
    def watched_files_changed(ls: LosslintServer, params: types.DidChangeWatchedFilesParams) -> None:
        # A configuration file was created, changed or deleted: which settings apply
        # (and which file holds them) may differ now.
        changed = [uri_to_path(change.uri) for change in params.changes]
        if any(path.name in SETTINGS_FILES for path in changed):
            forget_settings()
            ls.relint_open_documents()
        elif any(change.type != types.FileChangeType.Changed for change in params.changes):
            ls.relint_open_documents()  # created or deleted: a script's read may reach another file now
        else:  # a training config edited on disk: the open scripts that read it
            for path in changed:
                ls.relint_readers(path)

    @server.feature(types.TEXT_DOCUMENT_DID_CLOSE)
    def did_close(ls: LosslintServer, params: types.DidCloseTextDocumentParams) -> None:
        uri = params.text_document.uri
        ls.findings.pop(uri, None)
        ls.texts.pop(uri, None)
        ls.reads.pop(uri, None)
        ls.text_document_publish_diagnostics(types.PublishDiagnosticsParams(uri=uri, diagnostics=[]))

    @server.feature(
        types.TEXT_DOCUMENT_CODE_ACTION,
        types.CodeActionOptions(code_action_kinds=[types.CodeActionKind.QuickFix, types.CodeActionKind.SourceFixAll, FIX_ALL_KIND]),
    )
    def code_action(ls: LosslintServer, params: types.CodeActionParams) -> list[types.CodeAction]:
        return ls.code_actions(params)

    return server

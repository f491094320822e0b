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

Positions: the engine counts columns in characters; pygls converts them to the
encoding the client negotiated (UTF-16 by default).
"""

from __future__ import annotations

import difflib
import os
from pathlib import Path
from urllib.parse import unquote, urlparse

from lsprotocol import types
from pygls.lsp.server import LanguageServer

from losslint import __version__
from losslint.findings import Applicability, Finding, RelatedLocation, Severity
from losslint.fixes import apply_fixes
from losslint.rules.base import all_rules
from losslint.config import user_cache_dir
from losslint.single_file import forget_project_facts, forget_settings, prepare, settings_for

SOURCE = "losslint"
FIX_ALL_KIND = "source.fixAll.losslint"
CONFIG_GLOBS = ("**/pyproject.toml", "**/losslint.toml", "**/.losslint.toml")
_SEVERITY = {
    Severity.ERROR: types.DiagnosticSeverity.Error,
    Severity.WARNING: types.DiagnosticSeverity.Warning,
    Severity.INFO: types.DiagnosticSeverity.Information,
}


def rule_doc_uri(code: str) -> str:
    """A file: URI of the rule's documentation, written on first use."""
    from losslint.rule_docs import rule_documentation  # the text of `losslint rule CODE`

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
    return path.as_uri()


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

    # -- linting ------------------------------------------------------------------
    def lint(self, uri: str) -> None:
        document = self.workspace.get_text_document(uri)
        path = uri_to_path(uri)
        if path.suffix not in (".py", ".pyi"):
            return
        settings, error = settings_for(path)
        if error:
            self.window_show_message(types.ShowMessageParams(type=types.MessageType.Warning, message=f"losslint: {error}"))
        prepared = prepare(path, document.source, display=path.as_posix(), settings=settings)
        findings = prepared.findings()
        self.findings[uri], self.texts[uri] = findings, document.source
        lines = document.lines
        diagnostics = [self.diagnostic(f, lines) for f in findings]
        self.text_document_publish_diagnostics(types.PublishDiagnosticsParams(uri=uri, diagnostics=diagnostics, version=document.version))

    def range_of(self, finding: Finding, lines: list[str]) -> types.Range:
        span = finding.span
        start = types.Position(line=max(span.line - 1, 0), character=span.column)
        end = types.Position(line=max(span.end_line - 1, 0), character=span.end_column)
        if (end.line, end.character) < (start.line, start.character):
            end = start
        return self.workspace.position_codec.range_to_client_units(lines, types.Range(start=start, end=end))

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
        span = place.span
        start = types.Position(line=max(span.line - 1, 0), character=span.column)
        end = types.Position(line=max(span.end_line - 1, 0), character=span.end_column)
        if (end.line, end.character) < (start.line, start.character):
            end = start
        where = types.Range(start=start, end=end)
        if lines is not None:
            where = self.workspace.position_codec.range_to_client_units(lines, where)
        message = place.message if place.cell is None else f"cell {place.cell}, line {span.line}: {place.message}"
        return types.DiagnosticRelatedInformation(
            location=types.Location(uri=Path(place.path).resolve().as_uri(), range=where), message=message
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
                    fixed = apply_fixes(text, [finding.fix])
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

    def _edit(self, uri: str, version: int | None, before: str, after: str) -> types.WorkspaceEdit:
        edits = self.text_edits(before, after)
        if version is None:
            return types.WorkspaceEdit(changes={uri: edits})
        identifier = types.OptionalVersionedTextDocumentIdentifier(uri=uri, version=version)
        return types.WorkspaceEdit(document_changes=[types.TextDocumentEdit(text_document=identifier, edits=edits)])

    def relint_open_documents(self) -> None:
        for uri in list(self.workspace.text_documents):
            self.lint(uri)


def create_server() -> LosslintServer:
    server = LosslintServer()

    @server.feature(types.TEXT_DOCUMENT_DID_OPEN)
    def did_open(ls: LosslintServer, params: types.DidOpenTextDocumentParams) -> None:
        ls.lint(params.text_document.uri)

    @server.feature(types.TEXT_DOCUMENT_DID_CHANGE)
    def did_change(ls: LosslintServer, params: types.DidChangeTextDocumentParams) -> None:
        ls.lint(params.text_document.uri)

    @server.feature(types.TEXT_DOCUMENT_DID_SAVE)
    def did_save(ls: LosslintServer, params: types.DidSaveTextDocumentParams) -> None:
        forget_project_facts()  # another file's facts may read what was just saved
        for uri in list(ls.findings):
            ls.lint(uri)
        if params.text_document.uri not in ls.findings:
            ls.lint(params.text_document.uri)

    @server.feature(types.INITIALIZED)
    def initialized(ls: LosslintServer, params: types.InitializedParams) -> None:
        watched = ls.client_capabilities.workspace and ls.client_capabilities.workspace.did_change_watched_files
        if watched and watched.dynamic_registration:
            watchers = [types.FileSystemWatcher(glob_pattern=glob) for glob in CONFIG_GLOBS]
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
        if any(uri_to_path(change.uri).name in ("pyproject.toml", "losslint.toml", ".losslint.toml") for change in params.changes):
            forget_settings()
            ls.relint_open_documents()

    @server.feature(types.TEXT_DOCUMENT_DID_CLOSE)
    def did_close(ls: LosslintServer, params: types.DidCloseTextDocumentParams) -> None:
        uri = params.text_document.uri
        ls.findings.pop(uri, None)
        ls.texts.pop(uri, None)
        ls.text_document_publish_diagnostics(types.PublishDiagnosticsParams(uri=uri, diagnostics=[]))

    @server.feature(
        types.TEXT_DOCUMENT_CODE_ACTION,
        types.CodeActionOptions(code_action_kinds=[types.CodeActionKind.QuickFix, types.CodeActionKind.SourceFixAll, FIX_ALL_KIND]),
    )
    def code_action(ls: LosslintServer, params: types.CodeActionParams) -> list[types.CodeAction]:
        return ls.code_actions(params)

    return server

"""The ``losslint lsp`` command. Imports only click here: the server (and the
engine it runs) is loaded when it starts."""

from __future__ import annotations

import click


@click.command()
@click.option("--stdio", is_flag=True, help="Speak LSP over stdin/stdout (the default; accepted for editors that pass it).")
def lsp(stdio: bool) -> None:
    """Run the language server: diagnostics and quick fixes in your editor."""
    from losslint.lsp.server import create_server

    create_server().start_io()

"""The ``losslint lsp`` command. Imports only click here: pygls (the ``lsp`` extra)
is loaded when the server starts, so ``losslint check`` never needs it."""

from __future__ import annotations

import sys

import click


@click.command()
@click.option("--stdio", is_flag=True, help="Speak LSP over stdin/stdout (the default; accepted for editors that pass it).")
def lsp(stdio: bool) -> None:
    """Run the language server: diagnostics and quick fixes in your editor."""
    try:
        from losslint.lsp.server import create_server
    except ImportError as error:
        click.echo(
            f"losslint: error: the language server needs pygls ({error}); install it with: pip install 'losslint-static[lsp]'",
            err=True,
        )
        sys.exit(2)
    create_server().start_io()

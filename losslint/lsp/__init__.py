"""``losslint lsp``: the language server (needs the ``lsp`` extra, pygls)."""

"""``losslint lsp``: the language server (JSON-RPC over stdio, no dependency beyond losslint's own)."""

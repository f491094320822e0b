"""Import-aware names: ``optim.SGD`` -> ``torch.optim.SGD``.

A flow-insensitive table of every import in a module (including imports inside
functions, which training scripts often use). Far cheaper than libcst's
QualifiedNameProvider and enough for matching framework APIs.
"""

from __future__ import annotations

import ast

from losslint.analysis.walk import statements


def dotted(node: ast.expr) -> str | None:
    """The dotted text of a Name/Attribute chain (``a.b.c``), else None."""
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
        return ".".join(reversed(parts))
    return None


class ImportTable:
    def __init__(self, tree: ast.Module, module_name: str = "") -> None:
        self.aliases: dict[str, str] = {}
        self.star_modules: list[str] = []
        self._qualnames: dict[ast.expr, str | None] = {}  # keyed by the node itself: it stays alive
        package = module_name.rpartition(".")[0]
        for node in statements(tree):  # imports are statements: ast.walk's order, expressions skipped
            if isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.asname:
                        self.aliases[alias.asname] = alias.name
                    else:
                        # `import torch.nn` binds `torch`
                        top = alias.name.split(".")[0]
                        self.aliases.setdefault(top, top)
            elif isinstance(node, ast.ImportFrom):
                module = node.module or ""
                if node.level:
                    base = package.split(".") if package else []
                    if node.level > 1:
                        base = base[: len(base) - (node.level - 1)]
                    module = ".".join([*base, module] if module else base)
                for alias in node.names:
                    if alias.name == "*":
                        self.star_modules.append(module)
                    else:
                        self.aliases[alias.asname or alias.name] = f"{module}.{alias.name}" if module else alias.name

    def qualname(self, node: ast.expr) -> str | None:
        """Fully qualified dotted name of an expression, resolving import aliases.
        Names that were not imported come back as written. (Once per node: the
        rules ask again of the same calls.)"""
        try:
            return self._qualnames[node]
        except KeyError:
            pass
        text = dotted(node)
        if text is None:
            qualname = None
        else:
            head, _, rest = text.partition(".")
            resolved = self.aliases.get(head)
            qualname = text if resolved is None else f"{resolved}.{rest}" if rest else resolved
        self._qualnames[node] = qualname
        return qualname

    def imports_any(self, *prefixes: str) -> bool:
        """Does the module import anything from one of these top-level packages?"""
        targets = list(self.aliases.values()) + self.star_modules
        return any(t == p or t.startswith(p + ".") for t in targets for p in prefixes)


def call_name(imports: ImportTable, call: ast.Call) -> str | None:
    return imports.qualname(call.func)


def last_part(qualname: str | None) -> str:
    return (qualname or "").rpartition(".")[2]


def keyword(call: ast.Call, name: str) -> ast.keyword | None:
    for kw in call.keywords:
        if kw.arg == name:
            return kw
    return None


def argument(call: ast.Call, name: str, position: int | None = None) -> ast.expr | None:
    """A call's argument by keyword, or by position when it was passed positionally."""
    kw = keyword(call, name)
    if kw is not None:
        return kw.value
    if position is not None and position < len(call.args):
        arg = call.args[position]
        if not any(isinstance(a, ast.Starred) for a in call.args[: position + 1]):
            return arg
    return None


def has_star_kwargs(call: ast.Call) -> bool:
    """``f(**kwargs)``: any keyword may be hidden in there."""
    return any(kw.arg is None for kw in call.keywords)


def identifier_words(text: str) -> list[str]:
    """``trainLoader_v2`` -> ["train", "loader", "v2"]: words of identifiers in text."""
    words: list[str] = []
    current = ""
    previous = ""
    for ch in text:
        if ch.isalnum():
            if ch.isupper() and previous.islower():
                words.append(current.lower())
                current = ""
            current += ch
        else:
            if current:
                words.append(current.lower())
            current = ""
        previous = ch
    if current:
        words.append(current.lower())
    return words

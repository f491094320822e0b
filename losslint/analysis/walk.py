"""Walking ``ast`` trees fast, in ``ast.walk``'s order.

Walking is the analysis's biggest cost after the parse itself: ``ast.walk`` spends
most of its time in generator machinery (``iter_child_nodes`` / ``iter_fields``).
These functions visit the same nodes in the same order (breadth first, children
in field order), so a rule that switches to them behaves exactly as before.

- ``walk(node)``: every node under ``node``, as a list.
- ``tree_index(tree)``: every node of a whole tree (but the expression contexts)
  and its parent map, built once and shared by the fact collectors and the
  FileContext of the same tree.
- ``statements(node)``: only the nodes that can hold statements (the module,
  statements, except handlers, match cases), in the relative order ``ast.walk``
  yields them: expressions are never entered, which makes finding imports,
  classes, functions or returns about ten times cheaper.
"""

from __future__ import annotations

import ast

_AST = ast.AST
_STATEMENT_HOLDERS = (ast.stmt, ast.excepthandler, ast.match_case)


def walk(node: ast.AST) -> list[ast.AST]:
    out = [node]
    append = out.append
    for current in out:  # the list grows while we go: breadth first
        for name in current._fields:
            value = getattr(current, name, None)
            if value is None:
                continue
            if value.__class__ is list:
                for item in value:
                    if isinstance(item, _AST):
                        append(item)
            elif isinstance(value, _AST):
                append(value)
    return out


_last_index: tuple[ast.AST | None, list[ast.AST], dict[ast.AST, ast.AST]] = (None, [], {})

# The fields of a node class that can hold nodes, in field order: not a Name's
# ``id`` or an Attribute's ``attr`` (strings), a Constant's ``value``, nor the
# ``ctx`` of a Name, Attribute or Subscript (Load, Store, Del: one shared object
# each, a third of all nodes, and no analysis asks for one or for its parent).
_NOT_NODES = frozenset({"ctx", "id", "attr", "name", "asname", "arg", "module", "level", "type_comment", "kind", "conversion", "is_async", "simple", "tag"})
_CHILD_FIELDS: dict[type, tuple[str, ...]] = {}


def _child_fields(cls: type) -> tuple[str, ...]:
    names = tuple(name for name in cls._fields if name not in _NOT_NODES and not (cls is ast.Constant and name == "value"))  # type: ignore[attr-defined]
    _CHILD_FIELDS[cls] = names
    return names


def tree_index(tree: ast.AST) -> tuple[list[ast.AST], dict[ast.AST, ast.AST]]:
    """(nodes in ast.walk order, child -> parent) for ``tree``, the expression
    contexts (Load, Store, Del) left out; the last tree's index is kept, so the
    collectors and the rules of one file build it once."""
    global _last_index
    if _last_index[0] is tree:
        return _last_index[1], _last_index[2]
    out = [tree]
    parents: dict[ast.AST, ast.AST] = {}
    append = out.append
    fields_of = _CHILD_FIELDS
    for current in out:
        cls = current.__class__
        names = fields_of.get(cls)
        if names is None:
            names = _child_fields(cls)
        for name in names:
            value = getattr(current, name, None)
            if value is None:
                continue
            if value.__class__ is list:
                for item in value:
                    if isinstance(item, _AST):
                        parents[item] = current
                        append(item)
            elif isinstance(value, _AST):
                parents[value] = current
                append(value)
    _last_index = (tree, out, parents)
    return out, parents


def statements(node: ast.AST) -> list[ast.AST]:
    out = [node]
    append = out.append
    for current in out:
        for name in current._fields:
            value = getattr(current, name, None)
            if value.__class__ is list:
                for item in value:
                    if isinstance(item, _STATEMENT_HOLDERS):
                        append(item)
    return out

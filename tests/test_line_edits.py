"""The line edits JSON and SARIF carry (``fixes.line_edits_of``) are computed on
snippets: each fix applied to the innermost statements it changes, parsed alone,
spliced back and diffed on its top-level statements. They must be exactly what
the whole module gives (``fixes._WholeModule``, libcst over the whole file), and
applying them must give what ``--fix`` writes (``apply_fixes``)."""

from __future__ import annotations

import ast
import random
import textwrap
from pathlib import Path

import libcst as cst
import pytest

from losslint import fixes
from losslint.findings import Applicability, Fix, InsertBefore, NodeEdit, Span
from losslint.fixes import apply_fixes, line_edits_of, set_keyword

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


def span_of(source: str, node: ast.AST) -> Span:
    """The node's span in libcst's convention (character columns)."""
    lines = source.split("\n")

    def column(line: int, offset: int) -> int:
        return len(lines[line - 1].encode("utf-8")[:offset].decode("utf-8", "replace"))

    return Span(node.lineno, column(node.lineno, node.col_offset), node.end_lineno, column(node.end_lineno, node.end_col_offset))


def nodes(source: str, kind: type, text: str | None = None) -> list:
    found = [n for n in ast.walk(ast.parse(source)) if isinstance(n, kind)]
    return [n for n in found if text is None or ast.get_source_segment(source, n) == text]


def drop_last(source: str, call_text: str) -> NodeEdit:
    (call,) = nodes(source, ast.Call, call_text)
    return NodeEdit(span_of(source, call), cst.Call, lambda node: set_keyword(node, "drop_last", "True"))


def insert_before(source: str, statement_text: str, *statements: str) -> InsertBefore:
    (statement,) = [s for s in nodes(source, ast.stmt) if ast.get_source_segment(source, s) == statement_text]
    span = span_of(source, statement)
    return InsertBefore(Span(span.line, span.column, span.line, span.column), statements)


def fix(*edits, imports: tuple[str, ...] = ()) -> Fix:
    return Fix("a fix", Applicability.UNSAFE, tuple(edits), imports)


def applied(source: str, edits) -> str:
    lines = source.splitlines(keepends=True)
    for edit in reversed(edits):
        lines[edit.line - 1 : edit.end_line - 1] = [edit.content]
    return "".join(lines)


class WholeModuleCounter:
    """Counts the fixes left to the whole module (a libcst parse of the file)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.count = 0
        original = fixes._WholeModule.line_edits

        def counted(whole, a_fix):
            self.count += 1
            return original(whole, a_fix)

        monkeypatch.setattr(fixes._WholeModule, "line_edits", counted)


def assert_exact(source: str, a_fix: Fix) -> tuple:
    """The snippets' edits are the whole module's, and applying them gives --fix's file."""
    (edits,) = line_edits_of(source, [a_fix])
    assert edits == fixes._WholeModule(source).line_edits(a_fix)
    assert edits, "the fix applies"
    assert applied(source, edits) == apply_fixes(source, [a_fix])
    return edits


TRAIN = textwrap.dedent(
    '''\
    """Train a model."""
    import torch
    from torch.utils.data import DataLoader


    def train(model, ds, opt):
        loader = DataLoader(
            ds,
            batch_size=64,  # per device
            shuffle=True,
        )
        for epoch in range(10):
            for x, y in loader:
                if x is None:
                    continue
                    # never here

                # the step
                # (after backward)
                loss = model(x, y)
                loss.backward()
                opt.step()
    '''
)
LOADER = "DataLoader(\n        ds,\n        batch_size=64,  # per device\n        shuffle=True,\n    )"


def test_a_keyword_set_in_a_nested_multi_line_call(monkeypatch):
    counter = WholeModuleCounter(monkeypatch)
    edits = assert_exact(TRAIN, fix(drop_last(TRAIN, LOADER)))
    assert [e.content for e in edits] == ["        drop_last=True,\n"]
    assert counter.count == 1  # (the one assert_exact asks for itself)


def test_statements_inserted_above_the_comments_of_the_statement(monkeypatch):
    counter = WholeModuleCounter(monkeypatch)
    a_fix = fix(insert_before(TRAIN, "opt.step()", "torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm=1.0)"))
    assert_exact(TRAIN, a_fix)
    assert counter.count == 1
    # The blank line and the comments above loss = ... are its own: the new statement goes above them.
    above = fix(insert_before(TRAIN, "loss = model(x, y)", "opt.zero_grad()"))
    edits = assert_exact(TRAIN, above)
    blank_line = TRAIN.splitlines().index("            # the step")  # (the line above it, 1-based)
    assert (edits[0].line, edits[0].content) == (blank_line, "            opt.zero_grad()\n")


def test_a_comment_indented_deeper_than_the_next_statement_is_left_to_the_whole_module(monkeypatch):
    # "# deeper" may belong to the if block (libcst's footer) or to the next
    # statement: the snippets do not guess.
    source = "def f(opt):\n    if a:\n        b()\n        # deeper\n    opt.step()\n"
    counter = WholeModuleCounter(monkeypatch)
    assert_exact(source, fix(insert_before(source, "opt.step()", "clip()")))
    assert counter.count == 2  # line_edits_of's and assert_exact's own


def test_a_new_block_takes_the_files_default_indent_not_the_snippets():
    source = "def f(model, accelerator, opt):\n  for batch in data:\n      loss = model(batch)\n      opt.step()\n"
    clip = "if accelerator.sync_gradients:\n    accelerator.clip_grad_norm_(model.parameters(), max_norm=1.0)\n"
    edits = assert_exact(source, fix(insert_before(source, "opt.step()", clip)))
    assert [e.content for e in edits] == ["      if accelerator.sync_gradients:\n        accelerator.clip_grad_norm_(model.parameters(), max_norm=1.0)\n"]


def test_tabs():
    source = "def f(ds):\n\tif ds:\n\t\tloader = DataLoader(ds, batch_size=8)\n\treturn loader\n"
    assert_exact(source, fix(drop_last(source, "DataLoader(ds, batch_size=8)")))


@pytest.mark.parametrize(
    "head",
    [
        '"""Docstring."""\n',  # after the docstring
        "# a comment\n\n",  # at the top, below the header comments
        "import os\nimport sys\nX = 1\nimport json\n",  # after the first run of imports
        "X = 1\nimport os\n\n",  # after the imports that follow code
    ],
)
def test_an_import_the_file_lacks_is_placed_as_add_imports_places_it(head, monkeypatch):
    source = head + "def step(model, opt):\n    loss = model()\n    opt.step()\n"
    counter = WholeModuleCounter(monkeypatch)
    a_fix = fix(insert_before(source, "opt.step()", "torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)"), imports=("import torch",))
    assert_exact(source, a_fix)
    assert counter.count == 1


def test_a_file_without_a_final_newline_is_diffed_whole(monkeypatch):
    source = "from torch.utils.data import DataLoader\n\nloader = DataLoader(ds, batch_size=8)"
    counter = WholeModuleCounter(monkeypatch)
    assert_exact(source, fix(drop_last(source, "DataLoader(ds, batch_size=8)")))
    assert counter.count == 1


def test_decorators_elif_one_line_suites_and_wide_characters(monkeypatch):
    source = textwrap.dedent(
        """\
        class Data:
            @property
            @cache(size=DataLoader(ds, batch_size=4))
            def loader(self):
                if self.a:
                    pass
                elif self.b:
                    return DataLoader(self.b, batch_size=8)
                else: return DataLoader(self.c, batch_size=16)


        def é(ds): x = "ü"; return DataLoader(ds, batch_size=32)
        """
    )
    counter = WholeModuleCounter(monkeypatch)
    for call in ("DataLoader(ds, batch_size=4)", "DataLoader(self.b, batch_size=8)", "DataLoader(self.c, batch_size=16)", "DataLoader(ds, batch_size=32)"):
        assert_exact(source, fix(drop_last(source, call)))
    assert counter.count == 4  # assert_exact's own: every fix took the snippets


def test_a_statement_removed_with_its_comments_and_a_fix_in_two_places():
    source = TRAIN
    (backward,) = [s for s in nodes(source, ast.Expr) if ast.get_source_segment(source, s) == "loss.backward()"]
    removal = NodeEdit(span_of(source, backward), cst.Expr, lambda _node: cst.RemovalSentinel.REMOVE)
    assert_exact(source, fix(removal))
    assert_exact(source, fix(removal, insert_before(source, "opt.step()", "clip()"), drop_last(source, LOADER)))


def test_statements_on_one_line_and_code_the_fix_does_not_find_match_the_whole_module():
    source = "import torch\nloss.backward(); opt.step()\n"
    (step,) = [s for s in nodes(source, ast.Expr) if ast.get_source_segment(source, s) == "opt.step()"]
    span = span_of(source, step)
    a_fix = fix(InsertBefore(Span(span.line, span.column, span.line, span.column), ("clip()",)))
    assert line_edits_of(source, [a_fix]) == [fixes._WholeModule(source).line_edits(a_fix)] == [()]
    nowhere = fix(NodeEdit(Span(2, 0, 2, 3), cst.Call, lambda node: node))
    assert line_edits_of(source, [nowhere]) == [()]


def random_fixes(source: str, rng: random.Random, count: int) -> list[Fix]:
    """Fixes of every kind the rules make, at random places of a real file."""
    tree = ast.parse(source)
    statements = [n for n in ast.walk(tree) if isinstance(n, ast.stmt)]
    simple = [s for s in statements if not hasattr(s, "body")]
    calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call)]
    expressions = [n for n in ast.walk(tree) if isinstance(n, ast.expr)]
    removable = [s for s in simple if isinstance(s, (ast.Expr, ast.Assign))]
    inserts = [("clip(model.parameters(), max_norm=1.0)",), ("if sync:\n    clip(p)\n",), ("scaler.unscale_(opt)", "clip(p)")]

    def one():
        kind = rng.randrange(4)
        if kind == 0 and simple:
            span = span_of(source, rng.choice(simple))
            return InsertBefore(Span(span.line, span.column, span.line, span.column), rng.choice(inserts))
        if kind == 1 and calls:
            return NodeEdit(span_of(source, rng.choice(calls)), cst.Call, lambda node: set_keyword(node, "drop_last", "True"))
        if kind == 2 and removable:
            statement = rng.choice(removable)
            return NodeEdit(span_of(source, statement), cst.Expr if isinstance(statement, ast.Expr) else cst.Assign, lambda _n: cst.RemoveFromParent())
        if expressions:
            return NodeEdit(span_of(source, rng.choice(expressions)), cst.BaseExpression, lambda _n: cst.parse_expression("(a,\n    b)"))
        return None

    result = []
    for _ in range(count):
        edits = [e for e in (one() for _ in range(rng.choice((1, 1, 2)))) if e is not None]
        if edits:
            result.append(fix(*edits, imports=rng.choice(((), ("import torch",), ("import not_there",)))))
    return result


def test_random_fixes_on_the_fixtures_match_the_whole_module():
    rng = random.Random(11)
    compared = applicable = 0
    for path in sorted(FIXTURES.rglob("*.py")):
        source = path.read_text(encoding="utf-8")
        some = random_fixes(source, rng, 6)
        whole = fixes._WholeModule(source)
        for a_fix, edits in zip(some, line_edits_of(source, some)):
            assert edits == whole.line_edits(a_fix), (path, a_fix)
            compared += 1
            applicable += bool(edits)
    assert compared > 200 and applicable > 100

"""``set_keyword`` writes the new or changed keyword in the call's own layout:
one-line calls stay on one line; one argument per line gets the new one on a line
of its own with the same indent; a trailing comma stays; comments stay with
their argument; the closing parenthesis stays where it was."""

from __future__ import annotations

import textwrap

import libcst as cst
import pytest

from losslint.engine import fix_text
from losslint.fixes import set_keyword


def with_keyword(code: str, name: str = "drop_last", value: str = "True") -> str:
    """``code`` with ``set_keyword`` applied to its first call (a statement's value)."""
    module = cst.parse_module(textwrap.dedent(code))

    class First(cst.CSTTransformer):
        done = False

        def leave_Call(self, original: cst.Call, updated: cst.Call) -> cst.Call:
            if self.done:
                return updated
            self.done = True
            return set_keyword(updated, name, value)

    return module.visit(First()).code


CASES = {
    "one line": (
        "loader = DataLoader(ds, batch_size=64, shuffle=True)\n",
        "loader = DataLoader(ds, batch_size=64, shuffle=True, drop_last=True)\n",
    ),
    "no arguments": ("loader = DataLoader()\n", "loader = DataLoader(drop_last=True)\n"),
    "one per line, trailing comma": (
        """\
        loader = DataLoader(
            train_set,
            batch_size=batch_size,
        )
        """,
        """\
        loader = DataLoader(
            train_set,
            batch_size=batch_size,
            drop_last=True,
        )
        """,
    ),
    "one per line, no trailing comma": (
        """\
        loader = DataLoader(
            train_set,
            batch_size=batch_size
        )
        """,
        """\
        loader = DataLoader(
            train_set,
            batch_size=batch_size,
            drop_last=True
        )
        """,
    ),
    "one per line, parenthesis after the last argument": (
        """\
        def make(train_set, batch_size):
            return DataLoader(
                train_set,
                batch_size=batch_size)
        """,
        """\
        def make(train_set, batch_size):
            return DataLoader(
                train_set,
                batch_size=batch_size,
                drop_last=True)
        """,
    ),
    "a single argument on its own line": (
        """\
        loader = DataLoader(
            train_set,
        )
        """,
        """\
        loader = DataLoader(
            train_set,
            drop_last=True,
        )
        """,
    ),
    "hanging indent, one per line": (
        """\
        loader = DataLoader(train_set,
                            batch_size=64,
                            shuffle=True)
        """,
        """\
        loader = DataLoader(train_set,
                            batch_size=64,
                            shuffle=True,
                            drop_last=True)
        """,
    ),
    "hanging indent, several to a line": (
        """\
        loader = DataLoader(train_set, batch_size=64,
                            shuffle=True)
        """,
        """\
        loader = DataLoader(train_set, batch_size=64,
                            shuffle=True, drop_last=True)
        """,
    ),
    "comments after arguments, trailing comma": (
        """\
        loader = DataLoader(
            train_set,  # the training split
            batch_size=64,  # per device
        )
        """,
        """\
        loader = DataLoader(
            train_set,  # the training split
            batch_size=64,  # per device
            drop_last=True,
        )
        """,
    ),
    "comments after arguments, no trailing comma": (
        """\
        loader = DataLoader(
            train_set,  # the training split
            batch_size=64  # per device
        )
        """,
        """\
        loader = DataLoader(
            train_set,  # the training split
            batch_size=64,  # per device
            drop_last=True
        )
        """,
    ),
    "the call's spacing around =": (
        "loader = DataLoader(ds, batch_size = 64)\n",
        "loader = DataLoader(ds, batch_size = 64, drop_last = True)\n",
    ),
    "an existing value replaced, its comment kept": (
        """\
        loader = DataLoader(
            train_set,
            drop_last=False,  # keep every sample
            shuffle=True,
        )
        """,
        """\
        loader = DataLoader(
            train_set,
            drop_last=True,  # keep every sample
            shuffle=True,
        )
        """,
    ),
    "an existing last value replaced, its comment kept": (
        """\
        loader = DataLoader(train_set, batch_size=64,
                            drop_last=False)  # keep every sample
        """,
        """\
        loader = DataLoader(train_set, batch_size=64,
                            drop_last=True)  # keep every sample
        """,
    ),
}


@pytest.mark.parametrize("name", list(CASES))
def test_set_keyword_keeps_the_calls_layout(name: str):
    before, after = CASES[name]
    assert with_keyword(before) == textwrap.dedent(after)


def test_a_rules_fix_end_to_end_in_a_function():
    """LL201's fix (drop_last=True) through the whole fix machinery."""
    before = textwrap.dedent(
        """\
        from torch.utils.data import DataLoader, TensorDataset
        import torch


        def main(batch_size=64):
            train_set = TensorDataset(torch.zeros(1000, 3))
            train_loader = DataLoader(
                train_set,
                shuffle=True,  # a new order every epoch
                batch_size=batch_size
            )
            return train_loader
        """
    )
    fixed, remaining = fix_text(before, path="train.py")
    assert fixed == before.replace(
        "batch_size=batch_size\n", "batch_size=batch_size,\n        drop_last=True\n"
    )
    assert not [f for f in remaining if f.code == "LL201"]

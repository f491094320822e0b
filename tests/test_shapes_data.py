"""The data-side shapes of real training code that the analysis layer follows
(issue "one model of the program"): keyword dicts, ``self.batch_size`` set in
``__init__``, values handed through several call levels and helpers, and the
TensorFlow/Keras import spellings. Each is a small realistic program, with the
numbers the finding must carry, and a quiet twin where a wrong reading would
show."""

from __future__ import annotations

import textwrap

import pytest

from losslint.config import Settings
from losslint.pipeline import lint_text

LL2 = Settings(select=["LL2"])


def findings(source: str, path: str = "train.py", files: dict[str, str] | None = None) -> list[tuple[str, int, str]]:
    files = {name: textwrap.dedent(body).lstrip("\n") for name, body in (files or {}).items()}
    found = lint_text(textwrap.dedent(source).lstrip("\n"), LL2, path=path, files=files)
    return [(f.code, f.span.line, f.message) for f in found]


_TORCH_LOOP = """
    model = torch.nn.Linear(8, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    for x, y in loader:
        opt.zero_grad()
        torch.nn.functional.mse_loss(model(x), y).backward()
        opt.step()
"""


def torch_program(setup: str) -> str:
    head = "import torch\nfrom torch.utils.data import DataLoader, TensorDataset\n\n"
    return head + textwrap.dedent(setup).lstrip("\n") + textwrap.dedent(_TORCH_LOOP)


# -- keyword dicts: DataLoader(ds, **kwargs) -----------------------------------------------

_DATASET = "dataset = TensorDataset(torch.randn(1000, 8), torch.randn(1000, 1))\n"


@pytest.mark.parametrize(
    "kwargs",
    [
        pytest.param('train_kwargs = {"batch_size": 64, "shuffle": True}\n', id="literal"),
        pytest.param("train_kwargs = dict(batch_size=64, shuffle=True)\n", id="dict-call"),
        pytest.param('train_kwargs = {"shuffle": True}\ntrain_kwargs.update(batch_size=64)\n', id="update-keywords"),
        pytest.param('base = dict(batch_size=64)\ntrain_kwargs = {"shuffle": True}\ntrain_kwargs.update(base)\n', id="update-dict"),
        pytest.param('a = {"batch_size": 64}\nb = {"shuffle": True}\ntrain_kwargs = {**a, **b}\n', id="merge"),
        pytest.param(
            'base = dict(batch_size=64, num_workers=2)\nshared = {"shuffle": True}\nshared.update(base)\n'
            'train_kwargs = {**shared, "pin_memory": True}\n',
            id="merge-of-an-updated-dict",
        ),
    ],
)
def test_keyword_dicts_give_the_dataloader_its_batch_size(kwargs: str):
    source = torch_program(_DATASET + kwargs + "loader = DataLoader(dataset, **train_kwargs)\n")
    [(code, line, message)] = findings(source)
    assert code == "LL201"
    assert source.splitlines()[line - 1].startswith("loader = DataLoader(")
    assert "N=1000, B=64" in message and "the last batch of every epoch has 40 samples" in message


def test_drop_last_inside_a_merged_dict_is_quiet():
    source = torch_program(
        _DATASET
        + 'shared = {"batch_size": 64, "shuffle": True}\n'
        + 'train_kwargs = {**shared, "drop_last": True}\n'
        + "loader = DataLoader(dataset, **train_kwargs)\n"
    )
    assert findings(source) == []


def test_a_later_key_of_a_dict_display_wins():
    # {**a, "batch_size": 50}: B is 50, not "64 or 50"; 1000 % 50 == 0
    source = torch_program(
        _DATASET
        + 'shared = {"batch_size": 64, "shuffle": True}\n'
        + 'train_kwargs = {**shared, "batch_size": 50}\n'
        + "loader = DataLoader(dataset, **train_kwargs)\n"
    )
    assert findings(source) == []


def test_a_dict_merged_into_another_still_carries_its_own_batch_size():
    # shared is read by {**shared, ...} and also used itself: its B stays known
    source = torch_program(
        _DATASET
        + 'shared = {"batch_size": 48, "shuffle": True}\n'
        + 'eval_kwargs = {**shared, "shuffle": False}\n'
        + "loader = DataLoader(dataset, **shared)\n"
    )
    [(code, _, message)] = findings(source)
    assert code == "LL201" and "N=1000, B=48" in message


# -- attributes set in __init__ -------------------------------------------------------------

_TRAINER = """
import torch
from torch.utils.data import DataLoader, TensorDataset


class Trainer:
    def __init__(self, model, batch_size=96):
        self.model = model
        self.batch_size = batch_size
        self.optimizer = torch.optim.SGD(model.parameters(), lr=0.1)

    def loader(self):
        data = TensorDataset(torch.randn(1000, 8), torch.randn(1000, 1))
        return DataLoader(data, batch_size=self.batch_size, shuffle=True)

    def fit(self):
        for x, y in self.loader():
            self.optimizer.zero_grad()
            torch.nn.functional.mse_loss(self.model(x), y).backward()
            self.optimizer.step()


"""


def test_self_batch_size_from_the_call_site():
    [(code, line, message)] = findings(_TRAINER + "Trainer(torch.nn.Linear(8, 1), batch_size=48).fit()\n")
    assert (code, line) == ("LL201", 13)
    assert "N=1000, B=48" in message


def test_self_batch_size_from_the_default_where_no_call_passes_it():
    [(code, _, message)] = findings(_TRAINER + "Trainer(torch.nn.Linear(8, 1)).fit()\n")
    assert code == "LL201" and "N=1000, B=96" in message


def test_self_batch_size_whose_callers_disagree_is_not_a_guess():
    source = _TRAINER + "Trainer(torch.nn.Linear(8, 1), batch_size=48).fit()\nTrainer(torch.nn.Linear(8, 1), batch_size=50).fit()\n"
    [(code, _, message)] = findings(source)
    assert code == "LL202" and "(B unknown)" in message and "B=48" not in message


_SAMPLER = """
import torch
from torch.utils.data import Sampler


class BucketSampler(Sampler):
    def __init__(self, dataset, batch_size=1):
        super().__init__(dataset)
        self.dataset = dataset
        self.batch_size = batch_size
        ids = list(range(len(self.dataset)))
        self.bins = [ids[i:i + self.batch_size] for i in range(0, len(ids), self.batch_size)]

    def __iter__(self):
        for i in torch.randperm(len(self.bins)).tolist():
            yield self.bins[i]

    def __len__(self):
        return len(self.bins)
"""


def _sampler_caller(argument: str) -> str:
    return f"""
        import argparse
        from torch.utils.data import DataLoader
        from data import BucketSampler

        parser = argparse.ArgumentParser()
        parser.add_argument("--batch-size", type=int)
        args = parser.parse_args()
        train_set = load_manifest()
        sampler = BucketSampler(train_set{argument})
        loader = DataLoader(train_set, batch_sampler=sampler)
        for x, y in loader:
            model(x).backward()
    """


def test_self_batch_size_passed_from_another_file_is_not_the_default():
    # deepspeech.pytorch's DSRandomSampler(dataset=..., batch_size=cfg.data.batch_size)
    # in training.py: the default batch_size=1 (never partial) does not apply
    [(code, line, message)] = findings(_SAMPLER, path="data.py", files={"train.py": _sampler_caller(", batch_size=args.batch_size")})
    assert (code, line) == ("LL206", 11)
    assert "the batch size is not known statically" in message


def test_self_batch_size_passed_as_a_literal_from_another_file():
    [(code, _, message)] = findings(_SAMPLER, path="data.py", files={"train.py": _sampler_caller(", batch_size=16")})
    assert code == "LL206" and "B=16" in message


def test_self_batch_size_left_to_its_default_of_one_by_every_caller_is_quiet():
    assert findings(_SAMPLER, path="data.py", files={"train.py": _sampler_caller("")}) == []


# -- values passed through several call levels ----------------------------------------------

_LEVELS = """
import torch
from torch.utils.data import DataLoader, TensorDataset


def make_loader(dataset, batch_size):
    return DataLoader(dataset, batch_size=batch_size, shuffle=True)


def build(n, batch_size):
    data = TensorDataset(torch.randn(n, 8), torch.randn(n, 1))
    return make_loader(data, batch_size)


def main(batch_size={b}):
    loader = build({n}, batch_size)
    model = torch.nn.Linear(8, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    for x, y in loader:
        opt.zero_grad()
        torch.nn.functional.mse_loss(model(x), y).backward()
        opt.step()


main()
"""


def test_n_and_b_through_several_call_levels():
    [(code, line, message)] = findings(_LEVELS.format(n=1000, b=64))
    assert (code, line) == ("LL201", 6)
    assert "N=1000, B=64" in message


def test_several_call_levels_that_fill_every_batch_are_quiet():
    assert findings(_LEVELS.format(n=1000, b=50)) == []


_HELPER = """
import torch
from torch.utils.data import DataLoader, TensorDataset


def make_data(n, d=8):
    x = torch.randn(n, d)
    y = torch.randn(n, 1)
    return x, y


x, y = make_data(1000)
{more}loader = DataLoader(TensorDataset(x, y), batch_size=64, shuffle=True)
"""


def test_n_through_a_helpers_parameter_and_its_return():
    [(code, _, message)] = findings(_HELPER.format(more="") + textwrap.dedent(_TORCH_LOOP))
    assert code == "LL201" and "N=1000, B=64" in message


def test_a_helper_called_with_two_sizes_gives_no_n():
    source = _HELPER.format(more="x_val, y_val = make_data(200)\n") + textwrap.dedent(_TORCH_LOOP)
    [(code, _, message)] = findings(source)
    assert code == "LL202" and "not known statically" in message and "N=" not in message


def test_a_dataset_built_by_a_helper_call():
    source = """
        import torch
        from torch.utils.data import DataLoader, TensorDataset


        def make_dataset(n):
            return TensorDataset(torch.randn(n, 8), torch.randn(n, 1))


        loader = DataLoader(make_dataset(1000), batch_size=64, shuffle=True)
    """
    [(code, _, message)] = findings(textwrap.dedent(source) + textwrap.dedent(_TORCH_LOOP))
    assert code == "LL201" and "N=1000, B=64" in message


# -- TensorFlow and Keras import spellings -------------------------------------------------

_FIT = """
{imports}
import numpy as np

model = {keras}.Sequential([{keras}.layers.Dense(1)])
model.compile(optimizer={keras}.optimizers.Adam(clipnorm=1.0), loss="mse")
x = {make_x}
y = np.zeros((1000, 1))
model.fit(x, y, batch_size={b}, epochs=10)
"""


@pytest.mark.parametrize(
    ("imports", "keras", "make_x"),
    [
        ("import tensorflow.compat.v2 as tf", "tf.keras", "tf.random.normal((1000, 8))"),
        ("import tensorflow.compat.v2 as tf", "tf.keras", "tf.zeros((1000, 8))"),
        ("import tensorflow.compat.v1 as tf", "tf.keras", "tf.random.uniform([1000, 8])"),
        ("import tensorflow as tf", "tf.keras", "tf.random.normal(shape=(1000, 8))"),
        ("from tensorflow import keras", "keras", "np.random.rand(1000, 8)"),
        ("import tensorflow.keras as keras", "keras", "np.zeros((1000, 8))"),
        ("import keras", "keras", "keras.random.normal((1000, 8))"),
    ],
)
def test_keras_fit_reads_n_under_every_import_spelling(imports: str, keras: str, make_x: str):
    source = _FIT.format(imports=imports, keras=keras, make_x=make_x, b=64)
    [(code, line, message)] = findings(source)
    assert (code, line) == ("LL204", 8)
    assert "N=1000, B=64" in message


def test_keras_fit_whose_batches_are_all_full_is_quiet_under_compat_v2():
    assert findings(_FIT.format(imports="import tensorflow.compat.v2 as tf", keras="tf.keras", make_x="tf.random.normal((1000, 8))", b=50)) == []


@pytest.mark.parametrize("imports", ["import tensorflow.compat.v2 as tf", "import tensorflow as tf"])
def test_tf_data_batch_reads_n_under_compat_v2(imports: str):
    source = f"""
        {imports}

        x = tf.random.normal((1000, 8))
        y = tf.zeros((1000, 1))
        ds = tf.data.Dataset.from_tensor_slices((x, y)).shuffle(1000).batch(64)
        model = tf.keras.Sequential([tf.keras.layers.Dense(1)])
        model.compile(optimizer=tf.keras.optimizers.Adam(clipnorm=1.0), loss="mse")
        model.fit(ds, epochs=10)
    """
    [(code, line, message)] = findings(source)
    assert (code, line) == ("LL203", 5)
    assert "N=1000, B=64" in message


def test_self_batch_size_from_unknown_callers_is_not_a_parser_default_of_that_name():
    # the class sets self.batch_size from its parameter; a test passes a local
    # variable: B is unknown, not the --batch-size default of a script that imports it
    data = """
        import torch
        from torch.utils.data import DataLoader


        class DataModule:
            def __init__(self, root, batch_size=32):
                self.root = root
                self.batch_size = batch_size

            def train_dataloader(self):
                return DataLoader(load_images(self.root), batch_size=self.batch_size, shuffle=True)
    """
    script = """
        import argparse
        from data import DataModule

        parser = argparse.ArgumentParser()
        parser.add_argument("--batch-size", type=int, default=200)
        args = parser.parse_args()
        size = int(input())
        dm = DataModule("data", batch_size=size)
    """
    [(code, _, message)] = findings(data, path="data.py", files={"train.py": script})
    assert code == "LL202" and "(B unknown)" in message and "B=200" not in message
    script_with_literal = script.replace("batch_size=size", "batch_size=48")
    [(code, _, message)] = findings(data, path="data.py", files={"train.py": script_with_literal})
    assert code == "LL202" and "(B=48)" in message


_FACTORY = """
    from torch.utils.data import DataLoader


    def create_dataloader(path, batch_size, quad=False, shuffle=False):
        return DataLoader(ImageFolder(path), batch_size=batch_size, shuffle=shuffle, drop_last=quad)
"""


def _factory_caller(action: str) -> str:
    return f"""
        import argparse
        from data import create_dataloader

        parser = argparse.ArgumentParser()
        parser.add_argument("--quad", action="{action}")
        opt = parser.parse_args()
        train_loader = create_dataloader("train", 16, quad=opt.quad, shuffle=True)
    """


def test_another_files_call_passing_a_parser_option_reads_its_default():
    # yolov5's create_dataloader(..., quad=opt.quad, shuffle=True): --quad is off by default
    [(code, line, message)] = findings(_FACTORY, path="data.py", files={"train.py": _factory_caller("store_true")})
    assert (code, line) == ("LL202", 5)
    assert "(quad defaults to False) (B=16)" in message


def test_another_files_call_passing_a_parser_option_that_is_on_is_quiet():
    assert findings(_FACTORY, path="data.py", files={"train.py": _factory_caller("store_false")}) == []

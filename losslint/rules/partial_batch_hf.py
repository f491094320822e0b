"""LL207: Hugging Face ``TrainingArguments`` (and the configs that inherit it) without
``dataloader_drop_last=True``.

The Trainer builds its training DataLoader with ``drop_last=args.dataloader_drop_last``,
which defaults to False, and ``per_device_train_batch_size`` defaults to 8
(docs/semantics.md §3). On one process, a train set whose size N is not a multiple of
the per-device batch size B ends every epoch with a batch of N % B samples; with
several processes accelerate's ``even_batches=True`` fills that batch by wrapping
around, so the partial batch is a single-process affair. A run bounded by
``max_steps`` that ends within the first pass over the data (or whose data size is
unknown: the usual ``max_steps=60`` fine-tuning demo) draws no partial batch and is
left alone, as are a library's fallback arguments (``if args is None: args =
TrainingArguments(...)``) and arguments for evaluation only.

Severity: INFO, default on. The Trainer's own loss is a mean over tokens (or over
``num_items_in_batch`` with accumulation), so a small last batch is a noisier
step rather than a spike unless a custom loss is normalized twice (LL1xx); and the
train set size is rarely known statically (datasets come from ``load_dataset``).
The finding is raised to WARNING when N and B are both known and N % B != 0, as
LL201 is for a DataLoader. The fix, ``dataloader_drop_last=True``, is safe: every
full batch trains exactly as before.
"""

from __future__ import annotations

import ast
from typing import Iterable

from losslint.analysis.batching import is_partial, known_sizes, read_flag
from losslint.analysis.names import argument, has_star_kwargs, keyword, last_part
from losslint.analysis.roles import Role, bound_name, words_role
from losslint.analysis.sizes import length, sample_count
from losslint.context import FileContext
from losslint.findings import Finding, Severity
from losslint.analysis.hf_arguments import DEFAULT_BATCH_SIZE, TRANSFORMERS_ARGUMENTS, TRL_CONFIGS
from losslint.rules.base import ChainRole, Flagged, Quiet, Rule, register
from losslint.rules.partial_batch_common import describe_last_batch, set_flag_fix

_TRAINERS_ARGS_KEYWORD = "args"
_FIX = "add dataloader_drop_last=True"


def _arguments_class(ctx: FileContext, call: ast.Call) -> str | None:
    """``TrainingArguments`` (or a TRL config) when ``call`` builds one, else None."""
    qual = ctx.qualname(call.func) or ""
    name = last_part(qual)
    package = qual.split(".")[0]
    if name in TRANSFORMERS_ARGUMENTS and package == "transformers":
        return name
    if name in TRL_CONFIGS and package == "trl":
        return name
    return None


def _names_bound_to(ctx: FileContext, call: ast.Call) -> set[str]:
    parent = ctx.parents.get(call)
    if isinstance(parent, ast.Assign):
        return {t.id for t in parent.targets if isinstance(t, ast.Name)} | {
            t.attr for t in parent.targets if isinstance(t, ast.Attribute)
        }
    if isinstance(parent, ast.AnnAssign) and isinstance(parent.target, ast.Name):
        return {parent.target.id}
    return set()


def _trainers(ctx: FileContext, call: ast.Call) -> list[ast.Call]:
    """The calls in this file that get these arguments as ``args=`` (a Trainer,
    an SFTTrainer, ...)."""
    names = _names_bound_to(ctx, call)
    found = []
    for other in ctx.nodes_of(ast.Call):
        args = keyword(other, _TRAINERS_ARGS_KEYWORD)
        if args is None:
            continue
        value = args.value
        if value is call or (isinstance(value, ast.Name) and value.id in names) or (
            isinstance(value, ast.Attribute) and value.attr in names
        ):
            found.append(other)
    return found


def _train_dataset(ctx: FileContext, trainers: list[ast.Call]) -> ast.expr | None:
    """The ``train_dataset=`` of the Trainer that gets these arguments."""
    for trainer in trainers:
        dataset = keyword(trainer, "train_dataset")
        if dataset is not None:
            return dataset.value
    return None


def _evaluation_only(trainers: list[ast.Call]) -> bool:
    """Every Trainer given these arguments has no train_dataset: it evaluates or
    predicts only."""
    return bool(trainers) and all(
        keyword(t, "train_dataset") is None and not has_star_kwargs(t) and len(t.args) < 4 for t in trainers
    )


def hf_dataset_length(ctx: FileContext, node: ast.expr | None, depth: int = 0) -> int | None:
    """Size of a 🤗 datasets expression where the script makes it plain:
    ``ds.select(range(1000))``, ``.shuffle(seed=42)``, ``Dataset.from_dict({"text": [...]})``,
    ``Dataset.from_list([...])``; anything else, as for arrays."""
    if node is None or depth > 10:
        return None
    if isinstance(node, ast.Name):
        binding = ctx.values.binding_before(node)
        if binding is not None and binding.value is not None and not binding.path:
            return hf_dataset_length(ctx, binding.value, depth + 1)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
        method = node.func.attr
        if method == "select":
            return length(ctx, argument(node, "indices", 0))
        if method in ("shuffle", "flatten_indices", "with_format", "rename_column", "cast_column", "remove_columns"):
            return hf_dataset_length(ctx, node.func.value, depth + 1)
        if method == "map" and ctx.values.value(argument(node, "batched")) is not True:
            return hf_dataset_length(ctx, node.func.value, depth + 1)
        if method == "from_dict":
            mapping = argument(node, "mapping", 0)
            if isinstance(mapping, ast.Dict) and mapping.values:
                return sample_count(ctx, mapping.values[0])
            return None
        if method == "from_list":
            return length(ctx, argument(node, "mapping", 0))
    return sample_count(ctx, node)


@register
class TrainerPartialLastBatch(Rule):
    code = "LL207"
    chain = ChainRole.PARTIAL_BATCH
    name = "trainer-partial-last-batch"
    severity = Severity.INFO
    default_enabled = True
    triggers = ("TrainingArguments", *sorted(TRL_CONFIGS))
    summary = "Hugging Face TrainingArguments (or a TRL config) without dataloader_drop_last=True."
    why = (
        "The Trainer's training DataLoader drops no partial batch by default (dataloader_drop_last=False, "
        "per_device_train_batch_size=8). On one process every epoch then ends with a batch of N % B samples: "
        "a noisier step with a mean loss, and a spike when the loss is also normalized per batch (LL1xx) and a "
        "momentum optimizer carries it on. (With several processes accelerate fills the last batch by wrapping "
        "around.) Severity is INFO because the train set size is rarely known statically and the Trainer's own "
        "loss is not batch-size dependent; the finding is a WARNING when N and B are known and N % B != 0."
    )
    fix_doc = (
        "Adds dataloader_drop_last=True (or sets it where it is False); for arguments read from a YAML/JSON "
        "(HfArgumentParser.parse_yaml_file, TrlParser --config: docs/configs.md) the finding and "
        "dataloader_drop_last: true go in that file. Safe: every full batch trains exactly as "
        "before; the N % B leftover samples are left out of that epoch only (the sampler shuffles them into other "
        "batches in later epochs)."
    )
    references = (
        "https://huggingface.co/docs/transformers/main_classes/trainer#transformers.TrainingArguments.dataloader_drop_last",
        "huggingface/transformers PR #4757 (dataloader_drop_last)",
        "https://huggingface.co/docs/trl/sft_trainer",
    )
    flagged = (
        Flagged(
            """
            from datasets import load_dataset
            from transformers import Trainer, TrainingArguments

            raw = load_dataset("imdb")
            train_ds = raw["train"].shuffle(seed=42).select(range(1000))
            args = TrainingArguments(
                output_dir="out",
                per_device_train_batch_size=16,
                num_train_epochs=3,
            )
            trainer = Trainer(model=model, args=args, train_dataset=train_ds)
            trainer.train()
            """,
            fixed="""
            from datasets import load_dataset
            from transformers import Trainer, TrainingArguments

            raw = load_dataset("imdb")
            train_ds = raw["train"].shuffle(seed=42).select(range(1000))
            args = TrainingArguments(
                output_dir="out",
                per_device_train_batch_size=16,
                num_train_epochs=3,
                dataloader_drop_last=True,
            )
            trainer = Trainer(model=model, args=args, train_dataset=train_ds)
            trainer.train()
            """,
            message_contains=("N=1000, B=16", "8 samples", "dataloader_drop_last=False"),
        ),
        Flagged(
            """
            import transformers
            training_args = transformers.Seq2SeqTrainingArguments("out", learning_rate=3e-5)
            trainer = transformers.Seq2SeqTrainer(model=model, args=training_args, train_dataset=tokenized["train"])
            """,
            fixed="""
            import transformers
            training_args = transformers.Seq2SeqTrainingArguments("out", learning_rate=3e-5, dataloader_drop_last=True)
            trainer = transformers.Seq2SeqTrainer(model=model, args=training_args, train_dataset=tokenized["train"])
            """,
            message_contains=("per_device_train_batch_size=8 (the default)", "not known statically"),
        ),
        Flagged(
            """
            from trl import SFTConfig, SFTTrainer
            config = SFTConfig(output_dir="sft", per_device_train_batch_size=4, dataloader_drop_last=False)
            trainer = SFTTrainer(model=model, args=config, train_dataset=dataset)
            """,
            fixed="""
            from trl import SFTConfig, SFTTrainer
            config = SFTConfig(output_dir="sft", per_device_train_batch_size=4, dataloader_drop_last=True)
            trainer = SFTTrainer(model=model, args=config, train_dataset=dataset)
            """,
            message_contains=("SFTConfig", "per_device_train_batch_size=4"),
        ),
        Flagged(
            """
            from transformers import Trainer, TrainingArguments
            train_ds = dataset.select(range(500))
            args = TrainingArguments("out", per_device_train_batch_size=16, max_steps=1000)
            Trainer(model=model, args=args, train_dataset=train_ds).train()
            """,
            fixed="""
            from transformers import Trainer, TrainingArguments
            train_ds = dataset.select(range(500))
            args = TrainingArguments("out", per_device_train_batch_size=16, max_steps=1000, dataloader_drop_last=True)
            Trainer(model=model, args=args, train_dataset=train_ds).train()
            """,
            message_contains=("N=500, B=16", "4 samples"),
        ),
    )
    quiet = (
        Quiet(
            """
            from transformers import TrainingArguments
            args = TrainingArguments(output_dir="out", dataloader_drop_last=True)
            """,
            why="dataloader_drop_last=True already",
        ),
        Quiet(
            """
            from transformers import TrainingArguments
            def make_args(**overrides):
                return TrainingArguments(output_dir="out", **overrides)
            """,
            why="**overrides may carry dataloader_drop_last",
        ),
        Quiet(
            """
            from transformers import TrainingArguments
            args = TrainingArguments(output_dir="out", do_train=False, do_eval=True)
            eval_args = TrainingArguments(output_dir="out", per_device_eval_batch_size=32)
            """,
            why="arguments for evaluation only",
        ),
        Quiet(
            """
            from transformers import TrainingArguments
            def test_deepspeed_config():
                train_args = TrainingArguments(output_dir="./", deepspeed={"zero_optimization": {"stage": 3}})
                assert train_args is not None
            """,
            why="built to be inspected, never handed to a Trainer",
        ),
        Quiet(
            """
            from transformers import Trainer, TrainingArguments
            args = TrainingArguments(output_dir="out", per_device_eval_batch_size=64)
            trainer = Trainer(model=model, args=args, eval_dataset=test_ds, compute_metrics=metrics)
            print(trainer.evaluate())
            """,
            why="the Trainer that gets these arguments has no train_dataset: it only evaluates",
        ),
        Quiet(
            """
            import torch
            from transformers import Trainer, TrainingArguments
            train_ds = torch.utils.data.TensorDataset(torch.randn(1024, 8))
            args = TrainingArguments(output_dir="out", per_device_train_batch_size=32)
            trainer = Trainer(model=model, args=args, train_dataset=train_ds)
            """,
            why="N % B == 0: every batch is full",
        ),
        Quiet(
            """
            from transformers import TrainingArguments
            class MyTrainer:
                def __init__(self, model, args=None):
                    if args is None:
                        args = TrainingArguments(output_dir="tmp_trainer")
                    self.args = args
            """,
            why="a library's fallback for a missing argument: the caller's arguments decide",
        ),
        Quiet(
            """
            from trl import SFTConfig
            config = SFTConfig(output_dir="out", per_device_train_batch_size=2, gradient_accumulation_steps=4, max_steps=60)
            """,
            why="max_steps bounds the run by steps, not by passes over the data (60 x 4 x 2 samples)",
        ),
        Quiet(
            """
            from trl import GRPOConfig
            config = GRPOConfig(output_dir="grpo", per_device_train_batch_size=4)
            """,
            why="on-policy trainers batch their generations, not the train set",
        ),
        Quiet(
            """
            from transformers import Trainer, TrainingArguments
            args = TrainingArguments(output_dir="out", per_device_train_batch_size=1, gradient_accumulation_steps=8)
            trainer = Trainer(model=model, args=args, train_dataset=train_ds)
            """,
            why="a batch of one is never partial",
        ),
    )

    def check(self, ctx: FileContext) -> Iterable[Finding]:
        for call in ctx.nodes_of(ast.Call):
            cls = _arguments_class(ctx, call)
            if cls is None:
                continue
            flag = read_flag(ctx, call, "dataloader_drop_last", None)
            if flag.value is not False:
                continue  # True, or hidden in **kwargs / an unknown value
            if ctx.values.value(argument(call, "do_train")) is False:
                continue
            if self._for_evaluation(ctx, call) or self._fallback_for_parameter(ctx, call) or self._never_passed_on(ctx, call):
                continue
            node = argument(call, "per_device_train_batch_size")
            b = DEFAULT_BATCH_SIZE if node is None else ctx.values.int_value(node)
            trainers = _trainers(ctx, call)
            if _evaluation_only(trainers):
                continue
            n, b = known_sizes(hf_dataset_length(ctx, _train_dataset(ctx, trainers)), b)
            if b == 1:
                continue  # a batch of one is never partial
            if n is not None and b is not None and not is_partial(n, b):
                continue  # every batch is full, or each epoch is one batch of all N
            if self._stops_within_first_epoch(ctx, call, n, b):
                continue
            fix = set_flag_fix(ctx, call, flag, "dataloader_drop_last", _FIX)
            head = f"{cls} without dataloader_drop_last=True (the HF default is dataloader_drop_last=False){flag.note}"
            if node is None:
                batch = f"per_device_train_batch_size={b} (the default)"
            elif b is None:
                batch = f"per_device_train_batch_size={ctx.text(node)} (not known statically)"
            else:
                batch = f"per_device_train_batch_size={b}"
            if n is not None and b is not None:
                message = (
                    f"{head}, {batch}: {describe_last_batch(n, b)}; on one process (with several, accelerate fills "
                    "the last batch by wrapping around)"
                )
                yield ctx.finding(self, call, message, fix, severity=Severity.WARNING)
                continue
            message = (
                f"{head}, {batch}: the train dataset size is not known statically; unless it is a multiple of the "
                "batch size, the last batch of every epoch on one process is smaller"
            )
            yield ctx.finding(self, call, message, fix)

    @staticmethod
    def _stops_within_first_epoch(ctx: FileContext, call: ast.Call, n: int | None, b: int | None) -> bool:
        """``max_steps`` ends training after max_steps x accumulation x B samples: when
        that is less than N no epoch ends and no partial batch is drawn. With N unknown
        (a max_steps=60 demo on a Hub dataset), not a finding either: the run is
        bounded by steps, not passes over the data."""
        max_steps = ctx.values.int_value(argument(call, "max_steps"))
        if max_steps is None or max_steps <= 0:
            return False
        if n is None or b is None:
            return True
        accumulation = ctx.values.int_value(argument(call, "gradient_accumulation_steps")) or 1
        return max_steps * accumulation * b < n

    @staticmethod
    def _never_passed_on(ctx: FileContext, call: ast.Call) -> bool:
        """``args = TrainingArguments(...)`` whose name is never handed to anything
        (a call, a return, a container): built to be inspected, not to train."""
        parent = ctx.parents.get(call)
        if not (isinstance(parent, ast.Assign) and len(parent.targets) == 1 and isinstance(parent.targets[0], ast.Name)):
            return False
        name = parent.targets[0].id
        scope = ctx.enclosing_scope(call)
        for node in ast.walk(scope):
            if isinstance(node, ast.Name) and node.id == name and isinstance(node.ctx, ast.Load):
                holder = ctx.parents.get(node)
                if isinstance(holder, (ast.Call, ast.keyword, ast.Return, ast.Assign, ast.AnnAssign, ast.Tuple, ast.List, ast.Dict, ast.Yield)):
                    return False
        return True

    @staticmethod
    def _fallback_for_parameter(ctx: FileContext, call: ast.Call) -> bool:
        """``if args is None: args = TrainingArguments("tmp_trainer")`` inside a
        function taking ``args``: a library's fallback; the caller's arguments decide."""
        function = ctx.enclosing(call, ast.FunctionDef, ast.AsyncFunctionDef)
        if function is None:
            return False
        every = function.args
        parameters = {a.arg for a in [*every.posonlyargs, *every.args, *every.kwonlyargs]}
        return bool(_names_bound_to(ctx, call) & parameters)

    @staticmethod
    def _for_evaluation(ctx: FileContext, call: ast.Call) -> bool:
        name = bound_name(ctx, call)
        if name and words_role(name) is Role.EVAL:
            return True
        function = ctx.enclosing(call, ast.FunctionDef, ast.AsyncFunctionDef)
        return function is not None and words_role(function.name) is Role.EVAL

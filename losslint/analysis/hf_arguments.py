"""What Hugging Face's TrainingArguments do by default: one place for the facts the
code rules (``TrainingArguments(...)``) and the config checks (a YAML or JSON that
``HfArgumentParser``/``TrlParser`` fills) both judge by (docs/semantics.md §3, §4).

The Trainer clips at ``max_grad_norm=1.0``, keeps the last batch
(``dataloader_drop_last=False``) and batches ``per_device_train_batch_size=8``; its
``optim`` (``adamw_torch``) has momentum unless it is one of ``PLAIN_OPTIMS``.
"""

DEFAULT_BATCH_SIZE = 8
DEFAULT_OPTIM = "adamw_torch"
# ``optim`` names (prefixes) of optimizers without a first moment.
PLAIN_OPTIMS = ("sgd", "adagrad", "adafactor", "rmsprop", "lomo", "adalomo", "schedule_free_sgd")

# transformers' own argument classes, and TRL's configs for supervised and
# preference training (they inherit TrainingArguments without overriding the two
# fields). On-policy trainers (GRPO, RLOO, PPO, online DPO) batch generations, not
# the train set, and are left out.
TRANSFORMERS_ARGUMENTS = frozenset({"TrainingArguments", "Seq2SeqTrainingArguments"})
TRL_CONFIGS = frozenset({
    "SFTConfig", "DPOConfig", "KTOConfig", "RewardConfig", "ORPOConfig", "CPOConfig", "BCOConfig", "PRMConfig",
    "GKDConfig", "GOLDConfig", "DistillationConfig",
})
SUPERVISED_ARGUMENTS = TRANSFORMERS_ARGUMENTS | TRL_CONFIGS


def has_momentum(optim: object) -> bool:
    """Whether an ``optim`` value (a known string) names an optimizer with momentum."""
    return isinstance(optim, str) and not optim.lower().startswith(PLAIN_OPTIMS)

"""losslint explain: from a spiky loss log to the line of code that causes it.

    losslint explain LOG [SRC ...] [--src PATH ...]

Modules, in the order an explanation uses them:

- ``readers``: the logs trainers already write (Hugging Face trainer_state.json,
  Lightning metrics.csv, CSV, JSONL, a W&B history export, TensorBoard event
  files through the ``tensorboard`` extra, plain training stdout), read into
  series of (step, loss) with the epoch and learning rate where logged;
- ``detect``: spikes above a robust local baseline, their period (checked
  against the autocorrelation of the spikes), alignment with epoch boundaries;
- ``link``: runs ``check`` on the sources and ties the period to the
  partial-batch findings (ceil(N / B)) and the findings on the same path;
- ``causes``: the other per-epoch causes and the evidence for each;
- ``report``: text, JSON and the plot; ``command``: the click command.

Only the standard library is needed; numpy, when installed, is used for speed.
See docs/explain.md for the method and its limits.
"""

"""Run ``losslint`` in this process and record its peak resident memory: this
process's (the main one) and its largest child's (a worker), in JSON at the path
in the LOSSLINT_BENCH_RSS environment variable."""

import json
import os
import resource
import sys

from losslint.cli import main


def record() -> None:
    scale = 1 if sys.platform == "darwin" else 1024  # ru_maxrss: bytes on macOS, KiB elsewhere
    usage = {
        "main_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale,
        "largest_worker_bytes": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * scale,
    }
    with open(os.environ["LOSSLINT_BENCH_RSS"], "w", encoding="utf-8") as out:
        json.dump(usage, out)


try:
    main(sys.argv[1:], prog_name="losslint")
finally:
    record()

"""A local worker process of the coverage study: ``python -m compare_kit.coverage.worker``.

A fresh interpreter (as ``compare_kit.sidecar``), not ``multiprocessing``: a user's
``__main__`` script is never re-imported, nothing is forked from a process that may
hold threads or JAX state, and every worker starts from the same clean state. It
reads pickled tasks from its stdin and writes back ``(ok, value)`` frames on a
private copy of its stdout (fd 1 itself is pointed at stderr, so a library that
prints cannot corrupt the stream). Only the parent's own pickles are read.
"""

from __future__ import annotations

import os
import sys

def _main() -> None:
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    inp = sys.stdin.buffer
    from compare_kit.coverage.frames import read_frame, write_frame
    from compare_kit.coverage.tasks import describe_error, run_task

    while True:
        try:
            task = read_frame(inp)
        except EOFError:
            return
        try:
            result = (True, run_task(task))
        except Exception as exc:  # noqa: BLE001 - recorded by the parent, which retries the task
            result = (False, describe_error(exc))
        write_frame(out, result)


if __name__ == "__main__":
    _main()

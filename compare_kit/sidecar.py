"""Run one function in a second Python process while this one works: the study's second core.

``run_study`` hands the work that needs no Bayesian fit (the statsmodels K-fold
refits and the teaching demonstrations) to a sidecar process and fits the
models itself meanwhile. The sidecar is a fresh interpreter started with
``python -m compare_kit.sidecar`` (not ``multiprocessing``, which would re-import
the user's ``__main__`` script), reads ``(function, args, kwargs)`` pickled by
this process from a private temporary folder and writes back the pickled result
or exception. Only this process's own files are unpickled.
"""

from __future__ import annotations

import importlib
import pickle
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from compare_kit.errors import CompareKitError


class SidecarError(CompareKitError):
    """The sidecar process died without a result (the message carries the end of its stderr)."""


class Sidecar:
    """A function running in another process; ``result()`` waits for it and returns its value."""

    def __init__(self, function: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        self._dir = Path(tempfile.mkdtemp(prefix="compare_kit_sidecar_"))
        name = f"{function.__module__}:{function.__qualname__}"
        with open(self._dir / "in.pickle", "wb") as fh:
            pickle.dump((name, args, kwargs), fh, protocol=pickle.HIGHEST_PROTOCOL)
        self._stderr = open(self._dir / "stderr.txt", "wb")  # noqa: SIM115 - closed in result()
        self._proc = subprocess.Popen([sys.executable, "-m", "compare_kit.sidecar", str(self._dir)],
                                      stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                      stderr=self._stderr)

    def result(self) -> Any:
        try:
            code = self._proc.wait()
            self._stderr.close()
            out = self._dir / "out.pickle"
            if not out.is_file():
                tail = (self._dir / "stderr.txt").read_text(errors="replace")[-2000:]
                raise SidecarError(f"the sidecar process ended (exit code {code}) without a result: {tail}")
            with open(out, "rb") as fh:
                ok, value = pickle.load(fh)
            if not ok:
                raise value
            return value
        finally:
            self.close()

    def close(self) -> None:
        if self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait()
        if not self._stderr.closed:
            self._stderr.close()
        shutil.rmtree(self._dir, ignore_errors=True)


def _main(folder: str) -> None:
    path = Path(folder)
    with open(path / "in.pickle", "rb") as fh:
        name, args, kwargs = pickle.load(fh)
    module, _, qualname = name.partition(":")
    function: Any = importlib.import_module(module)
    for part in qualname.split("."):
        function = getattr(function, part)
    try:
        outcome = (True, function(*args, **kwargs))
    except Exception as exc:  # noqa: BLE001 - handed back to the parent, which re-raises it
        outcome = (False, exc)
    try:
        payload = pickle.dumps(outcome, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception as exc:  # noqa: BLE001 - an unpicklable value or exception
        from compare_kit.sidecar import SidecarError as Error  # this file runs as __main__

        payload = pickle.dumps((False, Error(f"{type(exc).__name__}: {exc} (from {outcome!r:.500})")))
    tmp = path / "out.pickle.part"
    tmp.write_bytes(payload)
    tmp.rename(path / "out.pickle")


if __name__ == "__main__":
    _main(sys.argv[1])

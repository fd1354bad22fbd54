"""Fresh Python processes that run compare_kit's functions: the study's second process and the
coverage study's local pool are both made of these.

A worker is ``python -m compare_kit.processes``, a fresh interpreter, not ``multiprocessing``:
a user's ``__main__`` script is never re-imported, nothing is forked from a process that may
hold threads or JAX state, and every worker starts from the same clean state. It reads calls
``(module:qualname, args, kwargs)`` as length-prefixed pickle frames from its stdin and writes
back one ``(ok, value)`` frame per call on a private copy of its stdout (fd 1 itself points at
stderr, so a library that prints cannot corrupt the stream). A call that raises comes back as
a ``Failure`` with the exception and where it was raised. Before its answer, a call may send
``Progress`` lines (``worker_say``), which the parent hands to a function of its choice. Only
this process's own pickles are read. Closing the worker's stdin ends it.
"""

from __future__ import annotations

import importlib
import os
import pickle
import struct
import subprocess
import sys
import tempfile
import threading
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, BinaryIO

from compare_kit.errors import CompareKitError

_HEADER = struct.Struct("!Q")
_THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS")


class WorkerError(CompareKitError):
    """A worker process ended without an answer, or its answer could not be sent back."""


@dataclass(frozen=True)
class Failure:
    """A call that raised in the worker: the exception, and the file:line it was raised at."""

    error: BaseException
    where: str

    @classmethod
    def of(cls, error: BaseException) -> Failure:
        """``error`` with the file:line of the innermost frame of its traceback (empty without one)."""
        frames = traceback.extract_tb(error.__traceback__)[-1:] if error.__traceback__ else []
        return cls(error, f"{frames[0].filename.rsplit('/', 1)[-1]}:{frames[0].lineno}" if frames else "")

    def describe(self) -> str:
        """One line: the exception's type and message, plus where it was raised."""
        place = f" (at {self.where})" if self.where else ""
        return f"{type(self.error).__name__}: {self.error}{place}"


@dataclass(frozen=True)
class Progress:
    """A line of progress sent by a call before its answer."""

    text: str


_answers: BinaryIO | None = None  # inside a worker: the stream its answers (and progress) go to
_answers_lock = threading.Lock()


def worker_say(text: str) -> None:
    """Send a line of progress to the parent (inside a worker); elsewhere, nothing."""
    if _answers is not None:
        with _answers_lock:
            write_frame(_answers, Progress(str(text)))


def write_frame(stream: BinaryIO, value: Any) -> None:
    _write_payload(stream, pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL))


def _write_payload(stream: BinaryIO, payload: bytes) -> None:
    stream.write(_HEADER.pack(len(payload)) + payload)
    stream.flush()


def read_frame(stream: BinaryIO) -> Any:
    """The next frame, or raise EOFError when the other side has gone."""
    header = stream.read(_HEADER.size)
    if len(header) < _HEADER.size:
        raise EOFError
    (size,) = _HEADER.unpack(header)
    payload = stream.read(size)
    if len(payload) < size:
        raise EOFError
    return pickle.loads(payload)  # noqa: S301 - frames from our own parent or worker only


class WorkerProcess:
    """One worker process. ``submit`` a call, then ``receive`` its answer: ``(True, value)`` or
    ``(False, Failure)``; a worker that dies answers ``(False, Failure(WorkerError))``.

    Parameters
    ----------
    single_threaded : bool
        Limit the worker's BLAS, OpenMP and numba to one thread (for a pool of many workers).
    """

    def __init__(self, single_threaded: bool = False) -> None:
        self._log = tempfile.TemporaryFile()  # noqa: SIM115 - closed in close()
        env = dict(os.environ)
        if single_threaded:
            env.update({name: "1" for name in _THREAD_VARIABLES})
        self.proc = subprocess.Popen([sys.executable, "-m", "compare_kit.processes"], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=self._log, env=env)

    def submit(self, function: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        """Send a call of a module-level ``function``; its answer waits for ``receive``."""
        try:
            write_frame(self.proc.stdin, (f"{function.__module__}:{function.__qualname__}", args, kwargs))
        except (BrokenPipeError, OSError):
            pass  # the worker has gone: receive() says so, with its exit code and last words

    def receive(self, on_progress: Callable[[str], None] | None = None) -> tuple[bool, Any]:
        """The call's answer; its ``Progress`` lines before it go to ``on_progress`` (or nowhere)."""
        try:
            while isinstance(frame := read_frame(self.proc.stdout), Progress):
                if on_progress is not None:
                    on_progress(frame.text)
            return frame
        except (EOFError, OSError):
            code = self.proc.wait()
            return False, Failure(WorkerError(f"the worker process ended (exit code {code}) before answering"
                                              f"{self._tail()}"), "")

    def call(self, function: Callable[..., Any], *args: Any, **kwargs: Any) -> tuple[bool, Any]:
        self.submit(function, *args, **kwargs)
        return self.receive()

    def _tail(self) -> str:
        self._log.seek(0)
        lines = [ln for ln in self._log.read().decode(errors="replace").splitlines() if ln.strip()]
        return f": {' | '.join(lines[-3:])[-600:]}" if lines else ""

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def close(self) -> None:
        """End the worker (closing its stdin; killed after 10 s, or at once when ``kill``)."""
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc.stdout.close()
        self._log.close()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.close()


class Sidecar:
    """A function running in a worker process while this one works; ``result()`` waits for it and
    returns its value or raises its exception. Its ``worker_say`` lines reach ``progress_to`` as they come
    (from a reader thread), prefixed with "[second process]"."""

    def __init__(self, function: Callable[..., Any], *args: Any,
                 progress_to: Callable[[str], None] | None = None, **kwargs: Any) -> None:
        self._worker = WorkerProcess()
        self._worker.submit(function, *args, **kwargs)
        self._answer: tuple[bool, Any] | None = None
        forward = None if progress_to is None else (lambda text: progress_to(f"[second process] {text}"))
        self._reader = threading.Thread(target=self._read, args=(forward,), daemon=True)
        self._reader.start()

    def _read(self, forward: Callable[[str], None] | None) -> None:
        self._answer = self._worker.receive(forward)

    def result(self) -> Any:
        try:
            self._reader.join()
            ok, value = self._answer
        finally:
            self.close()
        if not ok:
            raise value.error
        return value

    def close(self) -> None:
        self._worker.kill()


def _resolve(name: str) -> Callable[..., Any]:
    module, _, qualname = name.partition(":")
    function: Any = importlib.import_module(module)
    for part in qualname.split("."):
        function = getattr(function, part)
    return function


def _answer(name: str, args: tuple, kwargs: dict) -> tuple[bool, Any]:
    try:
        return True, _resolve(name)(*args, **kwargs)
    except Exception as exc:  # noqa: BLE001 - handed back to the parent, which decides
        return False, Failure.of(exc)


def _main() -> None:
    global _answers
    out = _answers = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    inp = sys.stdin.buffer
    while True:
        try:
            name, args, kwargs = read_frame(inp)
        except EOFError:
            return
        answer = _answer(name, args, kwargs)
        try:
            payload = pickle.dumps(answer, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception as exc:  # noqa: BLE001 - an unpicklable value or exception
            payload = pickle.dumps((False, Failure(WorkerError(
                f"the answer could not be pickled ({type(exc).__name__}: {exc}); it was {answer[1]!r:.500}"), "")))
        with _answers_lock:
            _write_payload(out, payload)


if __name__ == "__main__":
    from compare_kit.processes import _main as main  # this module's own classes are pickled, not __main__'s

    main()

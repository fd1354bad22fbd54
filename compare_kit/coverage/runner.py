"""Running the study's tasks: a local pool of worker processes, or a Dask cluster.

Both executors run the same ``tasks.run_task`` on the same tasks and hand back
the outputs keyed by task id; ``run_tasks`` then orders them by task, so the
tables never depend on which worker finished first. A task that raises, or whose
worker process dies, is recorded (task, attempt, error text) and submitted again
up to ``config.retries`` more times; a task that still fails is listed in the
result's ``failures`` with ``final = True`` and its simulations are missing from
the tables (their ``n_datasets`` shows it). Nothing is dropped silently.
"""

from __future__ import annotations

import dataclasses
import os
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

from compare_kit.coverage.config import CoverageError
from compare_kit.coverage.tasks import Task, TaskOutput, run_task
from compare_kit.processes import Failure, WorkerProcess
from compare_kit.wording import count

Say = Callable[[str], None]


@dataclasses.dataclass(frozen=True)
class TaskFailure:
    """One failed attempt at a task; ``final``: no attempt is left, so its simulations are missing."""

    task: str
    n_groups: int
    first_sim: int
    last_sim: int
    attempt: int  # 1 for the first attempt
    error: str
    final: bool


@dataclasses.dataclass
class Outcome:
    outputs: dict[str, TaskOutput]
    failures: list[TaskFailure]
    executor: str


def _failure(task: Task, error: str, final: bool) -> TaskFailure:
    return TaskFailure(task.id, task.n_groups, task.start, task.stop - 1, task.attempt + 1, error, final)


class _Progress:
    def __init__(self, total: int, say: Say) -> None:
        self.total, self.done, self.say, self.t0 = total, 0, say, time.perf_counter()
        self._lock = threading.Lock()

    def tick(self, task: Task) -> None:
        with self._lock:
            self.done += 1
            seconds = time.perf_counter() - self.t0
            self.say(f"  task {self.done}/{self.total} done ({task.id}, {seconds:.0f} s)")


# ------------------------------------------------------------------ local pool


def run_local(tasks: list[Task], workers: int, retries: int, say: Say) -> Outcome:
    """Run ``tasks`` on ``workers`` fresh worker processes (``compare_kit.processes``), one thread each."""
    pending: queue.Queue[Task | None] = queue.Queue()
    for t in tasks:
        pending.put(t)
    outputs: dict[str, TaskOutput] = {}
    failures: list[TaskFailure] = []
    lock = threading.Lock()
    remaining = [len(tasks)]
    progress = _Progress(len(tasks), say)
    errors: list[BaseException] = []

    def finish_one() -> None:
        remaining[0] -= 1
        if remaining[0] == 0:
            for _ in range(workers):
                pending.put(None)

    def loop() -> None:
        worker: WorkerProcess | None = None
        try:
            while True:
                task = pending.get()
                if task is None:
                    return
                if worker is None or not worker.alive:
                    if worker is not None:
                        worker.close()
                    worker = WorkerProcess(single_threaded=True)
                ok, value = worker.call(run_task, task)
                if not ok:
                    value = value.describe()
                with lock:
                    if ok:
                        outputs[task.id] = value
                        progress.tick(task)
                        finish_one()
                        continue
                    final = task.attempt >= retries
                    failures.append(_failure(task, str(value), final))
                    say(f"  task {task.id} failed (attempt {task.attempt + 1}): {value}"
                        + ("; giving up" if final else "; retrying"))
                    if final:
                        finish_one()
                    else:
                        pending.put(dataclasses.replace(task, attempt=task.attempt + 1))
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
            errors.append(exc)
            with lock:
                for _ in range(workers):
                    pending.put(None)
        finally:
            if worker is not None:
                worker.close()

    threads = [threading.Thread(target=loop, name=f"coverage-worker-{i}", daemon=True)
               for i in range(workers)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    if errors:
        raise errors[0]
    return Outcome(outputs, failures, f"local process pool ({workers} worker processes)")


# ------------------------------------------------------------------ Dask


def connect(scheduler: Any, timeout: float = 10.0) -> tuple[Any, bool]:
    """A ``distributed.Client`` for an address (we own it) or the client given (the caller owns it)."""
    try:
        from distributed import Client
    except ImportError as exc:  # pragma: no cover - distributed is a dependency
        raise CoverageError("a Dask scheduler needs the 'distributed' package: "
                            "pip install distributed") from exc
    if isinstance(scheduler, Client):
        return scheduler, False
    address = str(scheduler)
    if "://" not in address:
        raise CoverageError(f"the scheduler address {address!r} must look like tcp://host:8786")
    try:
        return Client(address, timeout=timeout, set_as_default=False), True
    except (OSError, TimeoutError) as exc:
        raise CoverageError(f"cannot reach the Dask scheduler at {address} within {timeout:.0f} s "
                            f"({type(exc).__name__}: {exc}). Start one (dask scheduler) with workers "
                            "that have compare_kit installed, or leave --scheduler out to use local "
                            "worker processes.") from None


def run_dask(tasks: list[Task], scheduler: Any, retries: int, say: Say) -> Outcome:
    """Run ``tasks`` on a Dask cluster: one future per task and attempt, retried here (not by Dask)."""
    from distributed import as_completed

    client, owned = connect(scheduler)
    try:
        n_workers = len(client.scheduler_info().get("workers", {}))
        token = os.urandom(4).hex()

        def submit(task: Task) -> Any:
            key = f"coverage-{token}-{task.id}-a{task.attempt}"
            return client.submit(run_task, task, key=key, pure=False, retries=0)

        futures = {submit(t): t for t in tasks}
        outputs: dict[str, TaskOutput] = {}
        failures: list[TaskFailure] = []
        progress = _Progress(len(tasks), say)
        done = as_completed(list(futures), loop=client.loop)
        for future in done:
            task = futures.pop(future)
            if future.status == "finished":
                outputs[task.id] = future.result()
                progress.tick(task)
                continue
            exc = future.exception()
            error = Failure.of(exc).describe() if exc is not None else f"the task ended as {future.status!r}"
            final = task.attempt >= retries
            failures.append(_failure(task, error, final))
            say(f"  task {task.id} failed (attempt {task.attempt + 1}): {error}" + ("; giving up" if final
                                                                                    else "; retrying"))
            if not final:
                again = dataclasses.replace(task, attempt=task.attempt + 1)
                new = submit(again)
                futures[new] = again
                done.add(new)
            future.release()
        address = client.scheduler.address
    finally:
        if owned:
            client.close()
    return Outcome(outputs, failures, f"Dask cluster at {address} ({count(n_workers, 'worker')})")


def run_tasks(tasks: list[Task], *, workers: int, scheduler: Any, retries: int, say: Say) -> Outcome:
    if scheduler is not None:
        return run_dask(tasks, scheduler, retries, say)
    return run_local(tasks, workers, retries, say)


__all__ = ["Outcome", "TaskFailure", "connect", "run_dask", "run_local", "run_tasks"]

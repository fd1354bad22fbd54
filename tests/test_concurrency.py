"""The study's second process (compare_kit.processes) and the single-pass PSIS-LOO predictions."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from compare_kit.errors import FitError
from compare_kit.processes import Failure, Sidecar, WorkerError, WorkerProcess


def _add(a: int, b: int = 0) -> int:
    return a + b


def _fail(message: str) -> None:
    raise FitError(message)


def _unpicklable() -> object:
    return lambda: None


def test_sidecar_returns_the_value():
    assert Sidecar(_add, 2, b=3).result() == 5


def test_sidecar_reraises_the_exception():
    with pytest.raises(FitError, match="no such model"):
        Sidecar(_fail, "no such model").result()


def test_sidecar_reports_an_unpicklable_result():
    with pytest.raises(WorkerError, match="pickl"):
        Sidecar(_unpicklable).result()


def _talk(lines: int) -> int:
    from compare_kit.processes import worker_say

    for i in range(lines):
        worker_say(f"step {i}")
    return lines


def test_sidecar_forwards_progress_lines_in_order():
    said: list[str] = []
    assert Sidecar(_talk, 3, progress_to=said.append).result() == 3
    assert said == ["[second process] step 0", "[second process] step 1", "[second process] step 2"]


def test_progress_lines_do_not_disturb_a_plain_call():
    worker = WorkerProcess()
    try:
        assert worker.call(_talk, 2) == (True, 2)  # progress without a listener is read and dropped
        assert worker.call(_add, 1, b=1) == (True, 2)
    finally:
        worker.close()


def test_worker_say_outside_a_worker_does_nothing():
    assert _talk(2) == 2


def _die() -> None:
    import os

    print("last words", flush=True)
    os._exit(3)


def test_a_worker_answers_calls_in_turn_and_reports_where_a_call_raised():
    worker = WorkerProcess(single_threaded=True)
    try:
        assert worker.call(_add, 1, b=2) == (True, 3)
        ok, failure = worker.call(_fail, "bad input")
        assert not ok and isinstance(failure, Failure) and isinstance(failure.error, FitError)
        assert failure.describe().startswith("FitError: bad input (at test_concurrency.py:")
        assert worker.call(_add, 5) == (True, 5)  # still alive after a failed call
    finally:
        worker.close()


def test_a_worker_that_dies_says_so_with_its_exit_code_and_last_words():
    worker = WorkerProcess()
    try:
        ok, failure = worker.call(_die)
        assert not ok and isinstance(failure.error, WorkerError)
        assert "exit code 3" in str(failure.error) and "last words" in str(failure.error)
        assert not worker.alive
    finally:
        worker.close()


def test_run_study_rejects_bad_workers():
    from compare_kit.study import load_study, run_study

    with pytest.raises(ValueError, match="workers"):
        run_study(load_study(), workers=0)


@pytest.mark.slow
def test_loo_predictions_equal_arviz_loo_expectations(radon):
    import warnings

    import arviz as az

    import compare_kit as ck
    from compare_kit import predictive

    bayes = ck.fit_bayesian(ck.ModelSpec.named("partial_pooling"), radon, draws=150, tune=150, chains=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected, _ = az.loo_expectations(bayes.loo_data(), var_name="y", kind="mean")
    # two code paths over the same draws (compare_kit's sum of softmax(log weights) x mu, arviz's own):
    # they agree to the last bit today, but summation order is theirs to change; 1e-9 is a million times
    # the rounding of a 300-term weighted mean, and any real difference (unsmoothed or misaligned
    # weights) is >= 1e-4
    np.testing.assert_allclose(predictive.loo_predictions(bayes), np.asarray(expected).ravel(),
                               rtol=1e-9, atol=1e-9)


@pytest.mark.slow
def test_study_tables_are_the_same_with_one_or_two_processes():
    from compare_kit.study import load_study, run_study

    study = load_study().with_settings(draws=100, tune=100, chains=2, cv_folds=3)
    one = run_study(study, workers=1)
    two = run_study(study, workers=2)
    # equal by construction: the same code, seeds and data on one machine (one BLAS kernel) in either process
    for name in ("estimates", "diagnostics", "equivalence", "shrinkage", "fit_stats"):
        pd.testing.assert_frame_equal(getattr(one, name), getattr(two, name))
    for name, table in one.predictive.tables().items():
        pd.testing.assert_frame_equal(table, two.predictive.tables()[name])
    assert one.demos.ran().keys() == two.demos.ran().keys()
    for key, demo in one.demos.ran().items():
        pd.testing.assert_frame_equal(demo.table, two.demos.ran()[key].table)

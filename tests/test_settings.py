"""One rule per sampler setting: the engine, the study file and the command line accept and refuse alike."""

from __future__ import annotations

import inspect

import pytest

import compare_kit as ck
from compare_kit import settings
from compare_kit.cli import main
from compare_kit.errors import FitError
from compare_kit.study import Settings, StudyError, load_study

REFUSED = [("tune", 0), ("draws", 0), ("chains", 65), ("seed", -1), ("seed", 2**32)]


@pytest.mark.parametrize(("name", "value"), REFUSED)
def test_every_entry_point_refuses_the_same_values_with_the_same_words(name, value, radon, tmp_path, capsys):
    problem = settings.setting_problem(name, value)
    assert problem is not None and f"got {value}" in problem
    with pytest.raises(FitError, match=f"{name} {problem}"):
        ck.fit_bayesian(ck.ModelSpec.named("pooled"), radon, **{name: value})
    study = tmp_path / "s.toml"
    study.write_text(f'[settings]\n{name} = {value}\n[models.m]\nformula = "log_radon ~ floor"\n')
    with pytest.raises(StudyError, match=f"settings.{name} \\(line 2\\): {problem}"):
        load_study(study)
    for command in (["fit", "--engine", "bayesian"], ["report"]):
        code = main([*command, f"--{name}", str(value), "--quiet"])
        err = capsys.readouterr().err
        assert code == 2 and problem in err and "Traceback" not in err


@pytest.mark.parametrize(("name", "value"), [("tune", 1), ("draws", 1), ("chains", 64), ("seed", 0),
                                             ("seed", 2**32 - 1)])
def test_the_ends_of_each_range_are_accepted_everywhere(name, value, tmp_path):
    assert settings.setting_problem(name, value) is None
    study = tmp_path / "s.toml"
    study.write_text(f'[settings]\n{name} = {value}\n[models.m]\nformula = "log_radon ~ floor"\n')
    assert getattr(load_study(study).settings, name) == value


def test_the_defaults_are_the_engines():
    from compare_kit.engines.bayesian import fit_bayesian

    engine = inspect.signature(fit_bayesian).parameters
    defaults = Settings()
    for name in ("draws", "tune", "chains", "seed"):
        expected = getattr(settings, f"DEFAULT_{name.upper()}")
        assert engine[name].default == getattr(defaults, name) == expected
    from compare_kit.cli import build_parser

    args = build_parser().parse_args(["fit", "--engine", "bayesian"])
    assert (args.draws, args.tune, args.chains, args.seed) == (settings.DEFAULT_DRAWS, settings.DEFAULT_TUNE,
                                                               settings.DEFAULT_CHAINS, settings.DEFAULT_SEED)

"""Study files: the packaged radon study and clear errors naming key and line."""

from __future__ import annotations

import dataclasses

import pytest

from compare_kit.study import StudyError, load_study, parse_study, teaching_spec


def test_default_study_is_the_tutorials():
    study = load_study()
    assert [m.label for m in study.models] == ["pooled", "unpooled", "partial_pooling", "correlated_slopes"]
    assert study.data_source == "radon"
    assert study.settings.chains == 4 and study.settings.draws == 2000
    assert study.settings.panel_levels == ("CASS", "CROWWING", "FREEBORN")
    unpooled = next(m for m in study.models if m.label == "unpooled")
    assert unpooled.priors == "tutorial"
    assert not next(m for m in study.models if m.label == "partial_pooling").spec.random[0].correlated
    # the radon words of the figures live in the radon study's file, not in the report's code
    assert study.value_labels == {"floor": {0.0: "basement (0)", 1.0: "first floor (1)"}}


def _write(tmp_path, text):
    path = tmp_path / "s.toml"
    path.write_text(text)
    return path


@pytest.mark.parametrize(("text", "phrase"), [
    ('title = "t"\n[models.a]\nformula = "y ~ x +"\n', "models.a.formula (line 3)"),
    ('[models.a]\nformula = "y ~ x"\nprior = "vague"\n', "models.a.prior (line 3): unknown key"),
    ('[settings]\ndraws = "many"\n[models.a]\nformula = "y ~ x"\n', "settings.draws (line 2): must be a whole"),
    ('[settings]\nchainz = 2\n[models.a]\nformula = "y ~ x"\n', "settings.chainz (line 2): unknown setting"),
    ('[settings]\nmixedlm = "no"\n[models.a]\nformula = "y ~ x"\n', "settings.mixedlm (line 2): must be true or"),
    ('[data]\nsource = "iris"\n[models.a]\nformula = "y ~ x"\n', "data.source (line 2)"),
    ('title = "t"\n', "models: needs at least one"),
    ('[models.a]\nx = 1\n', "models.a (line 1): needs formula"),
    ('title = \n', "not valid TOML"),
    ('colour = "red"\n[models.a]\nformula = "y ~ x"\n', "colour (line 1): unknown key"),
    ('[value_labels.x]\nlow = "a"\n[models.a]\nformula = "y ~ x"\n', "'low' is not a number"),
    ('[value_labels.x]\n0 = 1\n[models.a]\nformula = "y ~ x"\n', "the label of 0 must be text"),
    ('value_labels = 3\n[models.a]\nformula = "y ~ x"\n', "value_labels (line 1): must be a table"),
])
def test_study_errors_name_key_and_line(tmp_path, text, phrase):
    with pytest.raises(StudyError) as err:
        load_study(_write(tmp_path, text))
    assert phrase in str(err.value)


def test_a_study_file_can_switch_mixedlm_off(tmp_path, monkeypatch):
    """``mixedlm = false`` reaches every frequentist fit of the study."""
    from compare_kit.engines import frequentist
    from compare_kit.study import run_study

    text = '[settings]\nmixedlm = false\n[models.m]\nformula = "log_radon ~ floor + (1 | county)"\n'
    study = load_study(_write(tmp_path, text))
    assert study.settings.mixedlm is False and load_study().settings.mixedlm is True
    seen = []

    class Stop(Exception):
        pass

    def recording(spec, data, **kwargs):
        seen.append(kwargs)
        raise Stop

    monkeypatch.setattr(frequentist, "fit_frequentist", recording)
    with pytest.raises(Stop):
        run_study(study, workers=1, demos=False)
    assert len(seen) == 1 and seen[0]["mixedlm"] is False and seen[0]["method"] == "REML"


def test_csv_study_paths_are_relative_to_the_file(tmp_path):
    (tmp_path / "t.csv").write_text("score,dose,subject\n1,0,a\n2,1,a\n3,0,b\n4,1,b\n5,0,c\n6,2,c\n")
    study = load_study(_write(tmp_path, '[data]\ncsv = "t.csv"\n[models.m]\nformula = "score ~ dose + (1 | subject)"\n'))
    assert study.csv_path == tmp_path / "t.csv"
    data = study.load_data()
    assert data["subject"].tolist() == ["a", "a", "b", "b", "c", "c"]


def test_teaching_models_are_the_first_mixed_model_and_a_random_intercept_derived_from_it():
    models = teaching_spec(load_study())
    assert str(models.conditional) == "log_radon ~ floor + (1 + floor || county)"  # the study's own model
    assert str(models.random_intercept) == "log_radon ~ floor + (1 | county)"
    assert models.random_intercept.label == "varying_intercept"


def test_a_studys_own_random_intercept_model_serves_prior_flattening(tmp_path):
    study = load_study(_write(tmp_path, '[models.crossed]\nformula = "log_radon ~ floor + (1 | county) + '
                                        '(1 | floor)"\n[models.vi]\nformula = "log_radon ~ floor + (1 | county)"\n'))
    models = teaching_spec(study)
    assert str(models.conditional) == "log_radon ~ floor + (1 | county) + (1 | floor)"
    assert models.random_intercept.label == "vi"


def test_missing_study_file(tmp_path):
    with pytest.raises(StudyError, match="no study file"):
        load_study(tmp_path / "nope.toml")


def test_the_readme_study_file_example_parses():
    import re
    import tomllib
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    block = re.search(r"```toml\n(.*?)```", readme, flags=re.S)
    assert block, "the README shows no study file"
    study = parse_study(tomllib.loads(block.group(1)), block.group(1), "README")
    assert study.data_source == "csv" and [m.label for m in study.models] == ["intercepts", "slopes"]
    assert study.settings.demos is False


def test_side_work_says_each_step_as_it_starts_and_ends():
    import compare_kit as ck
    from compare_kit.study import side_work

    study = load_study().with_settings(seed=1)
    study = dataclasses.replace(study, models=study.models[:1])
    said: list[str] = []
    side_work(study, ck.load_radon(), demos=False, say=said.append)
    assert said[0] == "cross-validation refits ..." and said[1].startswith("cross-validation refits: ")

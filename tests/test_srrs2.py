"""ck.load_srrs2 on the survey's own files (bundled in data/), on small damaged copies, and the
statsmodels engine against lme4 on all states but R5 (tests/reference/lme4/make_srrs2.R).

Tolerances against lme4 (the issue's, each with what was measured on R 4.2.2 / lme4 1.1-31):
- fixed effects 1e-3 absolute (measured at most 2.7e-5: the ML fit of the uranium model);
- fixed-effect SEs 1e-3 relative (measured at most 3.6e-4), as in test_frequentist_lme4.py;
- SDs (state, county:state, residual) 1e-2 absolute (measured at most 2.0e-4);
- BLUPs of states and counties and their conditional SDs 1e-3 absolute (measured at most 1.1e-4
  for counties, 3.1e-5 for states): they inherit the SDs' error;
- log-likelihood 1e-3 absolute (measured at most 2.6e-6): both evaluate the same criterion.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import compare_kit as ck
from compare_kit.errors import DataError
from compare_kit.srrs2 import DROP_REASONS
from tests.conftest import SURVEY_DATA, lme4_table

SRRS2 = SURVEY_DATA / "srrs2.dat"
CTY = SURVEY_DATA / "cty.dat"
STATES = {"AZ": 1507, "IN": 1914, "MA": 1659, "MN": 919, "MO": 1859, "ND": 1596, "PA": 2389}


@pytest.fixture(scope="module")
def homes() -> pd.DataFrame:
    return ck.load_srrs2(SURVEY_DATA)


def test_the_bundled_survey_is_the_default(homes):
    """``load_srrs2()`` with no path reads the copy bundled with compare_kit: the same table."""
    bundled = ck.load_srrs2()
    pd.testing.assert_frame_equal(bundled, homes)
    assert bundled.attrs["dropped"] == homes.attrs["dropped"]


@pytest.fixture(scope="module")
def no_r5(homes) -> pd.DataFrame:
    return homes[homes["state"] != "R5"].reset_index(drop=True)


# ------------------------------------------------------------------ the survey's files


def test_minnesota_rows_reproduce_the_bundled_radon_table(homes, radon):
    """The same 919 homes, labels, floors, radon and uranium; radon_mn.csv orders them by county FIPS."""
    mn = homes[homes["state"] == "MN"].sort_values("cntyfips", kind="stable").reset_index(drop=True)
    assert len(mn) == len(radon) == 919
    assert mn["county"].tolist() == radon["county"].tolist()
    assert mn["county"].nunique() == 85
    np.testing.assert_allclose(mn["floor"], radon["floor"], atol=1e-6)
    np.testing.assert_allclose(mn["log_radon"], radon["log_radon"], atol=1e-6)
    np.testing.assert_allclose(mn["log_uranium"], radon["log_uranium"], atol=1e-6)
    np.testing.assert_array_equal(mn["basement"], 1 - radon["floor"])


def test_county_labels_are_the_bundled_spelling_and_names_stay_readable(homes):
    stlouis = homes[(homes["state"] == "MN") & (homes["cntyfips"] == 137)]
    assert set(stlouis["county"]) == {"STLOUIS"} and set(stlouis["county_name"]) == {"ST LOUIS"}


def test_all_states_but_r5_give_11843_homes(homes, no_r5):
    assert len(homes) == 12777
    assert (homes["state"] == "R5").sum() == 934
    assert len(no_r5) == 11843 == sum(STATES.values())
    assert no_r5.groupby("state").size().to_dict() == STATES
    assert no_r5.groupby("state")["county"].nunique().sum() == 439
    assert no_r5.groupby(["state", "county"]).ngroups == no_r5.groupby(["stfips", "cntyfips"]).ngroups


def test_nothing_is_dropped_from_the_survey_and_the_report_says_so(homes):
    assert homes.attrs["dropped"] == dict.fromkeys(DROP_REASONS, 0)
    summary = homes.attrs["summary"]
    assert summary.startswith("srrs2.dat: 12777 homes read, 12777 kept in 8 survey states")
    assert "none dropped" in summary
    assert summary == "\n".join(homes.attrs["notes"])


def test_homes_without_a_recorded_floor_are_kept_with_basement_missing(homes, no_r5):
    """floor code 9 is 'not recorded': 287 homes (280 outside R5); a model with basement leaves them out."""
    raw = pd.read_csv(SRRS2, dtype=str, skipinitialspace=True)
    raw.columns = raw.columns.str.strip()
    assert (raw["floor"].str.strip() == "9").sum() == 287
    assert homes["floor"].isna().sum() == 287 and no_r5["floor"].isna().sum() == 280
    assert (homes["basement"].isna() == homes["floor"].isna()).all()
    known = homes[homes["floor"].notna()]
    assert set(known["floor"]) == {0, 1, 2, 3}
    np.testing.assert_array_equal(known["basement"], (known["floor"] == 0).astype(float))
    assert "287 home(s) have no recorded floor (code 9)" in homes.attrs["summary"]


def test_log_radon_is_log_activity_plus_a_tenth(homes):
    np.testing.assert_allclose(homes["log_radon"], np.log(homes["activity"] + 0.1), rtol=1e-12)
    assert (homes["activity"] == 0).sum() == 90  # kept: log(0.1)


def test_counties_without_uranium_are_kept_with_it_missing(homes, no_r5):
    """Uppm 0 in cty.dat means 'not measured' (LA PAZ AZ and three MA counties outside R5)."""
    missing = no_r5[no_r5["uranium"].isna()]
    assert sorted(set(zip(missing["state"], missing["county"], strict=True))) == [
        ("AZ", "LAPAZ"), ("MA", "BARNSTABLE"), ("MA", "DUKES"), ("MA", "SUFFOLK")]
    assert len(missing) == 180 and missing["log_uranium"].isna().all()
    assert no_r5["log_uranium"].notna().sum() == 11843 - 180
    np.testing.assert_allclose(homes["log_uranium"].dropna(), np.log(homes["uranium"].dropna()))
    assert "384 home(s) in 8 count(ies) have no uranium value" in homes.attrs["summary"]
    assert "83 duplicate rows agreeing on Uppm merged; no conflicting values" in homes.attrs["summary"]


def test_pennsylvania_homes_without_a_county_name_take_their_codes_name(homes):
    pa = homes[homes["state"] == "PA"]
    assert (pa["county"] != "").all() and pa["county"].nunique() == pa["cntyfips"].nunique() == 67
    assert "23 home(s) without a county name" in homes.attrs["summary"]


def test_r5_labels_are_one_per_county_code(homes):
    r5 = homes[homes["state"] == "R5"]
    codes = r5.groupby("county")[["stfips", "cntyfips"]].nunique()
    assert (codes == 1).all().all()
    assert r5.groupby(["stfips", "cntyfips"])["county"].nunique().eq(1).all()
    assert "REDLAKE" in set(r5["county"]) and "BAYMILLS(26017)" in set(r5["county"])


def test_a_path_to_srrs2_finds_cty_beside_it_and_cty_path_is_honoured(homes):
    by_file = ck.load_srrs2(SRRS2)
    by_both = ck.load_srrs2(SRRS2, cty_path=CTY)
    pd.testing.assert_frame_equal(by_file, homes)
    pd.testing.assert_frame_equal(by_both, homes)


# ------------------------------------------------------------------ small damaged copies

HEADER = ("idnum, state, state2, stfips, zip, region, typebldg, floor, room, basement, windoor, rep, "
          "stratum, wave, starttm, stoptm, startdt, stopdt, activity, pcterr, adjwt, dupflag, zipflag, "
          "cntyfips, county")


def _home(idnum: int, state: str, stfips: str, cntyfips: str, county: str, floor: str = "0",
          activity: str = "2.5") -> str:
    cells = [str(idnum), state, state, f"{stfips:>2}", "55555", " 1", "1", floor, "2", "Y", " ", " 1", " 1",
             " 30", "1100", "1100", "112987", "120287", f"{activity:>8}", "     0.0", "   100.0", "0", "0",
             f"{cntyfips:>3}", f"{county:<20}"]
    return ",".join(cells)


CTY_HEADER = "stfips,ctfips,st,cty,lon,lat,Uppm"


def _files(tmp_path, homes: list[str], counties: list[str]):
    (tmp_path / "srrs2.dat").write_text("\r\n".join([HEADER, *homes]) + "\r\n")
    (tmp_path / "cty.dat").write_text("\n".join([CTY_HEADER, *counties]) + "\n")
    return tmp_path


GOOD_CTY = ["27,001,MN,AITKIN, -93.4, 46.6,0.502054", "27,003,MN,ANOKA, -93.2, 45.2,0.428565",
            "27,005,MN,BECKER, -95.7, 46.9,0.892741"]


def test_unusable_rows_are_dropped_and_counted_once(tmp_path):
    rows = [_home(1, "MN", "27", "1", "AITKIN"),
            _home(2, "MN", "27", "1", "AITKIN", activity=""),           # activity missing
            _home(3, "MN", "27", "1", "AITKIN", activity="n/a"),        # not a number
            _home(4, "MN", "27", "3", "ANOKA", activity="-1.0"),        # negative
            _home(5, "", "27", "3", "ANOKA"),                           # state missing
            _home(6, "MN", "27", "", "ANOKA"),                          # county code missing
            _home(7, "MN", "27", "3.5", "ANOKA", activity="x"),         # two reasons: counted as the first
            _home(8, "MN", "27", "3", "ANOKA", floor="9"),              # kept, floor unknown
            _home(9, "MN", "27", "5", "BECKER", activity="0.0")]        # kept: log(0.1)
    frame = ck.load_srrs2(_files(tmp_path, rows, GOOD_CTY))
    assert frame["idnum"].tolist() == [1, 8, 9]
    assert frame.attrs["dropped"] == {
        "activity missing or not a number": 3, "activity negative": 1, "state missing": 1,
        "state or county FIPS code missing or not a whole number": 1}
    summary = frame.attrs["summary"]
    assert "9 homes read, 3 kept in 1 survey states (MN 3); 6 dropped: 3 activity missing or not a number, " \
           "1 activity negative, 1 state missing, 1 state or county FIPS code missing" in summary
    assert "1 home(s) have no recorded floor" in summary
    assert np.isnan(frame.loc[1, "basement"]) and frame.loc[0, "basement"] == 1
    assert frame.loc[2, "log_radon"] == pytest.approx(np.log(0.1))


def test_county_names_are_resolved_by_fips_code(tmp_path):
    rows = [_home(1, "MN", "27", "1", "AITKIN"), _home(2, "MN", "27", "1", ""),       # blank: from code 001
            _home(3, "MN", "27", "3", "ANOKA"), _home(4, "MN", "27", "3", "ANOKA"),
            _home(5, "MN", "27", "3", "ANOKA CO"),                               # two names: most frequent
            _home(6, "MN", "27", "5", "TWIN"), _home(7, "MN", "27", "7", "TWIN"),    # one name, two codes
            _home(8, "MN", "27", "9", "")]                                           # no name: cty.dat's
    frame = ck.load_srrs2(_files(tmp_path, rows, [*GOOD_CTY, "27,009,MN,BENTON, -94.0, 45.7,0.9"]))
    assert frame["county"].tolist() == ["AITKIN", "AITKIN", "ANOKA", "ANOKA", "ANOKA",
                                        "TWIN(27005)", "TWIN(27007)", "BENTON"]
    assert frame["county_name"].tolist()[4] == "ANOKA"
    summary = frame.attrs["summary"]
    assert "2 home(s) without a county name" in summary and "MN 27009 -> BENTON" in summary
    assert "county codes carrying several names, labelled by the most frequent: 1 in MN" in summary
    assert "names used for several county codes in one state" in summary


def test_duplicate_and_conflicting_uranium_rows(tmp_path):
    rows = [_home(1, "MN", "27", "1", "AITKIN"), _home(2, "MN", "27", "3", "ANOKA"),
            _home(3, "MN", "27", "5", "BECKER"), _home(4, "MN", "27", "7", "BELTRAMI"),
            _home(5, "MN", "27", "9", "BENTON")]
    cty = ["27,001,MN,AITKIN, -93.4, 46.6,0.5", "27,001,MN,AITKIN, -93.1, 46.2,0.5",  # duplicate, agrees
           "27,003,MN,ANOKA, -93.2, 45.2,0.4", "27,003,MN,ANOKA, -93.0, 45.0,0.7",   # conflicting
           "27,005,MN,BECKER, -95.7, 46.9,0"]                                         # 0: not measured
    frame = ck.load_srrs2(_files(tmp_path, rows, cty))                              # BELTRAMI, BENTON: absent
    assert frame["uranium"].tolist()[0] == 0.5
    assert frame["uranium"].isna().tolist() == [False, True, True, True, True]
    assert frame["log_uranium"].isna().tolist() == [False, True, True, True, True]
    summary = frame.attrs["summary"]
    assert "1 duplicate rows agreeing on Uppm merged" in summary
    assert "1 counties with conflicting Uppm values (27003) get no uranium value" in summary
    assert ("4 home(s) in 4 count(ies) have no uranium value (2 not in cty.dat; 1 with Uppm 0 "
            "(not measured); 1 with conflicting values)") in summary


def test_bad_paths_raise_data_errors(tmp_path):
    with pytest.raises(DataError, match="no file or folder at .*give the folder holding srrs2.dat"):
        ck.load_srrs2(tmp_path / "nowhere")
    with pytest.raises(DataError, match="has no srrs2.dat"):
        ck.load_srrs2(tmp_path)
    (tmp_path / "srrs2.dat").write_text(HEADER + "\n" + _home(1, "MN", "27", "1", "AITKIN") + "\n")
    with pytest.raises(DataError, match="no cty.dat beside .*give its path as cty_path"):
        ck.load_srrs2(tmp_path)
    with pytest.raises(DataError, match="no file at .*cty_path must be the path of cty.dat"):
        ck.load_srrs2(tmp_path, cty_path=tmp_path / "missing.dat")
    (tmp_path / "sub").mkdir()
    with pytest.raises(DataError, match="the folder .* has no cty.dat"):
        ck.load_srrs2(tmp_path, cty_path=tmp_path / "sub")
    (tmp_path / "sub" / "cty.dat").write_text(CTY_HEADER + "\n" + GOOD_CTY[0] + "\n")
    assert len(ck.load_srrs2(tmp_path / "srrs2.dat", cty_path=tmp_path / "sub")) == 1


@pytest.mark.parametrize(("content", "message"), [
    (b"", "is empty"),
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00", "is a binary file, not srrs2.dat"),
    (b"y,g\n1,a\n", "does not look like srrs2.dat: it lacks the column\\(s\\) idnum, state, stfips, floor"),
    (HEADER.encode() + b"\n", "has a header but no data rows"),
    (HEADER.encode() + b"\n1,MN,MN,27\n", "line 2 has 4 fields but the header has 25"),
    (HEADER.encode() + b"\n\n" + _home(1, "MN", "27", "1", "A").encode() + b"\n1,MN\n",
     "line 4 has 2 fields but the header has 25"),
    (HEADER.replace("zip", "state").encode() + b"\n", "duplicated column names \\(state\\)"),
])
def test_files_not_in_the_survey_format_raise_data_errors(tmp_path, content, message):
    (tmp_path / "srrs2.dat").write_bytes(content)
    (tmp_path / "cty.dat").write_text(CTY_HEADER + "\n" + GOOD_CTY[0] + "\n")
    with pytest.raises(DataError, match=message):
        ck.load_srrs2(tmp_path)


def test_cty_file_given_as_srrs2_and_a_bad_cty_file(tmp_path):
    with pytest.raises(DataError, match="lacks the column.*may be the uranium file, which goes in cty_path"):
        ck.load_srrs2(CTY)
    (tmp_path / "srrs2.dat").write_text(HEADER + "\n" + _home(1, "MN", "27", "1", "AITKIN") + "\n")
    (tmp_path / "cty.dat").write_text("stfips,ctfips,st,cty\n27,001,MN,AITKIN\n")
    with pytest.raises(DataError, match="does not look like cty.dat: it lacks the column\\(s\\) Uppm"):
        ck.load_srrs2(tmp_path)


def test_a_file_with_no_usable_row(tmp_path):
    rows = [_home(1, "MN", "27", "1", "AITKIN", activity="")]
    with pytest.raises(DataError, match="none of its 1 rows is usable \\(1 activity missing"):
        ck.load_srrs2(_files(tmp_path, rows, GOOD_CTY))


# ------------------------------------------------------------------ against lme4

LME4_SRRS2 = {
    "srrs2_basement": "log_radon ~ basement + (1 | state/county)",
    "srrs2_uranium": "log_radon ~ basement + log_uranium + (1 | state/county)",
}
CASES = [(m, meth) for m in LME4_SRRS2 for meth in ("REML", "ML")]


@pytest.fixture(scope="module")
def fits(no_r5):
    """The four fits (about 10 to 20 s each on one busy core; the REML ones skip the ML refit for AIC,
    which lme4 does not report for REML fits anyway)."""
    return {(m, meth): ck.fit_frequentist(ck.ModelSpec.from_formula(LME4_SRRS2[m], label=m), no_r5,
                                          method=meth, information_criteria=meth == "ML")
            for m, meth in CASES}


def _ref(name: str, model: str, method: str) -> pd.DataFrame:
    t = lme4_table(name)
    return t[(t["model"] == model) & (t["method"] == method)]


@pytest.mark.parametrize(("model", "method"), CASES)
def test_fixed_effects_match_lme4(fits, model, method):
    ours = fits[(model, method)].table("fixed").set_index("term")
    ref = _ref("srrs2_fixed_effects.csv", model, method).set_index("term")
    assert list(ours.index) == list(ref.index)
    np.testing.assert_allclose(ours["estimate"], ref["estimate"], rtol=0, atol=1e-3)
    np.testing.assert_allclose(ours["std_error"], ref["std_error"], rtol=1e-3)


@pytest.mark.parametrize(("model", "method"), CASES)
def test_sds_match_lme4(fits, model, method):
    """compare_kit names the nested groups as lme4 does: ``state`` and ``county:state``."""
    pars = fits[(model, method)].table("ran_pars")
    ref = _ref("srrs2_variance_components.csv", model, method)
    assert sorted(pars["group"]) == sorted(ref["grp"]) == ["Residual", "county:state", "state"]
    for _, r in ref.iterrows():
        term = "sd__Observation" if r["grp"] == "Residual" else "sd__(Intercept)"
        ours = pars[(pars["group"] == r["grp"]) & (pars["term"] == term)]["estimate"]
        assert len(ours) == 1
        assert abs(ours.iloc[0] - r["sdcor"]) < 1e-2


@pytest.mark.parametrize(("model", "method"), CASES)
def test_state_and_county_blups_match_lme4(fits, model, method):
    vals = fits[(model, method)].table("ran_vals")
    ref = _ref("srrs2_random_effects.csv", model, method)
    merged = ref.merge(vals, left_on=["grpvar", "grp", "term"], right_on=["group", "level", "term"],
                       how="left")
    assert len(merged) == len(vals) == len(ref)
    assert merged["estimate"].notna().all()
    n_counties = 439 if model == "srrs2_basement" else 435  # 4 counties have no uranium value
    assert (merged["grpvar"] == "state").sum() == 7
    assert (merged["grpvar"] == "county:state").sum() == n_counties
    np.testing.assert_allclose(merged["estimate"], merged["condval"], atol=1e-3)
    np.testing.assert_allclose(merged["std_error"], merged["condsd"], atol=1e-3)


@pytest.mark.parametrize(("model", "method"), CASES)
def test_fit_statistics_match_lme4(fits, model, method):
    fit = fits[(model, method)]
    ref = _ref("srrs2_fit_stats.csv", model, method).iloc[0]
    assert fit.stats.loglik == pytest.approx(ref["logLik"], abs=1e-3)
    # 280 homes without a recorded floor; the uranium model also loses 165 more in 4 counties without uranium
    assert fit.stats.nobs == ref["nobs"] == (11563 if model == "srrs2_basement" else 11398)
    assert fit.health.converged and not fit.health.boundary and str(ref["singular"]).upper() == "FALSE"
    if method == "ML":
        assert fit.stats.aic == pytest.approx(ref["AIC"], abs=2e-3)
        assert fit.stats.bic == pytest.approx(ref["BIC"], abs=2e-3)

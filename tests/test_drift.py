"""The drift engine on messy columns: each case asserts what is reported, not just no crash."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from driftwatch.engine.drift import DriftDetector, ReferenceProfile, infer_kind
from driftwatch.errors import SchemaError


@pytest.fixture
def ref() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame(
        {
            "x": rng.normal(0, 1, 2000),
            "y": rng.normal(5, 2, 2000),
            "c": rng.choice(["a", "b", "c"], 2000),
        }
    )


def detector(**kw) -> DriftDetector:
    return DriftDetector(numerical=["x", "y"], categorical=["c"], **kw)


def test_nan_and_inf_are_dropped_and_counted(ref: pd.DataFrame) -> None:
    cur = ref.sample(500, random_state=1).reset_index(drop=True)
    cur.loc[:49, "x"] = np.nan
    cur.loc[50:59, "x"] = np.inf
    cur.loc[60:64, "x"] = -np.inf
    col = detector().fit(ref).check(cur).column("x")
    assert col.dropped_current == 65
    assert col.rows_current == 435
    assert col.status == "ok" and col.drifted is False
    assert "65 NaN/inf dropped" in col.note


def test_column_empty_after_dropping_is_insufficient_data(ref: pd.DataFrame) -> None:
    cur = ref.sample(300, random_state=2).reset_index(drop=True)
    cur["x"] = np.nan
    result = detector().fit(ref).check(cur)
    col = result.column("x")
    assert col.status == "insufficient_data"
    assert col.drifted is None and col.test is None and col.score is None
    assert col.rows_current == 0 and col.dropped_current == 300
    # the other columns still get verdicts, and the share is over the tested columns only
    assert result.n_tested == 2
    assert result.column("y").status == "ok"


def test_min_rows_gives_insufficient_data_not_a_verdict(ref: pd.DataFrame) -> None:
    cur = ref.head(8)
    result = detector(min_rows=30).fit(ref).check(cur)
    assert {c.status for c in result.columns} == {"insufficient_data"}
    assert result.dataset_drift is False and result.n_tested == 0
    assert "8 usable rows < min_rows 30" in result.column("y").note


def test_constant_current_column_is_tested_and_flagged(ref: pd.DataFrame) -> None:
    cur = ref.sample(500, random_state=3).reset_index(drop=True)
    cur["y"] = 5.0
    col = detector().fit(ref).check(cur).column("y")
    assert col.test == "wasserstein"
    assert (
        col.drifted is True
    )  # a point mass against N(5, 2) is far: W1 = E|Y-5| ~ 1.6 sd-normed 0.8
    assert col.score == pytest.approx(0.8, abs=0.05)
    assert "constant in current batch" in col.note


def test_constant_reference_column_does_not_divide_by_zero() -> None:
    ref = pd.DataFrame({"k": np.full(3000, 7.0)})
    same = DriftDetector(numerical=["k"]).fit(ref).check(pd.DataFrame({"k": np.full(100, 7.0)}))
    moved = DriftDetector(numerical=["k"]).fit(ref).check(pd.DataFrame({"k": np.full(100, 8.0)}))
    assert same.column("k").test == "jensenshannon" and same.column("k").drifted is False
    assert moved.column("k").drifted is True


def test_unseen_categories_are_reported(ref: pd.DataFrame) -> None:
    cur = ref.sample(600, random_state=4).reset_index(drop=True)
    cur.loc[:199, "c"] = "zeta"
    col = detector().fit(ref).check(cur).column("c")
    assert col.drifted is True
    assert "1 categories unseen in reference: zeta" in col.note


def test_strings_in_a_numeric_column_name_the_column(ref: pd.DataFrame) -> None:
    cur = ref.sample(100, random_state=5).reset_index(drop=True)
    cur["y"] = cur["y"].astype(str)
    cur.loc[3, "y"] = "n/a"
    with pytest.raises(SchemaError) as err:
        detector().fit(ref).check(cur, source="batch-07.csv")
    assert err.value.column == "y"
    assert "batch-07.csv" in str(err.value) and "'n/a'" in str(err.value)


def test_numbers_stored_as_strings_are_accepted(ref: pd.DataFrame) -> None:
    cur = ref.sample(300, random_state=6).reset_index(drop=True)
    cur["x"] = cur["x"].map(repr)
    assert detector().fit(ref).check(cur).column("x").status == "ok"


def test_missing_and_duplicated_columns_are_schema_errors(ref: pd.DataFrame) -> None:
    det = detector().fit(ref)
    with pytest.raises(SchemaError, match=r"missing required column\(s\) \['y'\]"):
        det.check(ref.drop(columns="y"))
    dup = pd.concat([ref, ref[["x"]]], axis=1)
    with pytest.raises(SchemaError, match="duplicated column"):
        det.check(dup)


def test_overrides_ignore_and_thresholds(ref: pd.DataFrame) -> None:
    cur = ref.sample(400, random_state=7).reset_index(drop=True)
    det = detector(tests={"x": ("ks", 0.2), "y": (None, 0.5)}, ignore=["c"]).fit(ref)
    result = det.check(cur)
    assert [c.column for c in result.columns] == ["x", "y"]
    assert result.column("x").test == "ks" and result.column("x").threshold == 0.2
    assert result.column("y").test == "wasserstein" and result.column("y").threshold == 0.5


def test_unknown_or_mismatched_test_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown drift test 'kss'"):
        DriftDetector(numerical=["x"], tests={"x": ("kss", None)})
    with pytest.raises(ValueError, match="cannot be used on categorical column 'c'"):
        DriftDetector(categorical=["c"], tests={"c": ("ks", None)})


def test_dataset_rule_is_share_of_tested_columns(ref: pd.DataFrame) -> None:
    cur = ref.sample(800, random_state=8).reset_index(drop=True)
    cur["x"] += 1.0
    result = detector(drift_share=0.3).fit(ref).check(cur)
    assert result.drifted_columns == ["x"]
    assert result.share == pytest.approx(1 / 3)
    assert result.dataset_drift is True
    assert detector(drift_share=0.5).fit(ref).check(cur).dataset_drift is False


def test_profile_round_trips_and_gives_identical_results(ref: pd.DataFrame, tmp_path) -> None:
    det = detector().fit(ref)
    path = det.profile_.save(tmp_path / "p" / "profile.pkl")
    loaded = detector().with_profile(ReferenceProfile.load(path))
    cur = ref.sample(500, random_state=9)
    assert loaded.check(cur).to_dict() == det.check(cur).to_dict()
    assert not list((tmp_path / "p").glob("*.tmp"))


def test_large_batches_use_threads_and_agree_with_one_thread() -> None:
    rng = np.random.default_rng(1)
    ref = pd.DataFrame({f"n{i}": rng.normal(size=60_000) for i in range(4)})
    cur = pd.DataFrame({f"n{i}": rng.normal(0.02 * i, size=60_000) for i in range(4)})
    one = DriftDetector(n_jobs=1).fit(ref).check(cur).to_dict()
    two = DriftDetector(n_jobs=2).fit(ref).check(cur).to_dict()
    assert one == two


def test_type_inference_follows_evidently() -> None:
    assert infer_kind(pd.Series([1, 2, 3, 2, 1])) == "categorical"
    assert infer_kind(pd.Series(range(100))) == "numerical"
    assert infer_kind(pd.Series([0.5, 1.5])) == "numerical"
    assert infer_kind(pd.Series(["a", "b"])) == "categorical"
    assert infer_kind(pd.Series([True, False])) == "categorical"

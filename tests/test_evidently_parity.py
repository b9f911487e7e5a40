"""driftwatch's drift engine against Evidently 0.7 itself, column by column.

Evidently's legacy DataDriftTable runs the same per-column code as its DataDriftPreset
(evidently/legacy/calculations/data_drift.py); it lets us state column types explicitly, so both
tools see the same schema. For every column: the same test, the same verdict, and the same
statistic to 1e-6 relative.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from driftwatch.engine.drift import DriftDetector
from driftwatch.engine.stattests import TESTS

DISPLAY_TO_NAME = {t.display: t.name for t in TESTS.values()}


def evidently_columns(
    ref: pd.DataFrame,
    cur: pd.DataFrame,
    num: list[str],
    cat: list[str],
    per_column: dict[str, str] | None = None,
) -> dict[str, dict]:
    from evidently.legacy.metrics import DataDriftTable
    from evidently.legacy.pipeline.column_mapping import ColumnMapping
    from evidently.legacy.report import Report

    report = Report(metrics=[DataDriftTable(per_column_stattest=per_column)])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        report.run(
            reference_data=ref,
            current_data=cur,
            column_mapping=ColumnMapping(numerical_features=num, categorical_features=cat),
        )
    result = report.as_dict()["metrics"][0]["result"]
    return result["drift_by_columns"] | {"__dataset__": result}


def gen(seed: int, n_ref: int, n_cur: int, shift: float = 0.0, nan_share: float = 0.0):
    rng = np.random.default_rng(seed)

    def frame(n: int, s: float) -> pd.DataFrame:
        df = pd.DataFrame(
            {
                "cont": rng.normal(10 + s, 2, n),
                "skewed": rng.lognormal(0 + s / 4, 1, n),
                "low3": rng.choice(
                    [1.0, 2.0, 3.0], n, p=[0.5, 0.3, 0.2] if not s else [0.3, 0.3, 0.4]
                ),
                "binary": rng.choice([0.0, 1.0], n, p=[0.7, 0.3] if not s else [0.55, 0.45]),
                "few5": rng.integers(0, 5, n).astype(float) + (1 if s > 1 else 0),
                "ties": np.round(rng.normal(50 + 3 * s, 10, n), 0),
                "cat": rng.choice(
                    list("abcde"),
                    n,
                    p=[0.4, 0.3, 0.1, 0.1, 0.1] if not s else [0.2, 0.3, 0.2, 0.2, 0.1],
                ),
                "cat2": rng.choice(["yes", "no"], n, p=[0.6, 0.4] if not s else [0.45, 0.55]),
            }
        )
        if nan_share:
            for col in ("cont", "skewed", "cat"):
                df.loc[rng.random(n) < nan_share, col] = np.nan
            df.loc[rng.random(n) < 0.02, "cont"] = np.inf
            df.loc[rng.random(n) < 0.02, "skewed"] = -np.inf
        return df

    return frame(n_ref, 0.0), frame(n_cur, shift)


NUM = ["cont", "skewed", "low3", "binary", "few5", "ties"]
CAT = ["cat", "cat2"]

DATASETS = {
    # name: (seed, n_ref, n_cur, shift, nan_share)
    "small-quiet": (1, 400, 300, 0.0, 0.0),
    "small-shifted": (2, 600, 250, 1.0, 0.0),
    "tiny-current": (3, 800, 40, 0.5, 0.0),
    "boundary-1000": (4, 1000, 1000, 0.3, 0.0),
    "large-quiet": (5, 5000, 3000, 0.0, 0.0),
    "large-shifted": (6, 8000, 4000, 0.6, 0.0),
    "large-big-shift": (7, 20000, 20000, 2.0, 0.0),
    "nan-laden-small": (8, 700, 500, 0.4, 0.3),
    "nan-laden-large": (9, 6000, 2000, 0.4, 0.25),
    "unseen-categories": (10, 3000, 1500, 0.0, 0.0),
}


def assert_same(ours, theirs: dict, col: str) -> None:
    assert ours.test == DISPLAY_TO_NAME[theirs["stattest_name"]], col
    assert ours.drifted == theirs["drift_detected"], (col, ours.score, theirs["drift_score"])
    assert ours.threshold == pytest.approx(theirs["stattest_threshold"]), col
    assert ours.score == pytest.approx(theirs["drift_score"], rel=1e-6, abs=1e-12), col


@pytest.mark.parametrize("name", list(DATASETS))
def test_default_tests_match_evidently(name: str) -> None:
    seed, n_ref, n_cur, shift, nan_share = DATASETS[name]
    ref, cur = gen(seed, n_ref, n_cur, shift, nan_share)
    if name == "unseen-categories":
        cur.loc[cur.index[:150], "cat"] = "zz-new"
    theirs = evidently_columns(ref, cur, NUM, CAT)
    ours = DriftDetector(numerical=NUM, categorical=CAT).fit(ref).check(cur)
    for col in NUM + CAT:
        assert_same(ours.column(col), theirs[col], col)
    ds = theirs["__dataset__"]
    assert ours.n_drifted == ds["number_of_drifted_columns"]
    assert ours.share == pytest.approx(ds["share_of_drifted_columns"])
    assert ours.dataset_drift == ds["dataset_drift"]


def test_the_datasets_cover_every_default_test() -> None:
    """The parity suite is only as good as its coverage: every default test appears."""
    seen = set()
    for seed, n_ref, n_cur, shift, nan_share in DATASETS.values():
        ref, cur = gen(seed, n_ref, n_cur, shift, nan_share)
        seen |= {
            c.test
            for c in DriftDetector(numerical=NUM, categorical=CAT).fit(ref).check(cur).columns
        }
    assert seen == {"ks", "chisquare", "z", "wasserstein", "jensenshannon"}


OVERRIDES = {
    "cont": "psi",
    "skewed": "kl_div",
    "ties": "jensenshannon",  # > 20 distinct values: Sturges bins on both samples
    "few5": "hellinger",
    "low3": "cramer_von_mises",
    "binary": "anderson",
    "cat": "hellinger",
    "cat2": "psi",
}


@pytest.mark.parametrize(
    "name", ["small-shifted", "large-shifted", "large-quiet", "nan-laden-large"]
)
def test_overridden_tests_match_evidently(name: str) -> None:
    seed, n_ref, n_cur, shift, nan_share = DATASETS[name]
    ref, cur = gen(seed, n_ref, n_cur, shift, nan_share)
    theirs = evidently_columns(ref, cur, NUM, CAT, per_column=OVERRIDES)
    det = DriftDetector(
        numerical=NUM, categorical=CAT, tests={c: (t, None) for c, t in OVERRIDES.items()}
    )
    ours = det.fit(ref).check(cur)
    for col in NUM + CAT:
        assert_same(ours.column(col), theirs[col], col)


def test_ks_and_wasserstein_overrides_on_large_data_match_evidently() -> None:
    ref, cur = gen(11, 30000, 10000, 0.05)
    per = {"cont": "ks", "skewed": "wasserstein", "ties": "ks"}
    theirs = evidently_columns(ref, cur, NUM, CAT, per_column=per)
    ours = DriftDetector(
        numerical=NUM, categorical=CAT, tests={c: (t, None) for c, t in per.items()}
    )
    result = ours.fit(ref).check(cur)
    for col in per:
        assert_same(result.column(col), theirs[col], col)

"""Mergeable summaries (engine/summaries.py): merging is exact for counts in any order, and the
statistics of a merged summary give the verdicts of the whole frame (flights, and the Evidently
parity datasets). Fast: no cluster here (tests/test_dask_scale.py runs one)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from driftwatch.engine.drift import DriftDetector
from driftwatch.engine.stattests import wasserstein_sorted
from driftwatch.engine.summaries import (
    ColumnSummary,
    ks_cells,
    lattice,
    merge_all,
    summarise_frame,
    wasserstein_cells,
)
from driftwatch.errors import SchemaError

CAT = ["origin", "dest", "carrier"]
NUM = ["distance", "hour", "temp", "dewp", "humid", "wind_speed", "precip", "pressure"]
NUM += ["visib", "dep_delay", "air_time"]


def parts_of(frame: pd.DataFrame, size: int) -> list[pd.DataFrame]:
    """Time-contiguous partitions, as production writes them."""
    return [frame.iloc[i : i + size] for i in range(0, len(frame), size)]


def summaries(det: DriftDetector, frames: list[pd.DataFrame]) -> list:
    kinds = {c: s.kind for c, s in det.profile_.columns.items()}
    lattices = det.lattices()
    return [summarise_frame(f, kinds, lattices) for f in frames]


@pytest.fixture(scope="module")
def jan_feb(january: pd.DataFrame, flights: pd.DataFrame):
    from driftwatch.store.flights import local_month

    feb = flights[local_month(flights) == 2].reset_index(drop=True)
    return january[NUM + CAT], feb[NUM + CAT]


def test_merging_in_any_order_equals_the_whole_frame_for_counts(jan_feb) -> None:
    ref, cur = jan_feb
    det = DriftDetector(numerical=NUM, categorical=CAT).fit(ref)
    (whole,) = summaries(det, [cur])
    parts = summaries(det, parts_of(cur, 1_777))
    left = merge_all(parts)
    right = merge_all(reversed(parts))
    # A tree of fan-in 3, as the Dask path merges (there with fan-in 8).
    level = parts
    while len(level) > 1:
        level = [merge_all(level[i : i + 3]) for i in range(0, len(level), 3)]
    for merged in (left, right, level[0]):
        assert merged.rows == whole.rows == len(cur)
        assert merged.partitions == len(parts)
        for col, w in whole.columns.items():
            m = merged.columns[col]
            assert (m.rows, m.missing) == (w.rows, w.missing), col
            if w.kind == "categorical":
                assert m.categories == w.categories, col
                continue
            np.testing.assert_array_equal(m.counts, w.counts, err_msg=col)
            np.testing.assert_allclose(m.sums, w.sums, rtol=1e-12, atol=1e-6, err_msg=col)
            assert (m.lo, m.hi) == (w.lo, w.hi), col
            assert m.mean == pytest.approx(w.mean, rel=1e-12, abs=1e-12), col
            assert m.m2 == pytest.approx(w.m2, rel=1e-10), col


@pytest.mark.parametrize("method", ["evidently", "bonferroni", "bh"])
def test_merged_summary_gives_the_whole_frames_verdicts_on_flights(jan_feb, method) -> None:
    ref, cur = jan_feb
    det = DriftDetector(numerical=NUM, categorical=CAT, method=method).fit(ref)
    exact = det.check(cur)
    merged = det.check_summary(merge_all(summaries(det, parts_of(cur, 2_500))))
    assert merged.dataset_drift == exact.dataset_drift
    assert "summarised from 10 partition(s)" in merged.description
    for e in exact.columns:
        s = merged.column(e.column)
        assert (s.test, s.drifted) == (e.test, e.drifted), e.column
        assert (s.rows_current, s.dropped_current) == (e.rows_current, e.dropped_current)
        assert s.statistic == pytest.approx(e.statistic, rel=0.01, abs=1e-12), e.column


def test_the_calibrated_statistics_are_within_a_percent(jan_feb) -> None:
    """The calibrated mode's statistics (normed Wasserstein, Jensen-Shannon) with thresholds
    pinned at the exact statistic x 0.995 and x 1.005: the summary lands on the same side."""
    ref, cur = jan_feb
    det = DriftDetector(numerical=NUM, categorical=CAT, method="calibrated")
    base = DriftDetector(numerical=NUM, categorical=CAT, method="evidently").fit(ref)
    exact = base.check(cur)
    summary = merge_all(summaries(base, parts_of(cur, 3_000)))
    for factor in (0.995, 1.005):
        tests = {c.column: ("wasserstein" if c.test == "wasserstein" else "jensenshannon",
                            c.statistic * factor) for c in exact.columns}  # fmt: skip
        det = DriftDetector(numerical=NUM, categorical=CAT, method="calibrated", tests=tests)
        got = det.with_profile(base.profile_).check_summary(summary)
        assert [c.drifted for c in got.columns] == [factor < 1] * len(exact.columns)


def test_wasserstein_and_ks_from_cells_are_exact_when_every_value_is_a_lattice_point() -> None:
    rng = np.random.default_rng(0)
    ref = np.round(rng.normal(50, 10, 20_000))
    cur = np.round(rng.normal(52, 12, 30_000))
    edges = lattice(np.concatenate([ref, cur]))
    r = ColumnSummary.of(pd.Series(ref), "numerical", edges)
    c = ColumnSummary.of(pd.Series(cur), "numerical", edges)
    exact = wasserstein_sorted(np.sort(ref), np.sort(cur))
    assert wasserstein_cells(r, c) == pytest.approx(exact, rel=1e-12)
    from scipy import stats

    assert ks_cells(r, c) == pytest.approx(stats.ks_2samp(ref, cur).statistic, rel=1e-12)


def test_wasserstein_on_a_quantile_lattice_is_close_for_continuous_columns() -> None:
    rng = np.random.default_rng(1)
    ref, cur = rng.lognormal(0, 1, 50_000), rng.lognormal(0.05, 1.1, 200_000)
    edges = lattice(ref, 2048)
    assert edges.size <= 2048
    r = ColumnSummary.of(pd.Series(ref), "numerical", edges)
    c = ColumnSummary.of(pd.Series(cur), "numerical", edges)
    exact = wasserstein_sorted(np.sort(ref), np.sort(cur))
    assert wasserstein_cells(r, c) == pytest.approx(exact, rel=0.01)


def test_evidently_parity_datasets_give_the_same_verdicts_on_a_merged_summary() -> None:
    """Issue 19 part 4: Evidently's mode on a merged summary vs the whole frame (which
    test_evidently_parity.py shows equal to Evidently itself), on the parity datasets."""
    from tests.test_evidently_parity import CAT as PCAT
    from tests.test_evidently_parity import DATASETS, gen
    from tests.test_evidently_parity import NUM as PNUM

    worst = 0.0
    for name, (seed, n_ref, n_cur, shift, nan_share) in DATASETS.items():
        ref, cur = gen(seed, n_ref, n_cur, shift, nan_share)
        if name == "unseen-categories":
            cur.loc[cur.index[:150], "cat"] = "zz-new"
        det = DriftDetector(numerical=PNUM, categorical=PCAT).fit(ref)
        exact = det.check(cur)
        merged = det.check_summary(merge_all(summaries(det, parts_of(cur, max(n_cur // 7, 1)))))
        assert merged.dataset_drift == exact.dataset_drift, name
        for e in exact.columns:
            s = merged.column(e.column)
            assert (s.test, s.drifted) == (e.test, e.drifted), (name, e.column)
            worst = max(worst, abs(s.score - e.score) / max(abs(e.score), 1e-12))
    assert worst < 0.01  # README, "Big batches on Dask": measured 1.2e-3 (lognormal column)


def test_raw_value_tests_are_refused_naming_the_column(jan_feb) -> None:
    ref, cur = jan_feb
    det = DriftDetector(numerical=NUM, categorical=CAT, tests={"temp": ("anderson", None)})
    det.fit(ref)
    with pytest.raises(ValueError, match=r"'anderson' on column 'temp'.*summary_above_rows"):
        det.check_summary(merge_all(summaries(det, [cur])))


def test_a_bad_partition_names_its_file_and_column(jan_feb) -> None:
    ref, cur = jan_feb
    det = DriftDetector(numerical=NUM, categorical=CAT).fit(ref)
    bad = cur.assign(temp=cur["temp"].astype(object))
    bad.loc[bad.index[3], "temp"] = "hot"
    kinds = {c: s.kind for c, s in det.profile_.columns.items()}
    with pytest.raises(SchemaError, match=r"part-0007\.parquet.*temp|temp.*part-0007\.parquet"):
        summarise_frame(bad, kinds, det.lattices(), source="part-0007.parquet")


def test_quality_sums_merged_equal_the_whole_batch_metrics() -> None:
    from driftwatch.config import ModelSettings
    from driftwatch.model.partial_quality import QualitySums
    from driftwatch.model.quality import score_predictions

    rng = np.random.default_rng(2)
    y, p = rng.normal(100, 20, 10_000), rng.normal(100, 20, 10_000)
    yb, pb = rng.integers(0, 2, 10_000), rng.random(10_000)
    yc, pc = rng.integers(0, 4, 10_000), rng.integers(0, 4, 10_000)
    for task, yy, pp in (("regression", y, p), ("binary", yb, pb), ("multiclass", yc, pc)):
        spec = ModelSettings(name="m", task=task, target="y", numerical=["x"])
        parts = [QualitySums.from_predictions(yy[i : i + 999], pp[i : i + 999], task)
                 for i in range(0, 10_000, 999)]  # fmt: skip
        got = merge_all_sums(parts).metrics()
        want = score_predictions(yy, pp, spec)
        want.pop("roc_auc", None)
        assert got == pytest.approx(want, rel=1e-9), task


def merge_all_sums(parts: list) -> object:
    out = parts[0]
    for p in parts[1:]:
        out = out.merge(p)
    return out


def test_check_of_a_directory_summarises_it_and_agrees_with_the_whole_file(
    jan_feb, tmp_path: Path, capsys
) -> None:
    """`driftwatch check` with a directory as the batch: scale.runner local (no cluster)."""
    from driftwatch.cli import main

    ref, cur = jan_feb
    ref.to_parquet(tmp_path / "ref.parquet")
    cur.to_parquet(tmp_path / "cur.parquet")
    (tmp_path / "cur").mkdir()
    for i, part in enumerate(parts_of(cur, 4_000)):
        part.to_parquet(tmp_path / "cur" / f"part-{i:03d}.parquet")
    (tmp_path / "cur" / "_SUCCESS").write_text("")  # Spark's marker is not data
    args = ["check", "--reference", str(tmp_path / "ref.parquet"), "--json"]
    assert main([*args, "--current", str(tmp_path / "cur.parquet")]) == 0
    whole = json.loads(capsys.readouterr().out)
    assert main([*args, "--current", str(tmp_path / "cur")]) == 0
    summed = json.loads(capsys.readouterr().out)
    assert "summarised from 7 partition(s)" in summed["description"]
    assert summed["drifted_columns"] == whole["drifted_columns"]
    assert summed["rows_current"] == whole["rows_current"] == len(cur)


def test_check_of_a_big_batch_with_time_block_thresholds_is_refused_in_one_line(
    jan_feb, tmp_path: Path, make_config, capsys
) -> None:
    from driftwatch.cli import main

    ref, cur = jan_feb
    ref.to_parquet(tmp_path / "ref.parquet")
    (tmp_path / "cur").mkdir()
    cur.to_parquet(tmp_path / "cur" / "part-0.parquet")
    cfg = make_config()
    code = main(["check", "--config", str(cfg), "--reference", str(tmp_path / "ref.parquet"),
                 "--current", str(tmp_path / "cur")])  # fmt: skip
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "drift.calibration.quiet" in err[0]


def test_a_partition_without_a_column_is_named_with_the_column(jan_feb, tmp_path: Path) -> None:
    from driftwatch.errors import BatchError
    from driftwatch.store.partitions import partitions, summarise_partition

    ref, cur = jan_feb
    det = DriftDetector(numerical=NUM, categorical=CAT).fit(ref)
    cur.drop(columns=["humid"]).to_parquet(tmp_path / "p.parquet")
    kinds = {c: s.kind for c, s in det.profile_.columns.items()}
    (part,) = partitions(tmp_path)
    with pytest.raises(BatchError, match=r"'humid' in .*p\.parquet: missing required column"):
        summarise_partition(part, kinds, det.lattices())

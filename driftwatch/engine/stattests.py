"""Statistical tests for one column, computed from a fitted reference profile.

Why hand-written instead of calling Evidently: Evidently recomputes everything from raw reference
rows on every call (sorting, value counts, binning), which makes a 1M-row check take minutes
(FACTS.md). Each test here reproduces Evidently 0.7's definition exactly (same statistic, same
binning, same comparison direction; see evidently/legacy/calculations/stattests/) but starts from
the reference's *sorted values* or *value counts*, kept in the profile, so only the current batch
is sorted per check. Where a scipy function does the job from arrays we call scipy.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd

Kind = Literal["numerical", "categorical"]


@dataclass
class ColumnSample:
    """One side of a comparison: the finite, non-null values of a column, prepared once.

    Numerical columns keep their values sorted (float64); categorical columns keep value counts.
    Value counts of a numerical column are derived lazily, only when a count-based test needs them.
    """

    kind: Kind
    n: int
    sorted_values: np.ndarray | None = None
    counts_: pd.Series | None = None
    std: float = 0.0
    nunique: int = 0

    @classmethod
    def from_series(cls, values: pd.Series, kind: Kind) -> tuple[ColumnSample, int]:
        """Returns the sample and the number of NaN/inf values dropped (Evidently drops them too)."""
        if kind == "numerical":
            arr = np.asarray(values, dtype=np.float64)
            finite = np.isfinite(arr)
            dropped = int(arr.size - finite.sum())
            arr = np.sort(arr[finite] if dropped else arr)
            n = int(arr.size)
            nunique = int(np.count_nonzero(np.diff(arr)) + 1) if n else 0
            std = float(np.std(arr)) if n else 0.0
            return cls(kind, n, sorted_values=arr, std=std, nunique=nunique), dropped
        notna = values.dropna()
        dropped = int(values.size - notna.size)
        counts = notna.value_counts(sort=False)
        counts = counts[counts > 0]
        counts.index = pd.Index(np.asarray(counts.index, dtype=object))  # plain, not categorical
        return cls(kind, int(notna.size), counts_=counts, nunique=int(counts.size)), dropped

    @property
    def counts(self) -> pd.Series:
        if self.counts_ is None:
            assert self.sorted_values is not None
            vals, cnt = np.unique(self.sorted_values, return_counts=True)
            self.counts_ = pd.Series(cnt, index=vals)
        return self.counts_

    def unique_values(self) -> np.ndarray:
        return np.asarray(self.counts.index)

    def sturges_counts(self, cur: ColumnSample) -> tuple[np.ndarray, np.ndarray]:
        """Counts of this (reference) side and ``cur`` on Evidently's Sturges bins; a merged
        summary (engine/summaries.py) bins its cells instead of raw values."""
        return _sturges_counts(self, cur)


@dataclass(frozen=True)
class TestOutcome:
    statistic: float
    p_value: float | None
    drifted: bool


@dataclass(frozen=True)
class StatTest:
    name: str
    display: str
    kinds: tuple[Kind, ...]
    default_threshold: float
    # "p_value": drift when the p-value is (at or) under the threshold; "distance": at or above.
    score: Literal["p_value", "distance"]
    func: Callable[[ColumnSample, ColumnSample, float], TestOutcome] = field(repr=False)

    def __call__(self, ref: ColumnSample, cur: ColumnSample, threshold: float) -> TestOutcome:
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            return self.func(ref, cur, threshold)


def _aligned_counts(ref: ColumnSample, cur: ColumnSample) -> tuple[np.ndarray, np.ndarray]:
    """Counts over the union of values seen on either side (Evidently's value-count path)."""
    r, c = ref.counts.align(cur.counts, join="outer", fill_value=0)
    return r.to_numpy(dtype=np.float64), c.to_numpy(dtype=np.float64)


def _sturges_counts(ref: ColumnSample, cur: ColumnSample) -> tuple[np.ndarray, np.ndarray]:
    """np.histogram over Sturges edges of reference and current combined, from sorted arrays."""
    r, c = ref.sorted_values, cur.sorted_values
    assert r is not None and c is not None
    lo, hi = min(r[0], c[0]), max(r[-1], c[-1])
    n = r.size + c.size
    if hi == lo:
        lo, hi = lo - 0.5, hi + 0.5
        n_bins = 1
    else:
        # numpy's _hist_bin_sturges then ceil(range / width): the same bin count numpy derives.
        width = (hi - lo) / (np.log2(n) + 1.0)
        n_bins = int(np.ceil((hi - lo) / width))
    edges = np.linspace(lo, hi, n_bins + 1, endpoint=True)

    def counts(sorted_arr: np.ndarray) -> np.ndarray:
        idx = np.searchsorted(sorted_arr, edges, side="left")
        idx[-1] = np.searchsorted(sorted_arr, edges[-1], side="right")  # last bin is closed
        return np.diff(idx).astype(np.float64)

    return counts(r), counts(c)


def _binned_percents(
    ref: ColumnSample, cur: ColumnSample, fill_zeroes: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Evidently's get_binned_data: Sturges bins for numerical columns with > 20 reference values."""
    if ref.kind == "numerical" and ref.nunique > 20:
        r, c = ref.sturges_counts(cur)
    else:
        r, c = _aligned_counts(ref, cur)
    r, c = r / ref.n, c / cur.n
    if fill_zeroes:
        for arr in (r, c):
            nz = arr[arr != 0]
            smallest = nz.min()
            arr[arr == 0] = smallest / 10**6 if smallest <= 0.0001 else 0.0001
    return r, c


# scipy.stats costs ~60 MB and ~0.3 s to import; it is imported by the tests that need it only.


def _ks(ref: ColumnSample, cur: ColumnSample, threshold: float) -> TestOutcome:
    from scipy import stats

    res = stats.ks_2samp(ref.sorted_values, cur.sorted_values)
    p = float(res.pvalue)
    return TestOutcome(float(res.statistic), p, p <= threshold)


def _chisquare(ref: ColumnSample, cur: ColumnSample, threshold: float) -> TestOutcome:
    from scipy import stats

    r, c = _aligned_counts(ref, cur)
    f_exp = r * (cur.n / ref.n)
    res = stats.chisquare(c, f_exp)
    p = float(res.pvalue)
    return TestOutcome(float(res.statistic), p, p < threshold)


def _chi2_contingency(ref: ColumnSample, cur: ColumnSample, threshold: float) -> TestOutcome:
    """Chi-square test of homogeneity: reference and batch are *both* samples.

    Evidently's ``chisquare`` is a goodness-of-fit test that treats the reference proportions as
    exact, which makes it anti-conservative once the batch is not tiny next to the reference.
    Categories whose expected count is under 5 on either side are pooled into one cell, the
    textbook condition for the chi-square approximation (unseen categories land there too).
    """
    from scipy import stats

    r, c = _aligned_counts(ref, cur)
    total = r + c
    share_ref = ref.n / (ref.n + cur.n)
    rare = (total * share_ref < 5) | (total * (1 - share_ref) < 5)
    if rare.any():
        r = np.append(r[~rare], r[rare].sum())
        c = np.append(c[~rare], c[rare].sum())
    keep = (r + c) > 0
    r, c = r[keep], c[keep]
    if r.size < 2:
        return TestOutcome(0.0, 1.0, False)
    res = stats.chi2_contingency(np.vstack([r, c]), correction=False)
    p = float(res.pvalue)
    return TestOutcome(float(res.statistic), p, p <= threshold)


def _z(ref: ColumnSample, cur: ColumnSample, threshold: float) -> TestOutcome:
    from scipy import stats

    ru, cu = ref.unique_values(), cur.unique_values()
    if ru.size == 1 and cu.size == 1 and ru[0] == cu[0]:
        return TestOutcome(0.0, 1.0, False)
    keys = sorted(set(ru.tolist()) | set(cu.tolist()), key=lambda v: (str(type(v)), v))
    key = keys[0]
    # Share of rows that are *not* the first key, as Evidently encodes them (0 if x == key else 1).
    p1 = 1.0 - float(ref.counts.get(key, 0)) / ref.n
    p2 = 1.0 - float(cur.counts.get(key, 0)) / cur.n
    pooled = (p1 * ref.n + p2 * cur.n) / (ref.n + cur.n)
    z = (p1 - p2) / np.sqrt(pooled * (1 - pooled) * (1.0 / ref.n + 1.0 / cur.n))
    p = float(2 * (1 - stats.norm.cdf(np.abs(z))))
    return TestOutcome(float(z), p, p < threshold)


def wasserstein_sorted(u: np.ndarray, v: np.ndarray, chunk: int = 1 << 18) -> float:
    """W1 between two samples given sorted; the same sum as scipy's _cdf_distance(1, u, v).

    Hand-written because scipy re-sorts both samples on every call (the reference is already
    sorted in the profile) and materialises several arrays of len(u) + len(v). Here one stable
    argsort merges the two sorted runs (timsort: linear time) and tells which side each merged
    value came from; within a run of tied values the deltas are 0, so counts taken at each
    position equal scipy's searchsorted(side="right") CDFs wherever they are weighted. The CDF
    gap is summed chunk by chunk and temporaries are freed early (1M + 1M: ~50 MB at peak).
    """
    n_u, n_v = u.size, v.size
    merged = np.concatenate([u, v])
    order = np.argsort(merged, kind="stable")
    merged = merged[order]
    from_u = order < n_u
    del order
    total, seen_u = 0.0, 0.0
    for start in range(0, merged.size - 1, chunk):
        stop = min(start + chunk, merged.size - 1)
        c_u = np.cumsum(from_u[start:stop], dtype=np.float64)
        c_u += seen_u
        seen_u = c_u[-1]
        c_v = np.arange(start + 1, stop + 1, dtype=np.float64)
        c_v -= c_u
        c_u /= n_u
        c_v /= n_v
        c_u -= c_v
        np.abs(c_u, out=c_u)
        total += float(np.dot(c_u, np.diff(merged[start : stop + 1])))
    return total


def _wasserstein(ref: ColumnSample, cur: ColumnSample, threshold: float) -> TestOutcome:
    assert ref.sorted_values is not None and cur.sorted_values is not None
    norm = max(ref.std, 0.001)
    value = wasserstein_sorted(ref.sorted_values, cur.sorted_values) / norm
    return TestOutcome(value, None, value >= threshold)


def _jensenshannon(ref: ColumnSample, cur: ColumnSample, threshold: float) -> TestOutcome:
    """scipy.spatial.distance.jensenshannon's formula (natural log, inputs normalised), written
    out in numpy: importing scipy.spatial and scipy.special costs ~0.2-0.5 s of a whole
    `driftwatch check` process, the distance itself microseconds. The mixture m is positive
    wherever p or q is, so p * log(p / m) (0 where p is 0) is exactly scipy's rel_entr here."""
    r, c = _binned_percents(ref, cur, fill_zeroes=False)
    p, q = r / np.sum(r), c / np.sum(c)
    m = (p + q) / 2

    def kl(x: np.ndarray) -> float:
        with np.errstate(divide="ignore", invalid="ignore"):
            return float(np.sum(np.where(x > 0, x * np.log(x / m), 0.0)))

    value = math.sqrt(max((kl(p) + kl(q)) / 2, 0.0))
    return TestOutcome(value, None, value >= threshold)


def _psi(ref: ColumnSample, cur: ColumnSample, threshold: float) -> TestOutcome:
    r, c = _binned_percents(ref, cur, fill_zeroes=True)
    value = float(np.sum((r - c) * np.log(r / c)))
    return TestOutcome(value, None, value >= threshold)


def _kl_div(ref: ColumnSample, cur: ColumnSample, threshold: float) -> TestOutcome:
    from scipy import stats

    r, c = _binned_percents(ref, cur, fill_zeroes=True)
    value = float(stats.entropy(r, c))
    return TestOutcome(value, None, value >= threshold)


def _hellinger(ref: ColumnSample, cur: ColumnSample, threshold: float) -> TestOutcome:
    if ref.kind == "categorical":
        r, c = _aligned_counts(ref, cur)
        bc = float(np.sum(np.sqrt((r / ref.n) * (c / cur.n))))
    else:
        # Evidently bins on Sturges edges of the *distinct* values of both sides, as densities.
        keys = np.union1d(ref.unique_values(), cur.unique_values())
        bins = np.histogram_bin_edges(keys, bins="sturges")
        h1 = np.histogram(ref.sorted_values, bins=bins, density=True)[0]
        h2 = np.histogram(cur.sorted_values, bins=bins, density=True)[0]
        width = (bins.max() - bins.min()) / (len(bins) - 1)
        bc = float(np.sum(np.sqrt(h1 * h2) * width))
    value = float(np.sqrt(1 - np.clip(bc, 0, 1)))
    return TestOutcome(value, None, value >= threshold)


def _cramer_von_mises(ref: ColumnSample, cur: ColumnSample, threshold: float) -> TestOutcome:
    from scipy import stats

    res = stats.cramervonmises_2samp(ref.sorted_values, cur.sorted_values)
    p = float(res.pvalue)
    return TestOutcome(float(res.statistic), p, p <= threshold)


def _anderson(ref: ColumnSample, cur: ColumnSample, threshold: float) -> TestOutcome:
    from scipy import stats

    res = stats.anderson_ksamp([ref.sorted_values, cur.sorted_values])
    p = float(res.pvalue)
    return TestOutcome(float(res.statistic), p, p < threshold)


BOTH: tuple[Kind, ...] = ("numerical", "categorical")
NUM: tuple[Kind, ...] = ("numerical",)
TESTS: dict[str, StatTest] = {
    t.name: t
    for t in (
        StatTest("ks", "K-S p_value", NUM, 0.05, "p_value", _ks),
        StatTest("chisquare", "chi-square p_value", BOTH, 0.05, "p_value", _chisquare),
        StatTest(
            "chi2_contingency",
            "chi-square homogeneity p_value",
            BOTH,
            0.05,
            "p_value",
            _chi2_contingency,
        ),
        StatTest("z", "Z-test p_value", BOTH, 0.05, "p_value", _z),
        StatTest(
            "wasserstein", "Wasserstein distance (normed)", NUM, 0.1, "distance", _wasserstein
        ),
        StatTest("jensenshannon", "Jensen-Shannon distance", BOTH, 0.1, "distance", _jensenshannon),
        StatTest("psi", "PSI", BOTH, 0.1, "distance", _psi),
        StatTest("kl_div", "Kullback-Leibler divergence", BOTH, 0.1, "distance", _kl_div),
        StatTest("hellinger", "Hellinger distance", BOTH, 0.1, "distance", _hellinger),
        StatTest("cramer_von_mises", "Cramer-von Mises", NUM, 0.1, "p_value", _cramer_von_mises),
        StatTest("anderson", "Anderson-Darling", NUM, 0.1, "p_value", _anderson),
    )
}


def default_test(ref: ColumnSample, cur: ColumnSample) -> StatTest:
    """Evidently 0.7's _get_default_stattest: by reference size, column kind and distinct values.

    n_values is the number of distinct values of reference and current together; it is only
    computed exactly when the reference alone does not already settle the threshold (> 5).
    """
    n_values = ref.nunique if ref.nunique > 5 else _union_nunique(ref, cur)
    if ref.n <= 1000:
        if ref.kind == "numerical":
            if n_values <= 5:
                return TESTS["chisquare"] if n_values > 2 else TESTS["z"]
            return TESTS["ks"]
        return TESTS["chisquare"] if n_values > 2 else TESTS["z"]
    if ref.kind == "numerical" and n_values > 5:
        return TESTS["wasserstein"]
    return TESTS["jensenshannon"]


def p_value_test(ref: ColumnSample) -> StatTest:
    """The test of the Bonferroni and Benjamini-Hochberg modes: a valid two-sample p-value.

    Two-sample K-S for numbers with more than 5 distinct reference values (ties make it
    conservative, never anti-conservative), the chi-square homogeneity test otherwise.
    """
    if ref.kind == "numerical" and ref.nunique > 5:
        return TESTS["ks"]
    return TESTS["chi2_contingency"]


def calibrated_test(ref: ColumnSample) -> StatTest:
    """The statistic of the calibrated mode; its threshold comes from resampling, not a table.

    A distance (not a p-value), so its meaning does not change with the batch size: the
    normed Wasserstein distance for numbers (it moves with any shift of location or spread),
    Jensen-Shannon over value counts for categories and numbers with few distinct values.
    """
    if ref.kind == "numerical" and ref.nunique > 5:
        return TESTS["wasserstein"]
    return TESTS["jensenshannon"]


def _union_nunique(ref: ColumnSample, cur: ColumnSample) -> int:
    if ref.kind == "numerical":
        cur_unique = (
            cur.sorted_values[np.r_[True, np.diff(cur.sorted_values) != 0]]
            if cur.n
            else np.empty(0)
        )
        return int(np.union1d(ref.unique_values(), cur_unique).size)
    return len(set(ref.counts.index) | set(cur.counts.index))


def test_by_name(name: str) -> StatTest:
    try:
        return TESTS[name]
    except KeyError:
        raise ValueError(f"unknown drift test {name!r}; allowed: {sorted(TESTS)}") from None

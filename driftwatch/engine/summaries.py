"""Mergeable column summaries: the drift statistics of a batch too big for one process.

A batch of 10M rows does not fit the exact path (every column sorted whole), but the statistics
the verdicts use only need *counts*: a summary of each partition is computed where the partition
is (a Dask worker), summaries are added together, and the tests run on the merged summary.
Memory is bounded by the partition, not the batch; merging is addition, so the order of merges
never changes a count (tests/test_summaries.py).

What a column's summary holds:
- every column: rows, missing (NaN/inf/null: what the exact path drops);
- categorical: the count of every category (exact);
- numerical: counts and value sums on a fixed *lattice* taken from the reference: cell ``2k+1``
  holds the values equal to lattice point ``k``, cell ``2k`` the values strictly between points
  ``k-1`` and ``k`` (cell 0: below the first point, cell ``2K``: above the last); plus the
  count, mean and sum of squared deviations (Chan's parallel update) and min / max.

The lattice is every distinct reference value when there are at most ``points`` of them (the
flights columns: distance, hour, temp, ... all are), else ``points`` reference quantiles. How
exact each statistic is on the merged summary (measured in benchmarks/big_batches.py, README
"Big batches"):
- counts, missing, category counts, the mean and the standard deviation: exact;
- Jensen-Shannon / PSI / KL / chi-square / Z over value counts: exact while each in-between
  cell holds one distinct value (always for categories and for values on the lattice);
- Wasserstein: the integral of F_ref - F_cur over each in-between cell is exact from its count
  and value sum (the integral of a CDF over (a, b) is F(a)(b - a) + (count * b - sum) / n), so
  the distance is exact unless the two CDFs cross *inside* one cell (then a lower bound);
- K-S: the CDF gap is exact at every lattice point and just below it; exact whenever the
  reference has no values between lattice points (its CDF is flat there);
- Sturges-binned tests (an override on a many-valued column) and Hellinger place an in-between
  cell's values at their mean: approximate. Cramer-von Mises and Anderson-Darling need raw
  values and are refused in summary mode, with the column named.

Written by hand because no maintained library merges *these* statistics: sketches (KLL,
t-digest) approximate quantiles, but Evidently's distances need the exact counts on the
reference's values, and the cell sums that make the Wasserstein distance exact.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from driftwatch.engine.stattests import TESTS, ColumnSample, Kind, StatTest, TestOutcome

DEFAULT_POINTS = 2048


# -- the lattice ------------------------------------------------------------------------------


def lattice(values: np.ndarray, points: int = DEFAULT_POINTS) -> np.ndarray:
    """Lattice points of a numerical column from reference values (all of them or a sample):
    every distinct finite value if there are at most ``points``, else ``points`` quantiles."""
    arr = np.asarray(values, dtype=np.float64)
    arr = arr[np.isfinite(arr)]
    uniq = np.unique(arr)
    if uniq.size <= points:
        return _on_grid(uniq, points)
    # Half quantiles (fine where the values are), half an even grid over the range (no gap
    # in a long tail is wide, which bounds the Wasserstein error of a crossing inside one).
    half = points // 2
    quantiles = np.quantile(arr, np.linspace(0.0, 1.0, points - half))
    return np.unique(np.concatenate([quantiles, np.linspace(uniq[0], uniq[-1], half)]))


def _on_grid(uniq: np.ndarray, points: int) -> np.ndarray:
    """Values on a regular grid (whole minutes, tenths of a degree) get every grid point of
    their range and some way beyond, up to ``points``: a batch value the reference never had
    (a delay of 187 min) is then a lattice point of its own and every statistic stays exact."""
    from driftwatch.engine.blocks import _lattice_step

    if uniq.size < 2:
        return uniq
    step = _lattice_step(uniq) if uniq.size > 2 else float(uniq[1] - uniq[0])
    lo, hi = float(uniq[0]), float(uniq[-1])
    if step <= 0 or (hi - lo) / step + 1 > points:
        return uniq
    spare = points - ((hi - lo) / step + 1)
    # On each side: the range again, at least 256 steps (months 1-2 in the reference, 3-12
    # in the batch), as far as the points allow.
    pad = math.floor(min(spare / 2, max((hi - lo) / step, 256)))
    k = np.arange(-pad, round((hi - lo) / step) + pad + 1)
    grid = np.round(lo + k * step, 9)
    return np.unique(np.concatenate([grid, uniq]))  # the reference's own values stay exact


# -- one column's summary ---------------------------------------------------------------------


@dataclass
class ColumnSummary:
    """Counts of one column of one partition (or of many, merged); see the module docstring."""

    kind: Kind
    rows: int = 0
    missing: int = 0
    # numerical
    edges: np.ndarray | None = None
    counts: np.ndarray | None = None
    sums: np.ndarray | None = None
    mean: float = 0.0
    m2: float = 0.0
    lo: float = math.inf
    hi: float = -math.inf
    # categorical
    categories: dict[str, int] = field(default_factory=dict)

    @property
    def n(self) -> int:
        """Usable (finite, non-null) values."""
        return self.rows - self.missing

    @property
    def std(self) -> float:
        return math.sqrt(self.m2 / self.n) if self.n else 0.0

    @classmethod
    def of(cls, values: pd.Series, kind: Kind, edges: np.ndarray | None = None) -> ColumnSummary:
        """The summary of prepared values (``drift._prepare``: numbers, or text categories)."""
        if kind == "categorical":
            notna = values.dropna()
            counts = notna.value_counts(sort=False)
            counts = counts[counts > 0]
            return cls(
                "categorical",
                rows=int(values.size),
                missing=int(values.size - notna.size),
                categories={str(k): int(v) for k, v in counts.items()},
            )
        assert edges is not None, "a numerical column needs the reference's lattice"
        arr = np.asarray(values, dtype=np.float64)
        x = arr[np.isfinite(arr)]
        k = edges.size
        cells = np.zeros(2 * k + 1, dtype=np.int64)
        sums = np.zeros(2 * k + 1, dtype=np.float64)
        out = cls("numerical", rows=int(arr.size), missing=int(arr.size - x.size), edges=edges)
        if x.size:
            # Distinct values first (a hash count: most columns have a few hundred), then the
            # cells of the distinct values only; a continuous column is placed value by value.
            distinct = pd.Series(x, copy=False).value_counts(sort=False)
            if distinct.size * 4 < x.size:
                v = distinct.index.to_numpy(dtype=np.float64)
                w = distinct.to_numpy(dtype=np.int64)
            else:
                v, w = x, None
            i = np.searchsorted(edges, v, side="left")
            on = np.zeros(v.size, dtype=bool)
            inside = i < k
            on[inside] = edges[i[inside]] == v[inside]
            cell = 2 * i + on
            cells = np.bincount(cell, weights=w, minlength=2 * k + 1).astype(np.int64)
            sums = np.bincount(cell, weights=v if w is None else v * w, minlength=2 * k + 1)
            n = x.size
            out.mean = float(v.mean() if w is None else (v @ w) / n)
            dev = np.square(v - out.mean)
            out.m2 = float(dev.sum() if w is None else dev @ w)
            out.lo, out.hi = float(v.min()), float(v.max())
        out.counts, out.sums = cells, sums
        return out

    def merge(self, other: ColumnSummary) -> ColumnSummary:
        """The summary of both partitions together (a new object; neither input changes)."""
        if self.kind != other.kind:
            raise ValueError(f"cannot merge a {self.kind} summary with a {other.kind} one")
        out = ColumnSummary(self.kind, self.rows + other.rows, self.missing + other.missing)
        if self.kind == "categorical":
            cats = dict(self.categories)
            for k, v in other.categories.items():
                cats[k] = cats.get(k, 0) + v
            out.categories = cats
            return out
        assert self.edges is not None and other.edges is not None
        if self.edges is not other.edges and not np.array_equal(self.edges, other.edges):
            raise ValueError("summaries on different lattices cannot be merged")
        assert self.counts is not None and other.counts is not None
        assert self.sums is not None and other.sums is not None
        out.edges = self.edges
        out.counts = self.counts + other.counts
        out.sums = self.sums + other.sums
        # Chan et al.'s pairwise update of the mean and the sum of squared deviations.
        na, nb = self.n, other.n
        if na == 0 or nb == 0:
            src = self if nb == 0 else other
            out.mean, out.m2 = src.mean, src.m2
        else:
            delta = other.mean - self.mean
            total = na + nb
            out.mean = self.mean + delta * nb / total
            out.m2 = self.m2 + other.m2 + delta * delta * na * nb / total
        out.lo, out.hi = min(self.lo, other.lo), max(self.hi, other.hi)
        return out

    def collapsed(self) -> tuple[np.ndarray, np.ndarray]:
        """Sorted distinct values and their counts, each in-between cell's values at their mean
        (exact for values on the lattice; the order of cells is the order of values)."""
        assert self.edges is not None and self.counts is not None and self.sums is not None
        k = self.edges.size
        points = np.empty(2 * k + 1)
        points[1::2] = self.edges
        nz = self.counts > 0
        with np.errstate(invalid="ignore", divide="ignore"):
            means = self.sums / np.maximum(self.counts, 1)
        points[0::2] = means[0::2]
        points[1::2] = self.edges
        return points[nz], self.counts[nz].astype(np.float64)


@dataclass
class BatchSummary:
    """Every column's summary of a batch (or a reference) and how many partitions made it."""

    columns: dict[str, ColumnSummary]
    rows: int
    partitions: int = 1

    def merge(self, other: BatchSummary) -> BatchSummary:
        if set(self.columns) != set(other.columns):
            raise ValueError(
                f"partitions with different columns: {sorted(set(self.columns) ^ set(other.columns))}"
            )
        return BatchSummary(
            {c: s.merge(other.columns[c]) for c, s in self.columns.items()},
            self.rows + other.rows,
            self.partitions + other.partitions,
        )


def merge_all(summaries: Iterable[BatchSummary]) -> BatchSummary:
    """Left fold of ``BatchSummary.merge`` (the Dask path merges in a tree: same counts)."""
    it = iter(summaries)
    out = next(it)
    for s in it:
        out = out.merge(s)
    return out


def summarise_frame(
    frame: Mapping[str, pd.Series] | pd.DataFrame,
    kinds: Mapping[str, Kind],
    lattices: Mapping[str, np.ndarray],
    source: str = "partition",
) -> BatchSummary:
    """One partition's summary: each column prepared as the exact path prepares it (a
    non-numeric value in a numerical column is a SchemaError naming ``source`` and the column)."""
    from driftwatch.engine.drift import _prepare, _require_columns

    _require_columns(frame, dict(kinds), source)  # type: ignore[arg-type]
    rows = len(frame)
    cols = {}
    for col, kind in kinds.items():
        values = _prepare(frame[col], kind, col, source)
        cols[col] = ColumnSummary.of(values, kind, lattices.get(col))
    return BatchSummary(cols, rows)


# -- statistics from summaries ----------------------------------------------------------------


class SummarySample(ColumnSample):
    """A merged summary dressed as the engine's ColumnSample: ``counts`` are the collapsed value
    counts (so count-based tests run unchanged), ``sorted_values`` the distinct collapsed values
    (for the test choice only: every test that reads raw values is swapped, see ``for_summary``)."""

    summary: ColumnSummary

    def sturges_counts(self, cur: ColumnSample) -> tuple[np.ndarray, np.ndarray]:
        """stattests' Sturges bins with each gap cell's values placed at their mean: the edges
        are exact (min, max and sizes are), a gap cell straddling an edge is approximate."""
        assert isinstance(cur, SummarySample)
        r, c = self.summary, cur.summary
        lo, hi = min(r.lo, c.lo), max(r.hi, c.hi)
        n = r.n + c.n
        if hi == lo:
            lo, hi, n_bins = lo - 0.5, hi + 0.5, 1
        else:
            width = (hi - lo) / (np.log2(n) + 1.0)
            n_bins = int(np.ceil((hi - lo) / width))
        edges = np.linspace(lo, hi, n_bins + 1, endpoint=True)

        def counts(s: ColumnSample) -> np.ndarray:
            v, w = s.counts.index.to_numpy(float), s.counts.to_numpy(float)
            return np.histogram(v, edges, weights=w)[0].astype(np.float64)

        return counts(self), counts(cur)

    @classmethod
    def of(cls, s: ColumnSummary) -> SummarySample:
        if s.kind == "categorical":
            counts = pd.Series(
                np.fromiter(s.categories.values(), dtype=np.int64, count=len(s.categories)),
                index=pd.Index(list(s.categories), dtype=object),
            )
            out = cls("categorical", s.n, counts_=counts, nunique=int(counts.size))
        else:
            values, weights = s.collapsed()
            out = cls(
                "numerical",
                s.n,
                sorted_values=values,
                counts_=pd.Series(weights, index=values),
                std=s.std,
                nunique=int(values.size),
            )
        out.summary = s
        return out


def wasserstein_cells(r: ColumnSummary, c: ColumnSummary) -> float:
    """W1 between the two columns from their cells (not normed). Over the points' gaps, the
    integral of F_ref - F_cur is exact (count and sum of each cell); its absolute value is
    summed, which is the exact distance unless the CDFs cross inside one cell."""
    assert r.edges is not None and r.counts is not None and r.sums is not None
    assert c.counts is not None and c.sums is not None
    e = r.edges
    nr, nc = max(r.n, 1), max(c.n, 1)
    cr, cc = r.counts.astype(np.float64), c.counts.astype(np.float64)
    # F at each lattice point (<= e_k) and the gap cells' counts and sums, per side.
    fr_at = np.cumsum(cr)[1::2] / nr
    fc_at = np.cumsum(cc)[1::2] / nc
    total = 0.0
    # Below the first point: the integral of F over (-inf, e_0) is (count * e_0 - sum) / n.
    total += abs((cr[0] * e[0] - r.sums[0]) / nr - (cc[0] * e[0] - c.sums[0]) / nc)
    # Between points k-1 and k (cell 2k): F(a)(b - a) + (count * b - sum) / n per side.
    if e.size > 1:
        a, b = e[:-1], e[1:]
        gap_r, gap_c = cr[2:-1:2], cc[2:-1:2]
        sum_r, sum_c = r.sums[2:-1:2], c.sums[2:-1:2]
        ir = fr_at[:-1] * (b - a) + (gap_r * b - sum_r) / nr
        ic = fc_at[:-1] * (b - a) + (gap_c * b - sum_c) / nc
        per_cell = np.abs(ir - ic)
        # Where one side has no values in the cell its CDF is flat there, and the other side's
        # values placed at their mean give the exact distance when they are one distinct value
        # (a value the reference never had), crossing or not; without a crossing both agree.
        with np.errstate(invalid="ignore", divide="ignore"):
            for flat, f_a, g, sums, n, other_gap in (
                (fr_at[:-1], fc_at[:-1], gap_c, sum_c, nc, gap_r),
                (fc_at[:-1], fr_at[:-1], gap_r, sum_r, nr, gap_c),
            ):
                mu = sums / np.maximum(g, 1)
                two = np.abs(flat - f_a) * (mu - a) + np.abs(flat - f_a - g / n) * (b - mu)
                per_cell = np.where((other_gap == 0) & (g > 0), two, per_cell)
        total += float(per_cell.sum())
    # Above the last point: the integral of 1 - F over (e_last, inf) is (sum - count * e) / n.
    total += abs((r.sums[-1] - cr[-1] * e[-1]) / nr - (c.sums[-1] - cc[-1] * e[-1]) / nc)
    return float(total)


def ks_cells(r: ColumnSummary, c: ColumnSummary) -> float:
    """The K-S statistic: the largest CDF gap at every lattice point and just below it."""
    assert r.counts is not None and c.counts is not None
    fr = np.cumsum(r.counts) / max(r.n, 1)
    fc = np.cumsum(c.counts) / max(c.n, 1)
    return float(np.abs(fr - fc).max()) if fr.size else 0.0


def _wasserstein(ref: SummarySample, cur: SummarySample, threshold: float) -> TestOutcome:
    value = wasserstein_cells(ref.summary, cur.summary) / max(ref.std, 0.001)
    return TestOutcome(value, None, value >= threshold)


def _ks(ref: SummarySample, cur: SummarySample, threshold: float) -> TestOutcome:
    from scipy import stats

    n1, n2 = ref.n, cur.n
    if max(n1, n2) <= 10_000:
        # scipy's exact p-value for small samples depends on the statistic and the sizes only;
        # the collapsed values give scipy's own statistic when the reference is on the lattice.
        a = np.repeat(ref.counts.index.to_numpy(float), ref.counts.to_numpy(int))
        b = np.repeat(cur.counts.index.to_numpy(float), cur.counts.to_numpy(int))
        res = stats.ks_2samp(a, b)
        p = float(res.pvalue)
        return TestOutcome(float(res.statistic), p, p <= threshold)
    d = ks_cells(ref.summary, cur.summary)
    # scipy.stats.ks_2samp's asymptotic two-sided p-value (its choice above 10,000 rows).
    p = float(np.clip(stats.kstwo.sf(d, np.round(n1 * n2 / (n1 + n2))), 0.0, 1.0))
    return TestOutcome(d, p, p <= threshold)


def _hellinger(ref: SummarySample, cur: SummarySample, threshold: float) -> TestOutcome:
    if ref.kind == "categorical":
        return TESTS["hellinger"].func(ref, cur, threshold)
    keys = np.union1d(ref.unique_values(), cur.unique_values())
    bins = np.histogram_bin_edges(keys, bins="sturges")

    def dens(s: SummarySample) -> np.ndarray:
        v, w = s.counts.index.to_numpy(float), s.counts.to_numpy(float)
        return np.histogram(v, bins=bins, weights=w, density=True)[0]

    width = (bins.max() - bins.min()) / (len(bins) - 1)
    bc = float(np.sum(np.sqrt(dens(ref) * dens(cur)) * width))
    value = float(np.sqrt(1 - np.clip(bc, 0, 1)))
    return TestOutcome(value, None, value >= threshold)


_SWAPPED = {"wasserstein": _wasserstein, "ks": _ks, "hellinger": _hellinger}


def for_summary(test: StatTest, column: str) -> StatTest:
    """The test computed from summaries. Count-based tests (chi-square, Z, and the binned
    Jensen-Shannon / PSI / KL through ``SummarySample.sturges_counts``) run as they are; the
    ones that read raw values are swapped for their cell versions, or refused."""
    if test.name in ("cramer_von_mises", "anderson"):
        raise ValueError(
            f"drift test {test.name!r} on column {column!r} needs every raw value: not available"
            " for a summarised batch (scale.summary_above_rows); pick ks or wasserstein"
        )
    func = _SWAPPED.get(test.name)
    if func is None:
        return test
    return StatTest(
        test.name,
        test.display,
        test.kinds,
        test.default_threshold,
        test.score,
        func,  # type: ignore[arg-type]
    )


__all__ = [
    "BatchSummary",
    "ColumnSummary",
    "SummarySample",
    "for_summary",
    "ks_cells",
    "lattice",
    "merge_all",
    "summarise_frame",
    "wasserstein_cells",
]

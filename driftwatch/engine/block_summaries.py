"""Time-block statistics from mergeable summaries: the shipped thresholds on big batches.

A batch too big for one process is summarised per partition (engine/summaries.py); the time-block
thresholds (engine/blocks.py) judge the newest hour, six hours and day of a batch, which a
summary of the whole batch no longer holds. So each partition gives one summary per *local hour*
of its rows, and the hours of a horizon's newest span are merged and judged: the statistics of
:func:`driftwatch.engine.blocks.block_statistics` computed from a merged summary, as
``DriftDetector.check_summary`` computes its tests' from one.

What a block summary holds: every column's :class:`~driftwatch.engine.summaries.ColumnSummary`
on the lattice of the block profile (every distinct reference value, filled out to its grid),
the count of novel values of each numerical column, and for every regression of the
profile the Gram matrix of ``[1, predictors..., target]`` over the rows whose target is known
(the residual's sum of squares decomposes into it). All of it adds up, so hours merge in any
order.

How exact each statistic is on the merged summary (tests/test_big_landing.py compares with the
in-memory check on flights):
- ``missing``, the categorical ``jensenshannon``, ``novel`` and ``modal``, ``resid``: exact;
- ``wasserstein`` and ``ks``: exact when every batch value lies on the lattice or each
  in-between cell holds one distinct value (as in summaries.py: the reference's values are
  lattice points, so the reference CDF is flat inside a cell);
- numerical ``novel``: exact (whether a value is novel depends on the value alone, so each
  block counts its novel values where they are, and counts add up);
- numerical ``modal``: exact while the merged blocks hold at most 4,096 distinct values off
  the lattice per column (each is counted by value); beyond that (a continuous column over
  many hours) the share of the most frequent lattice point, a lower bound.

Written by hand for the same reason as summaries.py: these are driftwatch's own statistics.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from driftwatch.engine.blocks import (
    BlockColumn,
    BlockProfile,
    _as_text,
    _design,
    _numbers,
)
from driftwatch.engine.summaries import (
    DEFAULT_POINTS,
    ColumnSummary,
    ks_cells,
    lattice,
    wasserstein_cells,
)

# Distinct off-lattice values counted one by one per column (a continuous column has more).
OFF_LATTICE = 4096


@dataclass
class BlockSummary:
    """One time block's (or several merged blocks') summary for the block statistics."""

    columns: dict[str, ColumnSummary]
    grams: dict[str, np.ndarray] = field(default_factory=dict)
    rows: int = 0
    # numerical columns: values that count as novel (``BlockColumn.novel``, not a reference
    # value), counted where the values are: a property of each value, so counts add up
    novel: dict[str, int] = field(default_factory=dict)
    # numerical columns: the count of every value off the lattice, while there are at most
    # OFF_LATTICE of them (None beyond): with the lattice points' counts, the modal share
    off: dict[str, dict[float, int] | None] = field(default_factory=dict)

    def merge(self, other: BlockSummary) -> BlockSummary:
        if set(self.columns) != set(other.columns):
            raise ValueError(
                f"block summaries with different columns: "
                f"{sorted(set(self.columns) ^ set(other.columns))}"
            )
        return BlockSummary(
            {c: s.merge(other.columns[c]) for c, s in self.columns.items()},
            {t: g + other.grams[t] for t, g in self.grams.items()},
            self.rows + other.rows,
            {c: n + other.novel[c] for c, n in self.novel.items()},
            {c: _add(v, other.off.get(c)) for c, v in self.off.items()},
        )


def _add(a: dict[float, int] | None, b: dict[float, int] | None) -> dict[float, int] | None:
    if a is None or b is None:
        return None
    out = dict(a)
    for k, v in b.items():
        out[k] = out.get(k, 0) + v
    return out if len(out) <= OFF_LATTICE else None


def block_lattices(profile: BlockProfile, points: int = DEFAULT_POINTS) -> dict[str, np.ndarray]:
    """Each numerical column's lattice: the reference's values, filled out to their grid (see
    ``summaries.lattice``)."""
    return {
        c.name: lattice(np.repeat(c.values.astype(float), c.counts), points)
        for c in profile.columns.values()
        if c.kind == "numerical" and len(c.values)
    }


def summarise_block(
    profile: BlockProfile, frame: pd.DataFrame, lattices: dict[str, np.ndarray]
) -> BlockSummary:
    """The summary of one block's rows (values prepared as ``block_statistics`` prepares them)."""
    cols: dict[str, ColumnSummary] = {}
    novel: dict[str, int] = {}
    offs: dict[str, dict[float, int] | None] = {}
    for c in profile.columns.values():
        if c.kind == "numerical":
            arr = _numbers(frame[c.name])
            edges = lattices.get(c.name, np.empty(0))
            cols[c.name] = ColumnSummary.of(pd.Series(arr, copy=False), "numerical", edges)
            x = np.unique(arr[~np.isnan(arr)], return_counts=True)
            hit = (c.novel(x[0]) & ~np.isin(x[0], c.values)) if len(c.values) else x[0] > 0
            novel[c.name] = int(x[1][hit].sum())
            off = ~np.isin(x[0], edges)
            off_values = dict(zip(x[0][off].tolist(), x[1][off].tolist(), strict=True))
            offs[c.name] = off_values if len(off_values) <= OFF_LATTICE else None
        else:
            cols[c.name] = ColumnSummary.of(_as_text(frame[c.name]), "categorical")
    grams = {}
    for r in profile.regressions:
        y = _numbers(frame[r.target])
        ok = ~np.isnan(y)
        x = _design(frame.loc[ok], r.predictors, profile.means)
        z = np.column_stack([x, y[ok]])
        grams[r.target] = z.T @ z
    return BlockSummary(cols, grams, len(frame), novel, offs)


def reference_summaries(
    profile: BlockProfile, lattices: dict[str, np.ndarray]
) -> dict[str, ColumnSummary]:
    """The profile's numerical columns as summaries on their lattices (exact: every value)."""
    return {
        c.name: ColumnSummary.of(
            pd.Series(np.repeat(c.values.astype(float), c.counts)), "numerical", lattices[c.name]
        )
        for c in profile.columns.values()
        if c.kind == "numerical" and c.name in lattices
    }


def _numerical(
    c: BlockColumn,
    ref: ColumnSummary | None,
    s: ColumnSummary,
    novel: int,
    off: dict[float, int] | None,
) -> list[float]:
    missing = s.missing / s.rows if s.rows else np.nan
    n = s.n
    if n == 0 or ref is None:
        return [np.nan, np.nan, missing, np.nan, np.nan]
    assert s.edges is not None and s.counts is not None and s.sums is not None
    assert ref.counts is not None
    w1 = wasserstein_cells(ref, s) / max(ref.std, 0.001)
    ks = ks_cells(ref, s)
    points = s.counts[1::2]
    modal = float(points.max()) if points.size else 0.0
    if off:
        modal = max(modal, float(max(off.values())))
    return [float(w1), float(ks), missing, novel / n, modal / n]


def _categorical(c: BlockColumn, s: ColumnSummary) -> list[float]:
    from scipy.special import rel_entr

    missing = s.missing / s.rows if s.rows else np.nan
    if s.n == 0 or len(c.values) == 0:
        return [np.nan, missing, np.nan, np.nan]
    ref = dict(zip(c.values.astype(str).tolist(), c.counts.tolist(), strict=True))
    keys = sorted(set(ref) | set(s.categories))
    rc = np.array([ref.get(k, 0) for k in keys], dtype=float)
    cc = np.array([s.categories.get(k, 0) for k in keys], dtype=float)
    p, q = rc / rc.sum(), cc / cc.sum()
    m = (p + q) / 2
    js = math.sqrt(max((rel_entr(p, m).sum() + rel_entr(q, m).sum()) / 2, 0.0))
    novel = float(cc[rc == 0].sum() / s.n)
    return [js, missing, novel, float(cc.max() / s.n)]


def block_statistics_summary(
    profile: BlockProfile, summary: BlockSummary, references: dict[str, ColumnSummary]
) -> np.ndarray:
    """Every component's statistic from a merged summary (order = ``profile.components``), as
    :func:`driftwatch.engine.blocks.block_statistics` gives them from the rows.
    ``references``: :func:`reference_summaries` of the profile on the summary's lattices."""
    out: list[float] = []
    for c in profile.columns.values():
        s = summary.columns[c.name]
        if c.kind == "numerical":
            novel, off = summary.novel.get(c.name, 0), summary.off.get(c.name)
            out += _numerical(c, references.get(c.name), s, novel, off)
        else:
            out += _categorical(c, s)
    for r in profile.regressions:
        g = summary.grams.get(r.target)
        n = g[0, 0] if g is not None else 0.0
        if g is None or n == 0:
            out.append(np.nan)
            continue
        k = g.shape[0] - 1
        b = r.beta
        sse = g[k, k] - 2 * b @ g[:k, k] + b @ g[:k, :k] @ b
        out.append(float(math.sqrt(max(sse, 0.0) / n) / r.resid_sd))
    return np.asarray(out, dtype=float)


__all__ = [
    "BlockSummary",
    "block_lattices",
    "block_statistics_summary",
    "reference_summaries",
    "summarise_block",
]

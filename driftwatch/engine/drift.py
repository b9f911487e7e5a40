"""Per-column and dataset drift: ``DriftDetector.fit(reference)`` then ``.check(current)``.

Modelled on NannyML's calculators: the reference is summarised once into a profile (sorted
values, value counts, std) that is reused by every hourly check and can be saved to disk; the
check only prepares the current batch. Test choice and verdicts follow Evidently 0.7 so users get
the answers they know (see stattests.py), with two deliberate additions: a column with too few
usable rows is reported "insufficient data" instead of crashing or guessing, and the drifted share
is taken over the columns that could be tested.
"""

from __future__ import annotations

import hashlib
import os
import pickle
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from driftwatch.engine.stattests import (
    ColumnSample,
    Kind,
    StatTest,
    calibrated_test,
    default_test,
    p_value_test,
    test_by_name,
)
from driftwatch.errors import SchemaError
from driftwatch.files import atomic_write_bytes  # re-exported: calibration, monitor.result

PROFILE_FORMAT = 2
Status = Literal["ok", "drift", "insufficient_data"]
Method = Literal["evidently", "bonferroni", "bh", "calibrated"]
METHOD_NAMES = {
    "evidently": "Evidently's rule",
    "bonferroni": "Bonferroni",
    "bh": "Benjamini-Hochberg",
    "calibrated": "calibrated thresholds",
}


@dataclass
class ColumnDrift:
    column: str
    kind: Kind
    test: str | None
    statistic: float | None
    p_value: float | None
    # What is compared with the threshold: the p-value for p-value tests, else the distance.
    score: float | None
    threshold: float | None
    drifted: bool | None
    status: Status
    rows_reference: int
    rows_current: int
    dropped_current: int
    note: str = ""


@dataclass
class DriftResult:
    columns: list[ColumnDrift]
    drift_share: float
    n_tested: int
    n_drifted: int
    share: float
    dataset_drift: bool
    rows_current: int
    rows_reference: int
    reference_fingerprint: str = ""
    method: str = "evidently"
    # The dataset-level error rate the method controls (not used by "evidently").
    alpha: float | None = None
    # Columns tested and shown but not counted in the dataset-level alarm.
    report_only: list[str] = field(default_factory=list)

    @property
    def drifted_columns(self) -> list[str]:
        return [c.column for c in self.columns if c.drifted]

    def column(self, name: str) -> ColumnDrift:
        for c in self.columns:
            if c.column == name:
                return c
        raise KeyError(name)

    def summary(self) -> str:
        head = f"{self.n_drifted}/{self.n_tested} columns drifted"
        if self.method == "evidently":
            cmp = ">=" if self.dataset_drift else "<"
            return (
                f"{head} ({self.share:.0%} {cmp} {self.drift_share:.0%})" + self._report_only_note()
            )
        rate = {"bonferroni": "family-wise", "bh": "FDR", "calibrated": "false alarms"}
        text = f"{head} ({METHOD_NAMES[self.method]}, {rate[self.method]} {self.alpha:.2g})"
        return text + self._report_only_note()

    def _report_only_note(self) -> str:
        seen = [c for c in self.drifted_columns if c in self.report_only]
        return f"; report-only columns drifted: {', '.join(seen)}" if seen else ""

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["drifted_columns"] = self.drifted_columns
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DriftResult:
        d = dict(d)
        d.pop("drifted_columns", None)
        d["columns"] = [ColumnDrift(**c) for c in d["columns"]]
        return cls(**d)


def infer_kind(values: pd.Series) -> Kind:
    """Evidently's inference: numbers are numerical, except integers with <= 10 distinct values."""
    if pd.api.types.is_bool_dtype(values):
        return "categorical"
    if pd.api.types.is_integer_dtype(values):
        return "categorical" if values.nunique(dropna=True) <= 10 else "numerical"
    if pd.api.types.is_numeric_dtype(values):
        return "numerical"
    return "categorical"


def as_numeric(values: pd.Series, column: str, source: str) -> pd.Series:
    """Numbers stay numbers; strings that are not all numbers are a schema error naming the column."""
    if pd.api.types.is_bool_dtype(values):
        return values.astype(np.float64)
    if pd.api.types.is_numeric_dtype(values):
        return values
    converted = pd.to_numeric(values, errors="coerce")
    bad = values[converted.isna() & values.notna()]
    if len(bad):
        examples = ", ".join(repr(v) for v in bad.astype(str).unique()[:3])
        raise SchemaError(
            source,
            f"expected a numerical column, found {len(bad)} non-numeric value(s) such as {examples}",
            column=column,
        )
    return converted


def as_categorical(values: pd.Series) -> pd.Series:
    """Categories compared as strings, so 1 from a parquet and "1" from a csv are one value.

    Done through pandas' categorical dtype: only the distinct values are turned into strings,
    which keeps a 1M-row column at a few MB instead of a million Python strings.
    """
    cat = values if isinstance(values.dtype, pd.CategoricalDtype) else values.astype("category")
    if all(isinstance(c, str) for c in cat.cat.categories):
        return cat
    as_text = [str(c) for c in cat.cat.categories]
    if len(set(as_text)) == len(as_text):
        return cat.cat.rename_categories(as_text)
    # 1 and "1" both present: merge them the slow way.
    out = values.astype(object)
    mask = out.notna()
    out[mask] = out[mask].astype(str)
    return out.astype("category")


@dataclass
class ReferenceProfile:
    """Everything a check needs from the reference, and nothing else (no raw rows)."""

    columns: dict[str, ColumnSample]
    dropped: dict[str, int]
    n_rows: int
    fingerprint: str
    format: int = PROFILE_FORMAT

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Atomic: a crash mid-write never leaves a half-written profile behind."""
        return atomic_write_bytes(Path(path), pickle.dumps(self, protocol=pickle.HIGHEST_PROTOCOL))

    @staticmethod
    def load(path: str | os.PathLike[str]) -> ReferenceProfile:
        with open(path, "rb") as fh:
            profile = pickle.load(fh)
        if not isinstance(profile, ReferenceProfile) or profile.format != PROFILE_FORMAT:
            raise ValueError(
                f"{path}: not a driftwatch reference profile of format {PROFILE_FORMAT}"
            )
        return profile


@dataclass
class DriftDetector:
    """Fit once on the reference, check every batch.

    Parameters mirror config.yaml's ``drift`` section: ``tests`` maps a column to a test name
    and/or threshold overriding the method's choice (a threshold given here is *pinned*: the
    multiple-testing correction and the calibration leave it alone); ``ignore`` drops columns;
    ``min_rows`` is the fewest usable rows (either side) for a verdict; ``alpha`` is the
    dataset-level rate the bonferroni, bh and calibrated methods hold.
    """

    numerical: list[str] | None = None
    categorical: list[str] | None = None
    tests: dict[str, tuple[str | None, float | None]] = field(default_factory=dict)
    ignore: list[str] = field(default_factory=list)
    drift_share: float = 0.5
    min_rows: int = 1
    n_jobs: int | None = None
    method: Method = "evidently"
    alpha: float = 0.01
    # Tested and reported, but left out of the dataset-level alarm (e.g. seasonal columns).
    report_only: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.method not in METHOD_NAMES:
            raise ValueError(f"unknown drift method {self.method!r}; allowed: {list(METHOD_NAMES)}")
        for col, (test, _) in self.tests.items():
            if test is not None:
                stat = test_by_name(test)  # raises with the allowed names
                if self.method in ("bonferroni", "bh") and stat.score != "p_value":
                    raise ValueError(
                        f"drift method {self.method!r} corrects p-values, but column {col!r}"
                        f" uses {test!r}, a distance; pick a p-value test or another method"
                    )
            if (
                col in (self.categorical or [])
                and test
                and "categorical" not in test_by_name(test).kinds
            ):
                raise ValueError(
                    f"drift test {test!r} cannot be used on categorical column {col!r}"
                )

    # -- fitting -----------------------------------------------------------------------------
    def kinds_for(self, reference: pd.DataFrame) -> dict[str, Kind]:
        if self.numerical is None and self.categorical is None:
            kinds = {c: infer_kind(reference[c]) for c in reference.columns}
        else:
            kinds = {c: "numerical" for c in self.numerical or []}
            kinds.update({c: "categorical" for c in self.categorical or []})
        return {c: k for c, k in kinds.items() if c not in self.ignore}

    def fit(self, reference: pd.DataFrame, fingerprint: str | None = None) -> DriftDetector:
        kinds = self.kinds_for(reference)
        _require_columns(reference, kinds, "reference")
        samples: dict[str, ColumnSample] = {}
        dropped: dict[str, int] = {}
        for col, kind in kinds.items():
            values = _prepare(reference[col], kind, col, "reference")
            samples[col], dropped[col] = ColumnSample.from_series(values, kind)
            if samples[col].n == 0:
                raise SchemaError(
                    "reference", "no usable values (all NaN/inf): cannot be a reference", col
                )
        self.profile_ = ReferenceProfile(
            columns=samples,
            dropped=dropped,
            n_rows=len(reference),
            fingerprint=fingerprint or frame_fingerprint(reference),
        )
        return self

    def with_profile(self, profile: ReferenceProfile) -> DriftDetector:
        self.profile_ = profile
        return self

    # -- checking ----------------------------------------------------------------------------
    def check(self, current: pd.DataFrame, source: str = "current batch") -> DriftResult:
        profile = self.profile_
        cols = [c for c in profile.columns if c not in self.ignore]
        _require_columns(current, dict.fromkeys(cols), source)
        prepared = {c: _prepare(current[c], profile.columns[c].kind, c, source) for c in cols}

        def one(col: str) -> ColumnDrift:
            return self._check_column(col, profile.columns[col], prepared[col])

        # One thread by default: measured on 2 cores at 1M rows, a second thread gained nothing
        # (searchsorted holds the GIL, the sorts are memory-bound) and doubled the temporaries.
        workers = self.n_jobs or 1
        if workers > 1 and len(current) >= 50_000 and len(cols) > 1:
            with ThreadPoolExecutor(max_workers=workers) as pool:
                columns = list(pool.map(one, cols))
        else:
            columns = [one(c) for c in cols]
        tested = [c for c in columns if c.status != "insufficient_data"]
        if self.method in ("bonferroni", "bh"):
            free = [c for c in tested if self.tests.get(c.column, (None, None))[1] is None]
            # The family is the columns that count; report-only ones get the same cut-off.
            family = [c.p_value for c in free if c.column not in self.report_only]
            cutoff = p_value_cutoff(family, self.method, self.alpha)
            for c in free:
                _judge_p_value(c, cutoff)
        for c in columns:
            if c.column in self.report_only:
                c.note = "; ".join(filter(None, ["report only", c.note]))
        tested = [c for c in tested if c.column not in self.report_only]
        n_drifted = sum(1 for c in tested if c.drifted)
        share = n_drifted / len(tested) if tested else 0.0
        if self.method == "evidently":
            dataset_drift = bool(tested) and share >= self.drift_share
        else:
            dataset_drift = n_drifted > 0
        return DriftResult(
            columns=columns,
            drift_share=self.drift_share,
            n_tested=len(tested),
            n_drifted=n_drifted,
            share=share,
            dataset_drift=dataset_drift,
            rows_current=len(current),
            rows_reference=profile.n_rows,
            reference_fingerprint=profile.fingerprint,
            method=self.method,
            alpha=None if self.method == "evidently" else self.alpha,
            report_only=[c for c in self.report_only if c in profile.columns],
        )

    def choose_test(self, col: str, ref: ColumnSample, cur: ColumnSample) -> StatTest:
        """The configured test of a column, else the method's own choice."""
        name = self.tests.get(col, (None, None))[0]
        if name:
            return test_by_name(name)
        if self.method in ("bonferroni", "bh"):
            return p_value_test(ref)
        if self.method == "calibrated":
            return calibrated_test(ref)
        return default_test(ref, cur)

    def _check_column(self, col: str, ref: ColumnSample, values: pd.Series) -> ColumnDrift:
        cur, dropped = ColumnSample.from_series(values, ref.kind)
        base = {
            "column": col,
            "kind": ref.kind,
            "rows_reference": ref.n,
            "rows_current": cur.n,
            "dropped_current": dropped,
        }
        if cur.n < self.min_rows or cur.n == 0:
            return ColumnDrift(
                **base,
                test=None,
                statistic=None,
                p_value=None,
                score=None,
                threshold=None,
                drifted=None,
                status="insufficient_data",
                note=f"{cur.n} usable rows < min_rows {self.min_rows}"
                + (f" ({dropped} NaN/inf dropped)" if dropped else ""),
            )
        threshold = self.tests.get(col, (None, None))[1]
        test = self.choose_test(col, ref, cur)
        if threshold is None and self.method == "calibrated":
            raise ValueError(
                f"drift method 'calibrated' has no threshold for column {col!r}: calibrate first"
                " (driftwatch calibrate) or pin one in drift.columns"
            )
        threshold = threshold if threshold is not None else test.default_threshold
        outcome = test(ref, cur, threshold)
        notes = []
        if ref.kind == "categorical":
            unseen = sorted(set(cur.counts.index) - set(ref.counts.index), key=str)
            if unseen:
                shown = ", ".join(map(str, unseen[:5])) + (" ..." if len(unseen) > 5 else "")
                notes.append(f"{len(unseen)} categories unseen in reference: {shown}")
        if cur.nunique == 1:
            notes.append("constant in current batch")
        if dropped:
            notes.append(f"{dropped} NaN/inf dropped")
        score = outcome.p_value if test.score == "p_value" else outcome.statistic
        return ColumnDrift(
            **base,
            test=test.name,
            statistic=outcome.statistic,
            p_value=outcome.p_value,
            score=score,
            threshold=threshold,
            drifted=bool(outcome.drifted),
            status="drift" if outcome.drifted else "ok",
            note="; ".join(notes),
        )


def correct_p_values(columns: list[ColumnDrift], method: str, alpha: float) -> None:
    """Re-judge p-value verdicts so the dataset-level error rate is ``alpha``.

    Bonferroni: each of m columns at alpha/m (family-wise error <= alpha under any dependence).
    Benjamini-Hochberg: reject the k smallest p-values, k the largest with p_(k) <= k*alpha/m
    (false discovery rate <= alpha; when no column has drifted, that is also the chance of a
    dataset alarm). The threshold shown per column is the cut-off actually applied.
    """
    cutoff = p_value_cutoff([c.p_value for c in columns], method, alpha)
    for c in columns:
        _judge_p_value(c, cutoff)


def p_value_cutoff(p_values: list[float | None], method: str, alpha: float) -> float:
    """The per-column cut-off of Bonferroni or Benjamini-Hochberg over ``p_values`` (a missing
    p-value counts as 1); ``alpha`` itself for an empty family."""
    m = len(p_values)
    if m == 0:
        return alpha
    if method == "bonferroni":
        return alpha / m
    from scipy.stats import false_discovery_control

    ps = np.array([np.nan if p is None else p for p in p_values], dtype=float)
    ps = np.nan_to_num(ps, nan=1.0)
    rejected = ps[false_discovery_control(ps, method="bh") <= alpha]
    # BH rejects the k smallest p-values, k the largest with p_(k) <= k * alpha / m: that bound
    # is the cut-off (alpha / m when nothing is rejected); max() keeps p_(k) itself inside it
    # should rounding put it a hair above.
    k = len(rejected)
    return float(max(k * alpha / m, rejected.max())) if k else alpha / m


def _judge_p_value(c: ColumnDrift, cutoff: float) -> None:
    c.threshold = cutoff
    c.drifted = c.p_value is not None and c.p_value <= cutoff
    c.status = "drift" if c.drifted else "ok"


def _require_columns(frame: pd.DataFrame, cols: dict[str, Any], source: str) -> None:
    dup = frame.columns[frame.columns.duplicated()].unique().tolist()
    if dup:
        raise SchemaError(source, f"duplicated column name(s): {dup}", column=str(dup[0]))
    missing = [c for c in cols if c not in frame.columns]
    if missing:
        raise SchemaError(source, f"missing required column(s) {missing}", column=str(missing[0]))


def _prepare(values: pd.Series, kind: Kind, col: str, source: str) -> pd.Series:
    return as_numeric(values, col, source) if kind == "numerical" else as_categorical(values)


def frame_fingerprint(frame: pd.DataFrame) -> str:
    """Content hash of a frame (values and column names), for keying a cached profile."""
    h = hashlib.sha256()
    h.update("\x1f".join(map(str, frame.columns)).encode())
    h.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    return h.hexdigest()[:16]

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
import io
import json
import os
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from driftwatch.engine.rules import ColumnRule, DatasetRule, EvidentlyShare, rule_for
from driftwatch.engine.stattests import ColumnSample, Kind, StatTest, test_by_name
from driftwatch.errors import SchemaError
from driftwatch.files import atomic_write_bytes

if TYPE_CHECKING:
    from driftwatch.engine.summaries import BatchSummary

PROFILE_FORMAT = 3
Status = Literal["ok", "drift", "insufficient_data"]


class ColumnDrift(BaseModel):
    """One column's verdict; frozen, so a report can never disagree with the decision."""

    model_config = ConfigDict(frozen=True)

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

    @classmethod
    def not_judged(cls, note: str, **base: Any) -> ColumnDrift:
        """A column with no verdict (too few usable rows): reported, never an alarm."""
        return cls(
            **base,
            test=None,
            statistic=None,
            p_value=None,
            score=None,
            threshold=None,
            drifted=None,
            status="insufficient_data",
            note=note,
        )


class DriftResult(BaseModel):
    """Every column's verdict and the dataset alarm of the rule that judged them."""

    model_config = ConfigDict(frozen=True)

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
    report_only: list[str] = Field(default_factory=list)
    # The rule's one-line account of the verdict, e.g. "2/13 columns drifted (calibrated ...)".
    description: str = ""
    # The time span the thresholds were calibrated for (time-block thresholds), e.g. "1h".
    span: str | None = None
    # The segment judged, e.g. "origin=EWR" (model.segments); None: the whole batch.
    segment: str | None = None

    @property
    def verdict(self) -> str:
        """ "drift", "no_drift", or "no_verdict" when no column could be judged (an empty
        batch): nothing to judge is not the same as nothing wrong."""
        if self.n_tested == 0:
            return "no_verdict"
        return "drift" if self.dataset_drift else "no_drift"

    @property
    def drifted_columns(self) -> list[str]:
        return [c.column for c in self.columns if c.drifted]

    def column(self, name: str) -> ColumnDrift:
        for c in self.columns:
            if c.column == name:
                return c
        raise KeyError(name)

    def summary(self) -> str:
        seen = [c for c in self.drifted_columns if c in self.report_only]
        note = f"; report-only columns drifted: {', '.join(seen)}" if seen else ""
        return self.description + note

    def to_dict(self) -> dict[str, Any]:
        """The result as JSON-ready data; with no verdict, ``dataset_drift`` is null (nothing
        was judged, which is not "no drift") and ``description`` says why."""
        d = self.model_dump(mode="json")
        if self.verdict == "no_verdict":
            d["dataset_drift"] = None
        return {**d, "drifted_columns": self.drifted_columns, "verdict": self.verdict}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DriftResult:
        derived = ("drifted_columns", "verdict")
        d = {k: v for k, v in d.items() if k not in derived}
        if d.get("dataset_drift") is None:
            d["dataset_drift"] = False
        return cls.model_validate(d)


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


class ColumnSource(Protocol):
    """What ``fit`` and ``check`` read: a DataFrame, or anything handing out one column at a time.

    The engine touches one column at a time (read, prepare, summarise, drop), so a source that
    reads columns lazily (``driftwatch.store.batches.ParquetColumns``) keeps a 1M-row check's
    memory to the profile plus one raw column instead of both whole files.
    """

    @property
    def columns(self) -> pd.Index: ...

    def __getitem__(self, column: str) -> pd.Series: ...

    def __len__(self) -> int: ...


@dataclass
class ReferenceProfile:
    """Everything a check needs from the reference, and nothing else (no raw rows)."""

    columns: dict[str, ColumnSample]
    dropped: dict[str, int]
    n_rows: int
    fingerprint: str
    format: int = PROFILE_FORMAT

    def to_bytes(self) -> bytes:
        """An ``.npz`` archive (arrays and JSON only, loaded with ``allow_pickle=False``): a
        cached profile under the state dir can never run code when it is read back."""
        meta: dict[str, Any] = {
            "format": self.format,
            "n_rows": self.n_rows,
            "fingerprint": self.fingerprint,
            "dropped": self.dropped,
            "columns": {},
        }
        arrays: dict[str, np.ndarray] = {}
        for i, (name, c) in enumerate(self.columns.items()):
            meta["columns"][name] = {
                "i": i,
                "kind": c.kind,
                "n": c.n,
                "std": c.std,
                "nunique": c.nunique,
            }
            if c.kind == "numerical":
                arrays[f"v{i}"] = np.asarray(c.sorted_values, dtype=np.float64)
            else:
                arrays[f"k{i}"] = np.asarray([str(k) for k in c.counts.index], dtype=np.str_)
                arrays[f"c{i}"] = np.asarray(c.counts.to_numpy(), dtype=np.int64)
        arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
        buf = io.BytesIO()
        np.savez(buf, **arrays)
        return buf.getvalue()

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Atomic: a crash mid-write never leaves a half-written profile behind."""
        return atomic_write_bytes(Path(path), self.to_bytes())

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> ReferenceProfile:
        return cls.from_bytes(Path(path).read_bytes(), str(path))

    @classmethod
    def from_bytes(cls, data: bytes, source: str = "profile") -> ReferenceProfile:
        try:
            with np.load(io.BytesIO(data), allow_pickle=False) as z:
                meta = json.loads(z["meta"].tobytes())
                if meta.get("format") != PROFILE_FORMAT:
                    raise ValueError(f"not a reference profile of format {PROFILE_FORMAT}")
                columns: dict[str, ColumnSample] = {}
                for name, m in meta["columns"].items():
                    i = m["i"]
                    if m["kind"] == "numerical":
                        columns[name] = ColumnSample(
                            "numerical",
                            m["n"],
                            sorted_values=z[f"v{i}"],
                            std=m["std"],
                            nunique=m["nunique"],
                        )
                    else:
                        counts = pd.Series(
                            z[f"c{i}"], index=pd.Index(z[f"k{i}"].astype(object), dtype=object)
                        )
                        columns[name] = ColumnSample(
                            "categorical", m["n"], counts_=counts, nunique=m["nunique"]
                        )
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"{source}: unreadable reference profile: {exc}") from exc
        return cls(columns, meta["dropped"], meta["n_rows"], meta["fingerprint"])


class DriftDetector:
    """Fit once on the reference, check every batch.

    Parameters mirror config.yaml's ``drift`` section: ``rule`` (a :mod:`driftwatch.engine.rules`
    object; built from ``method``, ``alpha`` and ``drift_share`` when not given) chooses the tests
    and turns column verdicts into the dataset alarm; ``tests`` maps a column to a
    :class:`ColumnRule` (or the short ``(test, threshold)`` form, whose threshold is pinned);
    ``ignore`` drops columns; ``min_rows`` is the fewest usable rows (either side) for a verdict.
    """

    def __init__(
        self,
        numerical: list[str] | None = None,
        categorical: list[str] | None = None,
        tests: Mapping[str, ColumnRule | tuple[str | None, float | None]] | None = None,
        ignore: list[str] | None = None,
        drift_share: float = 0.5,
        min_rows: int = 1,
        n_jobs: int | None = None,
        method: str = "evidently",
        alpha: float = 0.01,
        report_only: list[str] | None = None,
        rule: DatasetRule | None = None,
    ) -> None:
        self.numerical = numerical
        self.categorical = categorical
        self.rule = rule or rule_for(method, alpha, drift_share)
        self.tests = {c: ColumnRule.coerce(v) for c, v in (tests or {}).items()}
        self.ignore = list(ignore or [])
        self.min_rows = min_rows
        self.n_jobs = n_jobs
        self.report_only = list(report_only or [])
        for col, r in self.tests.items():
            if r.test is None:
                continue
            self.rule.check_test(col, r.test)
            if col in (self.categorical or []) and "categorical" not in test_by_name(r.test).kinds:
                raise ValueError(
                    f"drift test {r.test!r} cannot be used on categorical column {col!r}"
                )

    @property
    def method(self) -> str:
        return self.rule.name

    def threshold_of(self, column: str) -> float | None:
        return self.tests[column].threshold if column in self.tests else None

    # -- fitting -----------------------------------------------------------------------------
    def _declared_kinds(self) -> dict[str, Kind] | None:
        """The kinds given to the constructor; None when they are inferred from the data."""
        if self.numerical is None and self.categorical is None:
            return None
        kinds: dict[str, Kind] = {c: "numerical" for c in self.numerical or []}
        kinds.update({c: "categorical" for c in self.categorical or []})
        return kinds

    def kinds_for(self, reference: pd.DataFrame) -> dict[str, Kind]:
        kinds = self._declared_kinds()
        if kinds is None:
            kinds = {c: infer_kind(reference[c]) for c in reference.columns}
        return {c: k for c, k in kinds.items() if c not in self.ignore}

    def fit(self, reference: ColumnSource, fingerprint: str | None = None) -> DriftDetector:
        """Summarise the reference one column at a time (read, hash, summarise, let go)."""
        declared = self._declared_kinds()
        wanted = [
            c
            for c in (list(reference.columns) if declared is None else declared)
            if c not in self.ignore
        ]
        _require_columns(reference, dict.fromkeys(wanted), "reference")
        # Without a given fingerprint every column is hashed, the ones not checked too.
        hasher = None if fingerprint else _FrameHash(reference.columns)
        keep = set(wanted)

        def one(col: str) -> tuple[ColumnSample | None, int, np.ndarray | None]:
            values = reference[col]
            hashes = _row_hashes(values) if hasher else None
            if col not in keep:
                return None, 0, hashes
            kind = declared[col] if declared is not None else infer_kind(values)
            sample, dropped = ColumnSample.from_series(
                _prepare(values, kind, col, "reference"), kind
            )
            return sample, dropped, hashes

        names = list(reference.columns) if hasher else wanted
        samples: dict[str, ColumnSample] = {}
        dropped: dict[str, int] = {}
        with _columns_pool(self._workers(len(reference), len(names))) as pool:
            for col, (sample, n_dropped, hashes) in zip(names, pool(one, names), strict=True):
                if hasher and hashes is not None:
                    hasher.fold(hashes)  # in column order, as the fingerprint is defined
                if sample is None:
                    continue
                if sample.n == 0:
                    raise SchemaError(
                        "reference", "no usable values (all NaN/inf): cannot be a reference", col
                    )
                samples[col], dropped[col] = sample, n_dropped
        self.profile_ = ReferenceProfile(
            columns={c: samples[c] for c in wanted},
            dropped={c: dropped[c] for c in wanted},
            n_rows=len(reference),
            fingerprint=fingerprint or (hasher.hexdigest() if hasher else ""),
        )
        return self

    def _workers(self, rows: int, columns: int) -> int:
        """Threads over columns: ``n_jobs`` (default 1), and only where a column is big enough
        for a thread to pay (the sorts, parquet reads and merges release the GIL)."""
        workers = self.n_jobs or 1
        return workers if workers > 1 and rows >= 50_000 and columns > 1 else 1

    def with_profile(self, profile: ReferenceProfile) -> DriftDetector:
        self.profile_ = profile
        return self

    # -- checking ----------------------------------------------------------------------------
    def check(self, current: ColumnSource, source: str = "current batch") -> DriftResult:
        profile = self.profile_
        cols = [c for c in profile.columns if c not in self.ignore]
        _require_columns(current, dict.fromkeys(cols), source)

        def one(col: str) -> ColumnDrift:
            # Read and prepared here, one column at a time: only this column's copies are alive.
            values = _prepare(current[col], profile.columns[col].kind, col, source)
            return self._check_column(col, profile.columns[col], values)

        with _columns_pool(self._workers(len(current), len(cols))) as pool:
            columns = list(pool(one, cols))
        return self._verdict(columns, len(current), profile.n_rows, profile.fingerprint)

    def lattices(self, points: int | None = None) -> dict[str, np.ndarray]:
        """Each numerical column's lattice for summaries (engine/summaries.py), from the
        fitted reference profile: every distinct value, or quantiles when there are more."""
        from driftwatch.engine.summaries import DEFAULT_POINTS, lattice

        return {
            c: lattice(s.sorted_values, points or DEFAULT_POINTS)  # type: ignore[arg-type]
            for c, s in self.profile_.columns.items()
            if s.kind == "numerical"
        }

    def reference_summary(self, lattices: Mapping[str, np.ndarray]) -> BatchSummary:
        """The fitted profile as a summary on ``lattices`` (exact: it has every value)."""
        from driftwatch.engine.summaries import BatchSummary, ColumnSummary

        profile = self.profile_
        cols = {}
        for c, s in profile.columns.items():
            if s.kind == "numerical":
                one = ColumnSummary.of(pd.Series(s.sorted_values), "numerical", lattices[c])
            else:
                one = ColumnSummary(
                    "categorical",
                    rows=s.n,
                    categories={str(k): int(v) for k, v in s.counts.items()},
                )
            one.rows += profile.dropped.get(c, 0)
            one.missing += profile.dropped.get(c, 0)
            cols[c] = one
        return BatchSummary(cols, profile.n_rows)

    def check_summary(
        self,
        current: BatchSummary,
        reference: BatchSummary | None = None,
        source: str = "current batch",
    ) -> DriftResult:
        """The check of a batch summarised per partition and merged (engine/summaries.py),
        against ``reference`` (a summary on the same lattices; default: the fitted profile's).
        The same rule, tests, thresholds and result as ``check``; the statistics come from the
        summaries (see summaries.py for which are exact)."""
        from driftwatch.engine.summaries import SummarySample, for_summary

        profile = getattr(self, "profile_", None)
        if reference is None:
            lattices = {c: s.edges for c, s in current.columns.items() if s.edges is not None}
            reference = self.reference_summary(lattices)
        cols = [c for c in reference.columns if c not in self.ignore]
        missing = [c for c in cols if c not in current.columns]
        if missing:
            raise SchemaError(source, f"missing required column(s) {missing}", column=missing[0])
        columns = []
        for col in cols:
            ref = SummarySample.of(reference.columns[col])
            cur_summary = current.columns[col]
            cur = SummarySample.of(cur_summary)
            columns.append(self._judge(col, ref, cur, cur_summary.missing, for_summary))
        fingerprint = profile.fingerprint if profile is not None else ""
        result = self._verdict(columns, current.rows, reference.rows, fingerprint)
        said = f"{result.description} (summarised from {current.partitions} partition(s))"
        return result.model_copy(update={"description": said})

    def _verdict(
        self, columns: list[ColumnDrift], rows_current: int, rows_reference: int, fingerprint: str
    ) -> DriftResult:
        """The columns' verdicts judged together by the rule (shared by ``check`` and
        ``check_summary``)."""
        rule = self.rule
        if rule.corrects_p_values:
            free = {
                c.column
                for c in columns
                if c.status != "insufficient_data" and not self._pinned(c.column)
            }
            # The family is the columns that count; report-only ones get the same cut-off.
            family = [c.p_value for c in columns if c.column in free - set(self.report_only)]
            cutoff = rule.cutoff(family)
            columns = [_judge_p_value(c, cutoff) if c.column in free else c for c in columns]
        columns = [
            c.model_copy(update={"note": "; ".join(filter(None, ["report only", c.note]))})
            if c.column in self.report_only
            else c
            for c in columns
        ]
        tested = [
            c
            for c in columns
            if c.status != "insufficient_data" and c.column not in self.report_only
        ]
        n_drifted = sum(1 for c in tested if c.drifted)
        share = n_drifted / len(tested) if tested else 0.0
        alarm = rule.alarm(len(tested), n_drifted)
        description = rule.describe(len(tested), n_drifted, share, alarm)
        if not tested:
            alarm = False
            untested = [c for c in columns if c.status == "insufficient_data"]
            why = "; ".join(f"{c.column}: {c.note}" for c in untested[:3])
            more = f"; {len(untested) - 3} more" if len(untested) > 3 else ""
            description = f"no verdict: no column could be judged ({why or 'no columns'}{more})"
        return DriftResult(
            columns=columns,
            drift_share=getattr(rule, "drift_share", 0.5),
            n_tested=len(tested),
            n_drifted=n_drifted,
            share=share,
            dataset_drift=alarm,
            rows_current=rows_current,
            rows_reference=rows_reference,
            reference_fingerprint=fingerprint,
            method=rule.name,
            alpha=None if isinstance(rule, EvidentlyShare) else rule.alpha,
            report_only=[c for c in self.report_only if c in {x.column for x in columns}],
            description=description,
        )

    def _pinned(self, column: str) -> bool:
        r = self.tests.get(column)
        return r is not None and r.threshold is not None

    def choose_test(self, col: str, ref: ColumnSample, cur: ColumnSample) -> StatTest:
        """The configured test of a column, else the method's own choice."""
        r = self.tests.get(col)
        if r is not None and r.test:
            return test_by_name(r.test)
        return self.rule.choose_test(ref, cur)

    def _check_column(self, col: str, ref: ColumnSample, values: pd.Series) -> ColumnDrift:
        cur, dropped = ColumnSample.from_series(values, ref.kind)
        return self._judge(col, ref, cur, dropped)

    def _judge(
        self,
        col: str,
        ref: ColumnSample,
        cur: ColumnSample,
        dropped: int,
        adapt: Callable[[StatTest, str], StatTest] | None = None,
    ) -> ColumnDrift:
        """One column's verdict; ``adapt`` swaps the chosen test (summaries.for_summary)."""
        base = {
            "column": col,
            "kind": ref.kind,
            "rows_reference": ref.n,
            "rows_current": cur.n,
            "dropped_current": dropped,
        }
        if cur.n < self.min_rows or cur.n == 0:
            note = f"{cur.n} usable rows < min_rows {self.min_rows}"
            return ColumnDrift.not_judged(
                note + (f" ({dropped} NaN/inf dropped)" if dropped else ""), **base
            )
        rule = self.tests.get(col)
        if rule is not None and rule.reason and rule.threshold is None:
            return ColumnDrift.not_judged(rule.reason, **base)
        threshold = self.threshold_of(col)
        test = self.choose_test(col, ref, cur)
        if adapt is not None:
            test = adapt(test, col)
        if threshold is None and self.rule.needs_calibration:
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


def correct_p_values(columns: list[ColumnDrift], method: str, alpha: float) -> list[ColumnDrift]:
    """The columns re-judged so the dataset-level error rate is ``alpha`` (``method``: bonferroni
    or bh, see :mod:`driftwatch.engine.rules`). The threshold shown per column is the cut-off
    actually applied."""
    cutoff = rule_for(method, alpha).cutoff([c.p_value for c in columns])
    return [_judge_p_value(c, cutoff) for c in columns]


def _judge_p_value(c: ColumnDrift, cutoff: float) -> ColumnDrift:
    drifted = c.p_value is not None and c.p_value <= cutoff
    return c.model_copy(
        update={"threshold": cutoff, "drifted": drifted, "status": "drift" if drifted else "ok"}
    )


def _require_columns(frame: ColumnSource, cols: dict[str, Any], source: str) -> None:
    dup = frame.columns[frame.columns.duplicated()].unique().tolist()
    if dup:
        raise SchemaError(source, f"duplicated column name(s): {dup}", column=str(dup[0]))
    missing = [c for c in cols if c not in frame.columns]
    if missing:
        raise SchemaError(source, f"missing required column(s) {missing}", column=str(missing[0]))


def _prepare(values: pd.Series, kind: Kind, col: str, source: str) -> pd.Series:
    return as_numeric(values, col, source) if kind == "numerical" else as_categorical(values)


@contextmanager
def _columns_pool(workers: int) -> Iterator[Callable[..., Iterator[Any]]]:
    """``map`` over columns in order: the built-in one, or a thread pool's."""
    if workers <= 1:
        yield map
        return
    with ThreadPoolExecutor(max_workers=workers) as pool:
        yield pool.map


def _row_hashes(values: pd.Series) -> np.ndarray:
    return pd.util.hash_pandas_object(values, index=False).to_numpy(dtype=np.uint64)


def frame_fingerprint(frame: ColumnSource) -> str:
    """Content hash of a frame (values and column names), for keying a cached profile."""
    hasher = _FrameHash(frame.columns)
    for col in frame.columns:
        hasher.fold(_row_hashes(frame[col]))
    return hasher.hexdigest()


class _FrameHash:
    """``frame_fingerprint`` one column at a time, with the value hashing the whole frame gives.

    The fingerprint is sha256 over the column names and ``pd.util.hash_pandas_object(frame,
    index=False)``'s row hashes. pandas builds those by folding each column's hashes in, in
    order (``combine_hash_arrays`` in pandas/core/util/hashing.py, private API); the same fold is
    written out here so a reference read column by column is never held whole, and fingerprints
    (cache keys) keep the values they had.
    """

    def __init__(self, columns: pd.Index) -> None:
        self._sha = hashlib.sha256("\x1f".join(map(str, columns)).encode())
        self._items = len(columns)
        self._i = 0
        self._mult = np.uint64(1000003)
        self._rows: np.ndarray | None = None

    def fold(self, h: np.ndarray) -> None:
        """The next column's row hashes (``_row_hashes``), in column order."""
        if self._rows is None:
            self._rows = np.zeros_like(h) + np.uint64(0x345678)
        inverse = self._items - self._i
        self._rows ^= h
        self._rows *= self._mult
        self._mult += np.uint64(82520 + inverse + inverse)
        self._i += 1

    def hexdigest(self) -> str:
        if self._rows is not None:
            self._sha.update((self._rows + np.uint64(97531)).tobytes())
        return self._sha.hexdigest()[:16]

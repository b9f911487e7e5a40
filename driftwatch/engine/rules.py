"""How column verdicts add up to a dataset alarm: one rule object per method.

Modelled on NannyML's threshold objects: a rule chooses each column's test, judges the columns
(a multiple-testing correction may re-judge them together) and describes itself for reports.
The detector, the calibrator and the reports ask the rule instead of branching on a method
name, so a new method is one new class here.
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field

from driftwatch.engine.stattests import (
    ColumnSample,
    StatTest,
    calibrated_test,
    default_test,
    p_value_test,
    test_by_name,
)


class ColumnRule(BaseModel):
    """One column's test and threshold. A threshold given by the user is *pinned*: the
    multiple-testing correction and the calibration leave it alone."""

    model_config = ConfigDict(frozen=True)

    test: str | None = None
    threshold: float | None = None
    pinned: bool = False
    # Set by a calibration that could not estimate this column's threshold at the batch size:
    # the column is reported "insufficient data" with this reason instead of never alarming.
    reason: str = ""

    @classmethod
    def coerce(cls, value: ColumnRule | tuple[str | None, float | None]) -> ColumnRule:
        """Accept the short ``(test, threshold)`` form; a threshold given that way is pinned."""
        if isinstance(value, ColumnRule):
            return value
        test, threshold = value
        return cls(test=test, threshold=threshold, pinned=threshold is not None)


class DatasetRule(BaseModel):
    """Base rule: ``choose_test`` per column, ``cutoff`` for re-judged p-values, ``alarm``."""

    model_config = ConfigDict(frozen=True)

    name: ClassVar[str]
    title: ClassVar[str]
    # True: the per-column thresholds come from a calibration, not from the tests' defaults.
    needs_calibration: ClassVar[bool] = False
    # True: the rule re-judges the unpinned p-values of the counting columns together.
    corrects_p_values: ClassVar[bool] = False
    alpha: float = Field(0.01, gt=0, lt=1)

    def choose_test(self, ref: ColumnSample, cur: ColumnSample) -> StatTest:
        raise NotImplementedError

    def check_test(self, column: str, test: str) -> None:
        """Refuse a per-column test the rule cannot use (raises ValueError naming the column)."""
        test_by_name(test)  # raises with the allowed names

    def cutoff(self, p_values: list[float | None]) -> float:
        return self.alpha

    def alarm(self, n_tested: int, n_drifted: int) -> bool:
        return n_drifted > 0

    def describe(self, n_tested: int, n_drifted: int, share: float, alarm: bool) -> str:
        head = f"{n_drifted}/{n_tested} columns drifted"
        return f"{head} ({self.title}, {self.rate_name} {self.alpha:.2g})"

    rate_name: ClassVar[str] = "false alarms"


class EvidentlyShare(DatasetRule):
    """Evidently's rule: its per-column default tests; alarm when the drifted share of the
    tested columns reaches ``drift_share``."""

    name: ClassVar[str] = "evidently"
    title: ClassVar[str] = "Evidently's rule"
    drift_share: float = Field(0.5, gt=0, le=1)

    def choose_test(self, ref: ColumnSample, cur: ColumnSample) -> StatTest:
        return default_test(ref, cur)

    def alarm(self, n_tested: int, n_drifted: int) -> bool:
        return n_tested > 0 and n_drifted / n_tested >= self.drift_share

    def describe(self, n_tested: int, n_drifted: int, share: float, alarm: bool) -> str:
        cmp = ">=" if alarm else "<"
        return f"{n_drifted}/{n_tested} columns drifted ({share:.0%} {cmp} {self.drift_share:.0%})"


class Bonferroni(DatasetRule):
    """Two-sample p-value per column, each at alpha/m: family-wise error <= alpha under any
    dependence between the columns."""

    name: ClassVar[str] = "bonferroni"
    title: ClassVar[str] = "Bonferroni"
    rate_name: ClassVar[str] = "family-wise"
    corrects_p_values: ClassVar[bool] = True

    def choose_test(self, ref: ColumnSample, cur: ColumnSample) -> StatTest:
        return p_value_test(ref)

    def check_test(self, column: str, test: str) -> None:
        if test_by_name(test).score != "p_value":
            raise ValueError(
                f"drift method {self.name!r} corrects p-values, but column {column!r}"
                f" uses {test!r}, a distance; pick a p-value test or another method"
            )

    def cutoff(self, p_values: list[float | None]) -> float:
        return self.alpha / len(p_values) if p_values else self.alpha


class BenjaminiHochberg(Bonferroni):
    """Benjamini-Hochberg step-up: false discovery rate <= alpha; with no drifted column that
    is also the chance of a dataset alarm."""

    name: ClassVar[str] = "bh"
    title: ClassVar[str] = "Benjamini-Hochberg"
    rate_name: ClassVar[str] = "FDR"

    def cutoff(self, p_values: list[float | None]) -> float:
        """k * alpha / m for the k columns BH rejects (scipy's adjusted p-values <= alpha),
        else alpha / m: the per-column cut-off shown in the report (a missing p-value is 1)."""
        m = len(p_values)
        if m == 0:
            return self.alpha
        import numpy as np
        from scipy.stats import false_discovery_control

        ps = np.array([1.0 if p is None else p for p in p_values], dtype=float)
        k = int((false_discovery_control(ps, method="bh") <= self.alpha).sum())
        return max(k, 1) * self.alpha / m


class Calibrated(DatasetRule):
    """Thresholds measured on the reference so that a quiet batch alarms with probability
    <= alpha; one counting column past its threshold is an alarm."""

    name: ClassVar[str] = "calibrated"
    title: ClassVar[str] = "calibrated thresholds"
    needs_calibration: ClassVar[bool] = True

    def choose_test(self, ref: ColumnSample, cur: ColumnSample) -> StatTest:
        return calibrated_test(ref)


RULES: dict[str, type[DatasetRule]] = {
    r.name: r for r in (EvidentlyShare, Bonferroni, BenjaminiHochberg, Calibrated)
}


def rule_for(method: str, alpha: float = 0.01, drift_share: float = 0.5) -> DatasetRule:
    """The rule object of a configured method name."""
    if method not in RULES:
        raise ValueError(f"unknown drift method {method!r}; allowed: {list(RULES)}")
    if method == "evidently":
        return EvidentlyShare(alpha=alpha, drift_share=drift_share)
    return RULES[method](alpha=alpha)

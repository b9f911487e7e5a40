"""The two decisions of a monitor run, as plain functions of findings: retrain? promote?"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence

from driftwatch.engine.drift import ColumnDrift, DriftResult
from driftwatch.model.quality import EstimatedQuality, QualityResult, better
from driftwatch.monitor.plan import RetrainPolicy
from driftwatch.monitor.result import Decision, PromotionDecision


def decide(
    verdicts: list[DriftResult],
    quality: QualityResult | None,
    prediction: ColumnDrift | None,
    has_champion: bool,
    rows: int,
    policy: RetrainPolicy = "monitor",
    age: float | None = None,
    max_age: float | None = None,
    min_age: float | None = None,
    estimated: EstimatedQuality | None = None,
    quality_trigger: str = "realised",
    retrain_on: Collection[str] = ("drift", "quality", "age", "support"),
    segment_quality: Sequence[QualityResult] = (),
    segment_estimated: Sequence[EstimatedQuality] = (),
    outside: Mapping[str, float] | None = None,
    support_share: float = 0.01,
    support_span: str = "the batch",
) -> Decision:
    """Retrain when features drifted (dataset rule) or the champion's quality degraded.

    Prediction drift alone is reported but does not retrain: without labels it cannot show
    the model got worse, and retraining on every shift of the output would churn the model.
    ``policy`` "always" / "never" replace the trigger (the findings are still reported).
    ``verdicts``: the feature-drift verdict of each horizon judged (one without horizons, none
    on an empty batch); any horizon's alarm counts. ``age``: days from the end of the
    champion's training data to the batch's newest row; past ``max_age`` it retrains too.

    ``min_age`` (``retrain.min_age_days``): drift and quality found while the champion is
    younger than this are reported and held (action ``no_retrain``). A challenger trained that
    soon learns from nearly the champion's own window, and the holdout it is judged on is one
    the champion has partly trained on, so the comparison favours the champion. On the 2013
    replay before this rule, of the challenges started within 12 days (one holdout) of the
    champion's data, 11 of 15 were lost with weekly files (1% margin) and 9 of 17 with daily
    ticks (5% tolerance), against 4 of 10 and 1 of 9 of the later ones: each lost challenge is
    a retrain spent for nothing, and a drift alarm that persists asked again at the next tick.

    ``estimated``: the champion's estimated quality (no labels needed). ``quality_trigger``
    (``quality.trigger``) says which quality verdict may retrain: realised, estimated or either;
    the other is reported. ``retrain_on`` (``retrain.triggers``): the kinds of finding that
    retrain (drift, quality, age, support); the others are reported and held (action
    ``no_retrain``).

    ``segment_quality`` / ``segment_estimated`` (``model.segments``): each segment's verdicts.
    Retraining stays per model: a degraded segment is a quality (or estimated) trigger of the
    model under the same conditions as the whole batch's, and the reason names the segment.

    ``outside`` (``retrain.support_columns``): per column, the share of the batch's rows beyond
    the 1st-99th percentile of the champion's training window; above ``support_share`` in any
    column it retrains ("support": the model is asked about values it never learnt from). On
    the 2013 replay it is the one online signal found that picks the weeks a retrain pays off
    in (the spring and autumn temperature swings) better than an even schedule: README,
    "Replay of 2013". Like drift and quality it waits for ``min_age``. ``support_span`` names
    the rows the shares were judged on (the batch, or the newest ``retrain.support_hours``).
    """
    if rows == 0:
        return Decision(action="no_data", reason="no new data")
    if not has_champion:
        return Decision(
            action="bootstrap",
            reason="no champion yet: train and register the first one",
            triggers=frozenset({"bootstrap"}),
        )
    triggers: set[str] = set()
    reasons = []
    for d in verdicts:
        if d.dataset_drift:
            triggers.add("drift")
            reasons.append(_said(d, len(verdicts)))
    # The quality verdict quality.trigger does not name is reported (no_drift's reason), only.
    if quality is not None and quality.degraded and quality_trigger in ("realised", "either"):
        triggers.add("quality")
        reasons.append(quality.reason)
    for sq in segment_quality:
        if sq.degraded and quality_trigger in ("realised", "either"):
            triggers.add("quality")
            reasons.append(sq.line())
    if estimated is not None and estimated.degraded and quality_trigger != "realised":
        triggers.add("estimated")
        reasons.append(estimated.line())
    for se in segment_estimated:
        if se.degraded and quality_trigger != "realised":
            triggers.add("estimated")
            reasons.append(se.line())
    beyond = sorted(((v, c) for c, v in (outside or {}).items() if v > support_share), reverse=True)
    if beyond:
        triggers.add("support")
        named = ", ".join(f"{c} {v:.1%}" for v, c in beyond)
        reasons.append(
            f"{support_span} leaves the champion's training range: {named} of rows beyond its"
            f" 1st-99th percentile (> retrain.support_share = {support_share:.1%})"
        )
    old = age is not None and max_age is not None and age >= max_age
    if old:
        triggers.add("age")
        reasons.append(
            f"the champion's data ends {age:.1f} days before this batch"
            f" (retrain.max_age_days = {max_age:g})"
        )
    if policy == "schedule":
        if old:
            reason = f"retrain schedule: the champion is {age:.1f} days old (>= {max_age:g})"
            return Decision(action="retrain", reason=reason, triggers=frozenset({"age"}))
        return Decision(
            action="no_retrain",
            reason="retrain schedule: not due",
            triggers=frozenset(triggers - {"age"}),
        )
    if policy == "always":
        return Decision(
            action="retrain",
            reason="; ".join(["retrain policy: always", *reasons]),
            triggers=frozenset({*triggers, "schedule"}),
        )
    young = not old and age is not None and min_age is not None and age < min_age
    if reasons and policy == "monitor" and young:
        held = (
            f"held: the champion's data ends {age:.1f} days before this batch"
            f" (< retrain.min_age_days = {min_age:g})"
        )
        return Decision(
            action="no_retrain", reason="; ".join([*reasons, held]), triggers=frozenset(triggers)
        )
    held = {t for t in triggers if _KIND[t] not in retrain_on}
    if reasons and policy == "monitor" and held:
        note = (
            f"reported only: {', '.join(sorted(held))} (retrain.triggers:"
            f" {', '.join(sorted(set(retrain_on)))})"
        )
        if triggers - held:
            return Decision(
                action="retrain",
                reason="; ".join([*reasons, note]),
                triggers=frozenset(triggers - held),
            )
        return Decision(
            action="no_retrain", reason="; ".join([*reasons, note]), triggers=frozenset(triggers)
        )
    if reasons and policy == "monitor":
        return Decision(action="retrain", reason="; ".join(reasons), triggers=frozenset(triggers))
    if reasons:  # policy "never": the findings are reported, nothing is retrained
        reason = "; ".join(["retrain policy: never", *reasons])
        return Decision(action="no_retrain", reason=reason, triggers=frozenset(triggers))
    if verdicts and all(d.verdict == "no_verdict" for d in verdicts):
        # Nothing could be judged (too few rows for every column or horizon): said as such.
        parts = ["no verdict"] + [_said(d, len(verdicts)) for d in verdicts]
        if quality is not None:
            parts.append(quality.reason)
        if estimated is not None:
            parts.append(estimated.line())
        return Decision(action="no_verdict", reason="; ".join(parts))
    parts = ["no drift"]
    parts += [_said(d, len(verdicts)) for d in verdicts]
    if quality is not None:
        parts.append(quality.reason)
    if estimated is not None:
        parts.append(estimated.line())
    if prediction is not None and prediction.drifted:
        parts.append("prediction drift seen (reported only)")
    return Decision(action="no_drift", reason="; ".join(parts))


# Which ``retrain.triggers`` entry lets each decision trigger retrain.
_KIND = {
    "drift": "drift",
    "quality": "quality",
    "estimated": "quality",
    "age": "age",
    "support": "support",
}


# The best value each metric can take: a champion scoring it on the holdout is saturated.
CEILING = {"rmse": 0.0, "mae": 0.0, "accuracy": 1.0, "f1": 1.0, "roc_auc": 1.0}


def at_ceiling(metric: str, value: float) -> bool:
    return abs(value - CEILING[metric]) <= 1e-12


def promotion_decision(
    metric: str,
    challenger: dict[str, float],
    champion: dict[str, float] | None,
    margin: float,
    always: bool = False,
    stale: bool = False,
) -> PromotionDecision:
    """Promote a challenger only when it beats the champion on the same holdout by ``margin``
    (or every challenger, ``always``: ``retrain.promote: always``).

    A tie at the ceiling: a champion with the metric's best value on the holdout (ROC AUC,
    accuracy or F1 of 1; RMSE or MAE of 0) cannot be beaten by any margin, so a drift alarm
    would retrain at every tick for ever. When the champion's reference is ``stale`` (the
    retrain was triggered by drift, age or support: the data moved away from what it learnt from), a
    challenger that ties it at the ceiling is promoted, and its window becomes the reference.
    A quality retrain never meets this case (a saturated champion has not degraded)."""
    ch = challenger.get(metric)
    base = {"metric": metric, "challenger": ch, "margin": margin}
    if champion is None:
        return PromotionDecision(
            promote=True, champion=None, reason="no champion yet: bootstrap", **base
        )
    cp = champion.get(metric)
    if always:
        reason = f"retrain.promote: always (challenger {metric} {_num(ch)}, champion {_num(cp)})"
        return PromotionDecision(promote=True, champion=cp, reason=reason, **base)
    if ch is None or cp is None:
        reason = (
            f"{metric} undefined on the holdout (one class only?; challenger {_num(ch)},"
            f" champion {_num(cp)}): kept champion"
        )
        return PromotionDecision(promote=False, champion=cp, reason=reason, **base)
    if better(metric, ch, cp, margin):
        reason = f"challenger {metric} {ch:.4g} beats champion {cp:.4g} by more than {margin:.0%}"
        if margin < 0 and better(metric, ch, cp, 0.0):
            reason = f"challenger {metric} {ch:.4g} beats champion {cp:.4g}"
        elif margin < 0:
            reason = f"challenger {metric} {ch:.4g} is within {-margin:.0%} of champion {cp:.4g}"
        return PromotionDecision(promote=True, champion=cp, reason=reason, **base)
    if stale and at_ceiling(metric, cp) and at_ceiling(metric, ch):
        reason = (
            f"challenger {metric} {ch:.4g} ties champion {cp:.4g} at the ceiling, and the"
            " champion's reference is stale (drift, age or support): promoted"
        )
        return PromotionDecision(promote=True, champion=cp, reason=reason, **base)
    reason = (
        f"challenger {metric} {ch:.4g} does not beat champion {cp:.4g} by {margin:.0%}:"
        " kept champion"
    )
    if margin < 0:
        reason = (
            f"challenger {metric} {ch:.4g} is more than {-margin:.0%} worse than champion"
            f" {cp:.4g}: kept champion"
        )
    return PromotionDecision(promote=False, champion=cp, reason=reason, **base)


def _num(v: float | None) -> str:
    return "-" if v is None else f"{v:.4g}"


def _said(d: DriftResult, horizons: int) -> str:
    """A verdict's summary, named by its horizon when a tick judges several."""
    return f"{d.span}: {d.summary()}" if d.span and horizons > 1 else d.summary()

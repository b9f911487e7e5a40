"""Is a metric on a handful of labelled rows worse than a threshold beyond chance? One-sided.

A segment's quality verdict (``model.segments``) rests on few labelled rows: a tolerance alone
(worse than the baseline by 10%) alarms on a quiet segment whose metric is merely noisy, and
with one verdict per segment per tick the alarms add up. So a segment is called degraded only
when its excess over the tolerance is also significant at its share of the false-alarm rate
(driftwatch.monitor.segment_quality). The tests are textbook ones on the per-row outcome:

- RMSE / MAE: the mean of the per-row loss (squared / absolute error) against the threshold's
  loss (threshold² / threshold), normal approximation of a mean (hundreds of rows per segment
  and tick; the loss's own standard deviation, so a heavy tail widens it);
- accuracy: exact binomial test of the correct rows against the threshold accuracy;
- ROC AUC: normal approximation with Hanley & McNeil's (1982) standard error at the threshold;
- F1: bootstrap of the confusion matrix (a multinomial draw of its cells, which is what
  resampling rows does to it), p-value (1 + draws at least as good) / (1 + draws).

scipy is imported in the functions (``driftwatch --help`` stays instant). Written here, not
taken from a library: scipy gives the distributions, but no library tests a *metric* against a
threshold one-sidedly from predictions (statsmodels' tests are on means and proportions, and it
is not a dependency).
"""

from __future__ import annotations

import numpy as np

# F1's bootstrap: draws, and the seed (a verdict is reproducible).
F1_DRAWS = 4000
F1_SEED = 0


def worse_p_value(metric: str, y: np.ndarray, p: np.ndarray, threshold: float, task: str) -> float:
    """The one-sided p-value of "the rows' metric is no worse than ``threshold``" (small: the
    rows are worse beyond chance). ``p``: predictions as :func:`score_predictions` takes them
    (values for a regression, the positive class's probability for binary, the predicted class
    for multiclass)."""
    y, p = np.asarray(y, dtype=float), np.asarray(p, dtype=float)
    if len(y) == 0:
        return 1.0
    if metric in ("rmse", "mae"):
        err = y - p
        loss = err**2 if metric == "rmse" else np.abs(err)
        bound = threshold**2 if metric == "rmse" else threshold
        return _mean_above(loss, bound)
    labels = p.astype(int) if task == "multiclass" else (p >= 0.5).astype(int)
    truth = y.astype(int)
    if metric == "accuracy":
        from scipy import stats

        if threshold <= 0:
            return 1.0
        correct = int((labels == truth).sum())
        return float(stats.binom.cdf(correct, len(truth), min(threshold, 1.0)))
    if metric == "roc_auc":
        return _auc_below(truth, p, threshold)
    if metric == "f1":
        return _f1_below(truth, labels, threshold, task)
    raise ValueError(f"no significance test for metric {metric!r}")


def _mean_above(loss: np.ndarray, bound: float) -> float:
    from scipy import stats

    n = len(loss)
    mean = float(loss.mean())
    sd = float(loss.std(ddof=1)) if n > 1 else 0.0
    if sd == 0.0:
        return 0.0 if mean > bound else 1.0
    return float(stats.norm.sf((mean - bound) / (sd / np.sqrt(n))))


def _auc_below(truth: np.ndarray, score: np.ndarray, threshold: float) -> float:
    from scipy import stats
    from sklearn.metrics import roc_auc_score

    n1 = int((truth == 1).sum())
    n0 = len(truth) - n1
    if n1 == 0 or n0 == 0 or threshold <= 0 or threshold >= 1:
        return 1.0
    auc = float(roc_auc_score(truth, score))
    t = threshold
    q1, q2 = t / (2 - t), 2 * t * t / (1 + t)
    var = (t * (1 - t) + (n1 - 1) * (q1 - t * t) + (n0 - 1) * (q2 - t * t)) / (n1 * n0)
    return float(stats.norm.sf((t - auc) / np.sqrt(max(var, 1e-12))))


def _f1_below(truth: np.ndarray, labels: np.ndarray, threshold: float, task: str) -> float:
    classes = np.unique(np.concatenate([truth, labels]))
    k = len(classes)
    index = {c: i for i, c in enumerate(classes)}
    cells = np.zeros((k, k))
    for t, lab in zip(truth, labels, strict=True):
        cells[index[t], index[lab]] += 1
    rng = np.random.default_rng(F1_SEED)
    draws = rng.multinomial(len(truth), cells.ravel() / cells.sum(), size=F1_DRAWS)
    draws = draws.reshape(F1_DRAWS, k, k).astype(float)
    tp = np.diagonal(draws, axis1=1, axis2=2)
    fp = draws.sum(axis=1) - tp  # predicted as the class, truly another
    fn = draws.sum(axis=2) - tp
    denom = 2 * tp + fp + fn
    f1 = np.divide(2 * tp, denom, out=np.zeros_like(tp), where=denom > 0)
    if task == "multiclass":
        values = f1.mean(axis=1)  # macro, as score_predictions
    else:
        values = f1[:, index[1]] if 1 in index else np.zeros(F1_DRAWS)
    return float((1 + (values >= threshold).sum()) / (1 + F1_DRAWS))

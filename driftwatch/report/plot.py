"""A picture of the recent history: drifted share and the champion's metric per run, with
retrains and promotions marked. Drawn from the stored run results (no server needed)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from driftwatch.monitor.result import MonitorResult

if TYPE_CHECKING:
    import pandas as pd

    from driftwatch.monitor.backtest import BacktestResult


def plot_history(
    results: list[MonitorResult],
    path: Path,
    title: str = "",
    realised: pd.DataFrame | None = None,
) -> Path:
    """Drifted share and the champion's metric per run; with ``realised`` (from history) a
    third panel: the realised metric per period of prediction time and its labelled rows."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not results:
        raise ValueError("no stored runs to plot")
    x = list(range(len(results)))
    share = [r.drift.share if r.drift else float("nan") for r in results]
    alarm = [bool(r.drift and r.drift.dataset_drift) for r in results]
    last = next((r.drift for r in reversed(results) if r.drift), None)
    # Only Evidently's rule compares the share with a threshold; the others alarm on any column.
    threshold = last.drift_share if last is not None and last.method == "evidently" else None
    metric = next((r.quality.metric for r in results if r.quality), "metric")
    value = [
        r.quality.value if r.quality and r.quality.value is not None else float("nan")
        for r in results
    ]
    base = [
        r.quality.baseline if r.quality and r.quality.baseline is not None else float("nan")
        for r in results
    ]
    # The estimate (no labels needed) and its interval, beside the realised metric.
    nan = float("nan")
    est = [
        (r.estimated.value, r.estimated.low, r.estimated.high)
        if r.estimated and r.estimated.value is not None
        else (nan, nan, nan)
        for r in results
    ]

    more = realised is not None and not realised.empty
    fig, axes = plt.subplots(
        3 if more else 2,
        1,
        figsize=(12, 9.5 if more else 6.5),
        height_ratios=[1, 1.2, 1.2] if more else [1, 1.2],
    )
    top, bottom = axes[0], axes[1]
    bottom.sharex(top)
    top.bar(x, share, color=["#d62728" if a else "#7f7f7f" for a in alarm], width=0.8)
    if threshold is not None:
        top.axhline(
            threshold,
            color="#d62728",
            linestyle="--",
            linewidth=1,
            label=f"drift_share {threshold:.0%}",
        )
        top.legend(loc="upper left", fontsize=8)
    top.set_ylim(0, 1)
    top.set_ylabel("drifted share\nof columns\n(red: alarm)")
    top.yaxis.set_major_formatter(matplotlib.ticker.PercentFormatter(1.0))

    bottom.plot(
        x, value, marker="o", markersize=3, color="#1f77b4", label=f"champion {metric} on the batch"
    )
    bottom.step(
        x,
        base,
        where="mid",
        linestyle="--",
        color="#1f77b4",
        alpha=0.6,
        label="champion baseline (holdout, or served: quality.baseline)",
    )
    if any(v == v for v, _, _ in est):
        bottom.fill_between(
            x,
            [lo for _, lo, _ in est],
            [hi for _, _, hi in est],
            color="#9467bd",
            alpha=0.15,
            step="mid",
            label="estimate's interval",
        )
        bottom.plot(
            x,
            [v for v, _, _ in est],
            marker=".",
            markersize=3,
            color="#9467bd",
            label=f"estimated {metric} (no labels)",
        )
    kept = [i for i, r in enumerate(results) if r.retrain and not r.retrain.promoted]
    promoted = [i for i, r in enumerate(results) if r.retrain and r.retrain.promoted]
    ymax = max((v for v in [*value, *(e[0] for e in est)] if v == v), default=1.0)
    for idx, style, label in (
        (promoted, "^", "retrained: promoted"),
        (kept, "x", "retrained: kept champion"),
    ):
        if idx:
            bottom.scatter(
                idx,
                [ymax * 1.08] * len(idx),
                marker=style,
                s=45,
                color="#2ca02c" if style == "^" else "#ff7f0e",
                label=label,
                zorder=3,
            )
    for i in promoted:
        for ax in (top, bottom):
            ax.axvline(i, color="#2ca02c", alpha=0.15, linewidth=3)
    bottom.set_ylabel(metric)
    bottom.legend(loc="lower left", fontsize=8, ncol=2)
    labels = [r.started[5:16].replace("T", " ") for r in results]
    step = max(1, len(x) // 14)
    bottom.set_xticks(x[::step], labels[::step], rotation=30, ha="right", fontsize=8)
    bottom.set_xlabel("monitor run (UTC start)")
    if more:
        assert realised is not None
        _realised_panel(axes[2], realised, metric)
    fig.suptitle(title or f"driftwatch: last {len(results)} runs")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _realised_panel(ax: Any, realised: pd.DataFrame, metric: str) -> None:
    """Realised metric per period (as labels filled in so far), labelled rows as bars."""
    metric = next((c for c in realised.columns if c not in REALISED_COLUMNS), metric)
    x = list(range(len(realised)))
    counts = ax.twinx()
    counts.bar(x, realised["labelled"], color="#bbbbbb", alpha=0.5, label="labelled rows")
    counts.set_ylabel("labelled rows")
    ax.set_zorder(counts.get_zorder() + 1)
    ax.patch.set_visible(False)
    ax.plot(
        x, realised[metric], marker="o", markersize=3, color="#9467bd", label=f"realised {metric}"
    )
    ax.set_ylabel(f"realised {metric}")
    step = max(1, len(x) // 14)
    ax.set_xticks(x[::step], list(realised["period"])[::step], rotation=30, ha="right", fontsize=8)
    ax.set_xlabel("period of prediction (labels arrived so far)")
    ax.legend(loc="upper left", fontsize=8)


REALISED_COLUMNS = ("period", "rows", "labelled", "champions")


def plot_backtest(
    results: list[BacktestResult],
    path: Path,
    title: str = "",
    quality_only: list[BacktestResult] | None = None,
) -> Path:
    """Per config: a column x batch heatmap of drift severity (1 = at the threshold) with the
    dataset alarms and retrains marked; below, the champion's metric per batch for each config
    (and for the ``quality_only`` results, which get no heatmap)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
    from matplotlib.colors import TwoSlopeNorm

    results = [r for r in results if r.batches]
    if not results:
        raise ValueError("no batches to plot")
    columns = list(results[0].batches[0].severity)
    n = max(len(r.batches) for r in results)
    heights = [max(2.0, 0.22 * len(columns) + 0.8) for _ in results] + [2.6]
    fig, axes = plt.subplots(
        len(results) + 1,
        1,
        sharex=True,
        figsize=(max(12, 0.22 * n + 3), sum(heights) + 1.2),
        height_ratios=heights,
        squeeze=False,
    )
    axes = axes[:, 0]
    norm = TwoSlopeNorm(vmin=0, vcenter=1, vmax=3)
    image = None
    for ax, res in zip(axes, results, strict=False):
        grid = np.array(
            [[b.severity.get(c, np.nan) for b in res.batches] for c in columns], dtype=float
        )
        image = ax.imshow(
            np.clip(grid, 0, 3),
            aspect="auto",
            cmap="RdYlBu_r",
            norm=norm,
            interpolation="nearest",
            extent=(-0.5, len(res.batches) - 0.5, len(columns) - 0.5, -0.5),
        )
        names = [f"{c} (report only)" if c in res.report_only else c for c in columns]
        ax.set_yticks(range(len(columns)), names, fontsize=8)
        s = res.summary()
        ax.set_title(
            f"{res.name}: method {res.method}, retrain policy {res.policy} - {s['alarms']} drift"
            f" alarms, {s['retrains']} retrains, {s['promotions']} promotions in"
            f" {s['batches']} batches",
            fontsize=10,
            loc="left",
        )
        for i, b in enumerate(res.batches):
            if b.dataset_drift:
                ax.plot(i, -1.1, marker="v", color="#d62728", markersize=6, clip_on=False)
            if b.retrained:
                ax.plot(
                    i,
                    len(columns) - 0.1,
                    marker="^",
                    markersize=7,
                    clip_on=False,
                    color="#2ca02c" if b.promoted else "#7f7f7f",
                    markerfacecolor="#2ca02c" if b.promoted else "none",
                )
        ax.set_ylim(len(columns) + 0.3, -1.6)
    bottom = axes[-1]
    metric = results[0].batches[0].metric
    for res in [*results, *(quality_only or [])]:
        x = list(range(len(res.batches)))
        y = [b.value if b.value is not None else np.nan for b in res.batches]
        (line,) = bottom.plot(x, y, marker="o", markersize=3, linewidth=1.4, label=res.name)
        promoted = [i for i, b in enumerate(res.batches) if b.promoted]
        bottom.plot(
            promoted,
            [y[i] for i in promoted],
            linestyle="none",
            marker="^",
            markersize=7,
            color=line.get_color(),
        )
    bottom.set_ylabel(f"champion {metric}\non the batch")
    bottom.grid(alpha=0.3)
    bottom.legend(loc="upper left", fontsize=8)
    labels = [b.label for b in results[0].batches]
    step = max(1, len(labels) // 16)
    bottom.set_xticks(
        range(0, len(labels), step), labels[::step], rotation=35, ha="right", fontsize=8
    )
    if image is not None:
        bar = fig.colorbar(image, ax=list(axes[:-1]), fraction=0.025, pad=0.01)
        bar.set_label("drift severity (1 = threshold)", fontsize=8)
    fig.suptitle(
        title or "driftwatch backtest: red v = dataset drift alarm, ^ = retrain (filled: promoted)",
        fontsize=11,
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path

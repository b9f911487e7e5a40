"""A picture of the recent history: drifted share and the champion's metric per run, with
retrains and promotions marked. Drawn from the stored run results (no server needed)."""

from __future__ import annotations

from pathlib import Path

from driftwatch.result import MonitorResult


def plot_history(results: list[MonitorResult], path: Path, title: str = "") -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not results:
        raise ValueError("no stored runs to plot")
    x = list(range(len(results)))
    share = [r.drift.share if r.drift else float("nan") for r in results]
    alarm = [bool(r.drift and r.drift.dataset_drift) for r in results]
    threshold = next((r.drift.drift_share for r in reversed(results) if r.drift), None)
    metric = next((r.quality.metric for r in results if r.quality), "metric")
    value = [
        r.quality.value if r.quality and r.quality.value is not None else float("nan")
        for r in results
    ]
    base = [
        r.quality.baseline if r.quality and r.quality.baseline is not None else float("nan")
        for r in results
    ]

    fig, (top, bottom) = plt.subplots(2, 1, sharex=True, figsize=(12, 6.5), height_ratios=[1, 1.2])
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
    top.set_ylabel("drifted share\nof columns")
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
        label="champion baseline (holdout)",
    )
    kept = [i for i, r in enumerate(results) if r.retrain and not r.retrain.promoted]
    promoted = [i for i, r in enumerate(results) if r.retrain and r.retrain.promoted]
    ymax = max((v for v in value if v == v), default=1.0)
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
    fig.suptitle(title or f"driftwatch: last {len(results)} runs")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path

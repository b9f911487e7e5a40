"""The retrain subflow: train a challenger, log and register it, and promote it only if it wins.

Order matters for atomicity: the challenger is trained, scored, logged and registered first;
the ``champion`` alias moves last, in one call, and only if everything before succeeded. A
failure anywhere before leaves the champion (and so the drift reference) as it was.
"""

from __future__ import annotations

import time
from typing import Any

import pandas as pd
from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from driftwatch.config import Settings
from driftwatch.faults import checkpoint
from driftwatch.model import quality
from driftwatch.model.estimators import train
from driftwatch.monitor.result import RetrainOutcome
from driftwatch.monitor.window import PromotionDecision, prepare_window, promotion_decision
from driftwatch.orchestration.tasks import (
    champion_task,
    load_model_task,
    load_settings_task,
    with_retries,
)
from driftwatch.report.text import artifact_key, retrain_markdown
from driftwatch.store.references import store_reference
from driftwatch.store.registry import ChampionInfo, Registry


@task(name="build training window", cache_policy=NO_CACHE)
def window_task(
    settings: Settings, champion: ChampionInfo | None, batch_files: list[str]
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    return prepare_window(settings, champion.reference if champion else None, batch_files)


@task(name="train challenger", cache_policy=NO_CACHE)
def train_task(settings: Settings, train_rows: pd.DataFrame) -> Any:
    return train(train_rows, settings.model)


@task(name="score on holdout", cache_policy=NO_CACHE)
def score_task(settings: Settings, model: Any, holdout: pd.DataFrame) -> dict[str, float]:
    return quality.score(model, holdout, settings.model)


@task(name="log and register challenger", cache_policy=NO_CACHE)
def log_challenger_task(
    settings: Settings,
    model: Any,
    metrics: dict[str, float],
    window: pd.DataFrame,
    train_rows: pd.DataFrame,
    holdout: pd.DataFrame,
    reason: str,
) -> tuple[str, str, str]:
    stamp = pd.Timestamp.now(tz="UTC").strftime("%Y%m%dT%H%M%S%f")
    ref_path = store_reference(settings, window, stamp)
    params = {
        "estimator": settings.model.estimator,
        "task": settings.model.task,
        "target": settings.model.target,
        "features": ",".join(settings.model.features),
        "train_rows": len(train_rows),
        "holdout_rows": len(holdout),
        "window_days": settings.retrain.window_days,
        "promotion_margin": settings.retrain.promotion_margin,
        "trigger": reason,
        **{f"model.{k}": v for k, v in settings.model.params.items()},
    }
    run_id, version = Registry(settings).log_challenger(
        model, params, metrics, train_rows, holdout, ref_path
    )
    return run_id, version, str(ref_path)


@task(name="move champion alias", cache_policy=NO_CACHE)
def promote_task(settings: Settings, version: str) -> str | None:
    return Registry(settings).promote(version)


@task(name="record decision", cache_policy=NO_CACHE)
def record_decision_task(settings: Settings, run_id: str, decision: PromotionDecision) -> None:
    Registry(settings).log_decision(run_id, decision)


@flow(name="driftwatch-retrain", validate_parameters=True)
def retrain_flow(config_path: str, batch_files: list[str], reason: str = "") -> dict[str, Any]:
    """Challenger vs champion on the same, most recent, holdout."""
    started = time.time()
    log = get_run_logger()
    settings = load_settings_task(config_path)
    champion = with_retries(champion_task, settings)(settings)
    window, train_rows, holdout = window_task(settings, champion, batch_files)
    log.info(
        "training window: %d rows (%d train, %d holdout, newest %s)",
        len(window),
        len(train_rows),
        len(holdout),
        holdout[settings.model.timestamp].max() if settings.model.timestamp in holdout else "-",
    )
    challenger = train_task(settings, train_rows)
    checkpoint("after-train")
    challenger_scores = score_task(settings, challenger, holdout)
    champion_scores = None
    if champion is not None:
        champ_model = with_retries(load_model_task, settings)(settings, champion.version)
        champion_scores = score_task(settings, champ_model, holdout)
    metric = settings.quality_metric
    decision = promotion_decision(
        metric, challenger_scores, champion_scores, settings.retrain.promotion_margin
    )
    metrics = {f"holdout_challenger_{k}": v for k, v in challenger_scores.items()}
    metrics |= {f"holdout_champion_{k}": v for k, v in (champion_scores or {}).items()}
    run_id, version, ref_path = with_retries(log_challenger_task, settings)(
        settings, challenger, metrics, window, train_rows, holdout, reason
    )
    checkpoint("after-log")
    with_retries(record_decision_task, settings)(settings, run_id, decision)
    checkpoint("after-decision")
    previous = champion.version if champion else None
    if decision.promote:
        with_retries(promote_task, settings)(settings, version)
        checkpoint("after-promote")
    log.info(
        "challenger v%s %s=%.4g, champion %s %s -> %s: %s",
        version,
        metric,
        decision.challenger,
        f"v{previous}" if previous else "(none)",
        f"{decision.champion:.4g}" if decision.champion is not None else "-",
        "PROMOTED" if decision.promote else "KEPT champion",
        decision.reason,
    )
    outcome = RetrainOutcome(
        promoted=decision.promote,
        reason=decision.reason,
        metric=metric,
        challenger_score=decision.challenger,
        champion_score=decision.champion,
        challenger_version=version,
        champion_version=version if decision.promote else previous,
        previous_version=previous,
        train_rows=len(train_rows),
        holdout_rows=len(holdout),
        run_id=run_id,
        reference=ref_path if decision.promote else (champion.reference if champion else None),
        seconds=round(time.time() - started, 3),
    )
    if settings.report.artifacts:
        create_markdown_artifact(
            key=f"{artifact_key(settings)}-retrain",
            markdown=retrain_markdown(outcome, challenger_scores, champion_scores),
            description="challenger vs champion on the same holdout",
        )
    return outcome.__dict__

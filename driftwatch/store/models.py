"""The MLflow registry as the monitor's ModelRegistry port (see :mod:`driftwatch.store.registry`
for the MLflow calls themselves)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from driftwatch.errors import ChampionChanged, DriftwatchError, RegistryError
from driftwatch.monitor.plan import Plan
from driftwatch.monitor.ports import Challenge, Champion
from driftwatch.monitor.result import PromotionDecision
from driftwatch.store.registry import Registry


class RegistryModels:
    """Every call says "MLflow at URI is not usable: why" when the server fails it, so a run
    that dies on MLflow says so in one line (and the file is retried, not quarantined)."""

    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self._registry: Registry | None = None

    @contextmanager
    def _talking(self) -> Iterator[None]:
        try:
            yield
        except DriftwatchError:
            raise
        except Exception as exc:
            uri = self.plan.settings.tracking_uri
            raise RegistryError(f"MLflow at {uri} is not usable: {exc}") from exc

    @property
    def registry(self) -> Registry:
        if self._registry is None:  # MLflow is imported only when a step needs it
            self._registry = Registry(self.plan.settings)
        return self._registry

    def champion(self) -> Champion | None:
        with self._talking():
            info = self.registry.champion()
        if info is None:
            return None
        return Champion(
            info.version,
            info.run_id,
            info.baseline,
            info.reference,
            info.previous,
            info.validated_until,
            info.segments,
        )

    def load_model(self, version: str) -> Any:
        with self._talking():
            return self.registry.load_model(version)

    def log_challenger(self, challenge: Challenge, reference: str, key: str) -> tuple[str, str]:
        s = self.plan.settings
        params = {
            "estimator": s.model.estimator,
            "task": s.model.task,
            "target": s.model.target,
            "features": ",".join(s.model.features),
            "train_rows": len(challenge.train_rows),
            "holdout_rows": len(challenge.holdout),
            "window_days": s.retrain.window_days,
            "promotion_margin": s.retrain.promotion_margin,
            "random_state": s.retrain.random_state,
            "trigger": challenge.trigger,
            **{f"model.{k}": v for k, v in s.model.params.items()},
        }
        metrics = {f"holdout_challenger_{k}": v for k, v in challenge.challenger_scores.items()}
        metrics |= {
            f"holdout_champion_{k}": v for k, v in (challenge.champion_scores or {}).items()
        }
        with self._talking():
            return self.registry.log_challenger(
                challenge.model,
                params,
                metrics,
                challenge.train_rows,
                challenge.holdout,
                Path(reference),
                key=f"challenger:{key}",
                estimator=challenge.estimator,
                segment_baselines=challenge.challenger_segments if s.model.segments else None,
            )

    def log_monitor(self, metrics: dict[str, float], run_id: str, **extra: Any) -> str:
        """One MLflow run per monitor run (keyed by ``run_id``: a retry finds it)."""
        with self._talking():
            return self.registry.log_monitor(metrics, key=f"monitor:{run_id}", **extra)

    def artifact_page(self, mlflow_run_id: str, path: str) -> str | None:
        """The http URL of an artifact's page in MLflow's UI (None without an MLflow server)."""
        with self._talking():
            return self.registry.artifact_page(mlflow_run_id, path)

    def record_verdict(self, run_id: str, verdict: PromotionDecision) -> None:
        with self._talking():
            self.registry.log_decision(run_id, verdict)

    def promote(self, version: str, expected: str | None) -> str | None:
        """Move the alias to ``version`` unless the champion is no longer ``expected`` (the one
        the challenge was scored against): None when moved, else the one-line reason."""
        with self._talking():
            try:
                self.registry.promote(version, expected)
            except ChampionChanged as exc:
                return str(exc)
        return None

    def load_estimator(self, version: str) -> Any | None:
        with self._talking():
            return self.registry.load_estimator(version)

    def store_estimator(self, version: str, estimator: Any) -> None:
        with self._talking():
            self.registry.store_estimator(version, estimator)

    def rebaseline(
        self,
        version: str,
        scores: dict[str, float],
        until: str | None,
        segments: dict[str, dict[str, float]] | None = None,
    ) -> None:
        with self._talking():
            self.registry.set_baseline(version, scores, until, segments)

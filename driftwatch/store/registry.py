"""MLflow: experiment per monitored model, runs, registration, and the ``champion`` alias.

This is the only driftwatch module that imports MLflow (lazily: ``import mlflow`` costs ~5 s).
Everything goes through an explicit run id and ``MlflowClient`` rather than the thread-local
active run, because Prefect may run a task in another thread (FACTS.md). Models are only ever
loaded from the configured registry by name and version.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import threading
from dataclasses import dataclass
from functools import cache
from importlib import metadata
from pathlib import Path
from types import EllipsisType
from typing import Any

import pandas as pd

from driftwatch.config import Settings
from driftwatch.errors import ChampionChanged, RegistryError

CHAMPION = "champion"
TAG_REFERENCE = "driftwatch.reference"
TAG_PREVIOUS = "driftwatch.previous_champion"
TAG_BASELINE = "driftwatch.baseline."
TAG_VALIDATED = "driftwatch.validated_until"
# model.segments: the version's baseline scores per segment, one JSON tag ({"origin=EWR":
# {"rmse": ...}}): MLflow refuses "@" and "=" in tag and metric names, and a tag per segment
# and metric would bury the version's page (a model version tag holds up to 100,000 chars).
TAG_SEGMENTS = "driftwatch.segment_baselines"
TAG_RUN_TYPE = "driftwatch.run_type"
# A write's idempotency key: a retried write finds the run (and model version) made for its key.
TAG_KEY = "driftwatch.idempotency_key"
_KEY = re.compile(r"^[A-Za-z0-9_.:@/-]{1,250}$")
# What MLflow accepts in a metric or param name (mlflow.utils.validation, not on Windows).
_BAD_NAME_CHARS = re.compile(r"[^/\w.\- :]")

# Fail within seconds, not minutes, when the server is gone; Prefect task retries do the rest.
os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
os.environ.setdefault("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "1")
os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "20")
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # no tqdm bars in logs

_OPENING = threading.Lock()
_QUIET = threading.Lock()

# Registered model versions are immutable, so a loaded model can be kept for the process.
_MODELS: dict[tuple[str, str, str], Any] = {}
# Each version's performance estimator (driftwatch.model.estimate), or None when it has none.
_ESTIMATORS: dict[tuple[str, str, str], Any] = {}
ESTIMATOR_ARTIFACT = "estimator/estimator.skops"
# What an estimator file may hold: driftwatch's estimators and the scikit-learn parts they are
# made of. skops refuses any other type at load, so a tampered file cannot run code.
_ESTIMATOR_TYPES = ("driftwatch.model.", "sklearn.", "builtins.frozenset", "functools.partial")


@dataclass(frozen=True)
class ChampionInfo:
    version: str
    run_id: str
    baseline: dict[str, float]
    reference: str | None
    previous: str | None
    validated_until: str | None = None
    segments: dict[str, dict[str, float]] | None = None


@cache
def _pip_requirements() -> tuple[str, ...]:
    """Explicit requirements: MLflow's inference takes 14-20 s per log_model (FACTS.md)."""
    reqs: list[str] = []
    for dist in ("scikit-learn", "pandas", "numpy", "scipy"):
        try:
            reqs.append(f"{dist}=={metadata.version(dist)}")
        except metadata.PackageNotFoundError:
            continue
    return tuple(reqs)


class Registry:
    def __init__(self, settings: Settings) -> None:
        import mlflow  # noqa: F401  (lazy, heavy)
        from mlflow.tracking import MlflowClient

        self.settings = settings
        self.name = settings.model.name
        self.uri = settings.tracking_uri
        # One at a time per process: the models of a config with models: are checked in
        # threads, and the first client of a fresh sqlite store creates its tables (MLflow's
        # store cache is filled without a lock); once made, the store is shared and cached.
        with _OPENING:
            self.client = MlflowClient(tracking_uri=self.uri, registry_uri=self.uri)
            try:
                self.experiment_id = self._experiment()
            except Exception as exc:
                raise RegistryError(f"MLflow at {self.uri} is not usable: {exc}") from exc

    def _experiment(self) -> str:
        exp = self.client.get_experiment_by_name(self.name)
        if exp is not None:
            if exp.lifecycle_stage == "deleted":
                # Deleted in the UI (soft): runs could no longer be created in it, and the
                # registered versions still point at its runs, so bring it back.
                self.client.restore_experiment(exp.experiment_id)
            return exp.experiment_id
        location = None
        if self.uri.startswith("sqlite:"):
            artifacts = (self.settings.paths.state / "mlartifacts").resolve()
            artifacts.mkdir(parents=True, exist_ok=True)
            location = artifacts.as_uri()
        return self.client.create_experiment(self.name, artifact_location=location)

    # -- reading -----------------------------------------------------------------------------
    def champion(self) -> ChampionInfo | None:
        from mlflow.exceptions import MlflowException

        try:
            mv = self.client.get_model_version_by_alias(self.name, CHAMPION)
        except MlflowException as exc:
            if "not found" in str(exc).lower() or "RESOURCE_DOES_NOT_EXIST" in str(exc):
                return None
            raise RegistryError(f"MLflow at {self.uri}: cannot read the champion: {exc}") from exc
        run = self.client.get_run(mv.run_id)
        baseline = {
            k.removeprefix("holdout_challenger_"): v
            for k, v in run.data.metrics.items()
            if k.startswith("holdout_challenger_")
        }
        # A champion re-validated on a newer holdout (a challenger lost to it) carries that
        # score as its baseline, on the model version (see set_baseline).
        for k, v in mv.tags.items():
            if k.startswith(TAG_BASELINE):
                baseline[k.removeprefix(TAG_BASELINE)] = float(v)
        return ChampionInfo(
            version=str(mv.version),
            run_id=mv.run_id,
            baseline=baseline,
            reference=mv.tags.get(TAG_REFERENCE),
            previous=mv.tags.get(TAG_PREVIOUS),
            validated_until=mv.tags.get(TAG_VALIDATED),
            segments=_segments(mv.tags.get(TAG_SEGMENTS)),
        )

    def reference_of(self, version: str) -> str | None:
        """The reference (training window) path a model version is tagged with."""
        return self.client.get_model_version(self.name, version).tags.get(TAG_REFERENCE)

    def load_model(self, version: str) -> Any:
        key = (self.uri, self.name, version)
        if key not in _MODELS:
            import mlflow.sklearn

            # Both: with a server, the model's artifacts are fetched through the tracking URI.
            mlflow.set_tracking_uri(self.uri)
            mlflow.set_registry_uri(self.uri)
            _MODELS[key] = mlflow.sklearn.load_model(f"models:/{self.name}/{version}")
        return _MODELS[key]

    # -- writing -----------------------------------------------------------------------------
    def _keyed_run(self, key: str | None) -> Any | None:
        """The run a previous attempt of the write keyed ``key`` created, if any."""
        if key is None:
            return None
        if not _KEY.match(key):
            raise ValueError(f"idempotency key {key!r}: use letters, digits and _ . : @ / -")
        runs = self.client.search_runs(
            [self.experiment_id],
            filter_string=f"tags.`{TAG_KEY}` = '{key}'",
            order_by=["attributes.start_time ASC"],
            max_results=1,
        )
        return runs[0] if runs else None

    def _version_of_run(self, run_id: str) -> Any | None:
        """The model version registered from ``run_id`` (the oldest, should there be two)."""
        versions = self.client.search_model_versions(
            f"name = '{self.name}' and run_id = '{run_id}'"
        )
        return min(versions, key=lambda v: int(v.version)) if versions else None

    def log_challenger(
        self,
        model: Any,
        params: dict[str, Any],
        metrics: dict[str, float],
        train: pd.DataFrame,
        holdout: pd.DataFrame,
        reference_path: Path,
        tags: dict[str, str] | None = None,
        key: str | None = None,
        estimator: Any = None,
        segment_baselines: dict[str, dict[str, float]] | None = None,
    ) -> tuple[str, str]:
        """Log the run, the datasets and the model, and register it. Returns (run_id, version).

        The alias is *not* touched here: promotion is a separate step that only happens after
        this one has fully succeeded.

        ``key`` makes the write idempotent (give the same key on a retry, e.g. the flow run id
        + "-challenger"): the run is tagged with it, and a later call with the key finishes the
        run an earlier attempt made, or returns the version already registered from it, rather
        than making a second run and version. A registered version keeps the reference it was
        tagged with first. ``estimator``: the model's performance estimator, stored in the run
        (``estimator/estimator.skops``) and found by :meth:`load_estimator`.
        ``segment_baselines``: its scores per segment of the holdout (a version tag).
        """
        import mlflow
        import mlflow.data
        import mlflow.sklearn

        mlflow.set_tracking_uri(self.uri)
        mlflow.set_registry_uri(self.uri)
        target = self.settings.model.target
        run = self._keyed_run(key)
        if run is None:
            run = self.client.create_run(
                self.experiment_id,
                tags={TAG_RUN_TYPE: "retrain", **(tags or {}), **({TAG_KEY: key} if key else {})},
                run_name=f"retrain-{pd.Timestamp.now(tz='UTC'):%Y%m%dT%H%M%S}",
            )
        else:
            done = self._version_of_run(run.info.run_id)
            if done is not None:  # registered by an earlier attempt; maybe not yet tagged
                if not done.tags.get(TAG_REFERENCE):
                    self.client.set_model_version_tag(
                        self.name, str(done.version), TAG_REFERENCE, str(reference_path)
                    )
                if segment_baselines is not None and TAG_SEGMENTS not in done.tags:
                    self._tag_segments(str(done.version), segment_baselines)
                return run.info.run_id, str(done.version)
            for k, v in (tags or {}).items():
                if run.data.tags.get(k) != v:
                    self.client.set_tag(run.info.run_id, k, v)
        run_id = run.info.run_id
        logged = {i.dataset.name for i in (run.inputs.dataset_inputs if run.inputs else [])}
        try:
            # MLflow prints run links and registration chatter to stdout; keep the CLI's clean.
            # sys.stdout is one for the process: models checked in threads (a config with
            # models:) take turns here, or one thread's redirect would outlive the other's and
            # swallow the process's output for good.
            with (
                _QUIET,
                contextlib.redirect_stdout(io.StringIO()),
                mlflow.start_run(run_id=run_id),
            ):
                new_params = {
                    _name(k): str(v)[:500]
                    for k, v in params.items()
                    if _name(k) not in run.data.params
                }
                if new_params:
                    mlflow.log_params(new_params)
                new_metrics = {
                    _name(k): v for k, v in metrics.items() if _name(k) not in run.data.metrics
                }
                if new_metrics:
                    mlflow.log_metrics(new_metrics)
                for frame, context in ((train, "training"), (holdout, "holdout")):
                    if f"{self.name}-{context}" in logged:
                        continue
                    ds = mlflow.data.from_pandas(
                        _loggable(frame), name=f"{self.name}-{context}", targets=target
                    )
                    mlflow.log_input(ds, context=context)
                mlflow.log_artifact(str(reference_path), artifact_path="reference")
                if estimator is not None:
                    self._log_estimator(run_id, estimator)
                with contextlib.redirect_stderr(io.StringIO()):
                    info = mlflow.sklearn.log_model(
                        model,
                        name="model",
                        pip_requirements=list(_pip_requirements()),
                        skops_trusted_types=_own_types(model),
                        registered_model_name=self.name,
                    )
            version = str(info.registered_model_version)
            if segment_baselines is not None:
                self._tag_segments(version, segment_baselines)
            self.client.set_model_version_tag(
                self.name, version, TAG_REFERENCE, str(reference_path)
            )
            return run_id, version
        except Exception:
            # Best effort: with the server gone this fails too, and must not hide the cause.
            with contextlib.suppress(Exception):
                self.client.set_terminated(run_id, status="FAILED")
            raise

    def _log_estimator(self, run_id: str, estimator: Any) -> None:
        import tempfile

        import skops.io as sio

        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / Path(ESTIMATOR_ARTIFACT).name
            path.write_bytes(sio.dumps(estimator))
            self.client.log_artifact(run_id, str(path), artifact_path="estimator")

    def store_estimator(self, version: str, estimator: Any) -> None:
        """Store ``estimator`` with the run of model version ``version`` (a champion promoted
        before estimators were stored gets its one once, then every process reads it)."""
        run_id = self.client.get_model_version(self.name, version).run_id
        self._log_estimator(run_id, estimator)
        _ESTIMATORS[(self.uri, self.name, version)] = estimator

    def load_estimator(self, version: str) -> Any | None:
        """The estimator stored with model version ``version``, or None; cached per process
        (a version's estimator is written once)."""
        key = (self.uri, self.name, version)
        if _ESTIMATORS.get(key) is not None:
            return _ESTIMATORS[key]
        import tempfile

        import skops.io as sio

        run_id = self.client.get_model_version(self.name, version).run_id
        folder = Path(ESTIMATOR_ARTIFACT).parent.as_posix()
        names = {a.path for a in self.client.list_artifacts(run_id, folder)}
        if ESTIMATOR_ARTIFACT not in names:
            return None
        with tempfile.TemporaryDirectory() as tmp:
            local = self.client.download_artifacts(run_id, ESTIMATOR_ARTIFACT, tmp)
            data = Path(local).read_bytes()
        types = sio.get_untrusted_types(data=data)
        foreign = [t for t in types if not t.startswith(_ESTIMATOR_TYPES)]
        if foreign:
            raise RegistryError(
                f"{self.name} v{version}: {ESTIMATOR_ARTIFACT} holds types driftwatch does not"
                f" trust: {foreign[:3]}; delete the artifact to have it fitted again"
            )
        _ESTIMATORS[key] = sio.loads(data, trusted=types)
        return _ESTIMATORS[key]

    def log_decision(self, run_id: str, decision: Any) -> None:
        """The promotion decision on the retrain run, next to both holdout scores."""
        tags = {
            "driftwatch.promoted": str(decision.promote).lower(),
            "driftwatch.decision": decision.reason[:5000],
        }
        for k, v in tags.items():
            self.client.set_tag(run_id, k, v)
        self.client.set_terminated(run_id)

    def _tag_segments(self, version: str, segments: dict[str, dict[str, float]]) -> None:
        import json

        value = json.dumps(segments, sort_keys=True)
        self.client.set_model_version_tag(self.name, version, TAG_SEGMENTS, value)

    def set_baseline(
        self,
        version: str,
        scores: dict[str, float],
        until: str | None,
        segments: dict[str, dict[str, float]] | None = None,
    ) -> None:
        """The champion's baseline from now on: its scores on the newest holdout (which ends at
        ``until``: the champion counts as validated up to then), and per segment."""
        if segments is not None:  # first: the tags below are what a retry checks
            self._tag_segments(version, segments)
        for k, v in scores.items():
            self.client.set_model_version_tag(self.name, version, f"{TAG_BASELINE}{k}", repr(v))
        if until:
            self.client.set_model_version_tag(self.name, version, TAG_VALIDATED, until)

    def promote(self, version: str, expected: str | None | EllipsisType = ...) -> str | None:
        """Point ``champion`` at ``version``; tag it with the champion it replaced (returned).

        ``expected``: the champion the challenger was scored against. If the alias points
        elsewhere now (a rollback during the retrain), it is left there: ChampionChanged, and the
        challenger's run is tagged not promoted with that reason. The alias already at
        ``version`` (a retried promotion) is not a change. MLflow has no compare-and-set, so
        this narrows the race to the moment between the read and the move; ``rollback`` also
        takes the monitor's lock, so driftwatch's own rollback never falls in it.
        """
        previous = self.champion()
        current = previous.version if previous else None
        if expected is not ... and current not in (expected, version):
            refused = ChampionChanged(expected, current)
            run_id = self.client.get_model_version(self.name, version).run_id
            self.client.set_tag(run_id, "driftwatch.promoted", "false")
            self.client.set_tag(run_id, "driftwatch.decision", str(refused))
            raise refused
        if previous is not None and previous.version != version:
            self.client.set_model_version_tag(self.name, version, TAG_PREVIOUS, previous.version)
            self.client.set_model_version_tag(
                self.name, previous.version, "driftwatch.retired_by", version
            )
        self.client.set_registered_model_alias(self.name, CHAMPION, version)
        return previous.version if previous else None

    def rollback(self) -> tuple[str, str, str | None]:
        """Move the alias back to the previous champion. Returns (from, to, its reference)."""
        current = self.champion()
        if current is None or not current.previous:
            raise RegistryError(f"{self.name}: no previous champion to roll back to")
        mv = self.client.get_model_version(self.name, current.previous)
        self.client.set_registered_model_alias(self.name, CHAMPION, current.previous)
        self.client.set_model_version_tag(
            self.name, current.version, "driftwatch.rolled_back", "true"
        )
        return current.version, current.previous, mv.tags.get(TAG_REFERENCE)

    def log_monitor(
        self,
        metrics: dict[str, float],
        params: dict[str, Any],
        tags: dict[str, str],
        artifacts: list[str] | None = None,
        key: str | None = None,
    ) -> str:
        """One MLflow run per monitor run, so drift and quality trends plot in the MLflow UI.

        ``key`` (the monitor's flow run id) makes a retry find the run of an earlier attempt:
        a finished one is returned as it is, an unfinished one is completed. Metric names MLflow
        refuses (e.g. a column "wind speed (mph)") are logged with ``_`` for each bad character.
        """
        from mlflow.entities import Metric, Param, RunTag

        run = self._keyed_run(key)
        if run is not None and run.info.status == "FINISHED":
            return run.info.run_id
        if run is None:
            run = self.client.create_run(
                self.experiment_id,
                tags={TAG_RUN_TYPE: "monitor", **tags, **({TAG_KEY: key} if key else {})},
                run_name=f"monitor-{pd.Timestamp.now(tz='UTC'):%Y%m%dT%H%M%S}",
            )
        run_id = run.info.run_id
        now = int(pd.Timestamp.now(tz="UTC").timestamp() * 1000)
        self.client.log_batch(
            run_id,
            metrics=[
                Metric(_name(k), float(v), now, 0)
                for k, v in metrics.items()
                if _name(k) not in run.data.metrics
            ],
            params=[
                Param(_name(k), str(v)[:500])
                for k, v in params.items()
                if _name(k) not in run.data.params
            ],
            tags=[RunTag(k, v) for k, v in tags.items() if run.data.tags.get(k) != v],
        )
        for path in dict.fromkeys(artifacts or []):  # each report once
            self.client.log_artifact(run_id, path, artifact_path="reports")
        self.client.set_terminated(run_id)
        return run_id

    def artifact_page(self, run_id: str, path: str) -> str | None:
        """An http URL that shows a run's artifact in a browser, or None when MLflow is no server.

        MLflow 3.17 serves ``/get-artifact?...`` and the ``mlflow-artifacts`` proxy as
        downloads (``Content-Disposition: attachment``, against XSS), so a browser saves the file
        instead of showing it; the run page's artifact view (this URL) previews an HTML file in a
        sandboxed frame, which driftwatch's own page (no script) renders in (seen in Chromium)."""
        if not self.uri.startswith(("http://", "https://")):
            return None
        from urllib.parse import quote

        base = self.uri.rstrip("/")
        return f"{base}/#/experiments/{self.experiment_id}/runs/{run_id}/artifacts/{quote(path)}"


def _segments(tag: str | None) -> dict[str, dict[str, float]] | None:
    """The segment baselines tag read back (None: the version has none; a damaged tag is
    treated as none, so the monitor says "no segment baselines" rather than failing)."""
    import json

    if not tag:
        return None
    try:
        data = json.loads(tag)
        return {str(s): {str(k): float(v) for k, v in m.items()} for s, m in data.items()}
    except (ValueError, TypeError, AttributeError):
        return None


def _name(key: str) -> str:
    """A metric or param name MLflow accepts: each refused character becomes ``_``."""
    return _BAD_NAME_CHARS.sub("_", key)


def _own_types(model: Any) -> list[str]:
    """The types of a model we trained ourselves, which MLflow's skops format asks us to vouch
    for; loading still refuses any other type, so a tampered artifact cannot smuggle one in."""
    import skops.io as sio

    return sorted(sio.get_untrusted_types(data=sio.dumps(model)))


def _loggable(frame: pd.DataFrame) -> pd.DataFrame:
    """mlflow.data hashes the frame; object columns with NaN are fine, tz-aware times too."""
    return frame.reset_index(drop=True)

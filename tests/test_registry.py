"""Registry writes against a real MLflow sqlite store under tmp_path: the monitor run's report
is uploaded once, and a retried write (a Prefect task retry) finds what the first attempt made
instead of making a second run, model version or reference."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from driftwatch.config import Settings
from driftwatch.model.estimators import train
from driftwatch.store.registry import TAG_REFERENCE, TAG_RUN_TYPE, Registry

KEY_TAG = "driftwatch.idempotency_key"


def runs_of(reg: Registry, run_type: str) -> list[Any]:
    return reg.client.search_runs(
        [reg.experiment_id], filter_string=f"tags.`{TAG_RUN_TYPE}` = '{run_type}'"
    )


def versions_of(reg: Registry) -> list[Any]:
    return reg.client.search_model_versions(f"name = '{reg.name}'")


def challenger(reg: Registry, settings: Settings, rows: pd.DataFrame, tmp_path: Path, **kw):
    model = train(rows, settings.model)
    ref = tmp_path / "reference-1.parquet"
    rows.to_parquet(ref, index=False)
    return reg.log_challenger(
        model,
        {"estimator": settings.model.estimator, "train_rows": len(rows)},
        {"holdout_challenger_rmse": 12.5},
        rows.head(200),
        rows.tail(100),
        ref,
        **kw,
    )


# -- the Evidently report: uploaded once per monitor run ------------------------------------------

_UPLOADS: list[tuple[str, str | None]] = []


def _counting_scheme() -> str:
    """A real local artifact store that also counts the files uploaded to it (MLflow picks the
    artifact repository by the URI scheme of the experiment's artifact location)."""
    from mlflow.store.artifact.artifact_repository_registry import _artifact_repository_registry
    from mlflow.store.artifact.local_artifact_repo import LocalArtifactRepository

    class CountingRepository(LocalArtifactRepository):
        def __init__(self, artifact_uri: str, *args: Any, **kwargs: Any) -> None:
            super().__init__(artifact_uri.replace("countingfile:", "file:", 1), *args, **kwargs)

        def log_artifact(self, local_file: str, artifact_path: str | None = None) -> None:
            _UPLOADS.append((Path(local_file).name, artifact_path))
            super().log_artifact(local_file, artifact_path)

    _artifact_repository_registry.register("countingfile", CountingRepository)
    return "countingfile"


def test_log_monitor_uploads_the_html_report_once(settings: Settings, tmp_path: Path) -> None:
    from mlflow.tracking import MlflowClient

    scheme = _counting_scheme()
    artifacts = tmp_path / "artifacts"
    artifacts.mkdir()
    MlflowClient(settings.tracking_uri).create_experiment(
        settings.model.name, artifact_location=f"{scheme}://{artifacts}"
    )
    reg = Registry(settings)
    html = tmp_path / "report-1.html"
    html.write_text("<html>drift</html>")
    _UPLOADS.clear()
    run_id = reg.log_monitor({"rows": 10.0}, {"outcome": "ok"}, {}, artifacts=[str(html)])
    assert _UPLOADS == [("report-1.html", "reports")]
    assert [f.path for f in reg.client.list_artifacts(run_id, "reports")] == [
        "reports/report-1.html"
    ]


# -- retried writes are idempotent -----------------------------------------------------------------


def test_log_challenger_retried_after_success_returns_the_same_run_and_version(
    settings: Settings, rows: pd.DataFrame, tmp_path: Path
) -> None:
    reg = Registry(settings)
    first = challenger(reg, settings, rows, tmp_path, key="flow-1-challenger")
    again = challenger(reg, settings, rows, tmp_path, key="flow-1-challenger")
    assert again == first
    assert len(runs_of(reg, "retrain")) == 1
    assert [str(v.version) for v in versions_of(reg)] == [first[1]]
    run = reg.client.get_run(first[0])
    assert run.data.tags[KEY_TAG] == "flow-1-challenger"
    assert len(run.inputs.dataset_inputs) == 2
    # another key is another challenger
    other = challenger(reg, settings, rows, tmp_path, key="flow-2-challenger")
    assert other[0] != first[0] and other[1] != first[1]


def test_log_challenger_retried_after_the_run_but_before_registration_reuses_the_run(
    settings: Settings, rows: pd.DataFrame, tmp_path: Path
) -> None:
    reg = Registry(settings)
    # the first attempt got as far as the run (and its params), then failed
    half = reg.client.create_run(
        reg.experiment_id, tags={TAG_RUN_TYPE: "retrain", KEY_TAG: "flow-1-challenger"}
    )
    reg.client.log_param(half.info.run_id, "estimator", settings.model.estimator)
    reg.client.set_terminated(half.info.run_id, status="FAILED")
    run_id, version = challenger(reg, settings, rows, tmp_path, key="flow-1-challenger")
    assert run_id == half.info.run_id
    assert len(runs_of(reg, "retrain")) == 1
    (mv,) = versions_of(reg)
    assert (str(mv.version), mv.run_id) == (version, run_id)
    assert mv.tags[TAG_REFERENCE] == str(tmp_path / "reference-1.parquet")
    run = reg.client.get_run(run_id)
    assert run.data.metrics["holdout_challenger_rmse"] == 12.5
    assert run.info.status == "FINISHED"


def test_log_challenger_retried_after_registration_but_before_the_reference_tag(
    settings: Settings, rows: pd.DataFrame, tmp_path: Path
) -> None:
    import mlflow
    import mlflow.sklearn

    reg = Registry(settings)
    half = reg.client.create_run(
        reg.experiment_id, tags={TAG_RUN_TYPE: "retrain", KEY_TAG: "flow-1-challenger"}
    )
    mlflow.set_tracking_uri(reg.uri)
    mlflow.set_registry_uri(reg.uri)
    with mlflow.start_run(run_id=half.info.run_id):
        mlflow.sklearn.log_model(
            train(rows, settings.model),
            name="model",
            pip_requirements=["scikit-learn"],
            skops_trusted_types=[],
            serialization_format="pickle",
            registered_model_name=reg.name,
        )
    (registered,) = versions_of(reg)
    assert TAG_REFERENCE not in registered.tags
    run_id, version = challenger(reg, settings, rows, tmp_path, key="flow-1-challenger")
    assert (run_id, version) == (half.info.run_id, str(registered.version))
    assert len(runs_of(reg, "retrain")) == 1
    (mv,) = versions_of(reg)
    assert mv.tags[TAG_REFERENCE] == str(tmp_path / "reference-1.parquet")


def test_log_monitor_retried_with_the_same_key_makes_one_run(
    settings: Settings, tmp_path: Path
) -> None:
    reg = Registry(settings)
    html = tmp_path / "report-1.html"
    html.write_text("<html>drift</html>")
    args = ({"rows": 10.0, "drifted_share": 0.25}, {"outcome": "ok"}, {"driftwatch.outcome": "ok"})
    first = reg.log_monitor(*args, artifacts=[str(html)], key="flow-1")
    assert reg.log_monitor(*args, artifacts=[str(html)], key="flow-1") == first
    # a first attempt that made the run and failed before its metrics: the retry completes it
    half = reg.client.create_run(
        reg.experiment_id, tags={TAG_RUN_TYPE: "monitor", KEY_TAG: "flow-2"}
    ).info.run_id
    assert reg.log_monitor(*args, artifacts=[str(html)], key="flow-2") == half
    assert sorted(r.info.run_id for r in runs_of(reg, "monitor")) == sorted([first, half])
    run = reg.client.get_run(half)
    assert run.data.metrics == {"rows": 10.0, "drifted_share": 0.25}
    assert run.data.params == {"outcome": "ok"}
    assert run.data.tags["driftwatch.outcome"] == "ok"
    assert run.info.status == "FINISHED"
    assert len(reg.client.get_metric_history(first, "rows")) == 1
    # without a key every call is a new run, as before
    assert reg.log_monitor(*args) not in (first, half)


# -- other registry defects ---------------------------------------------------------------------


def test_log_monitor_accepts_metric_names_mlflow_would_refuse(settings: Settings) -> None:
    """A column named like "wind speed (mph)" must not fail the run's record step."""
    reg = Registry(settings)
    run_id = reg.log_monitor({"drift_score.wind speed (mph)": 0.5, "rows": 1.0}, {}, {})
    assert reg.client.get_run(run_id).data.metrics == {
        "drift_score.wind speed _mph_": 0.5,
        "rows": 1.0,
    }


def test_registry_restores_a_deleted_experiment(settings: Settings) -> None:
    reg = Registry(settings)
    reg.client.delete_experiment(reg.experiment_id)
    again = Registry(settings)
    assert again.experiment_id == reg.experiment_id
    assert again.log_monitor({"rows": 1.0}, {}, {})

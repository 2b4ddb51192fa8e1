"""``sld discover``: find the law that extrapolates best for a task or your own data.

Examples::

    sld discover --task sft_scaling_law --budget-s 120 --json out.json
    sld discover --data runs.csv --features N,D --target loss --max-params 5 --predict next.csv --out preds.csv
    OPENAI_BASE_URL=http://127.0.0.1:8000/v1 sld discover --task parallel_scaling_law --proposer llm \
        --llm-model qwen --run-dir runs/par --llm-cache replies.sqlite
    sld discover --task parallel_scaling_law --proposer llm --run-dir runs/par --resume
"""

from __future__ import annotations

import json
import warnings
from contextlib import ExitStack
from pathlib import Path

import click
import pandas as pd

from sld.agent.discovery import Discovery, predict_task
from sld.agent.run import run_agent
from sld.benchmark import finite_r2, score_laws
from sld.commands.discovery_options import DiscoveryOptions, discovery_options
from sld.commands.options import corpus_option, split_names
from sld.corpus import DataWarning, load_table, read_columns
from sld.corpus.embedded import EMBEDDED_TASK
from sld.search import FitConfig, SplitArrays
from sld.tasks import Task, generic_task, get_task, parse_monotone
from sld.tasks.data import load_task_splits, task_arrays
from sld.tasks.literature import human_law

TOP_CANDIDATES = 5


def _print_discovery(discovery: Discovery, human_r2: float | None) -> None:
    for outcome in discovery.outcomes:
        click.echo(f"{outcome.problem.target} = {outcome.best.expression}")
        if outcome.best.shared:
            click.echo(f"  shared by all groups: {', '.join(outcome.best.shared)} (the others are fitted per group)")
        click.echo(f"  LaTeX: {outcome.law.latex}")
        if outcome.state.warning:
            click.echo(f"  warning: {outcome.state.warning}")
        if outcome.state.band is not None:
            click.echo(f"  uncertainty: {outcome.state.band.describe()}")
        for group, fit in list(outcome.fit.fits.items())[:12]:
            values = "failed" if fit.params is None else ", ".join(
                f"{spec.name}={value:.6g}" for spec, value in zip(outcome.law.constants, fit.params, strict=True))
            click.echo(f"  [{group}] {values}")
        if len(outcome.fit.fits) > 12:
            click.echo(f"  ... {len(outcome.fit.fits) - 12} more groups (see --json)")
        click.echo(f"  top candidates ({len(outcome.state.candidates)} evaluated):")
        for candidate in outcome.state.ranked()[:TOP_CANDIDATES]:
            click.echo(f"    val R^2 {candidate.validation_r2:8.4f}  {candidate.n_params} constants  "
                       f"[{candidate.source}] {candidate.identity[:100]}")
    click.echo(f"validation R^2 (extrapolation inside the training rows): {discovery.validation_r2:.4f}")
    if discovery.test_scores is not None:
        s = discovery.test_scores
        click.echo(f"test R^2 {s.r2:.4f}  NMSE {s.nmse:.4g}  NMAE {s.nmae:.4g}")
    if human_r2 is not None:
        click.echo(f"human-derived law test R^2 {human_r2:.4f}")
    click.echo(f"proposals by source: {discovery.proposals()} (LLM share {100 * discovery.llm_share():.0f}%)  "
               f"seconds: {discovery.seconds:.1f}")
    if discovery.proposer != "offline":
        llm = discovery.llm_summary()
        tokens = llm["tokens"]
        total = tokens["total"] if isinstance(tokens, dict) else 0
        click.echo(f"LLM {llm['model']}: {llm['calls']} calls ({llm['cached_calls']} from the cache), "
                   f"{total} tokens, {llm['failures']} failures, status {llm['status']}")


def _user_task(data: str, features: str | None, target: str | None, group: str | None,
               max_params: int, axis: str | None, monotone: tuple[str, ...], optima: tuple[str, ...]) -> Task:
    names, targets = split_names(features), split_names(target)
    return generic_task(name=Path(data).stem, features=names, targets=targets, group=group, max_params=max_params,
                        extrapolation_axis=split_names(axis) or None,
                        monotone=parse_monotone(monotone, features=names, targets=targets),
                        optima=[name for value in optima for name in split_names(value)])


def _echo_warnings(caught: list[warnings.WarningMessage]) -> None:
    for warning in caught:
        click.echo(f"warning: {warning.message}", err=True)


@click.command("discover")
@click.option("--task", "task_name", help="SLDBench task name (or --data for your own file).")
@corpus_option
@click.option("--data", type=click.Path(dir_okay=False), help="Your training rows (CSV or parquet).")
@click.option("--features", help="With --data: comma-separated feature columns.")
@click.option("--target", help="With --data: target column(s), comma-separated.")
@click.option("--group", help="With --data: column with one set of constants per value.")
@click.option("--axis", help="With --data: feature(s) along which you will extrapolate, comma-separated; several "
              "order rows by their product, e.g. N,D by N*D like compute (default: the first feature).")
@click.option("--monotone", multiple=True, metavar="[TARGET:]FEATURE=TREND",
              help="With --data: a trend you know, e.g. loss:N=decreasing (TREND: increasing or decreasing); "
              "repeat for several features.")
@click.option("--optimum", "optima", multiple=True, metavar="FEATURE",
              help="With --data: feature(s) with an interior optimum (e.g. lr, a U-shaped loss); repeatable.")
@click.option("--allow-nonpositive", multiple=True, metavar="COLUMN",
              help="With --data: size column(s) whose values <= 0 are meant (skips that check); repeatable.")
@click.option("--max-params", type=int,
              help="Constant budget per group and target (default: the task's; 6 for --data).")
@click.option("--predict", type=click.Path(dir_okay=False),
              help="With --data: rows to predict (scored if they hold the target).")
@click.option("--out", type=click.Path(dir_okay=False), help="With --predict: write predictions here (CSV).")
@click.option("--json", "json_path", type=click.Path(dir_okay=False), help="Write the summary JSON here.")
@click.option("--run-dir", type=click.Path(file_okay=False),
              help="Keep the config, every candidate, LLM calls, checkpoints, the result and the report here. "
              "[default: ./sld-runs/<task>-<time>/]")
@click.option("--no-report", is_flag=True,
              help="Do not write the HTML + Markdown report (RUN_DIR/report/index.html, report.md).")
@click.option("--resume", is_flag=True, help="Continue the run in --run-dir from its last checkpoint.")
@discovery_options
def command(task_name: str | None, corpus: str | None, data: str | None, features: str | None,
            target: str | None, group: str | None, axis: str | None, monotone: tuple[str, ...],
            optima: tuple[str, ...], allow_nonpositive: tuple[str, ...], max_params: int | None,
            predict: str | None, out: str | None, json_path: str | None, run_dir: str | None, no_report: bool,
            resume: bool, discovery: DiscoveryOptions) -> None:
    """Propose law forms, fit them per group, and choose the one that extrapolates best."""
    if task_name is not None and data is not None:
        raise click.UsageError("Pass either --task NAME or --data FILE, not both.")
    if resume and run_dir is None:
        raise click.UsageError("--resume needs --run-dir: the folder of the run to continue.")
    if discovery.offline_replay and discovery.cache_path(run_dir) is None:
        raise click.UsageError("--offline-replay needs --llm-cache PATH (or --run-dir holding llm_cache.sqlite).")
    config = discovery.agent_config()
    human_r2 = None
    test_frame = None
    data_paths = None
    if data is None and (monotone or optima or allow_nonpositive or axis):
        raise click.UsageError("--axis, --monotone, --optimum and --allow-nonpositive describe --data; "
                               "a --task declares its own.")
    if data is None:
        # With no task and no data, discover on the embedded proxy runs: works offline, out of the box.
        task = get_task(task_name or EMBEDDED_TASK)
        train, test = load_task_splits(task, corpus=corpus)
    else:
        task = _user_task(data, features, target, group, max_params or 6, axis, monotone, optima)
        # The up-front checks: data no law can make sense of fails here, before any search round.
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", DataWarning)
            train_frame = load_table(data, features=task.features, targets=task.targets, group=group,
                                     max_params=task.max_params, training=True,
                                     allow_nonpositive=[n for value in allow_nonpositive for n in split_names(value)])
        _echo_warnings(caught)
        train, test = task_arrays(task, train_frame), None
        data_paths = {"train": str(Path(data).resolve()), "test": str(Path(predict).resolve()) if predict else None}
        if predict is not None:
            scored = set(task.targets) <= set(read_columns(predict))
            test_frame = load_table(predict, features=task.features, targets=task.targets if scored else (),
                                    group=group)
            test = task_arrays(task, test_frame) if scored else None
    from sld.report.after_discover import default_run_dir, report_run

    folder = Path(run_dir) if run_dir else default_run_dir(task.name)
    with ExitStack() as stack:
        llm = discovery.open_llm(stack, str(folder))
        progress = discovery.progress()
        stack.callback(progress.close)
        found = run_agent(task, train, test, config, max_params=max_params, run_dir=folder, resume=resume, llm=llm,
                          progress=progress, data_paths=data_paths)
    if task.is_sldbench and test is not None:
        # The rows already loaded for the search: the human law is fitted on the same train rows, scored on the test.
        human_fit = FitConfig(n_starts=24, seed=discovery.seed)
        human_r2 = finite_r2(score_laws(human_law(task.name).laws, train, test, fit_config=human_fit)[0])
    _print_discovery(found, human_r2)
    if test_frame is not None and out is not None:
        rows = task_arrays(task, test_frame) if test is None else test
        if test is None:
            rows = SplitArrays(X=rows.X, Y=rows.X[:, :0], groups=rows.groups)
        predictions = pd.DataFrame(predict_task(found, rows), columns=[f"predicted_{t}" for t in task.targets])
        pd.concat([test_frame.reset_index(drop=True), predictions], axis=1).to_csv(out, index=False)
        click.echo(f"wrote {len(predictions)} predictions to {out}", err=True)
    if json_path is not None:
        summary = found.summary().model_dump(mode="json")
        summary["human_test_r2"] = human_r2
        Path(json_path).write_text(json.dumps(summary, indent=2))
        click.echo(f"wrote {json_path}", err=True)
    files = None if no_report else report_run(
        folder, corpus=corpus, progress=lambda line: None if discovery.quiet else click.echo(line, err=True))
    click.echo(f"report: {files.html}" if files else f"run directory: {folder}")

"""``sld discover``: find the law that extrapolates best for a task or your own data.

    sld discover --task sft_scaling_law --budget-s 120 --json out.json
    sld discover --data runs.csv --features N,D --target loss --max-params 5 --predict next.csv --out preds.csv
"""

from __future__ import annotations

import json
from pathlib import Path

import click
import pandas as pd

from sld.benchmark import load_task_splits, score_human_task
from sld.commands.options import corpus_option, split_names
from sld.corpus import load_table, read_columns
from sld.discovery import TaskDiscovery, discover_task, predict_task
from sld.search import FitConfig, SplitArrays
from sld.search.engine import EngineConfig
from sld.tasks import Task, generic_task, get_task
from sld.tasks.data import task_arrays

TOP_CANDIDATES = 5


def _print_discovery(discovery: TaskDiscovery, human_r2: float | None) -> None:
    for outcome in discovery.outcomes:
        click.echo(f"{outcome.problem.target} = {outcome.best.expression}")
        click.echo(f"  LaTeX: {outcome.law.latex}")
        for group, fit in list(outcome.fit.fits.items())[:12]:
            values = "failed" if fit.params is None else ", ".join(
                f"{spec.name}={value:.6g}" for spec, value in zip(outcome.law.constants, fit.params, strict=True))
            click.echo(f"  [{group}] {values}")
        if len(outcome.fit.fits) > 12:
            click.echo(f"  ... {len(outcome.fit.fits) - 12} more groups (see --json)")
        click.echo(f"  top candidates ({len(outcome.state.candidates)} evaluated):")
        for candidate in outcome.state.ranked()[:TOP_CANDIDATES]:
            click.echo(f"    val R^2 {candidate.validation_r2:8.4f}  {candidate.n_params} constants  "
                       f"[{candidate.source}] {candidate.expression[:100]}")
    click.echo(f"validation R^2 (extrapolation inside the training rows): {discovery.validation_r2:.4f}")
    if discovery.test_scores is not None:
        s = discovery.test_scores
        click.echo(f"test R^2 {s.r2:.4f}  NMSE {s.nmse:.4g}  NMAE {s.nmae:.4g}")
    if human_r2 is not None:
        click.echo(f"human-derived law test R^2 {human_r2:.4f}")
    click.echo(f"proposals: {discovery.proposals()}  seconds: {discovery.seconds:.1f}")


def _user_task(data: str, features: str | None, target: str | None, group: str | None,
               max_params: int, axis: str | None) -> Task:
    return generic_task(name=Path(data).stem, features=split_names(features), targets=split_names(target),
                        group=group, max_params=max_params, extrapolation_axis=axis)


@click.command("discover")
@click.option("--task", "task_name", help="SLDBench task name (or --data for your own file).")
@corpus_option
@click.option("--data", type=click.Path(dir_okay=False), help="Your training rows (CSV or parquet).")
@click.option("--features", help="With --data: comma-separated feature columns.")
@click.option("--target", help="With --data: target column(s), comma-separated.")
@click.option("--group", help="With --data: column with one set of constants per value.")
@click.option("--axis", help="With --data: feature along which you will extrapolate (default: the first).")
@click.option("--max-params", type=int, help="Constant budget per group and target (default: the task's; 6 for --data).")
@click.option("--predict", type=click.Path(dir_okay=False), help="With --data: rows to predict (scored if they hold the target).")
@click.option("--out", type=click.Path(dir_okay=False), help="With --predict: write predictions here (CSV).")
@click.option("--budget-s", default=600.0, show_default=True, help="Search time budget per task, seconds.")
@click.option("--workers", default=1, show_default=True, help="Processes fitting candidates in parallel.")
@click.option("--seed", default=0, show_default=True, help="Seed of every random choice.")
@click.option("--backend", type=click.Choice(["operon", "pysr", "none"]), default="operon", show_default=True,
              help="Symbolic-regression backend.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False), help="Write the summary JSON here.")
@click.option("--run-dir", type=click.Path(file_okay=False), help="Keep every candidate here; resumes a killed run.")
def command(task_name: str | None, corpus: str | None, data: str | None, features: str | None,
            target: str | None, group: str | None, axis: str | None, max_params: int | None,
            predict: str | None, out: str | None, budget_s: float, workers: int, seed: int, backend: str,
            json_path: str | None, run_dir: str | None) -> None:
    """Propose law forms, fit them per group, and choose the one that extrapolates best."""
    if task_name is not None and data is not None:
        raise click.UsageError("Pass either --task NAME or --data FILE, not both.")
    config = EngineConfig(budget_s=budget_s, workers=workers, seed=seed, backend=backend)  # type: ignore[arg-type]
    progress = lambda line: click.echo(line, err=True)  # noqa: E731
    human_r2 = None
    test_frame = None
    if data is None:
        task = get_task(task_name or "parallel_scaling_law")
        train, test = load_task_splits(task, corpus=corpus)
    else:
        task = _user_task(data, features, target, group, max_params or 6, axis)
        train_frame = load_table(data, features=task.features, targets=task.targets, group=group)
        train, test = task_arrays(task, train_frame), None
        if predict is not None:
            scored = set(task.targets) <= set(read_columns(predict))
            test_frame = load_table(predict, features=task.features, targets=task.targets if scored else (),
                                    group=group)
            test = task_arrays(task, test_frame) if scored else None
    discovery = discover_task(task, train, test, config, max_params=max_params,
                              run_dir=Path(run_dir) if run_dir else None, progress=progress)
    if task.is_sldbench:
        human_r2 = score_human_task(task.name, corpus=corpus, fit_config=FitConfig(n_starts=24, seed=seed)).r2
    _print_discovery(discovery, human_r2)
    if test_frame is not None and out is not None:
        rows = task_arrays(task, test_frame) if test is None else test
        if test is None:
            rows = SplitArrays(X=rows.X, Y=rows.X[:, :0], groups=rows.groups)
        predictions = pd.DataFrame(predict_task(discovery, rows), columns=[f"predicted_{t}" for t in task.targets])
        pd.concat([test_frame.reset_index(drop=True), predictions], axis=1).to_csv(out, index=False)
        click.echo(f"wrote {len(predictions)} predictions to {out}", err=True)
    if json_path is not None:
        summary = discovery.summary()
        summary["human_test_r2"] = human_r2
        Path(json_path).write_text(json.dumps(summary, indent=2))
        click.echo(f"wrote {json_path}", err=True)

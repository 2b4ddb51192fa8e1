"""``sld fit``: fit one law's constants per group on training rows and score it on test rows.

sld fit --task sft_scaling_law --law "A / (sft_data_size**alpha + B) + C"
sld fit --data train.csv --features N,D --target loss --law "E + A/N**a + B/D**b" \
        --predict test.csv --out preds.csv
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Sequence
from pathlib import Path

import click
import pandas as pd
import sympy

from sld.commands.options import corpus_option, split_names
from sld.corpus import load_sldbench, load_table, read_columns
from sld.search import FitConfig, Law, SplitArrays, SplitScore, parse_law, score_predictions, score_split
from sld.tasks import Task, TaskDefinitionError, generic_task, get_task
from sld.tasks.data import task_arrays


def _laws_for(task: Task, expressions: Sequence[str]) -> tuple[Law, ...]:
    if len(expressions) not in (1, len(task.targets)):
        raise TaskDefinitionError(
            f"Got {len(expressions)} --law values for {len(task.targets)} targets; pass one law for all "
            f"targets or one per target ({', '.join(task.targets)})."
        )
    texts = list(expressions) * len(task.targets) if len(expressions) == 1 else list(expressions)
    laws = tuple(parse_law(text, task.features) for text in texts)
    for law in laws:
        if not law.expr.free_symbols & {sympy.Symbol(name) for name in task.features}:
            names = ", ".join(law.constant_names)
            close = [m for n in law.constant_names for m in difflib.get_close_matches(n, task.features, n=1)]
            hint = f" Did you mean '{close[0]}'?" if close else ""
            raise TaskDefinitionError(
                f"Law '{law.text}' uses none of the features ({', '.join(task.features)}); its names {names} "
                f"would all be fitted constants.{hint} Write the law over the feature names."
            )
    return laws


def _constants_table(laws: Sequence[Law], evaluation: SplitScore, task: Task) -> dict[str, dict[str, dict[str, float]]]:
    """Return ``{target: {group: {constant: value}}}``; a failed group maps to an empty dict."""
    table: dict[str, dict[str, dict[str, float]]] = {}
    for target, law, grouped in zip(task.targets, laws, evaluation.fits, strict=True):
        table[target] = {
            group: {}
            if fit.params is None
            else {spec.name: float(v) for spec, v in zip(law.constants, fit.params, strict=True)}
            for group, fit in grouped.fits.items()
        }
    return table


def _print_result(task: Task, laws: Sequence[Law], evaluation: SplitScore, scored: bool) -> dict[str, object]:
    constants = _constants_table(laws, evaluation, task)
    for target, law in zip(task.targets, laws, strict=True):
        click.echo(f"{target} = {law.text}")
        for group, values in constants[target].items():
            shown = ", ".join(f"{name}={value:.6g}" for name, value in values.items())
            click.echo(f"  [{group}] {shown or 'fit failed'}")
    summary: dict[str, object] = {"task": task.name, "laws": [law.text for law in laws], "constants": constants}
    if scored:
        s = evaluation.scores
        failure = f"  ({s.message})" if s.failed else ""
        click.echo(f"test R^2 {s.r2:.6f}  NMSE {s.nmse:.6g}  NMAE {s.nmae:.6g}{failure}")
        summary.update({"r2": s.r2, "nmse": s.nmse, "nmae": s.nmae})
    return summary


def _load_user_frames(
    data: str, predict: str | None, task: Task, laws: Sequence[Law], group: str | None
) -> tuple[pd.DataFrame, pd.DataFrame | None, bool]:
    """Load the user's training rows and, if given, the rows to predict (scored when they hold the target)."""
    positive = tuple(sorted(set().union(*(law.positive_variables for law in laws))))
    train = load_table(
        data,
        features=task.features,
        targets=task.targets,
        group=group,
        positive=positive,
        min_rows=max(law.n_params for law in laws),
    )
    if predict is None:
        return train, None, False
    scored = set(task.targets) <= set(read_columns(predict))
    test = load_table(
        predict, features=task.features, targets=task.targets if scored else (), group=group, positive=positive
    )
    return train, test, scored


@click.command("fit")
@click.option("--task", "task_name", help="SLDBench task name (or use --data for your own file).")
@click.option(
    "--law",
    "expressions",
    multiple=True,
    required=True,
    help="Law over the feature names; other names are fitted constants. Repeat once per target.",
)
@corpus_option
@click.option("--data", type=click.Path(dir_okay=False), help="Training rows (CSV or parquet).")
@click.option("--features", help="With --data: comma-separated feature columns.")
@click.option("--target", help="With --data: target column(s), comma-separated.")
@click.option("--group", help="With --data: column with one set of constants per value.")
@click.option(
    "--predict",
    type=click.Path(dir_okay=False),
    help="With --data: rows to predict (and score if they have the target).",
)
@click.option("--out", type=click.Path(dir_okay=False), help="With --predict: write predictions here (CSV).")
@click.option("--starts", default=12, show_default=True, help="Multi-start count of the constant fit.")
@click.option("--seed", default=0, show_default=True, help="Seed of the multi-start sampler.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False), help="Also write the result as JSON here.")
def command(
    task_name: str | None,
    expressions: tuple[str, ...],
    corpus: str | None,
    data: str | None,
    features: str | None,
    target: str | None,
    group: str | None,
    predict: str | None,
    out: str | None,
    starts: int,
    seed: int,
    json_path: str | None,
) -> None:
    """Fit a law's constants per group on training rows; score on test rows."""
    config = FitConfig(n_starts=starts, seed=seed)
    if (task_name is None) == (data is None):
        raise click.UsageError("Pass exactly one of --task NAME or --data FILE.")
    if task_name is not None:
        task = get_task(task_name)
        laws = _laws_for(task, expressions)
        loaded = load_sldbench(task.name, corpus=corpus)
        train_frame, test_frame, scored = loaded.train, loaded.test, loaded.test is not None
    else:
        assert data is not None
        task = generic_task(
            name=Path(data).stem, features=split_names(features), targets=split_names(target), group=group
        )
        laws = _laws_for(task, expressions)
        train_frame, test_frame, scored = _load_user_frames(data, predict, task, laws, group)
    train = task_arrays(task, train_frame)
    if test_frame is None:
        test = _no_rows(train)
    elif scored:
        test = task_arrays(task, test_frame)
    else:  # rows to predict without targets: placeholders that nothing scores
        test = task_arrays(task, test_frame.assign(**dict.fromkeys(task.targets, 0.0)))
    evaluation = score_split(laws, train, test, config=config)
    summary = _print_result(task, laws, evaluation, scored)
    if not scored:
        train_eval = score_split(laws, train, train, config=config)
        click.echo(f"train R^2 {score_predictions(train.Y, train_eval.predictions).r2:.6f}")
    if out is not None and test_frame is not None:
        predictions = pd.DataFrame(evaluation.predictions, columns=[f"predicted_{t}" for t in task.targets])
        pd.concat([test_frame.reset_index(drop=True), predictions], axis=1).to_csv(out, index=False)
        click.echo(f"wrote {len(predictions)} predictions to {out}", err=True)
    if json_path is not None:
        Path(json_path).write_text(json.dumps(summary, indent=2, default=float))


def _no_rows(train: SplitArrays) -> SplitArrays:
    return SplitArrays(X=train.X[:0], Y=train.Y[:0], groups=train.groups[:0])

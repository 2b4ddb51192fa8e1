"""``sld compare``: fit several laws identically on a task and compare their test scores with intervals.

Example
-------
``sld compare --task sft_scaling_law --law "mine=E + A * sft_data_size**(-alpha)"`` compares your law with the
human-derived one; the reference of the paired differences is the first law (the human-derived law when included).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import click

from sld.commands.options import corpus_option
from sld.search import FitConfig, Law, parse_law


def _named(text: str, index: int) -> tuple[str, str]:
    # "name=EXPR" names a law; expressions never contain "=".
    if "=" in text:
        name, expression = text.split("=", 1)
        return name.strip(), expression.strip()
    return f"law {index}", text.strip()


def _interval(values: tuple[float, float] | None) -> str:
    if values is None or not all(math.isfinite(v) for v in values):
        return "–"
    return f"[{values[0]:.4f}, {values[1]:.4f}]"


@click.command("compare")
@click.option("--task", "task_name", required=True, help="SLDBench task name.")
@click.option("--law", "law_texts", multiple=True, metavar="[NAME=]EXPR",
              help="A law over the task's features (repeatable); one form for every target.")
@click.option("--run", "run_dir", type=click.Path(file_okay=False),
              help="Also compare the law chosen by this run directory (refitted like the others).")
@click.option("--literature/--no-literature", default=True, show_default=True,
              help="Include the task's human-derived law (then it is the reference).")
@corpus_option
@click.option("--starts", default=24, show_default=True, help="Multi-start count of every fit.")
@click.option("--seed", default=0, show_default=True, help="Seed of the fits and of the bootstrap.")
@click.option("--resamples", default=1000, show_default=True, help="Bootstrap resamples.")
@click.option("--unit", type=click.Choice(["auto", "groups", "rows"]), default="auto", show_default=True,
              help="Resample whole groups or rows; auto: groups when the test rows hold at least 5.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False), help="Write the comparison JSON here.")
def command(task_name: str, law_texts: tuple[str, ...], run_dir: str | None, literature: bool, corpus: str | None,
            starts: int, seed: int, resamples: int, unit: str, json_path: str | None) -> None:
    """Fit laws per group on the training rows, score them on the test rows, and compare them in pairs."""
    from sld.search.comparison import compare_laws
    from sld.tasks import get_task
    from sld.tasks.data import load_task_splits
    from sld.tasks.literature import human_law

    task = get_task(task_name)
    laws: list[tuple[str, list[Law]]] = []
    if literature and task.is_sldbench:
        laws.append(("human-derived", list(human_law(task.name).laws)))
    if run_dir is not None:
        from sld.report.data import load_run

        run = load_run(run_dir)
        if run.task.name != task.name:
            raise click.UsageError(f"--run {run_dir} searched task '{run.task.name}', not '{task.name}'.")
        laws.append(("discovered", run.laws()))
    for index, text in enumerate(law_texts, start=1):
        name, expression = _named(text, index)
        law = parse_law(expression, task.features)
        laws.append((name, [law] * len(task.targets)))
    if len(laws) < 2:
        raise click.UsageError("Give at least two laws to compare (--law, --run, or the literature law).")
    train, test = load_task_splits(task, corpus=corpus)
    comparison = compare_laws(task.name, laws, train, test, fit_config=FitConfig(n_starts=starts, seed=seed),
                              n_resamples=resamples, unit=unit, seed=seed)  # type: ignore[arg-type]
    level = f"{comparison.level:.0%}"
    click.echo(f"{task.name}: {len(test.X)} test rows; bootstrap over {comparison.unit} "
               f"({comparison.n_units}), {comparison.n_resamples} resamples, {level} intervals")
    click.echo(f"{'law':<16} {'constants':>9} {'test R^2':>9} {'NMSE':>9} {'NMAE':>9}  R^2 interval")
    for scored in comparison.laws:
        scores = scored.scores
        r2 = "failed" if scores.failed else f"{scores.r2:9.4f}"
        click.echo(f"{scored.name:<16} {scored.n_params:>9} {r2:>9} {scores.nmse:9.4g} {scores.nmae:9.4g}  "
                   f"{_interval(scored.r2_interval)}")
        click.echo(f"  {scored.expression}")
    for difference in comparison.differences:
        if math.isnan(difference.delta_r2):
            click.echo(f"{difference.name} - {comparison.reference}: not comparable (a law failed)")
            continue
        click.echo(f"{difference.name} - {comparison.reference}: delta R^2 {difference.delta_r2:+.4f} "
                   f"{_interval(difference.interval)}, better in {difference.p_better:.0%} of resamples")
    if json_path:
        # allow_nan=False: a NaN left anywhere is a bug here, never invalid JSON in the file.
        Path(json_path).write_text(json.dumps(comparison.as_dict(), indent=2, allow_nan=False))
        click.echo(f"wrote {json_path}", err=True)

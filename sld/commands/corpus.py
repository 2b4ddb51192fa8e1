"""``sld corpus show TASK``: where a task's data comes from and what it holds.

sld corpus show parallel_scaling_law --corpus ../shared/sldbench
"""

from __future__ import annotations

import click

from sld.commands.options import corpus_option
from sld.corpus import load_sldbench
from sld.tasks import get_task


@click.group("corpus")
def command() -> None:
    """Inspect the experiment corpus."""


@command.command("show")
@click.argument("task_name", metavar="TASK")
@corpus_option
@click.option("--rows", default=5, show_default=True, help="How many training rows to print.")
def show(task_name: str, corpus: str | None, rows: int) -> None:
    """Show a task's source, row counts, groups, column ranges and first rows."""
    task = get_task(task_name)
    data = load_sldbench(task.name, corpus=corpus)
    click.echo(f"task: {task.name}\nsource: {data.source}")
    test_rows = 0 if data.test is None else len(data.test)
    click.echo(f"rows: {len(data.train)} train, {test_rows} test")
    groups = data.train[task.group_column].astype(str).unique()
    click.echo(f"groups ({len(groups)}): {', '.join(groups[:10])}{' ...' if len(groups) > 10 else ''}")
    numeric = data.train.select_dtypes("number")
    click.echo("train ranges:")
    for column in numeric.columns:
        click.echo(f"  {column}: {numeric[column].min():.6g} .. {numeric[column].max():.6g}")
    click.echo(data.train.head(rows).to_string(index=False))

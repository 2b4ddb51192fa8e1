"""``sld tasks``: list the known tasks.

sld tasks
"""

from __future__ import annotations

import click

from sld.tasks import list_tasks


@click.command("tasks")
@click.option("--json", "as_json", is_flag=True, help="Print the tasks as JSON.")
def command(as_json: bool) -> None:
    """List the SLDBench tasks: features, targets, constant budget and extrapolation axis."""
    tasks = list_tasks(include_embedded=True)
    if as_json:
        import json

        click.echo(json.dumps([task.model_dump() for task in tasks], indent=2))
        return
    for task in tasks:
        click.echo(
            f"{task.name}\n  features: {', '.join(task.features)}\n  targets: {', '.join(task.targets)}\n"
            f"  constants: {task.max_params} per group and target; extrapolates in: "
            f"{' x '.join(task.extrapolation_axis) or 'other combinations (interpolation)'}"
        )

"""``sld bench``: score a method on the SLDBench tasks with the official rule.

Example
-------
``sld bench --method human --json human.json``; ``sld bench --method sld --budget-s 30 --report report/`` also
writes a report per task (see ``sld report``).
"""

from __future__ import annotations

from pathlib import Path

import click

from sld.anchors import HUMAN, SLDAGENT_GPT5, load_anchors
from sld.benchmark import BenchResult, TaskScore, run_bench, score_human_task, score_sld_task
from sld.commands.options import corpus_option, executor_options, split_names
from sld.search import FitConfig
from sld.search.engine import EngineConfig


def markdown_table(result: BenchResult, corpus: str | None) -> str:
    """Render a benchmark result beside the published human-law and SLDAgent (GPT-5) scores."""
    anchors = load_anchors(corpus)

    def cell(system: str, task: str) -> str:
        value = anchors.get(system, task) if anchors else None
        return "" if value is None else f"{value:.3f}"

    lines = [
        f"| task | {result.method} R^2 | human R^2 (published) | SLDAgent GPT-5 R^2 | constants | seconds |",
        "|---|---|---|---|---|---|",
    ]
    for task, score in result.tasks.items():
        lines.append(
            f"| {task} | {score.r2:.4f} | {cell(HUMAN, task)} | {cell(SLDAGENT_GPT5, task)} | "
            f"{score.n_params} | {score.seconds:.1f} |"
        )
    lines.append(f"| **mean (R^2 clipped to [-1, 1])** | **{result.mean_r2:.4f}** | | | | |")
    return "\n".join(lines)


@click.command("bench")
@click.option(
    "--method",
    type=click.Choice(["human", "sld"]),
    default="human",
    show_default=True,
    help="human: the literature laws fitted on train rows; sld: discovery under --budget-s per task.",
)
@click.option("--tasks", "task_list", help="Comma-separated task names (default: all 8).")
@corpus_option
@click.option("--starts", default=24, show_default=True, help="Multi-start count of each constant fit.")
@click.option("--seed", default=0, show_default=True, help="Seed of the multi-start sampler.")
@click.option("--budget-s", default=600.0, show_default=True,
              help="With --method sld: search budget per task (hard with --workers 2+; with 1, the candidate "
              "being fitted when it runs out still finishes).")
@click.option("--workers", default=1, show_default=True, help="With --method sld: processes fitting candidates.")
@click.option(
    "--backend",
    type=click.Choice(["operon", "pysr", "none"]),
    default="operon",
    show_default=True,
    help="With --method sld: symbolic-regression backend.",
)
@click.option("--max-candidates", type=click.IntRange(min=1),
              help="With --method sld: stop each target's search after this many candidates (load-independent).")
@click.option("--run-dir", type=click.Path(file_okay=False), help="With --method sld: keep each task's run here.")
@executor_options
@click.option("--markdown", type=click.Path(dir_okay=False), help="Also write the Markdown table here.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False), help="Write the result JSON here.")
@click.option(
    "--report",
    "report_dir",
    type=click.Path(file_okay=False),
    help="Write an HTML and Markdown report here (with --method sld: one page per task; the runs are "
    "kept in REPORT/runs unless --run-dir is given).",
)
def command(
    method: str,
    task_list: str | None,
    corpus: str | None,
    starts: int,
    seed: int,
    budget_s: float,
    workers: int,
    backend: str,
    max_candidates: int | None,
    run_dir: str | None,
    executor: str,
    ray_address: str,
    markdown: str | None,
    json_path: str | None,
    report_dir: str | None,
) -> None:
    """Score a method on SLDBench: per task test R^2, NMSE, NMAE, constants and seconds."""
    config = FitConfig(n_starts=starts, seed=seed)
    progress = lambda line: click.echo(line, err=True)  # noqa: E731
    if report_dir is not None and method == "sld" and run_dir is None:
        run_dir = str(Path(report_dir) / "runs")
    engine = EngineConfig(
        budget_s=budget_s,
        workers=workers,
        seed=seed,
        backend=backend,  # type: ignore[arg-type]
        max_candidates=max_candidates,
        executor=executor,  # type: ignore[arg-type]
        ray_address=ray_address,
    )

    def scorer(name: str) -> TaskScore:
        if method == "sld":
            return score_sld_task(
                name, corpus=corpus, engine=engine, progress=progress, run_root=Path(run_dir) if run_dir else None
            )
        return score_human_task(name, corpus=corpus, fit_config=config)

    result = run_bench(
        method,
        scorer,
        task_names=split_names(task_list) or None,
        progress=lambda line: click.echo(line, err=True),
        executor=executor,  # type: ignore[arg-type]
        ray_address=ray_address,
    )
    table = markdown_table(result, corpus)
    click.echo(table)
    if markdown:
        Path(markdown).write_text(table + "\n")
    if json_path:
        with open(json_path, "w") as handle:
            handle.write(result.model_dump_json(indent=2))
        click.echo(f"wrote {json_path}", err=True)
    if report_dir is not None:
        from sld.report.bench_report import write_bench_report

        files = write_bench_report(
            result, report_dir, run_root=run_dir if method == "sld" else None, corpus=corpus, progress=progress
        )
        click.echo(f"wrote {files.html}", err=True)

"""``sld bench``: score a method on the SLDBench tasks with the official rule.

Example
-------
``sld bench --method human --json human.json``; ``sld bench --method sld --budget-s 30 --report report/`` also
writes a report per task (see ``sld report``).
"""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path

import click

from sld.anchors import HUMAN, SLDAGENT_GPT5, load_anchors
from sld.benchmark import BenchResult, TaskScore, run_bench, score_human_task, score_sld_task
from sld.commands.discovery_options import DiscoveryOptions, discovery_options
from sld.commands.options import corpus_option, split_names
from sld.search import FitConfig


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
    help="human: the literature laws fitted on train rows; sld: `sld discover` under --budget-s per task.",
)
@click.option("--tasks", "task_list", help="Comma-separated task names (default: all 8).")
@corpus_option
@click.option("--starts", default=24, show_default=True, help="Multi-start count of each constant fit.")
@click.option("--run-dir", type=click.Path(file_okay=False), help="With --method sld: keep each task's run here.")
@click.option("--markdown", type=click.Path(dir_okay=False), help="Also write the Markdown table here.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False), help="Write the result JSON here.")
@click.option(
    "--report",
    "report_dir",
    type=click.Path(file_okay=False),
    help="Write an HTML and Markdown report here (with --method sld: one page per task; the runs are "
    "kept in REPORT/runs unless --run-dir is given).",
)
@click.option("--fit-speed", is_flag=True,
              help="Instead of scoring: candidates and fits per second, batched fitter vs scipy reference, per task "
              "(see bench/README.md, 'Fitting speed'); --json writes the result.")
@click.option("--fit-speed-laws", default=4, show_default=True, type=click.IntRange(min=1),
              help="With --fit-speed: law forms per task.")
@discovery_options
def command(
    method: str,
    task_list: str | None,
    corpus: str | None,
    starts: int,
    run_dir: str | None,
    markdown: str | None,
    json_path: str | None,
    report_dir: str | None,
    discovery: DiscoveryOptions,
    fit_speed: bool,
    fit_speed_laws: int,
) -> None:
    """Score a method on SLDBench: per task test R^2, NMSE, NMAE, constants and seconds.

    With ``--method sld`` every task runs exactly what ``sld discover`` runs with the same flags (proposer, LLM
    cache and replay, budget, candidate cap, seed).
    """
    if fit_speed:
        _fit_speed(task_list, corpus, discovery.seed, fit_speed_laws, json_path)
        return
    fit_config = FitConfig(n_starts=starts, seed=discovery.seed)
    say = (lambda line: None) if discovery.quiet else (lambda line: click.echo(line, err=True))
    if report_dir is not None and method == "sld" and run_dir is None:
        run_dir = str(Path(report_dir) / "runs")
    with ExitStack() as stack:
        config = discovery.agent_config() if method == "sld" else None
        llm = discovery.open_llm(stack, None) if method == "sld" else None
        progress = discovery.progress()
        stack.callback(progress.close)

        def scorer(name: str) -> TaskScore:
            if config is not None:
                return score_sld_task(name, corpus=corpus, config=config, llm=llm, progress=progress,
                                      run_root=Path(run_dir) if run_dir else None)
            return score_human_task(name, corpus=corpus, fit_config=fit_config)

        result = run_bench(method, scorer, task_names=split_names(task_list) or None, progress=say)
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
            result, report_dir, run_root=run_dir if method == "sld" else None, corpus=corpus, progress=say
        )
        click.echo(f"wrote {files.html}", err=True)


def _fit_speed(task_list: str | None, corpus: str | None, seed: int, n_laws: int, json_path: str | None) -> None:
    from sld.fit_speed import measure_fit_speed, speed_table

    result = measure_fit_speed(
        split_names(task_list) or None, corpus=corpus, n_laws=n_laws, seed=seed,
        progress=lambda line: click.echo(line, err=True),
    )
    click.echo(speed_table(result))
    if json_path:
        Path(json_path).write_text(result.model_dump_json(indent=2))
        click.echo(f"wrote {json_path}", err=True)

"""``sld bench``: score one or several methods on the SLDBench tasks or the rnsl learning curves.

Example
-------
``sld bench --method human --json human.json``; ``sld bench --method sld --budget-s 30 --report report/`` also
writes a report per task (see ``sld report``). ``sld bench --method human,operon,sld`` and
``sld bench --suite rnsl --method sld,m1,m2,m3,m4 --budget-s 20`` score several methods side by side.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import ExitStack
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

import click
import numpy as np
from pydantic import BaseModel

from sld.anchors import HUMAN, SLDAGENT_GPT5, load_anchors
from sld.benchmark import BenchResult, TaskScore, discover_task, run_bench, score_human_task, score_operon_task
from sld.commands.discovery_options import DiscoveryOptions, discovery_options
from sld.commands.options import corpus_option, rnsl_option, split_names
from sld.search import FitConfig
from sld.tasks import list_tasks

if TYPE_CHECKING:
    from sld.agent.llm import LLMClient
    from sld.agent.progress import Progress
    from sld.agent.state import AgentConfig
    from sld.seed_agreement import SeedAgreement
    from sld.side_by_side import BenchComparison


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


SUITE_METHODS: dict[str, tuple[str, ...]] = {
    "sldbench": ("human", "operon", "sld"),
    "rnsl": ("sld", "m1", "m2", "m3", "m4"),
}
Scorer = Callable[[str], TaskScore]


def parse_methods(value: str, suite: str) -> list[str]:
    """Split ``--method`` into method names, each known for ``suite`` (else a usage error naming the choices)."""
    methods = list(dict.fromkeys(split_names(value)))
    known = SUITE_METHODS[suite]
    unknown = [method for method in methods if method not in known]
    if unknown or not methods:
        raise click.UsageError(
            f"--method {value!r}: {unknown[0] if unknown else 'no method'} is not a method of --suite {suite}. "
            f"Known: {', '.join(known)} (comma-separated for several)."
        )
    return methods


@click.command("bench")
@click.option(
    "--method",
    default="human",
    show_default=True,
    help="Comma-separated methods. --suite sldbench: human (the literature laws fitted on train rows), operon "
    "(pyoperon alone, refitted per group), sld (`sld discover` under --budget-s per task). --suite rnsl: sld, and "
    "the paper's estimators m1, m2, m3, m4.",
)
@click.option("--suite", type=click.Choice(["sldbench", "rnsl"]), default="sldbench", show_default=True,
              help="sldbench: the 8 SLDBench tasks (test R^2); rnsl: the 20 language learning curves of "
              "Alabdulmohsin et al. 2022 (log-RMSE on the extrapolation rows, and R^2).")
@click.option("--tasks", "task_list", help="Comma-separated task (or rnsl curve) names (default: all).")
@corpus_option
@rnsl_option
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
@click.option("--seeds", "seed_list",
              help="With --method sld: run every task once per seed (comma-separated, e.g. 0,1,2) and report "
              "whether the seeds chose the same law or laws whose test predictions agree (replaces --seed).")
@discovery_options
def command(
    method: str,
    suite: str,
    task_list: str | None,
    corpus: str | None,
    rnsl_root: str | None,
    starts: int,
    run_dir: str | None,
    markdown: str | None,
    json_path: str | None,
    report_dir: str | None,
    fit_speed: bool,
    fit_speed_laws: int,
    seed_list: str | None,
    discovery: DiscoveryOptions,
) -> None:
    """Score methods on SLDBench (per task test R^2, NMSE, NMAE, constants, seconds) or on the rnsl curves.

    With ``--method sld`` every task runs exactly what ``sld discover`` runs with the same flags (proposer, LLM
    cache and replay, budget, candidate cap, seed).
    """
    if fit_speed:
        _fit_speed(task_list, corpus, discovery.seed, fit_speed_laws, markdown, json_path)
        return
    methods = parse_methods(method, suite)
    seeds = parse_seeds(seed_list, methods) if seed_list is not None else None
    if seeds is not None and report_dir is not None:
        raise click.UsageError("--report writes one run per task; drop --report with --seeds, or give one --seed.")
    single = suite == "sldbench" and len(methods) == 1
    if report_dir is not None and not single:
        raise click.UsageError("--report works with one method on --suite sldbench; drop --report or list one method.")
    fit_config = FitConfig(n_starts=starts, seed=discovery.seed)
    say = (lambda line: None) if discovery.quiet else (lambda line: click.echo(line, err=True))
    if report_dir is not None and method == "sld" and run_dir is None:
        run_dir = str(Path(report_dir) / "runs")
    run_root = Path(run_dir) if run_dir else None
    with ExitStack() as stack:
        config = discovery.agent_config() if "sld" in methods else None
        llm = discovery.open_llm(stack, None) if "sld" in methods else None
        progress = discovery.progress()
        stack.callback(progress.close)
        # With Ray each task runs in a worker: its scorer travels there, and a terminal or an LLM client cannot.
        on_ray = discovery.executor == "ray"
        if on_ray and llm is not None:
            raise click.UsageError("--executor ray runs whole bench tasks on the cluster, where the LLM client cannot "
                                   "go; use --proposer offline with --executor ray, or --executor local.")
        task_progress = None if on_ray else progress
        if seeds is not None and config is not None:
            agreement = _run_seeds(suite, seeds, task_list, corpus, rnsl_root, config, llm, task_progress, run_root,
                                   say)
            from sld.seed_agreement import markdown_seeds

            _emit(markdown_seeds(agreement), agreement, markdown, json_path)
            return
        if suite == "rnsl":
            comparison = _run_rnsl(methods, task_list, rnsl_root, config, llm, progress, run_root, say)
            _write_comparison(comparison, markdown, json_path)
            return

        def scorer(name: str, chosen: str) -> TaskScore:
            if chosen == "sld" and config is not None:
                return discover_task(name, corpus=corpus, config=config, llm=llm, progress=task_progress,
                                     run_root=run_root)[0]
            if chosen == "operon":
                return score_operon_task(name, corpus=corpus, budget_s=discovery.budget_s, seed=discovery.seed,
                                         fit_config=fit_config)
            return score_human_task(name, corpus=corpus, fit_config=fit_config)

        names = split_names(task_list) or tuple(task.name for task in list_tasks())
        if not single:
            from sld.side_by_side import run_side_by_side

            scorers: dict[str, Scorer] = {chosen: partial(scorer, chosen=chosen) for chosen in methods}
            _write_comparison(run_side_by_side("sldbench", scorers, names, progress=say), markdown, json_path)
            return
        result = run_bench(method, partial(scorer, chosen=method), task_names=names, progress=say,
                           executor=discovery.executor, ray_address=discovery.ray_address)
    _emit(markdown_table(result, corpus), result, markdown, json_path)
    if report_dir is not None:
        from sld.report.bench_report import write_bench_report

        files = write_bench_report(
            result, report_dir, run_root=run_dir if method == "sld" else None, corpus=corpus, progress=say
        )
        click.echo(f"wrote {files.html}", err=True)


def _run_rnsl(methods: list[str], task_list: str | None, rnsl_root: str | None, config: AgentConfig | None,
              llm: LLMClient | None, progress: Progress, run_root: Path | None,
              say: Callable[[str], None]) -> BenchComparison:
    from sld.corpus import check_curve_names, load_rnsl
    from sld.rnsl_bench import discover_curve, score_peer_curve
    from sld.side_by_side import run_side_by_side

    curves = load_rnsl(rnsl_root)
    names = check_curve_names(split_names(task_list) or tuple(curves), curves)

    def scorer(name: str, chosen: str) -> TaskScore:
        if chosen == "sld" and config is not None:
            return discover_curve(curves[name], config=config, llm=llm, run_root=run_root, progress=progress)[0]
        return score_peer_curve(curves[name], chosen)  # type: ignore[arg-type]

    scorers: dict[str, Scorer] = {chosen: partial(scorer, chosen=chosen) for chosen in methods}
    return run_side_by_side("rnsl", scorers, names, progress=say)


def parse_seeds(value: str, methods: list[str]) -> list[int]:
    """Split ``--seeds`` into distinct integers (else a usage error naming the value and the fix)."""
    if methods != ["sld"]:
        raise click.UsageError(f"--seeds compares sld's discoveries across seeds; use it with --method sld, "
                               f"not --method {','.join(methods)}.")
    try:
        seeds = list(dict.fromkeys(int(item) for item in split_names(value)))
    except ValueError:
        raise click.UsageError(f"--seeds {value!r}: give comma-separated integers, e.g. --seeds 0,1,2.") from None
    if len(seeds) < 2:
        raise click.UsageError(f"--seeds {value!r}: give at least two distinct seeds to compare, e.g. --seeds 0,1,2.")
    return seeds


def _run_seeds(suite: str, seeds: list[int], task_list: str | None, corpus: str | None, rnsl_root: str | None,
               config: AgentConfig, llm: LLMClient | None, progress: Progress | None, run_root: Path | None,
               say: Callable[[str], None]) -> SeedAgreement:
    from sld.seed_agreement import run_seeds

    def seeded(seed: int) -> tuple[AgentConfig, Path | None]:
        engine = config.engine.model_copy(update={"seed": seed})
        return config.model_copy(update={"engine": engine}), run_root / f"seed{seed}" if run_root else None

    if suite == "rnsl":
        from sld.corpus import check_curve_names, load_rnsl
        from sld.rnsl_bench import discover_curve

        curves = load_rnsl(rnsl_root)
        names: Sequence[str] = check_curve_names(split_names(task_list) or tuple(curves), curves)

        def discover(name: str, seed: int) -> tuple[TaskScore, np.ndarray | None, np.ndarray]:
            seed_config, root = seeded(seed)
            return discover_curve(curves[name], config=seed_config, run_root=root, llm=llm, progress=progress)
    else:
        names = split_names(task_list) or tuple(task.name for task in list_tasks())

        def discover(name: str, seed: int) -> tuple[TaskScore, np.ndarray | None, np.ndarray]:
            seed_config, root = seeded(seed)
            return discover_task(name, corpus=corpus, config=seed_config, run_root=root, llm=llm, progress=progress)

    return run_seeds(suite, discover, names, seeds, progress=say)


def _emit(table: str, result: BaseModel, markdown: str | None, json_path: str | None) -> None:
    """Print a result's table; write it as Markdown and the result as JSON where asked."""
    click.echo(table)
    if markdown:
        Path(markdown).write_text(table + "\n")
    if json_path:
        Path(json_path).write_text(result.model_dump_json(indent=2))
        click.echo(f"wrote {json_path}", err=True)


def _write_comparison(result: BenchComparison, markdown: str | None, json_path: str | None) -> None:
    from sld.side_by_side import markdown_side_by_side

    _emit(markdown_side_by_side(result), result, markdown, json_path)


def _fit_speed(
    task_list: str | None, corpus: str | None, seed: int, n_laws: int, markdown: str | None, json_path: str | None
) -> None:
    from sld.fit_speed import measure_fit_speed, speed_table

    result = measure_fit_speed(
        split_names(task_list) or None, corpus=corpus, n_laws=n_laws, seed=seed,
        progress=lambda line: click.echo(line, err=True),
    )
    _emit(speed_table(result), result, markdown, json_path)

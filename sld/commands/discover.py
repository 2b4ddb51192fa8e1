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
from contextlib import ExitStack
from pathlib import Path

import click
import pandas as pd

from sld.agent.llm import LLMClient, endpoint_configured, llm_config_from_env
from sld.agent.replay_cache import ReplayCache
from sld.agent.run import AgentDiscovery, run_agent
from sld.agent.state import AgentConfig
from sld.benchmark import load_task_splits, score_human_task
from sld.commands.options import corpus_option, executor_options, split_names
from sld.corpus import load_table, read_columns
from sld.corpus.embedded import EMBEDDED_TASK
from sld.discovery import TaskDiscovery, predict_task
from sld.search import FitConfig, SplitArrays
from sld.search.engine import EngineConfig
from sld.tasks import Task, generic_task, get_task
from sld.tasks.data import task_arrays

TOP_CANDIDATES = 5


def _print_discovery(discovery: TaskDiscovery, human_r2: float | None) -> None:
    for outcome in discovery.outcomes:
        click.echo(f"{outcome.problem.target} = {outcome.best.expression}")
        if outcome.best.shared:
            click.echo(f"  shared by all groups: {', '.join(outcome.best.shared)} (the others are fitted per group)")
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
                       f"[{candidate.source}] {candidate.identity[:100]}")
    click.echo(f"validation R^2 (extrapolation inside the training rows): {discovery.validation_r2:.4f}")
    if discovery.test_scores is not None:
        s = discovery.test_scores
        click.echo(f"test R^2 {s.r2:.4f}  NMSE {s.nmse:.4g}  NMAE {s.nmae:.4g}")
    if human_r2 is not None:
        click.echo(f"human-derived law test R^2 {human_r2:.4f}")
    if isinstance(discovery, AgentDiscovery):
        split = discovery.proposals()
        click.echo(f"proposals: offline {split['offline']}, llm {split['llm']} "
                   f"(LLM share {100 * discovery.llm_share():.0f}%); by source {discovery.proposals_by_source()}  "
                   f"seconds: {discovery.seconds:.1f}")
        if discovery.proposer != "offline":
            llm = discovery.llm_summary()
            tokens = llm["tokens"]
            total = tokens["total"] if isinstance(tokens, dict) else 0
            click.echo(f"LLM {llm['model']}: {llm['calls']} calls ({llm['cached_calls']} from the cache), "
                       f"{total} tokens, {llm['failures']} failures, status {llm['status']}")
    else:
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
@click.option("--max-params", type=int,
              help="Constant budget per group and target (default: the task's; 6 for --data).")
@click.option("--predict", type=click.Path(dir_okay=False),
              help="With --data: rows to predict (scored if they hold the target).")
@click.option("--out", type=click.Path(dir_okay=False), help="With --predict: write predictions here (CSV).")
@click.option("--budget-s", default=600.0, show_default=True,
              help="Search time budget per task, seconds (hard with --workers 2+; with 1, the candidate being "
              "fitted when it runs out still finishes).")
@click.option("--workers", default=1, show_default=True, help="Processes fitting candidates in parallel.")
@click.option("--seed", default=0, show_default=True, help="Seed of every random choice.")
@click.option("--max-candidates", type=click.IntRange(min=1),
              help="Stop each target's search after this many candidates (load-independent).")
@executor_options
@click.option("--backend", type=click.Choice(["operon", "pysr", "none"]), default="operon", show_default=True,
              help="Symbolic-regression backend.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False), help="Write the summary JSON here.")
@click.option("--run-dir", type=click.Path(file_okay=False),
              help="Keep the config, every candidate, LLM calls, checkpoints and the result here.")
@click.option("--resume", is_flag=True, help="Continue the run in --run-dir from its last checkpoint.")
@click.option("--proposer", type=click.Choice(["offline", "llm", "hybrid"]), default=None,
              help="Who proposes law forms. [default: hybrid when an LLM endpoint is configured "
                   "(OPENAI_BASE_URL or OPENAI_API_KEY) or --offline-replay is given, else offline]")
@click.option("--llm-model", help="Model name at the endpoint (default: $SLD_LLM_MODEL, then gpt-4o-mini).")
@click.option("--max-llm-calls", type=click.IntRange(min=1), default=None,
              help="LLM requests over the run at most (replayed ones included). [default: 50]")
@click.option("--max-tokens", type=click.IntRange(min=1), default=None,
              help="LLM prompt plus completion tokens over the run at most. [default: 1000000]")
@click.option("--llm-cache", type=click.Path(dir_okay=False),
              help="SQLite file of LLM replies, read before and written after each request "
                   "(default: RUN_DIR/llm_cache.sqlite with --run-dir).")
@click.option("--offline-replay", is_flag=True,
              help="Answer LLM requests from --llm-cache only; never contact the endpoint.")
def command(task_name: str | None, corpus: str | None, data: str | None, features: str | None,
            target: str | None, group: str | None, axis: str | None, max_params: int | None,
            predict: str | None, out: str | None, budget_s: float, workers: int, seed: int, backend: str,
            json_path: str | None, run_dir: str | None, resume: bool, proposer: str | None,
            llm_model: str | None, max_llm_calls: int | None, max_tokens: int | None, llm_cache: str | None,
            offline_replay: bool, max_candidates: int | None = None, executor: str = "local",
            ray_address: str = "auto") -> None:
    """Propose law forms, fit them per group, and choose the one that extrapolates best."""
    if task_name is not None and data is not None:
        raise click.UsageError("Pass either --task NAME or --data FILE, not both.")
    if resume and run_dir is None:
        raise click.UsageError("--resume needs --run-dir: the folder of the run to continue.")
    cache_path = llm_cache or (str(Path(run_dir) / "llm_cache.sqlite") if run_dir else None)
    if offline_replay and cache_path is None:
        raise click.UsageError("--offline-replay needs --llm-cache PATH (or --run-dir holding llm_cache.sqlite).")
    kind = proposer or ("hybrid" if endpoint_configured() or offline_replay else "offline")
    if kind != "offline" and not (endpoint_configured() or offline_replay):
        raise click.UsageError(f"--proposer {kind} needs an LLM endpoint: set OPENAI_BASE_URL (and OPENAI_API_KEY), "
                               "or replay a cache with --llm-cache PATH --offline-replay.")
    engine = EngineConfig(budget_s=budget_s, workers=workers, seed=seed, backend=backend,  # type: ignore[arg-type]
                          max_candidates=max_candidates, executor=executor,  # type: ignore[arg-type]
                          ray_address=ray_address)
    config = AgentConfig(engine=engine, proposer=kind)  # type: ignore[arg-type]
    progress = lambda line: click.echo(line, err=True)  # noqa: E731
    human_r2 = None
    test_frame = None
    data_paths = None
    if data is None:
        # With no task and no data, discover on the embedded proxy runs: works offline, out of the box.
        task = get_task(task_name or EMBEDDED_TASK)
        train, test = load_task_splits(task, corpus=corpus)
    else:
        task = _user_task(data, features, target, group, max_params or 6, axis)
        train_frame = load_table(data, features=task.features, targets=task.targets, group=group)
        train, test = task_arrays(task, train_frame), None
        data_paths = {"train": str(Path(data).resolve()), "test": str(Path(predict).resolve()) if predict else None}
        if predict is not None:
            scored = set(task.targets) <= set(read_columns(predict))
            test_frame = load_table(predict, features=task.features, targets=task.targets if scored else (),
                                    group=group)
            test = task_arrays(task, test_frame) if scored else None
    with ExitStack() as stack:
        llm = None
        if kind != "offline":
            llm = stack.enter_context(LLMClient(
                llm_config_from_env(llm_model, max_calls=max_llm_calls, max_tokens=max_tokens),
                cache=ReplayCache(cache_path) if cache_path else None, offline_replay=offline_replay))
        discovery = run_agent(task, train, test, config, max_params=max_params,
                              run_dir=Path(run_dir) if run_dir else None, resume=resume, llm=llm, progress=progress,
                              data_paths=data_paths)
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

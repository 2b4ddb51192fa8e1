"""Run the discovery graph (the one discovery loop) on a task: what ``sld discover`` and ``sld bench`` call.

A run directory keeps the resolved config, every candidate (``candidates.jsonl``, append-only), every LLM call
with its tokens (``llm_calls.jsonl``), the LangGraph checkpoints (``checkpoints.sqlite``) and the result. A run
killed at any point continues from its last checkpoint with ``resume=True``; candidates evaluated after that
checkpoint are read back from ``candidates.jsonl`` rather than evaluated again.

Example
-------
``sld discover --task parallel_scaling_law --proposer llm --llm-model M --run-dir runs/par``, then after a crash
``sld discover --task parallel_scaling_law --proposer llm --llm-model M --run-dir runs/par --resume``. In Python,
a tiny search of one target:

>>> import numpy as np
>>> from sld.search import SplitArrays
>>> from sld.search.engine import EngineConfig
>>> from sld.search.stopping import StopPolicy
>>> from sld.tasks import generic_task
>>> N = np.geomspace(1e6, 1e9, 12)
>>> train = SplitArrays(N[:, None], (2 + 30 * N**-0.2)[:, None], np.full(12, "g"))
>>> task = generic_task(name="toy", features=["N"], targets=["loss"], max_params=3)
>>> config = AgentConfig(engine=EngineConfig(backend="none", n_starts=2), stop=StopPolicy(max_candidates=12))
>>> discovery = run_agent(task, train, None, config)
>>> discovery.validation_r2 > 0.99, discovery.candidates_evaluated() <= 12
(True, True)
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from sld.search import SplitArrays, score_predictions
from sld.search.proposals import check_backend
from sld.tasks import Task
from sld.tasks.problems import task_problems

from .discovery import Discovery, predict_task
from .errors import AgentError
from .graph import AgentContext, build_graph, finalize_target
from .progress import LineProgress, Progress
from .proposers import LLMProposer, make_proposer
from .rundir import RunConfig, RunDirectory, data_record
from .state import AgentConfig, AgentState, Record, initial_state

if TYPE_CHECKING:
    from .llm import LLMClient

# Rounds per target are bounded by the proposers and the budget; this only stops a runaway loop.
_RECURSION_LIMIT = 100_000


def thread_id(task: Task, config: AgentConfig) -> str:
    """Return the checkpoint thread of a run: the task and the seed."""
    return f"{task.name}:seed={config.engine.seed}"


def run_agent(
    task: Task,
    train: SplitArrays,
    test: SplitArrays | None,
    config: AgentConfig,
    *,
    max_params: int | None = None,
    run_dir: Path | None = None,
    resume: bool = False,
    llm: LLMClient | None = None,
    progress: Progress | Callable[[str], None] | None = None,
    data_paths: Mapping[str, str | None] | None = None,
) -> Discovery:
    """Search every target of a task with the discovery graph; score the chosen laws on the test rows.

    Parameters
    ----------
    task : Task
        What to discover.
    train : SplitArrays
        Training rows: every choice is made on them.
    test : SplitArrays or None
        Rows scored once, after the choice (``None``: no score).
    config : AgentConfig
        Engine settings (budget shared by the targets), proposer, stopping rules.
    max_params : int, optional
        Override of the task's constant budget.
    run_dir : Path, optional
        Where the config, candidates, LLM calls, checkpoints and result are kept.
    resume : bool, default False
        Continue the run in ``run_dir`` from its last checkpoint. Without it, a ``run_dir`` that already holds a
        run is refused.
    llm : LLMClient, optional
        The LLM endpoint (with its budget and replay cache); needed by the ``llm`` and ``hybrid`` proposers.
    progress : Progress or callable, optional
        Receives notes, validated candidates and round statuses (a callable gets each as one line); the CLI's
        comes from :func:`~sld.agent.progress.make_progress`.
    data_paths : mapping, optional
        Files the rows came from (``{"train": path, "test": path}``), recorded in ``config.json`` for
        ``sld report``.

    Returns
    -------
    Discovery

    Raises
    ------
    AgentError
        When the proposer needs an LLM and none is given, or the run directory does not fit the request.
    SearchError
        When no law of some target passed validation.
    BackendUnavailable
        When the symbolic-regression backend cannot run (checked before any round).
    """
    started = time.monotonic()
    report = progress if isinstance(progress, Progress) else (
        Progress() if progress is None else LineProgress(progress))
    if config.proposer != "offline" and llm is None:
        raise AgentError(f"--proposer {config.proposer} needs an LLM endpoint: set OPENAI_BASE_URL (and "
                         "OPENAI_API_KEY), or pass --llm-cache with --offline-replay, or use --proposer offline.")
    if resume and run_dir is None:
        raise AgentError("--resume needs --run-dir: the folder of the run to continue.")
    check_backend(config.engine)  # a missing backend fails now, not after round 0 has run
    problems = {problem.target: problem for problem in task_problems(task, train, max_params=max_params)}
    directory = RunDirectory(run_dir) if run_dir is not None else None
    with ExitStack() as stack:
        checkpointer = None
        if directory is not None:
            from langgraph.checkpoint.sqlite import SqliteSaver

            checkpointer = stack.enter_context(
                SqliteSaver.from_conn_string(str(directory.checkpoints_path)))
        graph = build_graph(checkpointer)
        # Each checkpoint is written before the next node starts, so a kill loses at most the running node.
        durability: dict[str, Any] = {"durability": "sync"} if checkpointer is not None else {}
        thread: Any = {"configurable": {"thread_id": thread_id(task, config)}, "recursion_limit": _RECURSION_LIMIT}
        snapshot = graph.get_state(thread) if checkpointer is not None else None
        saved = cast("AgentState", snapshot.values) if snapshot is not None and snapshot.values else None
        on_disk = directory.candidates_by_target() if directory is not None else {}
        if directory is not None:
            _check_run_directory(directory, task, resume=resume, has_run=saved is not None or bool(on_disk))
        usage_before = dict(saved["llm_usage"]) if saved is not None else {}
        llm_proposer = None
        if llm is not None and config.proposer != "offline":
            llm_proposer = LLMProposer(
                llm, task_description=task.description or _generic_description(task),
                laws_per_call=config.laws_per_call, max_calls_per_target=config.llm_rounds,
                failures_before_offline=config.failures_before_offline,
                calls_before=int(usage_before.get("calls", 0)),
                tokens_before=int(usage_before.get("prompt_tokens", 0)) + int(usage_before.get("completion_tokens", 0)),
            )
        spent_before = float(saved["spent_s"]) if saved is not None else 0.0
        ctx = AgentContext(
            task=task, problems=problems, config=config, proposer=make_proposer(config.proposer, config.engine,
                                                                                  llm_proposer),
            llm=llm_proposer, directory=directory, progress=report,
            deadline=started + max(0.0, config.stop.budget_s - spent_before), started=started,
            spent_before=spent_before, usage_before=usage_before,
            recovered=_missing(on_disk, saved),
        )
        stack.enter_context(ctx.stack)
        ctx.stack.callback(ctx.proposer.close)
        if saved is None:
            if directory is not None and not (resume and directory.config_path.exists()):
                directory.write_config(RunConfig(
                    task=task.model_dump(), engine=config.engine.model_dump(), stop=config.stop.model_dump(),
                    agent=config.model_dump(exclude={"engine", "stop"}), max_params=max_params,
                    data=data_record(train, test, data_paths), thread_id=thread_id(task, config),
                    llm_model=None if llm is None else llm.config.model,
                ))
            final = cast("AgentState", graph.invoke(initial_state(list(problems), llm=llm_proposer is not None),
                                                    thread, context=ctx, **durability))
        else:
            recovered = sum(len(records) for records in ctx.recovered.values())
            report.note(f"resuming: {sum(len(c) for c in saved['candidates'].values())} candidates in the last "
                     f"checkpoint, {recovered} more from candidates.jsonl, {spent_before:.1f} s spent")
            if snapshot is not None and snapshot.next:
                graph.invoke(None, thread, context=ctx, **durability)
            final = cast("AgentState", graph.get_state(thread).values)
        outcomes = [finalize_target(ctx, final, target) for target in final["targets"]]
        discovery = Discovery(
            task=task, outcomes=outcomes, test_scores=None, seconds=0.0, proposer=config.proposer,
            llm_model=None if llm is None else llm.config.model, llm_status=final["llm_status"],
            llm_note=final["llm_note"], llm_usage=ctx.llm_usage(), stopped=dict(final["stopped"]),
        )
    if test is not None and len(test.X):
        discovery.test_scores = score_predictions(test.Y, predict_task(discovery, test))
    discovery.seconds = spent_before + time.monotonic() - started
    if directory is not None:
        directory.write_result(discovery.summary())
    return discovery


def _generic_description(task: Task) -> str:
    return f"Predict {', '.join(task.targets)} from {', '.join(task.features)}."


def _missing(on_disk: dict[str, list[Record]], saved: AgentState | None) -> dict[str, dict[str, Record]]:
    """Return the logged candidates that the checkpoint lacks, per target and expression."""
    missing: dict[str, dict[str, Record]] = {}
    for target, records in on_disk.items():
        known = {str(r["expression"]) for r in (saved["candidates"].get(target, []) if saved else [])}
        for record in records:
            if record["expression"] not in known:
                missing.setdefault(target, {}).setdefault(str(record["expression"]), record)
    return missing


def _check_run_directory(directory: RunDirectory, task: Task, *, resume: bool, has_run: bool) -> None:
    if has_run and not resume:
        raise AgentError(f"Run directory {directory.path} already holds a run; pass --resume to continue it, "
                         "or choose an empty --run-dir.")
    earlier = None
    if resume and directory.config_path.exists():
        try:
            earlier = directory.read_config().task.get("name")
        except AgentError:
            earlier = None
        if earlier is not None and earlier != task.name:
            raise AgentError(f"Run directory {directory.path} holds a run of task '{earlier}', not "
                             f"'{task.name}'; resume it with --task {earlier}, or choose another --run-dir.")

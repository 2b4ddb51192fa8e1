"""Fitting speed, batched solver against the scipy reference, measured side by side in one run.

For each SLDBench task, a fixed set of law forms (the first proposals of the literature families for the task's
first target, `sld.search.families.family_proposals`) is evaluated exactly as the search evaluates a candidate
(`sld.search.candidates.evaluate_proposal`: every validation fold, the fit on all training rows and the checks
beyond the data), once with each solver; then each law is fitted per group on all training rows
(`sld.search.fitting.fit_law_grouped`) to count single fits per second. On tasks with several groups the same forms
are also evaluated with one constant shared by all groups (each constant in turn, as the search's sharing moves
propose them, `sld.search.evolution.sharing_variants`), whose joint fit is the costliest step of those searches.
Rates are per CPU second of this process (other processes on a shared machine slow the wall clock, not this) and
the ratios batched / scipy come from the same run.

Example
-------
``sld bench --fit-speed --tasks sft_scaling_law --json artifacts/fit-speed.json``
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict

from sld.search.candidates import Problem, evaluate_proposal, law_from_proposal
from sld.search.engine import EngineConfig, make_folds
from sld.search.evolution import sharing_variants
from sld.search.families import family_proposals
from sld.search.fitting import fit_law_grouped
from sld.search.profile import profile_data
from sld.search.proposals import Proposal
from sld.search.selection import Fold
from sld.search.shared_fits import shared_identity
from sld.tasks import get_task, list_tasks
from sld.tasks.data import load_task_splits
from sld.tasks.problems import task_problems

Solver = Literal["batched", "scipy"]
SOLVERS: tuple[Solver, ...] = ("batched", "scipy")
# Law forms per task: enough to mix families (power laws with offsets, products, logs, exponentials), few enough
# that the scipy reference finishes on every task in minutes.
DEFAULT_LAWS = 4


class SolverSpeed(BaseModel):
    """One solver on one task."""

    model_config = ConfigDict(extra="forbid")

    candidates_per_s: float
    fits_per_s: float
    candidate_cpu_s: float
    candidate_wall_s: float
    fit_cpu_s: float
    statuses: list[str]
    validation_r2: list[float | None]


class SharedSpeed(BaseModel):
    """Both solvers on one task's candidates with a constant shared by all groups."""

    model_config = ConfigDict(extra="forbid")

    candidates: list[str]
    candidates_per_s: dict[str, float]
    statuses: dict[str, list[str]]
    validation_r2: dict[str, list[float | None]]
    candidates_ratio: float


class TaskSpeed(BaseModel):
    """Both solvers on one task, and their ratios."""

    model_config = ConfigDict(extra="forbid")

    target: str
    rows: int
    groups: int
    folds: int
    laws: list[str]
    solvers: dict[str, SolverSpeed]
    candidates_ratio: float
    fits_ratio: float
    shared: SharedSpeed | None = None


class FitSpeedResult(BaseModel):
    """The ``--fit-speed --json`` file: per task, and the settings that produced it."""

    model_config = ConfigDict(extra="forbid")

    n_laws: int
    n_starts: int
    seed: int
    tasks: dict[str, TaskSpeed]


def measure_fit_speed(
    task_names: Sequence[str] | None = None,
    *,
    corpus: str | Path | None = None,
    n_laws: int = DEFAULT_LAWS,
    seed: int = 0,
    progress: Callable[[str], None] = lambda line: None,
) -> FitSpeedResult:
    """Measure candidates and fits per second of both solvers on each task.

    Parameters
    ----------
    task_names : sequence of str, optional
        Tasks (default: all SLDBench tasks).
    corpus : str or Path, optional
        SLDBench directory (default: ``SLD_CORPUS``).
    n_laws : int
        Law forms per task.
    seed : int
        Seed of the search settings (starts, folds).
    progress : callable
        Receives one line per task and solver.

    Returns
    -------
    FitSpeedResult
    """
    engine = EngineConfig(seed=seed)
    names = list(task_names) if task_names else [task.name for task in list_tasks()]
    tasks = {}
    for name in names:
        task = get_task(name)
        train, _ = load_task_splits(task, corpus=corpus)
        problem = task_problems(task, train)[0]
        profile = profile_data(problem.X, problem.y, problem.variables, problem.groups)
        proposals = family_proposals(profile, max_params=problem.max_params)[:n_laws]
        folds = make_folds(problem, engine.seed)
        speeds: dict[str, SolverSpeed] = {}
        for solver in SOLVERS:
            speeds[solver] = _measure_solver(problem, proposals, folds, engine, solver)
            progress(
                f"fit-speed {name} [{solver}]: {speeds[solver].candidates_per_s:.2f} candidates/s, "
                f"{speeds[solver].fits_per_s:.0f} fits/s"
            )
        batched, scipy = speeds["batched"], speeds["scipy"]
        shared = _measure_shared(problem, proposals, folds, engine) if len(set(problem.groups.tolist())) > 1 else None
        if shared is not None:
            progress(
                f"fit-speed {name} [shared]: batched {shared.candidates_per_s['batched']:.2f}, "
                f"scipy {shared.candidates_per_s['scipy']:.3f} candidates/s"
            )
        tasks[name] = TaskSpeed(
            target=problem.target,
            rows=int(problem.y.size),
            groups=len(set(problem.groups.tolist())),
            folds=len(folds),
            laws=[proposal.expression for proposal in proposals],
            solvers=speeds,
            candidates_ratio=round(batched.candidates_per_s / max(scipy.candidates_per_s, 1e-9), 2),
            fits_ratio=round(batched.fits_per_s / max(scipy.fits_per_s, 1e-9), 2),
            shared=shared,
        )
    return FitSpeedResult(n_laws=n_laws, n_starts=engine.n_starts, seed=seed, tasks=tasks)


def _evaluate_all(
    problem: Problem, proposals: list[Proposal], folds: list[Fold], engine: EngineConfig, solver: Solver
) -> tuple[list[tuple[str, float | None]], float, float]:
    """Evaluate every proposal as the search does; return (status, validation R^2) each, CPU and wall seconds."""
    config = engine.fit_config().model_copy(update={"solver": solver})

    def evaluate(proposal: Proposal) -> tuple[str, float | None]:
        candidate, _ = evaluate_proposal(
            problem, proposal, folds, config=config, complexity_penalty=engine.complexity_penalty
        )
        return candidate.status, candidate.validation_r2 if candidate.status == "ok" else None

    evaluate(proposals[0])  # warm-up: lazy imports and caches are not what is measured
    cpu, wall = time.process_time(), time.perf_counter()
    outcomes = [evaluate(proposal) for proposal in proposals]
    return outcomes, time.process_time() - cpu, time.perf_counter() - wall


def _measure_shared(
    problem: Problem, proposals: list[Proposal], folds: list[Fold], engine: EngineConfig
) -> SharedSpeed:
    """Time both solvers on the proposals with each of their constants in turn shared by all groups."""
    variants = []
    for proposal in proposals:
        law = law_from_proposal(proposal, problem.variables)
        for shared in sharing_variants(law, shared=frozenset()):
            variants.append(dataclasses.replace(proposal, shared=tuple(sorted(shared))))
    rates: dict[str, float] = {}
    statuses: dict[str, list[str]] = {}
    r2: dict[str, list[float | None]] = {}
    for solver in SOLVERS:
        outcomes, cpu, _ = _evaluate_all(problem, variants, folds, engine, solver)
        rates[solver] = round(len(variants) / max(cpu, 1e-9), 4)
        statuses[solver] = [status for status, _ in outcomes]
        r2[solver] = [None if value is None else round(value, 6) for _, value in outcomes]
    return SharedSpeed(
        candidates=[shared_identity(v.expression, v.shared) for v in variants],
        candidates_per_s=rates,
        statuses=statuses,
        validation_r2=r2,
        candidates_ratio=round(rates["batched"] / max(rates["scipy"], 1e-9), 2),
    )


def _measure_solver(
    problem: Problem, proposals: list[Proposal], folds: list[Fold], engine: EngineConfig, solver: Solver
) -> SolverSpeed:
    """Time the candidate evaluations, then the per-group fits, of one solver."""
    config = engine.fit_config().model_copy(update={"solver": solver})
    outcomes, candidate_cpu, candidate_wall = _evaluate_all(problem, proposals, folds, engine, solver)
    cpu = time.process_time()
    n_fits = 0
    for proposal in proposals:
        law = law_from_proposal(proposal, problem.variables)
        n_fits += len(fit_law_grouped(law, problem.X, problem.y, problem.groups, config=config).fits)
    fit_cpu = time.process_time() - cpu
    return SolverSpeed(
        candidates_per_s=round(len(proposals) / max(candidate_cpu, 1e-9), 4),
        fits_per_s=round(n_fits / max(fit_cpu, 1e-9), 2),
        candidate_cpu_s=round(candidate_cpu, 3),
        candidate_wall_s=round(candidate_wall, 3),
        fit_cpu_s=round(fit_cpu, 3),
        statuses=[status for status, _ in outcomes],
        validation_r2=[None if r2 is None else round(r2, 6) for _, r2 in outcomes],
    )


def speed_table(result: FitSpeedResult) -> str:
    """Render the result as a Markdown table."""
    lines = [
        "| task | rows | groups | batched candidates/s | scipy candidates/s | ratio | batched fits/s | "
        "scipy fits/s | ratio | shared: batched candidates/s | scipy | ratio |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, task in result.tasks.items():
        b, s = task.solvers["batched"], task.solvers["scipy"]
        shared = (
            "| - | - | - |"
            if task.shared is None
            else f"| {task.shared.candidates_per_s['batched']:.2f} | {task.shared.candidates_per_s['scipy']:.3f} | "
            f"{task.shared.candidates_ratio:.1f}x |"
        )
        lines.append(
            f"| {name} | {task.rows} | {task.groups} | {b.candidates_per_s:.2f} | {s.candidates_per_s:.3f} | "
            f"{task.candidates_ratio:.1f}x | {b.fits_per_s:.0f} | {s.fits_per_s:.0f} | {task.fits_ratio:.1f}x {shared}"
        )
    return "\n".join(lines)

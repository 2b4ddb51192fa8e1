"""Discover a law for a whole task: one search per target on the training rows, then the official test score.

The test rows are read only after every choice is made, to score the chosen law (and the human-derived law beside
it). A run directory keeps every candidate (``candidates.jsonl``); a run started again on the same directory
reads them back and does not evaluate them again.

Example
-------
``sld discover --task sft_scaling_law --budget-s 120 --json out.json --run-dir runs/sft``
"""

from __future__ import annotations

import hashlib
import json
import math
import platform
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

import numpy as np

from sld.search import Scores, SplitArrays, score_predictions
from sld.search.candidates import Candidate, Problem, candidate_from_record
from sld.search.engine import EngineConfig, Proposer, SearchOutcome, SearchState, run_search
from sld.tasks import Task
from sld.tasks.problems import task_problems

Progress = Callable[[str], None]


@dataclass
class TaskDiscovery:
    """The chosen law of every target of a task and how it scored."""

    task: Task
    outcomes: list[SearchOutcome]
    test_scores: Scores | None
    seconds: float

    @property
    def validation_r2(self) -> float:
        """Mean over targets of the chosen laws' validation R^2."""
        return float(np.mean([outcome.best.validation_r2 for outcome in self.outcomes]))

    @property
    def n_params(self) -> int:
        """Constants per group of the largest per-target law."""
        return max(outcome.law.n_params for outcome in self.outcomes)

    def candidates_evaluated(self) -> int:
        """Candidates evaluated over all targets."""
        return sum(len(outcome.state.candidates) for outcome in self.outcomes)

    def proposals(self) -> dict[str, int]:
        """Proposals per source over all targets."""
        total: Counter[str] = Counter()
        for outcome in self.outcomes:
            total.update(outcome.state.proposals)
        return dict(sorted(total.items()))

    def constants(self) -> dict[str, dict[str, dict[str, float]]]:
        """Return ``{target: {group: {constant: value}}}`` of the final fits."""
        table: dict[str, dict[str, dict[str, float]]] = {}
        for outcome in self.outcomes:
            names = [spec.name for spec in outcome.law.constants]
            table[outcome.problem.target] = {
                group: ({n: float(v) for n, v in zip(names, fit.params, strict=True)} if fit.params is not None else {})
                for group, fit in outcome.fit.fits.items()
            }
        return table

    def expression(self) -> str:
        """Return the chosen law as text (``target = law`` per target when there are several)."""
        if len(self.outcomes) == 1:
            return self.outcomes[0].best.expression
        return "; ".join(f"{o.problem.target} = {o.best.expression}" for o in self.outcomes)

    def summary(self) -> dict[str, object]:
        """Return the ``--json`` summary."""
        test_r2 = None if self.test_scores is None else _json_float(self.test_scores.r2)
        return {
            "task": self.task.name,
            "law": {
                "expression": self.expression(),
                "expressions": {o.problem.target: o.best.expression for o in self.outcomes},
                # Constants with one value for all groups (the others are fitted per group).
                "shared": {o.problem.target: list(o.best.shared) for o in self.outcomes},
                "latex": {o.problem.target: o.law.latex for o in self.outcomes},
                "n_params": self.n_params,
                "constants": self.constants(),
            },
            "test_r2": test_r2,
            "test_nmse": None if self.test_scores is None else _json_float(self.test_scores.nmse),
            "test_nmae": None if self.test_scores is None else _json_float(self.test_scores.nmae),
            "validation_r2": _json_float(self.validation_r2),
            "candidates_evaluated": self.candidates_evaluated(),
            "proposals": self.proposals(),
            "seconds": round(self.seconds, 3),
            # Per target: why the law deserves care (nothing validated), and the near-ties' spread beyond the data.
            "warnings": {o.problem.target: o.state.warning for o in self.outcomes if o.state.warning},
            "uncertainty": {o.problem.target: o.state.band.as_dict() for o in self.outcomes if o.state.band},
        }


def _json_float(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


def hash_rows(rows: SplitArrays) -> str:
    """Return the SHA-256 digest of a split's features, targets and groups (the run's data provenance)."""
    digest = hashlib.sha256()
    for array in (rows.X, rows.Y):
        digest.update(str(array.shape).encode())
        digest.update(np.ascontiguousarray(array, dtype=np.float64).tobytes())
    digest.update("\x1f".join(rows.groups.tolist()).encode())
    return digest.hexdigest()


def data_record(
    train: SplitArrays, test: SplitArrays | None, paths: Mapping[str, str | None] | None = None
) -> dict[str, object]:
    """Describe a run's rows for ``config.json``: row counts, digests (:func:`hash_rows`) and source files."""
    return {
        "train_rows": len(train.X),
        "train_sha256": hash_rows(train),
        "test_rows": None if test is None else len(test.X),
        "test_sha256": None if test is None else hash_rows(test),
        "paths": None if paths is None else dict(paths),
    }


def predict_task(discovery: TaskDiscovery, rows: SplitArrays) -> np.ndarray:
    """Predict every target on ``rows`` with the chosen laws and their per-group constants."""
    columns = [outcome.fit.predict(outcome.law, rows.X, rows.groups) for outcome in discovery.outcomes]
    return np.column_stack(columns)


class RunDirectory:
    """A discovery's files: resolved config, every candidate (append-only), and the result."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.mkdir(parents=True, exist_ok=True)
        self.candidates_path = path / "candidates.jsonl"

    def write_config(self, config: dict[str, object]) -> None:
        """Write the resolved configuration with provenance (versions, platform, time)."""
        versions: dict[str, str | None] = {}
        for package in ("sld", "numpy", "scipy", "sympy", "pandas", "pyoperon", "langgraph", "openai"):
            try:
                versions[package] = metadata.version(package)
            except metadata.PackageNotFoundError:
                versions[package] = None
        provenance = {
            "started": datetime.now(UTC).isoformat(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "versions": versions,
        }
        (self.path / "config.json").write_text(json.dumps({**config, "provenance": provenance}, indent=2))

    def append(self, target: str, candidate: Candidate) -> None:
        """Append one evaluated candidate (flushed at once, so a killed run loses nothing evaluated)."""
        with self.candidates_path.open("a") as handle:
            handle.write(json.dumps({"target": target, **candidate.as_record()}) + "\n")
            handle.flush()

    def load_states(self) -> dict[str, SearchState]:
        """Read back the candidates of an earlier run, per target."""
        states: dict[str, SearchState] = {}
        if not self.candidates_path.exists():
            return states
        for line in self.candidates_path.read_text().splitlines():
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line cut by a kill
            state = states.setdefault(str(record.pop("target")), SearchState())
            candidate = candidate_from_record(record)
            state.candidates.append(candidate)
            state.proposals[candidate.source] += 1
        return states

    def write_result(self, summary: dict[str, object]) -> None:
        """Write the final summary atomically."""
        tmp = self.path / "result.json.tmp"
        tmp.write_text(json.dumps(summary, indent=2))
        tmp.replace(self.path / "result.json")


def discover_task(
    task: Task,
    train: SplitArrays,
    test: SplitArrays | None,
    config: EngineConfig,
    *,
    max_params: int | None = None,
    run_dir: Path | None = None,
    extra_proposers: tuple[Proposer, ...] = (),
    progress: Progress = lambda message: None,
    data_paths: Mapping[str, str | None] | None = None,
) -> TaskDiscovery:
    """Search every target of a task on its training rows; score the chosen laws on the test rows.

    Parameters
    ----------
    task : Task
        What to discover.
    train : SplitArrays
        Training rows: every choice is made on them.
    test : SplitArrays or None
        Rows scored once, after the choice (``None``: no score).
    config : EngineConfig
        Search settings; the budget is shared by the targets.
    max_params : int, optional
        Override of the task's constant budget.
    run_dir : Path, optional
        Where candidates and the result are kept; an earlier run there is resumed.
    extra_proposers : tuple of callables
        More proposers (e.g. an LLM) asked every round.
    progress : callable
        Receives progress lines.
    data_paths : mapping, optional
        Files the rows came from (``{"train": path, "test": path}``), recorded in the run directory's
        ``config.json`` so that ``sld report`` can load user data again.
    """
    started = time.monotonic()
    problems = task_problems(task, train, max_params=max_params)
    directory = RunDirectory(run_dir) if run_dir is not None else None
    states = directory.load_states() if directory is not None else {}
    if directory is not None:
        directory.write_config(
            {
                "task": task.model_dump(),
                "engine": config.model_dump(),
                "max_params": max_params,
                "data": data_record(train, test, data_paths),
            }
        )
    per_target = config.model_copy(update={"budget_s": config.budget_s / len(problems)})
    outcomes = []
    for problem in problems:
        outcomes.append(
            _search_target(problem, per_target, states.get(problem.target), directory, extra_proposers, progress)
        )
    discovery = TaskDiscovery(task=task, outcomes=outcomes, test_scores=None, seconds=0.0)
    if test is not None and len(test.X):
        discovery.test_scores = score_predictions(test.Y, predict_task(discovery, test))
    discovery.seconds = time.monotonic() - started
    if directory is not None:
        directory.write_result(discovery.summary())
    return discovery


def _search_target(
    problem: Problem,
    config: EngineConfig,
    state: SearchState | None,
    directory: RunDirectory | None,
    extra_proposers: tuple[Proposer, ...],
    progress: Progress,
) -> SearchOutcome:
    if state is not None:
        progress(f"{problem.target}: resuming with {len(state.candidates)} earlier candidates")
        # Replay the rounds from the first: their proposals are deterministic and cheap to make again, and
        # deduplication skips everything already evaluated, so only unevaluated candidates are fitted.
        state.round = 0

    def record(candidate: Candidate) -> None:
        if directory is not None:
            directory.append(problem.target, candidate)
        if candidate.status == "ok":
            progress(
                f"{problem.target}: [{candidate.source}] val R^2 {candidate.validation_r2:.4f} "
                f"({candidate.n_params} constants) {candidate.identity[:90]}"
            )

    outcome = run_search(problem, config, extra_proposers=extra_proposers, on_candidate=record, state=state)
    if outcome.state.warning:
        progress(f"warning: {outcome.state.warning}")
    progress(
        f"{problem.target}: chose {outcome.best.identity} (validation R^2 {outcome.best.validation_r2:.4f}, "
        f"{len(outcome.state.candidates)} candidates, {outcome.seconds:.0f} s)"
    )
    return outcome

"""The benchmark gate: fail when a quick benchmark's mean test R^2 falls below a stored baseline.

The baseline (``bench/baseline.json``) keeps the mean R^2 (clipped to [-1, 1] per task, as the leaderboard does)
of one quick benchmark run, its per-task scores, the command that produced it, and the tolerance: the gate fails
when ``mean_r2 < baseline.mean_r2 - tolerance``. The tolerance absorbs the run-to-run spread of a search under a
wall-clock budget (a slower machine evaluates fewer candidates).

Example
-------
``sld gate artifacts/quick.json --baseline bench/baseline.json``
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from sld.benchmark import BenchResult
from sld.report.errors import ReportError
from sld.search import clip_r2


class GateError(ReportError):
    """A result or baseline the gate cannot read or compare."""


class Baseline(BaseModel):
    """A stored benchmark result to gate against.

    Attributes
    ----------
    method : str
        Method of the benchmark (``sld``).
    mean_r2 : float
        Mean over tasks of the test R^2 clipped to [-1, 1].
    tolerance : float
        Largest drop of ``mean_r2`` that still passes.
    tasks : dict
        Test R^2 per task (unclipped), for the per-task report.
    command : str
        How the baseline was produced.
    created : str
        When.
    notes : str
        Machine, wall time, how the tolerance was chosen.
    """

    model_config = ConfigDict(extra="forbid")

    method: str
    mean_r2: float
    tolerance: float = Field(ge=0)
    tasks: dict[str, float]
    command: str = ""
    created: str = ""
    notes: str = ""


@dataclass(frozen=True)
class GateOutcome:
    """What the gate decided.

    Attributes
    ----------
    passed : bool
        Whether ``mean_r2 >= baseline_mean_r2 - tolerance``.
    mean_r2, baseline_mean_r2, tolerance : float
        The numbers compared.
    deltas : dict
        ``{task: clipped R^2 - clipped baseline R^2}`` for the tasks of both.
    """

    passed: bool
    mean_r2: float
    baseline_mean_r2: float
    tolerance: float
    deltas: dict[str, float]

    def lines(self) -> list[str]:
        """Return a human-readable account, one line per task, then the verdict."""
        out = [f"  {task:<32} {delta:+.4f}" for task, delta in self.deltas.items()]
        drop = self.baseline_mean_r2 - self.mean_r2
        verdict = "PASS" if self.passed else "FAIL"
        out.append(f"{verdict}: mean R^2 {self.mean_r2:.4f} vs baseline {self.baseline_mean_r2:.4f} "
                   f"(drop {drop:+.4f}, tolerance {self.tolerance:.4f})")
        return out


def load_json_model(path: str | Path, model: type[BaseModel]) -> BaseModel:
    """Read and validate a JSON file, with a one-line error naming the file."""
    path = Path(path)
    if not path.is_file():
        raise GateError(f"{path} does not exist.")
    try:
        return model.model_validate_json(path.read_text())
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "(top level)"
        raise GateError(f"{path}: {where}: {first['msg']} (expected a {model.__name__} JSON).") from exc


def check_gate(result: BenchResult, baseline: Baseline, *, tolerance: float | None = None) -> GateOutcome:
    """Compare a benchmark result with the baseline.

    Parameters
    ----------
    result : BenchResult
        The new result (``sld bench --json``).
    baseline : Baseline
        The stored one.
    tolerance : float, optional
        Overrides the baseline's tolerance.

    Raises
    ------
    GateError
        When the result lacks a task of the baseline (a smaller benchmark cannot be compared).

    Examples
    --------
    >>> from sld.benchmark import BenchResult, TaskScore
    >>> score = TaskScore(r2=0.80, nmse=0.2, nmae=0.3, n_params=3, law="a", seconds=1.0)
    >>> baseline = Baseline(method="sld", mean_r2=0.9, tolerance=0.05, tasks={"t": 0.9})
    >>> check_gate(BenchResult(method="sld", tasks={"t": score}, mean_r2=0.8), baseline).passed
    False
    """
    missing = sorted(set(baseline.tasks) - set(result.tasks))
    if missing:
        raise GateError(f"The result has no score for task(s) {', '.join(missing)} of the baseline; "
                        "run the same tasks as the baseline.")
    limit = baseline.tolerance if tolerance is None else tolerance
    scores = {task: clip_r2(result.tasks[task].r2) for task in baseline.tasks}
    mean = sum(scores.values()) / len(scores) if scores else math.nan
    deltas = {task: scores[task] - clip_r2(value) for task, value in baseline.tasks.items()}
    passed = math.isfinite(mean) and mean >= baseline.mean_r2 - limit - 1e-12
    return GateOutcome(passed=passed, mean_r2=mean, baseline_mean_r2=baseline.mean_r2, tolerance=limit, deltas=deltas)


def baseline_from_result(result: BenchResult, *, tolerance: float, command: str = "", notes: str = "") -> Baseline:
    """Make a baseline of a benchmark result."""
    return Baseline(method=result.method, mean_r2=result.mean_r2, tolerance=tolerance,
                    tasks={task: score.r2 if math.isfinite(score.r2) else -1.0 for task, score in result.tasks.items()},
                    command=command, created=datetime.now(UTC).isoformat(timespec="seconds"), notes=notes)


def write_baseline(baseline: Baseline, path: str | Path) -> None:
    """Write a baseline as indented JSON."""
    Path(path).write_text(json.dumps(baseline.model_dump(), indent=2) + "\n")

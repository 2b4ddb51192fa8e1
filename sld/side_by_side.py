"""Several methods scored on the same tasks in one bench run, side by side (JSON model and Markdown table).

Example
-------
``sld bench --suite rnsl --method sld,m1,m2,m3,m4 --budget-s 20 --json rnsl.json`` and
``sld bench --method human,operon,sld --json peers.json`` write a :class:`BenchComparison`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict

from sld.benchmark import BenchResult, TaskScore
from sld.search import clip_r2

Suite = Literal["sldbench", "rnsl"]
Metric = Literal["r2", "log_rmse"]
METRIC: dict[Suite, Metric] = {"sldbench": "r2", "rnsl": "log_rmse"}
SLD = "sld"


class TaskComparison(BaseModel):
    """Every method's score on one task, and who did best by the suite's metric."""

    model_config = ConfigDict(extra="forbid")

    scores: dict[str, TaskScore]
    winners: list[str]
    best_peer: str | None
    sld_beats_best_peer: bool | None


class MethodSummary(BaseModel):
    """One method over the suite: means, wins (ties share a win) and how often it returned a law."""

    model_config = ConfigDict(extra="forbid", ser_json_inf_nan="strings")

    mean_r2: float
    mean_log_rmse: float | None
    wins: float
    laws_returned: int
    tasks: int
    beats_best_peer: int | None = None


class BenchComparison(BaseModel):
    """The JSON of a bench run with several methods (or on the rnsl suite): one model writes and reads it."""

    model_config = ConfigDict(extra="forbid")

    suite: Suite
    metric: Metric
    methods: list[str]
    tasks: dict[str, TaskComparison]
    summary: dict[str, MethodSummary]

    def result(self, method: str) -> BenchResult:
        """Return one method's scores as a single-method :class:`BenchResult` (what ``sld gate`` reads)."""
        tasks = {name: task.scores[method] for name, task in self.tasks.items()}
        return BenchResult(method=method, tasks=tasks, mean_r2=self.summary[method].mean_r2)


def metric_value(score: TaskScore, metric: Metric) -> float:
    """Return a score's value of ``metric`` in the paper's win convention (no value: log-RMSE 1, R^2 -inf)."""
    if metric == "log_rmse":
        value = score.log_rmse
        return 1.0 if value is None or not math.isfinite(value) else value
    return score.r2 if math.isfinite(score.r2) else -math.inf


def _key(score: TaskScore, metric: Metric) -> float:
    # Lower is better; the paper truncates log-RMSE to 3 decimals before counting wins, so near-equal estimators
    # share the win. R^2 is compared at the 4 decimals the tables print.
    value = metric_value(score, metric)
    return math.floor(value * 1000) / 1000 if metric == "log_rmse" else -round(value, 4)


def compare_task(scores: Mapping[str, TaskScore], metric: Metric) -> TaskComparison:
    """Rank the methods' scores of one task: winners (ties share), best peer (any method but sld)."""
    best = min(_key(score, metric) for score in scores.values())
    winners = [method for method, score in scores.items() if _key(score, metric) == best]
    peers = {method: score for method, score in scores.items() if method != SLD}
    sign = 1.0 if metric == "log_rmse" else -1.0
    best_peer = min(peers, key=lambda m: sign * metric_value(peers[m], metric)) if peers else None
    beats = None
    if SLD in scores and best_peer is not None:
        sld_value, peer_value = metric_value(scores[SLD], metric), metric_value(peers[best_peer], metric)
        beats = bool(sign * sld_value < sign * peer_value)
    return TaskComparison(scores=dict(scores), winners=winners, best_peer=best_peer, sld_beats_best_peer=beats)


def summarize(tasks: Mapping[str, TaskComparison], methods: Sequence[str], metric: Metric) -> dict[str, MethodSummary]:
    """Return each method's :class:`MethodSummary` (means clip R^2 to [-1, 1]; a missing log-RMSE counts as 1)."""
    summary: dict[str, MethodSummary] = {}
    for method in methods:
        scores = [task.scores[method] for task in tasks.values()]
        wins = sum(1.0 / len(task.winners) for task in tasks.values() if method in task.winners)
        summary[method] = MethodSummary(
            mean_r2=mean_r2(scores),
            mean_log_rmse=round(float(np.mean([metric_value(s, "log_rmse") for s in scores])), 6)
            if metric == "log_rmse" and scores
            else None,
            wins=round(wins, 3),
            laws_returned=sum(s.law_returned for s in scores),
            tasks=len(scores),
            beats_best_peer=sum(bool(task.sld_beats_best_peer) for task in tasks.values()) if method == SLD else None,
        )
    return summary


def mean_r2(scores: Sequence[TaskScore]) -> float:
    """Return the suite mean of R^2, each clipped to [-1, 1] (failures count as -1).

    ``nan`` marks an undefined R^2 (one extrapolation row, or a constant one), which is left out.
    """
    defined = [clip_r2(score.r2) for score in scores if not math.isnan(score.r2)]
    return round(float(np.mean(defined)), 6) if defined else math.nan


def run_side_by_side(
    suite: Suite,
    scorers: Mapping[str, Callable[[str], TaskScore]],
    task_names: Sequence[str],
    *,
    progress: Callable[[str], None] = lambda message: None,
) -> BenchComparison:
    """Score every task with every method (tasks outer, methods inner, in the order given) and compare them.

    Parameters
    ----------
    suite : {"sldbench", "rnsl"}
        Sets the metric: test R^2 on SLDBench, log-RMSE on rnsl.
    scorers : mapping of str to callable
        Method name to a function from task name to :class:`TaskScore`.
    task_names : sequence of str
        Tasks (or curves) to score.
    progress : callable
        Receives one line per task and method.
    """
    metric = METRIC[suite]
    tasks: dict[str, TaskComparison] = {}
    for name in task_names:
        scores: dict[str, TaskScore] = {}
        for method, scorer in scorers.items():
            progress(f"{method}: {name} ...")
            scores[method] = score = scorer(name)
            shown = f"log-RMSE {score.log_rmse:.4f}" if score.log_rmse is not None else f"R^2 {score.r2:.4f}"
            progress(f"{method}: {name} {shown} ({score.seconds:.1f} s)")
        tasks[name] = compare_task(scores, metric)
    methods = list(scorers)
    return BenchComparison(
        suite=suite, metric=metric, methods=methods, tasks=tasks, summary=summarize(tasks, methods, metric)
    )


def cell(value: float | None, digits: int = 4) -> str:
    """Return a table cell: the value to ``digits`` decimals, empty when missing or not finite."""
    return "" if value is None or not math.isfinite(value) else f"{value:.{digits}f}"


def markdown_side_by_side(result: BenchComparison) -> str:
    """Render per task each method's metric (and R^2 on rnsl), the winners and the best peer; then the means."""
    methods = result.methods
    rnsl = result.metric == "log_rmse"
    heads = [f"{m} log-RMSE" for m in methods] if rnsl else []
    heads += [f"{m} R^2" for m in methods]
    lines = ["| task | " + " | ".join(heads) + " | best | best peer |", "|---" * (len(heads) + 3) + "|"]
    for name, task in result.tasks.items():
        scores = [task.scores[m] for m in methods]
        values = [cell(s.log_rmse) if s.law_returned else "no law" for s in scores] if rnsl else []
        values += [cell(s.r2) if s.law_returned else "no law" for s in scores]
        lines.append(f"| {name} | " + " | ".join(values) + f" | {', '.join(task.winners)} | {task.best_peer or ''} |")
    summary = result.summary
    means = [cell(summary[m].mean_log_rmse) for m in methods] if rnsl else []
    means += [cell(summary[m].mean_r2) for m in methods]
    lines.append("| **mean** | " + " | ".join(means) + " | | |")
    lines.append("")
    lines.append("| method | wins | laws returned | beats the best peer |")
    lines.append("|---|---|---|---|")
    for method in methods:
        item = summary[method]
        beats = "" if item.beats_best_peer is None else f"{item.beats_best_peer} of {item.tasks}"
        lines.append(f"| {method} | {item.wins:g} | {item.laws_returned} of {item.tasks} | {beats} |")
    return "\n".join(lines)

"""The result of a discovery run: the chosen law of every target, its scores and the run's account.

Example
-------
``sld discover --task sft_scaling_law --json out.json`` writes :meth:`Discovery.summary`.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from sld.search import Scores, SplitArrays
from sld.search.engine import SearchOutcome
from sld.search.scoring import finite_or_none
from sld.tasks import Task

from .proposers import SOURCE_LLM
from .rundir import RunResult
from .state import USAGE_KEYS


@dataclass
class Discovery:
    """The chosen law of every target of a task, how it scored, and how the run went.

    Attributes
    ----------
    task : Task
        What was searched.
    outcomes : list of SearchOutcome
        Per target, in the task's order.
    test_scores : Scores or None
        Official scores of the chosen laws on the test rows (None: no test rows).
    seconds : float
        Wall-clock seconds, over every process that worked on the run.
    proposer, llm_model, llm_status, llm_note, llm_usage
        Who proposed, and the LLM's account (usage keys :data:`~sld.agent.state.USAGE_KEYS`).
    stopped : dict
        ``{target: why its search stopped}``.
    """

    task: Task
    outcomes: list[SearchOutcome]
    test_scores: Scores | None
    seconds: float
    proposer: str = "offline"
    llm_model: str | None = None
    llm_status: str = "unused"
    llm_note: str = ""
    llm_usage: dict[str, int] = field(default_factory=dict)
    stopped: dict[str, str] = field(default_factory=dict)

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
        """Return evaluated proposals per source (``family``, ``operon``, ``evolution``, ``llm``...), all targets."""
        total: Counter[str] = Counter()
        for outcome in self.outcomes:
            total.update(outcome.state.proposals)
        return dict(sorted(total.items()))

    def llm_share(self) -> float:
        """Return the LLM's share of the evaluated proposals (0 when none)."""
        by_source = self.proposals()
        total = sum(by_source.values())
        return by_source.get(SOURCE_LLM, 0) / total if total else 0.0

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

    def llm_summary(self) -> dict[str, object]:
        """Return the ``llm`` block of the summary: model, calls, tokens, failures, status, share."""
        usage = {key: int(self.llm_usage.get(key, 0)) for key in USAGE_KEYS}
        return {
            "model": self.llm_model, "status": self.llm_status, "note": self.llm_note,
            "calls": usage["calls"], "cached_calls": usage["cached_calls"],
            "tokens": {"prompt": usage["prompt_tokens"], "completion": usage["completion_tokens"],
                       "total": usage["prompt_tokens"] + usage["completion_tokens"]},
            "failures": usage["failures"], "share_of_proposals": round(self.llm_share(), 4),
        }

    def shared(self) -> dict[str, list[str]]:
        """Return, per target, the constants with one value for all groups (the others are fitted per group)."""
        return {o.problem.target: list(o.best.shared) for o in self.outcomes}

    def warnings(self) -> dict[str, str]:
        """Return, per target that has one, the warning of its choice (e.g. why validation was weak)."""
        return {o.problem.target: o.state.warning for o in self.outcomes if o.state.warning}

    def uncertainty(self) -> dict[str, dict[str, object]]:
        """Return, per target, the near-ties' uncertainty band beyond the data."""
        return {o.problem.target: o.state.band.as_dict() for o in self.outcomes if o.state.band}

    def summary(self) -> RunResult:
        """Return the summary (``--json``, ``result.json``)."""
        scores = self.test_scores
        return RunResult(
            task=self.task.name,
            law={
                "expression": self.expression(),
                "expressions": {o.problem.target: o.best.expression for o in self.outcomes},
                "shared": self.shared(),
                "latex": {o.problem.target: o.law.latex for o in self.outcomes},
                "n_params": self.n_params,
                "constants": self.constants(),
            },
            test_r2=None if scores is None else finite_or_none(scores.r2),
            test_nmse=None if scores is None else finite_or_none(scores.nmse),
            test_nmae=None if scores is None else finite_or_none(scores.nmae),
            validation_r2=finite_or_none(self.validation_r2),
            candidates_evaluated=self.candidates_evaluated(),
            proposals=self.proposals(),
            seconds=round(self.seconds, 3),
            proposer=self.proposer,
            llm=self.llm_summary(),
            stopped=dict(self.stopped),
            warnings=self.warnings(),
            uncertainty=self.uncertainty(),
        )


def predict_task(discovery: Discovery, rows: SplitArrays) -> np.ndarray:
    """Predict every target on ``rows`` with the chosen laws and their per-group constants."""
    columns = [outcome.fit.predict(outcome.law, rows.X, rows.groups) for outcome in discovery.outcomes]
    return np.column_stack(columns)

"""Fit several laws identically on one task and compare their test scores, with bootstrap intervals.

Every law is fitted per group on the same training rows with the same multi-start settings, then scored on the same
test rows with the official rule. The intervals come from resampling the test rows' *groups* with replacement
(groups are the independent units: rows of one group share their constants), or the rows themselves when the test
rows hold fewer than ``MIN_GROUPS`` groups. Each resample scores every law on the same rows, so the differences are
paired: the interval of ``R^2(law) - R^2(reference)`` is much narrower than either law's own interval would suggest.

The module takes arrays and laws and returns results (``sld compare`` is its command line).

Example
-------
``sld compare --task sft_scaling_law --law "A / (sft_data_size**alpha + B) + C" --law "E + A * sft_data_size**(-a)"``
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from sld.search import FitConfig, Law, Scores, SplitArrays, score_predictions, score_split

Unit = Literal["auto", "groups", "rows"]
MIN_GROUPS = 5  # fewer test groups than this give too few distinct resamples; rows are resampled instead


@dataclass(frozen=True)
class LawScore:
    """One law's test scores.

    Attributes
    ----------
    name : str
        Label (``human-derived``, ``law 1``...).
    expression : str
        The law's text (``target = law; ...`` for several targets).
    n_params : int
        Constants per group of its largest per-target law.
    scores : Scores
        Official test scores.
    r2_interval : tuple of float or None
        Bootstrap interval of the test R^2 (``None`` when the law failed).
    """

    name: str
    expression: str
    n_params: int
    scores: Scores
    r2_interval: tuple[float, float] | None


@dataclass(frozen=True)
class PairedDifference:
    """How a law's test R^2 differs from the reference law's, on the same resamples.

    Attributes
    ----------
    name : str
        The law compared with the reference.
    delta_r2 : float
        ``R^2(law) - R^2(reference)`` on all test rows.
    interval : tuple of float
        Bootstrap interval of that difference.
    p_better : float
        Share of resamples where the law's R^2 is higher.
    """

    name: str
    delta_r2: float
    interval: tuple[float, float]
    p_better: float


@dataclass(frozen=True)
class Comparison:
    """Paired comparison of several laws on one task.

    Attributes
    ----------
    task : str
        Task name.
    reference : str
        Name of the law the differences are taken against (the first law).
    unit : {"groups", "rows"}
        What the bootstrap resampled.
    n_units : int
        Groups or rows available to resample.
    n_resamples : int
        Resamples used (those with a constant target are dropped).
    level : float
        Coverage of the intervals.
    laws : list of LawScore
        In the order given.
    differences : list of PairedDifference
        Every law but the reference against it.
    """

    task: str
    reference: str
    unit: Literal["groups", "rows"]
    n_units: int
    n_resamples: int
    level: float
    laws: list[LawScore]
    differences: list[PairedDifference]

    def as_dict(self) -> dict[str, object]:
        """Return a JSON-ready dictionary (non-finite numbers become ``None``)."""
        def number(value: float) -> float | None:
            return float(value) if math.isfinite(value) else None

        return {
            "task": self.task, "reference": self.reference, "unit": self.unit, "n_units": self.n_units,
            "n_resamples": self.n_resamples, "level": self.level,
            "laws": [{"name": law.name, "expression": law.expression, "n_params": law.n_params,
                      "r2": number(law.scores.r2), "nmse": number(law.scores.nmse), "nmae": number(law.scores.nmae),
                      "failed": law.scores.failed, "message": law.scores.message,
                      "r2_interval": None if law.r2_interval is None else [number(v) for v in law.r2_interval]}
                     for law in self.laws],
            "differences": [{"name": d.name, "delta_r2": number(d.delta_r2),
                             "interval": [number(v) for v in d.interval], "p_better": number(d.p_better)}
                            for d in self.differences],
        }


def resample_indices(groups: NDArray[np.str_], *, unit: Literal["groups", "rows"], n_resamples: int,
                     seed: int) -> list[NDArray[np.intp]]:
    """Return bootstrap resamples of row indices: whole groups, or single rows, drawn with replacement.

    Examples
    --------
    >>> groups = np.array(["a", "a", "b", "c"])
    >>> [len(rows) > 0 for rows in resample_indices(groups, unit="groups", n_resamples=3, seed=0)]
    [True, True, True]
    """
    rng = np.random.default_rng(seed)
    if unit == "rows":
        return [rng.integers(0, len(groups), len(groups)) for _ in range(n_resamples)]
    members = [np.flatnonzero(groups == name) for name in np.unique(groups)]
    return [np.concatenate([members[k] for k in rng.integers(0, len(members), len(members))])
            for _ in range(n_resamples)]


def compare_laws(
    task: str,
    laws: Sequence[tuple[str, Sequence[Law]]],
    train: SplitArrays,
    test: SplitArrays,
    *,
    fit_config: FitConfig,
    n_resamples: int = 1000,
    unit: Unit = "auto",
    level: float = 0.95,
    seed: int = 0,
) -> Comparison:
    """Fit every law identically and compare their test scores with paired bootstrap intervals.

    Parameters
    ----------
    task : str
        Task name (for the report).
    laws : sequence of (name, laws per target)
        The first is the reference of the paired differences.
    train, test : SplitArrays
        Training rows (fitted per group) and test rows (scored).
    fit_config : FitConfig
        Multi-start settings shared by every fit.
    n_resamples : int
        Bootstrap resamples.
    unit : {"auto", "groups", "rows"}
        What to resample; ``auto``: groups when the test rows hold at least ``MIN_GROUPS`` of them, else rows.
    level : float
        Coverage of the intervals (percentile bootstrap).
    seed : int
        Seed of the resampling.

    Returns
    -------
    Comparison

    Raises
    ------
    ValueError
        With no law, or a law whose number of per-target laws differs from the targets.
    """
    if not laws:
        raise ValueError("compare_laws needs at least one law")
    n_groups = int(np.unique(test.groups).size)
    chosen: Literal["groups", "rows"] = ("groups" if n_groups >= MIN_GROUPS else "rows") if unit == "auto" else unit
    names = [name for name, _ in laws]
    evaluations = [score_split(list(per_target), train, test, config=fit_config) for _, per_target in laws]
    samples = resample_indices(test.groups, unit=chosen, n_resamples=n_resamples, seed=seed)
    ok = [not e.scores.failed and bool(np.all(np.isfinite(e.predictions))) for e in evaluations]
    r2 = np.full((len(samples), len(laws)), np.nan)
    for i, rows in enumerate(samples):
        for j, evaluation in enumerate(evaluations):
            if ok[j]:
                scores = score_predictions(test.Y[rows], evaluation.predictions[rows])
                r2[i, j] = scores.r2 if not scores.failed else np.nan
    usable = r2[~np.all(np.isnan(r2), axis=1)] if any(ok) else r2[:0]
    tail = 100.0 * (1.0 - level) / 2.0

    def interval(values: NDArray[np.float64]) -> tuple[float, float]:
        finite = values[np.isfinite(values)]
        if not finite.size:
            return (math.nan, math.nan)
        low, high = np.percentile(finite, [tail, 100.0 - tail])
        return (float(low), float(high))

    scored = [LawScore(name=name, expression=_expression(per_target, test.Y.shape[1]),
                       n_params=max(law.n_params for law in per_target), scores=evaluation.scores,
                       r2_interval=interval(usable[:, j]) if ok[j] and len(usable) else None)
              for j, ((name, per_target), evaluation) in enumerate(zip(laws, evaluations, strict=True))]
    differences = []
    for j in range(1, len(laws)):
        delta = evaluations[j].scores.r2 - evaluations[0].scores.r2 if ok[0] and ok[j] else math.nan
        paired = usable[:, j] - usable[:, 0] if ok[0] and ok[j] else np.array([])
        differences.append(PairedDifference(
            name=names[j], delta_r2=float(delta), interval=interval(paired),
            p_better=float(np.mean(paired > 0)) if paired.size else math.nan))
    return Comparison(task=task, reference=names[0], unit=chosen, n_units=n_groups if chosen == "groups" else
                      len(test.X), n_resamples=len(usable), level=level, laws=scored, differences=differences)


def _expression(laws: Sequence[Law], n_targets: int) -> str:
    if n_targets == 1:
        return laws[0].text
    return "; ".join(law.text for law in laws)

"""When no candidate passes validation, still give the user the best plausible law, with a warning.

A short, clean curve can leave too few rows for the extrapolation folds to judge any law (a 10-point learning
curve keeps 2 rows per fold), yet the literature families fit it well. The user gets the law that fits all
training rows best among those that pass the extrapolation and plausibility checks (an implausible one only when
none does), and a warning that names why validation was weak.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from sld.search.candidates import Candidate, Problem, parsed_law, penalized, prefit_reason, proposal_key
from sld.search.expressions import Law
from sld.search.fitting import FitConfig, GroupedFit
from sld.search.plausibility import description_length
from sld.search.scoring import score_predictions
from sld.search.selection import MIN_VALIDATE_ROWS, Fold, check_extrapolation, ranks
from sld.search.warm_fits import fit_groups_warm

# Candidates refitted on all training rows for the fallback, in evaluation order (families come first).
MAX_FALLBACK_CANDIDATES = 60


@dataclass(frozen=True)
class Fallback:
    """The law given when nothing validated, and the warning that goes with it."""

    candidate: Candidate
    law: Law
    fit: GroupedFit
    warning: str


def weak_validation_reason(problem: Problem, candidates: Sequence[Candidate], folds: Sequence[Fold]) -> str:
    """Return why validation could not pass any law: few held-out rows, a flat tail, what the candidates failed on."""
    usable = [fold for fold in folds if ranks(fold, problem.y)]
    parts = [
        f"{len(problem.y)} training rows leave {len(usable)} validation fold(s) with {MIN_VALIDATE_ROWS}+ held-out rows"
        " that vary"
    ]
    spread = float(np.ptp(problem.y)) or 1.0
    if usable:
        tail = min(float(np.ptp(problem.y[fold.validate])) for fold in usable) / spread
        if tail < 0.1:
            parts.append(
                f"the held-out rows span only {100 * tail:.1f}% of the target's range (the curve flattens), "
                "so small errors there give large negative R^2"
            )
    # "validation: hopeless: ..." -> "hopeless": the kind of failure, without the per-candidate numbers.
    reasons = Counter(c.reason.removeprefix("validation: ").split(":")[0] for c in candidates if c.reason)
    if reasons:
        parts.append("candidates failed on: " + ", ".join(f"{r} ({n})" for r, n in reasons.most_common(3)))
    return "; ".join(parts)


def fallback_choice(
    problem: Problem, candidates: Sequence[Candidate], folds: Sequence[Fold], *, config: FitConfig, penalty: float
) -> Fallback | None:
    """Return the best plausible law by its fit to all training rows, or ``None`` when no candidate fits at all.

    Parameters
    ----------
    problem : Problem
        Training rows of one target.
    candidates : sequence of Candidate
        Evaluated candidates (none validated).
    folds : sequence of Fold
        The validation folds (to say why validation was weak).
    config : FitConfig
        Constant-fit settings.
    penalty : float
        Relative inflation of the training NMSE per constant, as the validation objective has.
    """
    scored: list[tuple[tuple[bool, float, int, str], Candidate, Law, GroupedFit, str | None]] = []
    for candidate in candidates[:MAX_FALLBACK_CANDIDATES]:
        proposal = candidate.proposal()
        law = parsed_law(proposal, problem.variables)
        if law is None:
            continue
        if prefit_reason(law, problem.max_params) is not None:
            continue
        _, shared = proposal_key(proposal, law)
        fit = fit_groups_warm(law, problem.X, problem.y, problem.groups, config=config, shared=shared)
        with np.errstate(all="ignore"):
            scores = score_predictions(problem.y, fit.predict(law, problem.X, problem.groups))
        if scores.failed or not math.isfinite(scores.nmse):
            continue
        reason = check_extrapolation(law, fit, problem.X, problem.y, problem.groups, problem.region)
        objective = penalized(scores.nmse, law, shared, problem.groups, penalty)
        key = (reason is not None, objective, description_length(law), candidate.expression)
        scored.append((key, replace(candidate, train_r2=float(scores.r2)), law, fit, reason))
    if not scored:
        return None
    _, candidate, law, fit, reason = min(scored, key=lambda entry: entry[0])
    why = weak_validation_reason(problem, candidates, folds)
    plausible = (
        "it passes the plausibility checks" if reason is None else f"no law passed the checks; this one {reason}"
    )
    warning = (
        f"No law for target '{problem.target}' passed validation ({len(candidates)} tried): {why}. "
        f"Chose the best fit to all training rows (R^2 {candidate.train_r2:.4f}); {plausible}. "
        "Treat its extrapolation with care, or add rows at larger scale."
    )
    return Fallback(candidate=candidate, law=law, fit=fit, warning=warning)

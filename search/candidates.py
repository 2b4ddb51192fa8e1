"""Evaluate one proposed law form: parse, fit per group, screen, check its extrapolation, validate by folds.

Everything here works on the training rows of one target; the test rows never reach this module.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field

import numpy as np
from numpy.typing import NDArray

from sld.search.errors import ExpressionError
from sld.search.expressions import ConstantSpec, Law, parse_law
from sld.search.fitting import FitConfig, FitResult, GroupedFit
from sld.search.plausibility import nesting_reason, optimum_left_out_reason
from sld.search.proposals import Proposal
from sld.search.scoring import score_predictions
from sld.search.selection import Fold, ProbeRegion, check_extrapolation, validate_law
from sld.search.shared_fits import effective_params, shared_identity
from sld.search.warm_fits import RowSetFits, fit_groups_warm, group_params

FloatArray = NDArray[np.float64]
StrArray = NDArray[np.str_]


@dataclass(frozen=True)
class Problem:
    """One target's training rows and what the law must respect.

    Attributes
    ----------
    variables : tuple of str
        Names of the columns of ``X``.
    X : ndarray of shape (n, d)
        Inputs.
    y : ndarray of shape (n,)
        Target.
    groups : ndarray of shape (n,)
        Group label per row; each group gets its own constants.
    order : ndarray of shape (n,) or None
        Scale of each row along the extrapolation axis (``None``: random validation folds).
    max_params : int
        Constant budget.
    region : ProbeRegion
        Where the law will be asked to predict, and declared trends.
    target : str
        Name of the target (for logs).
    """

    variables: tuple[str, ...]
    X: FloatArray
    y: FloatArray
    groups: StrArray
    order: FloatArray | None
    max_params: int
    region: ProbeRegion = field(default_factory=ProbeRegion)
    target: str = "y"


@dataclass
class Candidate:
    """A proposal after evaluation.

    ``status`` is ``ok`` (validated), ``rejected`` (unsafe, over budget, hopeless or untrustworthy beyond the
    data, with ``reason``) or ``failed`` (the fit did not converge). ``objective`` is what selection minimises:
    validation NMSE inflated by a per-constant penalty.
    """

    expression: str
    source: str
    family: str = ""
    key: str = ""
    n_params: int = 0
    status: str = "rejected"
    reason: str = ""
    train_r2: float = -math.inf
    validation_r2: float = -math.inf
    validation_nmse: float = math.inf
    fold_r2: tuple[float, ...] = ()
    objective: float = math.inf
    seconds: float = 0.0
    rationale: str = ""
    bounds: dict[str, tuple[float, float, float]] = field(default_factory=dict)
    shared: tuple[str, ...] = ()
    group_constants: dict[str, tuple[float, ...]] = field(default_factory=dict)

    @property
    def identity(self) -> str:
        """The expression together with its shared constants: what makes two candidates the same proposal."""
        return shared_identity(self.expression, self.shared)

    def proposal(self) -> Proposal:
        """Return the proposal this candidate evaluated (to refit it, e.g. on all training rows)."""
        return Proposal(
            self.expression,
            source=self.source,
            family=self.family,
            rationale=self.rationale,
            bounds=dict(self.bounds),
            shared=tuple(self.shared),
        )

    def as_record(self) -> dict[str, object]:
        """Return a JSON-ready dictionary (non-finite numbers become ``None``)."""
        record = asdict(self)
        for name, value in record.items():
            if isinstance(value, float) and not math.isfinite(value):
                record[name] = None
        record["fold_r2"] = list(self.fold_r2)
        record["shared"] = list(self.shared)
        record["bounds"] = {name: [json_number(v) for v in bound] for name, bound in self.bounds.items()}
        record["group_constants"] = {
            name: [json_number(v) for v in values] for name, values in self.group_constants.items()
        }
        return record

    def recorded_fit(self, law: Law, X: FloatArray, y: FloatArray, groups: StrArray) -> GroupedFit | None:
        """Return the fit on all training rows that validated this candidate, from ``group_constants``.

        ``None`` when the record lacks it (a record from before it was kept, or a candidate that did not
        validate) or does not match ``law`` and ``groups``: then the candidate is evaluated again.
        """
        names, row_group = np.unique(np.asarray(groups).astype(str), return_inverse=True)
        if not self.group_constants or set(self.group_constants) != set(names.tolist()):
            return None
        if any(len(values) != law.n_params for values in self.group_constants.values()):
            return None
        message = "recorded by the candidate's evaluation"
        params = {name: np.asarray(values, dtype=np.float64) for name, values in self.group_constants.items()}
        # Each group's MSE, as a fit reports it, from one prediction of all rows with their group's constants.
        unscored = GroupedFit({name: FitResult(values, True, message, math.nan, 1) for name, values in params.items()})
        with np.errstate(all="ignore"):
            squares = (unscored.predict(law, X, groups) - y) ** 2
        mse = np.bincount(row_group, weights=squares) / np.bincount(row_group)
        return GroupedFit(
            {str(name): FitResult(params[str(name)], True, message, float(mse[k]), 1) for k, name in enumerate(names)}
        )


def json_number(value: float) -> float | str:
    """Return ``value``, or its text (``'inf'``) when it is not finite.

    JSON has no infinity; bounds keep theirs as text so that a resumed run reads them back exactly.
    """
    return value if math.isfinite(value) else str(value)


def _number(value: object, default: float) -> float:
    return default if value is None else float(value)  # type: ignore[arg-type]


def candidate_from_record(record: Mapping[str, object]) -> Candidate:
    """Rebuild a :class:`Candidate` from :meth:`Candidate.as_record` output (e.g. a line of a run log).

    ``None`` numbers come back as the non-finite defaults they stood for; unknown keys (``target``) are ignored.

    Examples
    --------
    >>> candidate = Candidate("a * N**b", source="llm", status="ok", objective=0.1, bounds={"b": (-1.0, math.inf, 0.5)})
    >>> candidate_from_record(candidate.as_record()) == candidate
    True
    """
    raw_bounds = record.get("bounds")
    raw_bounds = raw_bounds if isinstance(raw_bounds, Mapping) else {}
    bounds = {str(name): (float(lo), float(hi), float(init)) for name, (lo, hi, init) in raw_bounds.items()}
    fold_r2 = record.get("fold_r2")
    fold_r2 = fold_r2 if isinstance(fold_r2, list | tuple) else ()
    constants = record.get("group_constants")
    constants = constants if isinstance(constants, Mapping) else {}
    return Candidate(
        expression=str(record["expression"]),
        source=str(record["source"]),
        family=str(record.get("family") or ""),
        key=str(record.get("key") or ""),
        n_params=int(_number(record.get("n_params"), 0)),
        status=str(record.get("status") or "rejected"),
        reason=str(record.get("reason") or ""),
        train_r2=_number(record.get("train_r2"), -math.inf),
        validation_r2=_number(record.get("validation_r2"), -math.inf),
        validation_nmse=_number(record.get("validation_nmse"), math.inf),
        fold_r2=tuple(_number(value, -math.inf) for value in fold_r2),
        objective=_number(record.get("objective"), math.inf),
        seconds=_number(record.get("seconds"), 0.0),
        rationale=str(record.get("rationale") or ""),
        bounds=bounds,
        shared=tuple(str(name) for name in record.get("shared") or ()),  # type: ignore[attr-defined]
        group_constants={
            str(name): tuple(_number(value, math.nan) for value in values) for name, values in constants.items()
        },
    )


def proposal_key(proposal: Proposal, law: Law) -> tuple[str, frozenset[str]]:
    """Return the canonical key of a parsed proposal (its law and shared constants) and those shared constants.

    The same law with other shared constants is another candidate; names that are not constants are dropped.
    """
    shared = frozenset(proposal.shared) & set(law.constant_names)
    return shared_identity(law.canonical_key, shared), shared


def law_from_proposal(proposal: Proposal, variables: tuple[str, ...]) -> Law:
    """Parse a proposal into a :class:`Law` with its constant bounds.

    Raises
    ------
    ExpressionError
        When the text is not a safe expression over ``variables``.
    """
    specs = {name: ConstantSpec(name, lower, upper, init) for name, (lower, upper, init) in proposal.bounds.items()}
    return parse_law(proposal.expression, variables, constants=specs)


def parsed_law(proposal: Proposal, variables: tuple[str, ...]) -> Law | None:
    """Return the proposal's law (`law_from_proposal`), or ``None`` when it does not parse.

    What a pool sends its worker beside the proposal: the main process has parsed every proposal to de-duplicate
    it (`sld.search.proposals.deduplicate`; parses are cached), and a worker that gets the law, with its canonical
    key already computed, does not parse it again (over a quarter of a 12-constant law's evaluation). A proposal
    that does not parse is sent alone; its evaluation records why.
    """
    try:
        return law_from_proposal(proposal, variables)
    except ExpressionError:
        return None


def evaluate_proposal(
    problem: Problem,
    proposal: Proposal,
    folds: list[Fold],
    *,
    config: FitConfig,
    complexity_penalty: float,
    min_train_r2: float = 0.0,
    law: Law | None = None,
) -> tuple[Candidate, GroupedFit | None]:
    """Evaluate one proposal on a problem's training rows.

    Parameters
    ----------
    problem : Problem
        Training rows of one target.
    proposal : Proposal
        Law form to evaluate.
    folds : list of Fold
        Validation folds of the training rows.
    config : FitConfig
        Constant-fit settings.
    complexity_penalty : float
        Relative inflation of the validation NMSE per constant.
    min_train_r2 : float
        Candidates fitting the training rows worse than this are rejected as hopeless before validation.
    law : Law, optional
        The proposal's law when the caller has parsed it (`parsed_law`); parsed here when ``None``.

    Returns
    -------
    tuple of (Candidate, GroupedFit or None)
        The candidate, and its fit on all training rows when it got that far.
    """
    started = time.perf_counter()
    candidate = Candidate(
        expression=proposal.expression,
        source=proposal.source,
        family=proposal.family,
        rationale=proposal.rationale,
        bounds=dict(proposal.bounds),
        shared=tuple(sorted(proposal.shared)),
    )
    if law is None:
        try:
            law = law_from_proposal(proposal, problem.variables)
        except ExpressionError as exc:
            candidate.reason = exc.reason
            return _finished(candidate, started), None
    candidate.key, shared = proposal_key(proposal, law)
    candidate.shared, candidate.n_params = tuple(sorted(shared)), law.n_params
    # A law that leaves out a variable with an optimum is rejected before the fits it would fail after.
    structural = prefit_reason(law, problem.max_params) or optimum_left_out_reason(law, problem.region)
    if structural is not None:
        candidate.reason = structural
        return _finished(candidate, started), None
    # Batched: the fit on all training rows first, since it decides most rejections (no floor, a turn beyond the
    # data, no optimum) before any fold is fitted; then every fold's training rows (`RowSetFits`: the fits one call
    # of `fit_row_sets` gives). Scipy (the reference): validate first (folds from small to large, each
    # warm-starting the next), then fit all training rows warm-started from the largest fold, so that hopeless
    # forms stop early.
    fold_fits: list[GroupedFit] | None = None
    if config.solver == "batched":
        row_sets = RowSetFits(
            law, problem.X, problem.y, problem.groups,
            [fold.train for fold in folds] + [np.arange(problem.y.size)], config=config, shared=shared,
        )
        fit = row_sets.fits([len(folds)])[0]
        reason = _full_fit_reason(candidate, law, fit, problem, min_train_r2)
        if reason is not None:
            return _finished(candidate, started), fit
        fold_fits = row_sets.fits(range(len(folds)))
    validation = validate_law(
        law, problem.X, problem.y, problem.groups, folds, config=config, shared=shared, fits=fold_fits
    )
    if validation.failed:
        candidate.status = "rejected" if validation.message.startswith("hopeless") else "failed"
        candidate.reason = f"validation: {validation.message}"
        return _finished(candidate, started), None
    if fold_fits is None:
        fit = fit_groups_warm(
            law, problem.X, problem.y, problem.groups, config=config, initial=validation.warm, shared=shared
        )
        if _full_fit_reason(candidate, law, fit, problem, min_train_r2) is not None:
            return _finished(candidate, started), fit
    candidate.status = "ok"
    candidate.group_constants = {name: tuple(map(float, params)) for name, params in group_params(fit).items()}
    candidate.validation_r2, candidate.validation_nmse = validation.r2, validation.nmse
    candidate.fold_r2 = validation.fold_r2
    candidate.objective = penalized(validation.nmse, law, shared, problem.groups, complexity_penalty)
    return _finished(candidate, started), fit


def prefit_reason(law: Law, max_params: int) -> str | None:
    """Return why a parsed law is rejected before any fit (over the constant budget, nested), or ``None``."""
    if law.n_params > max_params:
        return f"uses {law.n_params} constants; the budget is {max_params}"
    return nesting_reason(law)


def penalized(nmse: float, law: Law, shared: frozenset[str], groups: StrArray, penalty: float) -> float:
    """Return an NMSE inflated by ``penalty`` per constant: what selection minimises.

    Shared constants cost a fraction of a constant per group: one value serves every group.
    """
    return nmse * (1.0 + penalty * effective_params(law.n_params, len(shared), len(np.unique(groups))))


def _full_fit_reason(
    candidate: Candidate, law: Law, fit: GroupedFit, problem: Problem, min_train_r2: float
) -> str | None:
    """Score the fit on all training rows into ``candidate`` and return why it is rejected there, or ``None``.

    A fit that fails or predicts non-finite values fails the candidate; one below ``min_train_r2`` is hopeless; one
    that cannot be trusted beyond the data (`sld.search.selection.check_extrapolation`) is rejected.
    """
    scores = score_predictions(problem.y, fit.predict(law, problem.X, problem.groups))
    if scores.failed or not math.isfinite(scores.r2):
        candidate.status, candidate.reason = "failed", scores.message or "fit failed"
        return candidate.reason
    candidate.train_r2 = float(scores.r2)
    if candidate.train_r2 < min_train_r2:
        candidate.reason = f"hopeless: training R^2 {candidate.train_r2:.3f}"
        return candidate.reason
    reason = check_extrapolation(law, fit, problem.X, problem.y, problem.groups, problem.region)
    if reason is not None:
        candidate.reason = reason
    return reason


def _finished(candidate: Candidate, started: float) -> Candidate:
    candidate.seconds = round(time.perf_counter() - started, 4)
    return candidate

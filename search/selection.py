"""Choose laws by how they extrapolate *inside the training rows*, never by the test rows.

Rows are ordered along the task's scale axis; each fold fits a law on the smaller part of every group and
validates it on the larger part, as the benchmark will ask of it. Tasks whose test rows are other combinations
inside the range (no axis) get random folds instead. Candidates whose curves blow up, oscillate or break a declared
trend over the region where they will be asked to predict are rejected.

Example
-------
>>> import numpy as np
>>> folds = extrapolation_folds(np.arange(10.0), np.full(10, "g"))
>>> [len(fold.validate) for fold in folds]
[1, 2, 3, 4]
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

import numpy as np
from numpy.typing import NDArray

from sld.search import plausibility
from sld.search.expressions import Law, parse_law
from sld.search.fitting import FitConfig, GroupedFit
from sld.search.profile import is_scale
from sld.search.scoring import Scores, score_predictions
from sld.search.warm_fits import fit_groups_warm, group_params

if TYPE_CHECKING:
    from sld.search.candidates import Candidate

IntArray = NDArray[np.intp]
FloatArray = NDArray[np.float64]
StrArray = NDArray[np.str_]
Trend = Literal["increasing", "decreasing"]

# Share of each group's distinct axis values held out by the successive folds; 0 holds out the largest value
# alone, the next step up in scale, which is what a benchmark's test rows usually are.
HOLDOUT_FRACTIONS = (0.0, 0.2, 0.3, 0.4)
# Share of each group's *range* along the axis held out (by scale ratio: on a log axis, the top 30% of the
# decades): where runs crowd at small scale, holding out a share of the rows extrapolates only a short way,
# while the user extrapolates by a ratio of scale.
SPAN_FRACTIONS = (0.3,)
# Distinct axis values each group keeps to fit on, where it has more: an offset, a coefficient and an exponent
# along one axis need three points to be told apart. A fold that fits a floor plus a power law on two values
# extrapolates a line through two points, whatever the law: it scores how that underdetermined fit falls, not the
# law (the embedded default's Chinchilla law validated at -2.17 on such a fold and 0.22 on the other).
MIN_FIT_VALUES = 3
# Predictions beyond the data may leave the observed target range by at most this many ranges.
EXPLOSION_SPANS = 3.0


@dataclass(frozen=True)
class Fold:
    """Row indices fitted on (``train``) and validated on (``validate``)."""

    train: IntArray
    validate: IntArray


def extrapolation_folds(
    order: FloatArray | None,
    groups: StrArray,
    *,
    fractions: Sequence[float] = HOLDOUT_FRACTIONS,
    span_fractions: Sequence[float] = SPAN_FRACTIONS,
    n_random_folds: int = 5,
    seed: int = 0,
) -> list[Fold]:
    """Split training rows into folds that extrapolate along ``order``.

    Parameters
    ----------
    order : ndarray of shape (n,) or None
        Scale of each row (e.g. log N + log D); larger values are validated. ``None`` makes random folds.
    groups : ndarray of shape (n,)
        Each group is split on its own distinct values, so every group is both fitted and validated.
    fractions : sequence of float
        Share of each group's distinct axis values to hold out, one fold each (duplicates dropped).
    span_fractions : sequence of float
        Share of each group's range of ``order`` to hold out, one fold each: rows beyond
        ``max - share * (max - min)`` are validated (at least one value, and two values stay to fit on).
    n_random_folds : int
        Folds when ``order`` is None.
    seed : int
        Seed of the random folds.

    Returns
    -------
    list of Fold
    """
    groups = np.asarray(groups).astype(str)
    if order is None:
        return _random_folds(groups, n_random_folds, seed)
    folds: dict[tuple[int, ...], Fold] = {}
    cuts = [(_count_cut, fraction) for fraction in fractions] + [(_span_cut, share) for share in span_fractions]
    for cut_of, share in cuts:
        train_parts: list[IntArray] = []
        validate_parts: list[IntArray] = []
        for group in np.unique(groups):
            rows = np.flatnonzero(groups == group)
            values = np.unique(order[rows])
            if values.size < 2:
                train_parts.append(rows)
                continue
            cut = cut_of(values, share)
            validate_parts.append(rows[order[rows] >= cut])
            train_parts.append(rows[order[rows] < cut])
        if not validate_parts:
            continue
        validate = np.sort(np.concatenate(validate_parts))
        key = tuple(validate.tolist())
        folds.setdefault(key, Fold(train=np.sort(np.concatenate(train_parts)), validate=validate))
    return sorted(folds.values(), key=lambda fold: fold.validate.size)


# Held-out rows a fold needs to rank laws: R^2 is undefined on fewer, or on a constant target.
MIN_VALIDATE_ROWS = 3


def ranks(fold: Fold, y: FloatArray) -> bool:
    """Return whether a fold can rank laws on target ``y``: it holds out ``MIN_VALIDATE_ROWS``+ rows that vary."""
    return fold.validate.size >= MIN_VALIDATE_ROWS and bool(np.ptp(y[fold.validate]) > 0)


def _below_against(scores: Scores, y_fold: FloatArray, spread: float, r2: float) -> bool:
    # Whether a fold's error is also below ``r2`` against the spread of all the target's rows. Where the held-out
    # rows are a flat, noisy tail (a learning curve levelling off), their own variance is tiny and every law's fold
    # R^2 is far below zero, the good ones too: measured against the fold alone, "hopeless" rejected 9 of the 13
    # families on a BIG-bench curve of rnsl, the constant among them. A hopeless law errs by far more than the data
    # spread.
    mse = float(scores.nmse) * float(np.var(y_fold))
    return not spread > 0 or 1.0 - mse / spread < r2


def _fit_values(values: FloatArray) -> int:
    # The fewest distinct values a fold leaves to fit on: MIN_FIT_VALUES, or all but one of a short group's.
    return min(MIN_FIT_VALUES, values.size - 1)


def _count_cut(values: FloatArray, fraction: float) -> float:
    # Hold out a share of the distinct values (at least one; `_fit_values` stay to fit on).
    held = min(max(1, round(fraction * values.size)), values.size - _fit_values(values))
    return float(values[values.size - held])


def _span_cut(values: FloatArray, share: float) -> float:
    # Hold out the values beyond a share of the range, keeping at least one held out and `_fit_values` to fit on.
    threshold = values[-1] - share * (values[-1] - values[0])
    first_held = int(np.searchsorted(values, threshold, side="left"))
    first_held = min(max(first_held, _fit_values(values)), values.size - 1)
    return float(values[first_held])


def _random_folds(groups: StrArray, n_folds: int, seed: int) -> list[Fold]:
    rng = np.random.default_rng(seed)
    assignment = np.empty(groups.size, dtype=np.intp)
    for group in np.unique(groups):
        rows = np.flatnonzero(groups == group)
        assignment[rows] = rng.permutation(np.arange(rows.size) % n_folds)
    all_rows = np.arange(groups.size)
    return [
        Fold(train=all_rows[assignment != k], validate=all_rows[assignment == k])
        for k in range(n_folds)
        if np.any(assignment == k)
    ]


@dataclass(frozen=True)
class Validation:
    """How a law extrapolated across the folds.

    Attributes
    ----------
    r2 : float
        Mean over folds of the R^2 on the validation rows (all groups together, as the benchmark scores).
    nmse : float
        Pessimistic fold error: the mean of the folds' MSE / Var and of its largest value (a form whose error
        jumps on one fold extrapolates erratically).
    fold_r2 : tuple of float
        Per fold.
    fold_nmse, fold_nmae : tuple of float
        Per fold, the official NMSE and NMAE (reports show their means).
    failed : bool
        Whether a fold's fit or prediction failed.
    message : str
        Why, when it failed.
    warm : dict, optional
        Constants per group of the largest fold, to warm-start the fit on all training rows.
    """

    r2: float
    nmse: float
    fold_r2: tuple[float, ...] = ()
    fold_nmse: tuple[float, ...] = ()
    fold_nmae: tuple[float, ...] = ()
    failed: bool = False
    message: str = ""
    warm: dict[str, FloatArray] | None = field(default=None, repr=False)


def validate_law(
    law: Law,
    X: FloatArray,
    y: FloatArray,
    groups: StrArray,
    folds: Sequence[Fold],
    *,
    config: FitConfig,
    hopeless_r2: float = -10.0,
    shared: frozenset[str] = frozenset(),
    fits: Sequence[GroupedFit] | None = None,
) -> Validation:
    """Fit ``law`` on each fold's train rows, per group, and score it on the fold's validation rows.

    Parameters
    ----------
    law : Law
        Candidate.
    X, y, groups : ndarray
        Training rows only: shapes (n, d), (n,), (n,).
    folds : sequence of Fold
        From :func:`extrapolation_folds`.
    config : FitConfig
        Constant-fit settings.
    hopeless_r2 : float
        A fold validating below this, measured against the fold's own spread and against the spread of all of
        ``y``, stops the validation early (the candidate is hopeless).
    shared : frozenset of str
        Constants fitted once for all groups.
    fits : sequence of GroupedFit, optional
        Each fold's fit on its training rows, in the order of ``folds``, when already made in one batch
        (`sld.search.warm_fits.fit_row_sets`); otherwise the folds are fitted here.

    Returns
    -------
    Validation
    """
    fold_r2: list[float] = []
    fold_nmse: list[float] = []
    fold_nmae: list[float] = []
    warm: dict[str, FloatArray] | None = None
    spread = float(np.var(y))
    # Smallest training part first: each fold warm-starts the next, larger one.
    for index in sorted(range(len(folds)), key=lambda i: folds[i].train.size):
        fold = folds[index]
        if not ranks(fold, y):
            continue
        fit = fits[index] if fits is not None else fit_groups_warm(
            law, X[fold.train], y[fold.train], groups[fold.train], config=config, initial=warm, shared=shared
        )
        warm = group_params(fit) or None
        predicted = fit.predict(law, X[fold.validate], groups[fold.validate])
        scores = score_predictions(y[fold.validate], predicted)
        if scores.failed or not np.isfinite(scores.r2):
            return Validation(r2=-np.inf, nmse=np.inf, failed=True, message=scores.message or "non-finite")
        if scores.r2 < hopeless_r2 and _below_against(scores, y[fold.validate], spread, hopeless_r2):
            return Validation(
                r2=-np.inf, nmse=np.inf, failed=True, message=f"hopeless: a fold's validation R^2 is {scores.r2:.3g}"
            )
        fold_r2.append(float(scores.r2))
        fold_nmse.append(float(scores.nmse))
        fold_nmae.append(float(scores.nmae))
    if not fold_r2:
        return Validation(r2=-np.inf, nmse=np.inf, failed=True, message="no validation fold")
    pessimistic = 0.5 * (float(np.mean(fold_nmse)) + float(np.max(fold_nmse)))
    return Validation(r2=float(np.mean(fold_r2)), nmse=pessimistic, fold_r2=tuple(fold_r2),
                      fold_nmse=tuple(fold_nmse), fold_nmae=tuple(fold_nmae), warm=warm)


@dataclass(frozen=True)
class ProbeRegion:
    """Where the chosen law will be asked to predict: each group's rows moved beyond the data along the axis.

    Attributes
    ----------
    axis_columns : tuple of int
        Columns of X that make the scale axis (empty: probe inside the range only).
    factors : tuple of float
        Multipliers of the axis columns (for positive axes spanning decades), else additive shifts in units of
        the column's span.
    monotone : dict
        Column index -> expected trend of the target in it.
    optima : tuple of int
        Columns in which the target has an interior minimum (e.g. the learning rate): the law must have one too.
    floor : bool
        The target is a loss: far beyond the data along the axis it must level off at a finite floor.
    unit_interval : bool
        The target is a rate (accuracy, error rate): predictions beyond the data stay in [0, 1].

    ``monotone``, ``floor`` and ``unit_interval`` hold what a task declares, completed with what the training rows
    show by :func:`sld.search.plausibility.infer_region`.
    """

    axis_columns: tuple[int, ...] = ()
    factors: tuple[float, ...] = (1.5, 2.0, 4.0)
    monotone: Mapping[int, Trend] = field(default_factory=dict)
    optima: tuple[int, ...] = ()
    floor: bool = False
    unit_interval: bool = False


def moved_along(X: FloatArray, column: int, factor: float) -> FloatArray:
    """Return X with one column moved beyond the data.

    A scale column (:func:`~sld.search.profile.is_scale`) is multiplied by ``factor``; any other is shifted by
    ``factor - 1`` of its span.
    """
    moved = X.copy()
    values = X[:, column]
    if is_scale(values):
        moved[:, column] = values * factor
    else:
        moved[:, column] = values + (factor - 1) * (values.max() - values.min() + 1e-12)
    return moved


def check_extrapolation(
    law: Law,
    fit: GroupedFit,
    X: FloatArray,
    y: FloatArray,
    groups: StrArray,
    region: ProbeRegion,
) -> str | None:
    """Return why a fitted law cannot be trusted beyond the data, or ``None`` when it passes.

    Checks, on every training row moved outward along the axis by each factor: the form nests no exp in exp or
    log in log; its predictions do not rest on more digits of its constants than a paper prints
    (`plausibility.rounding_reason`); it does not depend on the unit of its scale columns
    (`plausibility.unit_reason`);
    predictions are finite; they stay within ``EXPLOSION_SPANS`` target ranges of the observed range
    (no blow-up); they move monotonically with the factor (no oscillation, and no turning point unless the column
    has a declared optimum); trends (declared or shown by the data) hold from a row through its moved copies;
    a loss keeps a finite floor and a rate stays in [0, 1], near and far beyond the data (all scale columns moved
    together by ``FAR_FACTORS``); and in each declared optimum column, the law has its minimum inside the observed
    range for most rows.
    """
    reason = (
        plausibility.nesting_reason(law)
        or plausibility.rounding_reason(law, fit, X, y, groups)
        or plausibility.unit_reason(law, fit, X, groups)
    )
    if reason is not None:
        return reason
    span = float(np.ptp(y)) or 1.0
    # Up to four times the scale, a trustworthy law stays within a few target spans of what was observed.
    low, high = float(y.min()) - EXPLOSION_SPANS * span, float(y.max()) + EXPLOSION_SPANS * span
    with np.errstate(all="ignore"):
        curves = probe_curves(law, fit, X, groups, sorted(set(region.axis_columns) | set(region.monotone)), region)
        for column in region.axis_columns or ():
            reason = _curve_reason(curves[column], column, span, low, high, turning=column not in region.optima)
            if reason is None and region.unit_interval:
                reason = plausibility.unit_interval_reason(curves[column])
            if reason is not None:
                return reason
        reason = trend_reason(law, fit, X, y, groups, region, curves=curves) or plausibility.far_reason(
            law, fit, X, y, groups, region
        )
        if reason is not None:
            return reason
        for column in region.optima:
            if _interior_minimum_share(law, fit, X, groups, column) < OPTIMUM_SHARE:
                return f"has no interior minimum in column {column}, where the target has an optimum"
    return None


def probe_curves(
    law: Law, fit: GroupedFit, X: FloatArray, groups: StrArray, columns: Sequence[int], region: ProbeRegion
) -> dict[int, FloatArray]:
    """Return, per column, predictions at the rows and at the rows moved by each probe factor, (1 + k, n)."""
    with np.errstate(all="ignore"):
        base = fit.predict(law, X, groups)
        return {
            column: np.vstack([base, *(fit.predict(law, moved_along(X, column, f), groups) for f in region.factors)])
            for column in columns
        }


def trend_reason(
    law: Law,
    fit: GroupedFit,
    X: FloatArray,
    y: FloatArray,
    groups: StrArray,
    region: ProbeRegion,
    *,
    curves: Mapping[int, FloatArray] | None = None,
) -> str | None:
    """Return why the law breaks a trend of ``region.monotone`` from a row through its moved copies, or ``None``.

    The rule is :func:`sld.search.plausibility.breaks_trend`.
    """
    curves = curves if curves is not None else probe_curves(law, fit, X, groups, list(region.monotone), region)
    for column, trend in region.monotone.items():
        if plausibility.breaks_trend(curves[column], y, trend):
            return f"breaks the {trend} trend in column {column} beyond the data"
    return None


def _curve_reason(
    stacked: FloatArray, column: int, span: float, low: float, high: float, *, turning: bool
) -> str | None:
    # ``stacked`` holds each row's predictions at the data and at each probe factor, shape (1 + factors, n).
    if not np.all(np.isfinite(stacked)):
        return f"non-finite predictions beyond the data along column {column}"
    if stacked.min() < low or stacked.max() > high:
        return f"predictions explode beyond the data (outside [{low:.3g}, {high:.3g}])"
    steps = np.sign(np.round(np.diff(stacked, axis=0) / span, 6))
    turns = np.sum(np.abs(np.diff(steps, axis=0)) == 2, axis=0)
    if np.mean(turns > 1) > 0.05:
        return "predictions oscillate beyond the data"
    # A single turn is a turning point: a U or a hump where the user will extrapolate (a parabola in logs).
    if turning and np.mean(turns > 0) > 0.05:
        return f"turns back beyond the data along column {column}"
    return None


# Share of rows whose law curve must turn inside the observed range of a declared optimum column.
OPTIMUM_SHARE = 0.5


def _interior_minimum_share(law: Law, fit: GroupedFit, X: FloatArray, groups: StrArray, column: int) -> float:
    # Sweep the column over its observed range at every row's other values; an interior argmin means a U-shape.
    values = X[:, column]
    low, high = float(values.min()), float(values.max())
    grid = np.geomspace(low, high, 9) if is_scale(values) else np.linspace(low, high, 9)
    curves = []
    for value in grid:
        swept = X.copy()
        swept[:, column] = value
        curves.append(fit.predict(law, swept, groups))
    stacked = np.vstack(curves)
    if not np.all(np.isfinite(stacked)):
        return 0.0
    lowest = np.argmin(stacked, axis=0)
    return float(np.mean((lowest > 0) & (lowest < grid.size - 1)))


def ranked(candidates: Iterable[Candidate]) -> list[Candidate]:
    """Return the validated candidates, best first (objective, then fewer constants, then text)."""
    ok = [c for c in candidates if c.status == "ok"]
    return sorted(ok, key=lambda c: (c.objective, c.n_params, c.expression))


def fold_standard_error(candidate: Candidate) -> float:
    """Return the standard error of a candidate's mean validation error over its folds (0 with one fold)."""
    errors = np.array([1.0 - r2 for r2 in candidate.fold_r2])
    if errors.size < 2:
        return 0.0
    return float(errors.std(ddof=1) / np.sqrt(errors.size))


def near_ties(ranked: Sequence[Candidate], tolerance: float) -> list[Candidate]:
    """Return the candidates the validation folds cannot separate from the best (``ranked`` best first).

    Near-ties are within ``tolerance`` (relative) of the best objective, or within one standard error of its fold
    errors (Breiman's one-standard-error rule: with few folds, an edge smaller than the folds' own spread is
    noise, and the more candidates a search tries, the more such lucky edges it finds).
    """
    if not ranked:
        return []
    best = ranked[0]
    threshold = best.objective * (1.0 + tolerance)
    error_threshold = best.validation_nmse + fold_standard_error(best)
    return [c for c in ranked if c.objective <= threshold or c.validation_nmse <= error_threshold]


def single_fold_warning(target: str, folds: Sequence[Fold], n_rows: int, tolerance: float) -> str:
    """Return the warning a choice made on one validation fold needs, or ``""`` with more folds.

    With one fold there is no spread over folds, so :func:`near_ties` separates laws by ``tolerance`` alone and
    the choice among laws that validate alike can move with the seed (the embedded default's one fold of 4 rows
    chose laws scoring 0.33 to 0.73 on its held-out rows at seeds 0-2). The user is told so and what to do.
    """
    if len(folds) != 1:
        return ""
    return (
        f"Validation of target '{target}' rests on one fold ({folds[0].validate.size} held-out rows of {n_rows}): "
        f"with no spread over folds, laws within {100 * tolerance:.0f}% of the best validation are the only "
        "near-ties, and the choice may move with --seed. Compare the top candidates (the report lists them, beside "
        "the literature law where the task has one), or add rows at more values of the axis."
    )


def keeps_every_trend(
    order: Sequence[Candidate], *, variables: tuple[str, ...] = (), region: ProbeRegion | None = None
) -> list[Candidate]:
    """Return the candidates of ``order`` that use every variable with a trend in ``region`` (all without one).

    A law that leaves out a variable along which the data (or the task) show a trend predicts no change along it:
    it breaks that trend everywhere, and the folds, which extrapolate along the axis, cannot see it. Such laws are
    chosen only when no validated law keeps every trend. Without ``region`` and ``variables`` no trend is known.
    """
    if region is None or not variables or not region.monotone:
        return list(order)
    kept = [c for c in order if not plausibility.trends_left_out(parse_law(c.expression, variables), region)]
    return kept or list(order)


def preferred(
    candidates: Iterable[Candidate],
    tolerance: float,
    *,
    variables: tuple[str, ...] = (),
    region: ProbeRegion | None = None,
) -> tuple[list[Candidate], int]:
    """Return the validated candidates in the order the final choice tries them, and how many lead as near-ties.

    This is the choice rule. The laws that keep every trend (:func:`keeps_every_trend`) come before those that
    leave a trend variable out; among them the near-ties (:func:`near_ties` of the best of them) come first, a
    literature family before a generated form, then by objective (a published form carries knowledge of how laws
    behave beyond the data that a few folds cannot check); :func:`sld.search.engine.finalize` then chooses among
    the near-ties by their consensus beyond the data (:func:`sld.search.consensus.consensus_choice`), the next
    laws in this order joining the consensus.
    """
    order = ranked(candidates)
    kept = keeps_every_trend(order, variables=variables, region=region)
    near = near_ties(kept, tolerance)
    near.sort(key=lambda c: (c.source != "family", c.objective, c.n_params, c.expression))
    first, taken = {id(c) for c in near}, {id(c) for c in kept}
    rest = [c for c in kept if id(c) not in first]
    return near + rest + [c for c in order if id(c) not in taken], len(near)

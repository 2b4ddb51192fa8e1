"""Would a researcher publish this law? Structure, trends, floors and ranges checked beyond the data.

Validation folds only test a law where there are rows; these checks test what it says *beyond* them, where the
user will ask it to predict. What a task declares (trends, optima) comes from the task; what it does not declare
is inferred from the training rows: the sign of the trend the data show along each scale variable, whether the
target is a loss (it falls with scale, so it must level off at a finite floor), and whether it is a rate that
lives in [0, 1]. :func:`infer_region` adds these to a :class:`~sld.search.selection.ProbeRegion`;
:func:`~sld.search.selection.check_extrapolation` enforces them on every candidate.

Example
-------
>>> import numpy as np
>>> from sld.search.expressions import parse_law
>>> nesting_reason(parse_law("a * exp(b * exp(c * N))", ("N",)))
'nests exp inside exp'
>>> description_length(parse_law("E + A * N**(-a)", ("N",)))
8
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np
import sympy
from numpy.typing import NDArray

from sld.search.evaluate import compile_law
from sld.search.expressions import Law
from sld.search.fitting import GroupedFit
from sld.search.profile import is_scale, profile_data

if TYPE_CHECKING:
    from sld.search.selection import ProbeRegion

FloatArray = NDArray[np.float64]
StrArray = NDArray[np.str_]

# Far beyond the data, along every scale column at once. 1e2-1e6 span what anyone extrapolates to (GPT-2 to GPT-4
# is about 1e4-1e5 in compute); 1e12 and 1e24 stand for the limit of infinite scale, where a loss sits on its floor
# (the irreducible loss, Hoffmann et al. 2022's E) and a law that only falls slowly without one, such as a + b*log(N)
# or a power law with no constant, has fallen through it.
FAR_FACTORS = (1e2, 1e4, 1e6, 1e12, 1e24)
# A loss may not fall below this share of its smallest observed value at any of FAR_FACTORS: the irreducible part
# of a loss is a sizeable share of the losses measured, and a law whose floor is zero says the loss vanishes with
# scale.
FLOOR_SHARE = 0.25
# Rates may leave [0, 1] by this much (fit noise at the edges), no more.
UNIT_SLACK = 0.02
# Share of rows (each with its group's constants) that may break a floor or a range: with dozens of groups, a
# few small ones get erratic constants, and the law is judged on most of them, as the trend checks do.
ROW_SHARE = 0.1
# A law is published with its constants printed to this many significant digits (Hoffmann et al. 2022: E = 1.69,
# A = 406.4, alpha = 0.34), and printed so it must still predict the data: rounding every constant to
# PRINTED_DIGITS may move the training predictions by at most ROUNDING_SHARE of the target's standard deviation
# (an R^2 cost of ~1%), on all but ROW_SHARE of the rows. A degenerate fit rests on digits no one prints: two terms
# of +-463526 that cancel to a loss of 0.7 (``c0 + c1*exp(2*log(x)**c2)``, a BIG-bench curve of rnsl), or a sum
# near 1 raised to the power 300 (``(A/D**a + 1.0023/N**0.0002 + ...)**k1``, lr_bsz: the limit of an exp that the
# fit ran towards, moved by a factor 2 when 1.0023 is printed as 1.002). The chosen laws and near-ties of both
# benches move by at most 1.6% of a standard deviation; the degenerate ones by 20% to 9,500%.
PRINTED_DIGITS = 4
ROUNDING_SHARE = 0.1
# A law is unit-free when rescaling its scale columns is undone by its constants: the part of the rescaling's
# derivative that no constant's derivative spans, relative to the whole, is at most this. Unit-free forms measure
# 1e-16 to 6e-13 (round-off), unit-bound ones 5e-7 to 1e-2 (the chosen and near-tie laws of both benches).
UNIT_TOLERANCE = 1e-8
# Target names that say what the target is (matched as whole words or word parts: ``lm_loss``, ``top1_acc``).
LOSS_WORDS = ("loss", "perplexity", "ppl", "nll", "entropy")
RATE_WORDS = ("acc", "accuracy", "error", "err", "rate", "prob", "probability", "fraction", "share", "precision",
              "recall")


def description_length(law: Law) -> int:
    """Return the size of the law's expression tree (operators, variables, constants and numbers).

    A plain form has a short tree; the constant count alone cannot tell ``E + A/N**a`` from
    ``exp(a*exp(b*log(N)**2))``, which have the same three constants.
    """
    return sum(1 for _ in sympy.preorder_traversal(law.expr))


def trends_left_out(law: Law, region: ProbeRegion) -> tuple[str, ...]:
    """Return the variables with a trend (declared, or shown by the training rows) that the law does not use.

    Along such a variable the law predicts no change at all where the data show the target moving: beyond the
    data it does not keep that trend, it ignores it. The folds cannot see this, since they extrapolate along the
    axis and every row keeps its other values (on SLDBench's data-constrained task, laws without the model size
    validate as well as the ones with it). It is no reason to reject a law (a variable's effect can be small
    beside the others', and vocab's best law leaves the non-vocabulary parameters out), so the choice prefers,
    among near-ties, the laws that leave out no trend (:func:`sld.search.selection.preferred`).
    """
    return tuple(law.variables[column] for column in _columns_left_out(law, sorted(region.monotone)))


def optimum_left_out_reason(law: Law, region: ProbeRegion) -> str | None:
    """Return why a law cannot have a declared optimum before it is fitted: it does not use that variable.

    Along a variable it does not use a law is flat, so it has no interior minimum there whatever its constants
    (`sld.search.selection.check_extrapolation` would reject the fitted law with the same reason). On lr_bsz, whose
    learning rate and batch size have optima, one candidate in seven leaves one of them out.
    """
    left_out = _columns_left_out(law, region.optima)
    if not left_out:
        return None
    column = left_out[0]
    return (
        f"has no interior minimum in column {column}, where the target has an optimum "
        f"({law.variables[column]} is not in the law)"
    )


def _columns_left_out(law: Law, columns: Iterable[int]) -> list[int]:
    """Return the columns, in the order given, whose variable does not appear in the law."""
    used = {str(symbol) for symbol in law.expr.free_symbols}
    return [column for column in columns if law.variables[column] not in used]


def nesting_reason(law: Law) -> str | None:
    """Return why the form nests exp inside exp or log inside log, or ``None`` when it does not.

    Such towers have no physical reading in scaling laws and explode or flatten abruptly beyond the data.
    """
    for node in sympy.preorder_traversal(law.expr):
        for function in (sympy.exp, sympy.log):
            if isinstance(node, function) and any(isinstance(inner, function) for inner in _inside(node)):
                return f"nests {function.__name__} inside {function.__name__}"
    return None


def _inside(node: sympy.Expr) -> list[sympy.Basic]:
    nodes = []
    for argument in node.args:
        nodes.extend(sympy.preorder_traversal(argument))
    return nodes


def _words(name: str) -> list[str]:
    return [word for word in re.split(r"[^a-z0-9]+|(?<=[a-z])(?=[0-9])", name.lower()) if word]


def is_rate(name: str, y: FloatArray) -> bool:
    """Whether the target is an accuracy, error rate or probability: named so, and observed inside [0, 1]."""
    inside = bool(np.all((y >= 0) & (y <= 1)))
    return inside and any(word.startswith(RATE_WORDS) for word in _words(name))


def infer_region(region: ProbeRegion, X: FloatArray, y: FloatArray, groups: StrArray, *, target: str) -> ProbeRegion:
    """Return ``region`` completed with what the training rows show and the task did not declare.

    Parameters
    ----------
    region : ProbeRegion
        The task's declarations (axis, trends, optima).
    X, y, groups : ndarray
        Training rows only: shapes (n, d), (n,), (n,).
    target : str
        Name of the target (``loss``, ``acc``... say what kind of target it is).

    Returns
    -------
    ProbeRegion
        With the trend of each scale variable the data show clearly (declared trends and optimum columns are
        kept as they are), ``floor`` for losses (named so, or falling along every axis column) and ``unit_interval``
        for rates.
    """
    names = tuple(f"x{index}" for index in range(X.shape[1]))
    profile = profile_data(X, y, names, groups)
    monotone = dict(region.monotone)
    for index, variable in enumerate(profile.variables):
        if index in monotone or index in region.optima or variable.kind != "scale":
            continue
        if variable.trend in ("increasing", "decreasing"):
            monotone[index] = variable.trend
    axis_trends = [monotone.get(column) for column in region.axis_columns]
    named_loss = any(word in LOSS_WORDS for word in _words(target))
    falling = bool(axis_trends) and all(trend == "decreasing" for trend in axis_trends)
    return replace(
        region,
        monotone=monotone,
        floor=region.floor or named_loss or falling,
        unit_interval=region.unit_interval or is_rate(target, y),
    )


def printed(values: FloatArray, digits: int = PRINTED_DIGITS) -> FloatArray:
    """Return ``values`` rounded to ``digits`` significant digits, as a paper prints constants (zeros stay)."""
    values = np.asarray(values, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        exponent = np.where(values != 0, np.floor(np.log10(np.abs(values))), 0.0)
        scale = 10.0 ** (digits - 1 - exponent)
        rounded = np.round(values * scale) / scale
    return np.where(np.isfinite(rounded), rounded, values)


def rounding_reason(law: Law, fit: GroupedFit, X: FloatArray, y: FloatArray, groups: StrArray) -> str | None:
    """Return why the law's predictions rest on more digits of its constants than a paper prints, or ``None``.

    Every constant (each group's own) is rounded to ``PRINTED_DIGITS`` significant digits; the law fails when
    more than ``ROW_SHARE`` of the rows (those with finite predictions) then move by more than ``ROUNDING_SHARE``
    times the standard deviation of ``y``, or lose their finite prediction.
    """
    if law.n_params == 0 or not fit.fits:
        return None
    theta, known = fit.row_constants(groups, law.n_params)
    cols = np.ascontiguousarray(np.asarray(X, dtype=np.float64).T)
    compiled = compile_law(law.expr, law.variables, law.constant_names)
    exact, rounded = compiled.values(cols, theta), compiled.values(cols, printed(theta))
    rows = known & np.isfinite(exact)
    if not np.any(rows):
        return None
    spread = float(np.std(y)) or float(np.max(np.abs(y))) or 1.0
    change = np.abs(rounded[rows] - exact[rows])
    with np.errstate(invalid="ignore"):
        moved = ~np.isfinite(change) | (change > ROUNDING_SHARE * spread)
    if np.mean(moved) > ROW_SHARE:
        largest = float(np.nanmax(change)) if np.any(np.isfinite(change)) else math.inf
        return (
            f"rests on digits no one prints: with its constants rounded to {PRINTED_DIGITS} significant digits its "
            f"predictions move by up to {largest:.3g} ({largest / spread:.2g} standard deviations of the target, "
            f"on {100 * np.mean(moved):.0f}% of rows), a degenerate fit"
        )
    return None


def unit_reason(law: Law, fit: GroupedFit, X: FloatArray, groups: StrArray) -> str | None:
    """Return why the fitted law depends on the unit its scale columns are measured in, or ``None``.

    Parameters, tokens or examples may be counted in any unit (thousands, billions): a law of them must say the
    same in every unit, its constants taking up the change, as ``E + A/N**a`` (A absorbs it), ``a + b*log(N)``
    (a does) or ``(log(N) - c)**2`` (c does) do. ``c1*log(N)**c2``, ``1/sqrt(log(N))`` or ``log(N)**2`` alone do
    not: their shape, and where they turn or level off, is set by the arbitrary point N = 1 of the unit. Such
    forms validate well on the data when they happen to bend right there and are not what a researcher publishes.

    The test is exact and local: for s the common factor of all scale columns (columns sharing a unit, such as
    tokens and unique tokens, move together), the derivative of the prediction by s at s = 1, ``sum_j x_j
    df/dx_j``, must lie in the span of the derivatives by the constants, at every row of each group. A unit-free
    form passes to round-off (``UNIT_TOLERANCE``); a unit-bound one leaves a residual, also where its constants
    are fitted.
    """
    columns = [j for j in range(X.shape[1]) if is_scale(X[:, j])]
    symbols = {str(symbol): symbol for symbol in law.expr.free_symbols}
    used = [law.variables[j] for j in columns if law.variables[j] in symbols]
    if not used or not fit.fits:
        return None
    name = "unit_scale"
    while name in symbols or name in law.variables:
        name += "_"
    scale = sympy.Symbol(name, positive=True)
    # xreplace maps each symbol once, structurally (subs would take 30 ms on a 12-constant law of lr_bsz).
    rescaled = law.expr.xreplace({symbols[variable]: symbols[variable] * scale for variable in used})
    compiled = compile_law(rescaled, law.variables, (*law.constant_names, name))
    theta, known = fit.row_constants(groups, law.n_params)
    theta = np.vstack([theta, np.ones((1, theta.shape[1]))])
    cols = np.ascontiguousarray(np.asarray(X, dtype=np.float64).T)
    _, derivatives = compiled.values_and_gradients(cols, theta, range(law.n_params + 1))
    worst = 0.0
    group_arr = np.asarray(groups).astype(str)
    for group in np.unique(group_arr[known]):
        rows = known & (group_arr == group)
        by_scale, by_constants = derivatives[-1, rows], derivatives[:-1, rows].T
        if not (np.all(np.isfinite(by_scale)) and np.all(np.isfinite(by_constants))):
            continue  # non-finite predictions are the other checks' business
        size = float(np.linalg.norm(by_scale))
        norms = np.linalg.norm(by_constants, axis=0)
        if size == 0.0 or not np.any(norms > 0):
            continue
        basis = by_constants[:, norms > 0] / norms[norms > 0]
        weights = np.linalg.lstsq(basis, by_scale / size, rcond=None)[0]
        worst = max(worst, float(np.linalg.norm(by_scale / size - basis @ weights)))
    if worst > UNIT_TOLERANCE:
        return (
            f"depends on the unit of {', '.join(used)}: measured in other units its shape changes and no constants "
            f"undo it (residual {worst:.1e}); give each log of a size an offset (log(N) - c) or use powers of N"
        )
    return None


def far_moved(X: FloatArray, columns: tuple[int, ...], factor: float) -> FloatArray | None:
    """Return X with every scale column of ``columns`` (positive, spanning a factor > 3) multiplied by ``factor``.

    ``None`` when none of the columns is a scale column (far probes need a multiplicative axis).
    """
    moved = X.copy()
    scaled = False
    for column in columns:
        if is_scale(X[:, column]):
            moved[:, column] = X[:, column] * factor
            scaled = True
    return moved if scaled else None


def floor_reason(far: FloatArray, y: FloatArray, factors: tuple[float, ...] = FAR_FACTORS) -> str | None:
    """Return why far-beyond predictions of a loss have no finite floor, or ``None`` when they do.

    Parameters
    ----------
    far : ndarray of shape (k, n)
        Predictions at the rows moved by each of ``factors``.
    y : ndarray of shape (n,)
        Observed target.
    factors : tuple of float
        The k increasing scale multipliers of ``far``.
    """
    finite = np.all(np.isfinite(far), axis=0)
    if np.mean(~finite) > ROW_SHARE:
        return "diverges far beyond the data (non-finite predictions)"
    span = float(np.ptp(y)) or 1.0
    floor = FLOOR_SHARE * float(y.min()) if np.all(y > 0) else float(y.min()) - 3.0 * span
    lowest = np.where(finite, np.min(np.where(np.isfinite(far), far, np.inf), axis=0), np.inf)
    below = lowest < floor
    if far.shape[0] >= 3:
        # A floor shows as drops per decade of scale that shrink as the scale grows (a power law plus a constant);
        # a law that falls as fast or faster far out (linear in log scale, or steepening) has none, wherever its
        # predictions happen to be at the last probe.
        decades = np.diff(np.log10(np.asarray(factors, dtype=float)))
        with np.errstate(invalid="ignore"):
            first, last = (far[0] - far[1]) / decades[0], (far[-2] - far[-1]) / decades[-1]
            below |= finite & (last > 1e-3 * span) & (last >= 0.9 * first)
    if np.mean(below) > ROW_SHARE:
        return (
            f"has no floor: the loss falls to {float(np.min(lowest)):.3g} far beyond the data "
            f"(below {floor:.3g} on {100 * np.mean(below):.0f}% of rows)"
        )
    return None


def breaks_trend(curve: FloatArray, y: FloatArray, trend: str) -> bool:
    """Whether predictions, shape (1 + k, n), of each row and its moved copies break ``trend``.

    A step against the trend larger than 0.1% of the target's range, on more than ``ROW_SHARE`` of the rows,
    breaks it (the one trend rule, near the data and far beyond them).
    """
    span = float(np.ptp(y)) or 1.0
    with np.errstate(all="ignore"):
        change = np.diff(curve, axis=0) / span
        wrong = change > 1e-3 if trend == "decreasing" else change < -1e-3
    return bool(np.mean(np.any(wrong, axis=0)) > ROW_SHARE)


def unit_interval_reason(predictions: FloatArray) -> str | None:
    """Return why predictions of a rate, shape (k, n), leave [0, 1] on too many rows, or ``None``."""
    with np.errstate(invalid="ignore"):
        outside = np.any((predictions < -UNIT_SLACK) | (predictions > 1 + UNIT_SLACK), axis=0)
    if np.mean(outside) > ROW_SHARE:
        low, high = float(np.nanmin(predictions)), float(np.nanmax(predictions))
        return f"predicts a rate outside [0, 1] beyond the data ({low:.3g} to {high:.3g})"
    return None


def far_curve(
    law: Law,
    fit: GroupedFit,
    X: FloatArray,
    groups: StrArray,
    region: ProbeRegion,
    columns: tuple[int, ...] | None = None,
) -> FloatArray | None:
    """Return each row's prediction at the data, then with scale columns moved by each of ``FAR_FACTORS``.

    The columns moved together are ``columns``, by default the axis's. Shape (1 + len(FAR_FACTORS), n); ``None``
    when none of them is a scale column (additive axes have no far probe).
    """
    moved = [far_moved(X, region.axis_columns if columns is None else columns, factor) for factor in FAR_FACTORS]
    if moved[0] is None:  # the same columns are scale columns at every factor
        return None
    with np.errstate(all="ignore"):
        return np.vstack([fit.predict(law, rows, groups) for rows in [X, *moved] if rows is not None])


def far_trend(region: ProbeRegion, columns: tuple[int, ...] | None = None) -> str | None:
    """Return the trend every column of ``columns`` (default: the axis) shares, declared or shown by the data.

    ``None`` when they share none, and when the task declares an optimum: the best learning rate (say) moves with
    scale, so at a fixed one the loss may rise again far along the axis, as hyperparameter scaling laws say it does.
    """
    trends = {region.monotone.get(column) for column in (region.axis_columns if columns is None else columns)}
    if len(trends) != 1 or region.optima:
        return None
    trend: str | None = trends.pop()
    return trend


def far_directions(region: ProbeRegion) -> list[tuple[int, ...]]:
    """Return the sets of columns moved together far beyond the data: the axis, then each trend column alone.

    A law must keep its floor and its trends at infinite scale in every variable the data show a trend in, not
    only along the axis the user extrapolates: a square of ``log N`` that turns back up as N grows, at fixed data,
    is a law no one would publish even if the test moves only D.
    """
    directions = [tuple(region.axis_columns)] if region.axis_columns else []
    for column in sorted(region.monotone):
        if (column,) not in directions:
            directions.append((column,))
    return directions


def far_reason(
    law: Law,
    fit: GroupedFit,
    X: FloatArray,
    y: FloatArray,
    groups: StrArray,
    region: ProbeRegion,
) -> str | None:
    """Return why the law breaks a loss's floor, a rate's range or the data's trend far beyond the data, or ``None``.

    Far means the scale columns of each of :func:`far_directions` multiplied together by each of ``FAR_FACTORS``;
    directions without a scale column (additive ones) have no far probe. The trend is :func:`far_trend`.
    """
    for columns in far_directions(region):
        if not (region.floor or region.unit_interval or far_trend(region, columns)):
            continue
        curve = far_curve(law, fit, X, groups, region, columns)
        if curve is None:
            continue
        reason = range_reason(curve, y, region) or far_trend_reason(curve, y, region, columns)
        if reason is not None:
            return reason if columns == tuple(region.axis_columns) else f"{reason} (column {columns[0]} alone)"
    return None


def range_reason(curve: FloatArray, y: FloatArray, region: ProbeRegion) -> str | None:
    """Return why a :func:`far_curve` breaks a loss's floor or a rate's [0, 1], or ``None``."""
    reason = floor_reason(curve[1:], y) if region.floor else None
    if reason is None and region.unit_interval:
        reason = unit_interval_reason(curve[1:])
    return reason


def far_trend_reason(
    curve: FloatArray, y: FloatArray, region: ProbeRegion, columns: tuple[int, ...] | None = None
) -> str | None:
    """Return why a :func:`far_curve` breaks the trend its columns share (:func:`far_trend`), or ``None``.

    A loss that falls over the data and turns back up far beyond them (a parabola in logs) does not keep the
    data's trend.
    """
    trend = far_trend(region, columns)
    if trend is None or not breaks_trend(curve, y, trend):
        return None
    return f"turns against the {trend} trend far beyond the data"


def plausibility_record(
    law: Law,
    fit: GroupedFit,
    X: FloatArray,
    y: FloatArray,
    groups: StrArray,
    region: ProbeRegion,
    variables: tuple[str, ...],
) -> dict[str, object]:
    """Return the plausibility checks of a fitted law, one by one, as a JSON-ready record (for the bench JSON).

    Keys: ``description_length``; ``nested`` (exp in exp or log in log); ``imprecise`` (its predictions
    move when its constants are printed to ``PRINTED_DIGITS`` digits, `rounding_reason`); ``unit_free`` (its
    shape does not depend on the unit of its scale columns, `unit_reason`); ``loss`` and ``rate`` (what the
    target was taken for); ``floor_kept`` (a loss's floor and a rate's range far beyond the data; ``None`` when neither
    applies); ``trends`` (variable -> trend, declared or shown by the data) and ``trends_kept`` (near the data
    and far beyond them); ``trends_left_out`` (trend variables the law does not use, `trends_left_out`);
    ``reason`` (the full extrapolation check's verdict, ``None`` when it passes).
    """
    from sld.search.selection import check_extrapolation, trend_reason

    applies = region.floor or region.unit_interval
    curves = [(columns, far_curve(law, fit, X, groups, region, columns)) for columns in far_directions(region)]
    floor_kept = all(curve is None or range_reason(curve, y, region) is None for _, curve in curves)
    far_trend_kept = all(
        curve is None or far_trend_reason(curve, y, region, columns) is None for columns, curve in curves
    )
    return {
        "description_length": description_length(law),
        "nested": nesting_reason(law) is not None,
        "imprecise": rounding_reason(law, fit, X, y, groups) is not None,
        "unit_free": unit_reason(law, fit, X, groups) is None,
        "loss": region.floor,
        "rate": region.unit_interval,
        "floor_kept": floor_kept if applies else None,
        "trends": {variables[column]: trend for column, trend in sorted(region.monotone.items())},
        "trends_kept": trend_reason(law, fit, X, y, groups, region) is None and far_trend_kept,
        "trends_left_out": list(trends_left_out(law, region)),
        "reason": check_extrapolation(law, fit, X, y, groups, region),
    }

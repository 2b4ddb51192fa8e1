"""Fit a law's constants to data: multi-start bounded nonlinear least squares.

Each start runs ``scipy.optimize.least_squares`` (trust-region reflective, exact Jacobian from the compiled
law); the start with the lowest objective wins. Numerical trouble (overflow, ``nan`` predictions, a start
outside the law's domain) costs that start, never an exception: a fit where no start gives finite
predictions is ``FitResult(success=False, message=...)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray
from pydantic import BaseModel, ConfigDict, Field

from sld.search.evaluate import CompiledLaw
from sld.search.expressions import ConstantSpec, Law

Array = NDArray[np.float64]

# Residuals of non-finite predictions are replaced by this (times the target scale), so that the optimizer
# sees a large finite cost and moves away instead of stopping with an error.
_PENALTY = 1e6
# A start whose MSE is below this fraction of Var(y) fits exactly; the other starts cannot do better.
_NEAR_ZERO = 1e-12


class FitConfig(BaseModel):
    """How `fit_law` fits constants.

    Parameters
    ----------
    n_starts : int, default 12
        Starts per fit: the constants' ``init`` values, then a Latin hypercube over the bounds.
    loss : {"linear", "soft_l1", "huber", "cauchy"}, default "linear"
        ``least_squares`` loss; the robust ones damp outliers beyond ``f_scale``.
    f_scale : float, default 1.0
        Residual scale of the robust losses (in log units when ``log_residuals``).
    log_residuals : bool, default False
        Fit ``log(pred) - log(y)``; used only if every ``y > 0`` (otherwise linear, with a note).
    max_nfev : int, default 400
        Function evaluations per start.
    seed : int, default 0
        Seed of the start sampler; equal seeds give equal fits.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    n_starts: int = Field(default=12, ge=1)
    loss: Literal["linear", "soft_l1", "huber", "cauchy"] = "linear"
    f_scale: float = Field(default=1.0, gt=0)
    log_residuals: bool = False
    max_nfev: int = Field(default=400, ge=1)
    seed: int = 0


@dataclass(frozen=True, eq=False)
class FitResult:
    """The outcome of a fit.

    Attributes
    ----------
    params : ndarray of shape (n_params,) or None
        Fitted constants in the law's order; None if no start gave finite predictions.
    success : bool
        Whether ``params`` gives finite predictions on every row.
    message : str
        What happened, including notes such as fewer rows than constants.
    mse : float
        Mean squared error of ``params`` on the fitted rows (linear scale); ``inf`` on failure.
    n_starts_ok : int
        Starts that ended with finite predictions.
    """

    params: Array | None
    success: bool
    message: str
    mse: float
    n_starts_ok: int


def fit_law(
    law: Law,
    X: ArrayLike,
    y: ArrayLike,
    *,
    config: FitConfig = FitConfig(),  # noqa: B008 -- frozen, so a shared default is safe
    initial_params: ArrayLike | None = None,
) -> FitResult:
    """Fit the constants of ``law`` to rows ``X`` and targets ``y``.

    Parameters
    ----------
    law : Law
        The law; its constants' bounds and ``init`` values shape the starts.
    X : array_like, shape (n, n_vars)
        Features, columns in the order of ``law.variables``.
    y : array_like, shape (n,)
        Targets.
    config : FitConfig, optional
        Starts, loss, residual space, evaluation budget and seed.
    initial_params : array_like of shape (n_params,), optional
        A warm start (clipped to the bounds), tried first instead of the ``init`` values.

    Returns
    -------
    FitResult
        The best start; ``success=False`` if no start gave finite predictions.

    Raises
    ------
    ValueError
        If shapes disagree or ``y`` is not finite (programmer errors, not numerical failures).

    Examples
    --------
    >>> import numpy as np
    >>> from sld.search import parse_law
    >>> law = parse_law("a * x**b", ["x"])
    >>> x = np.linspace(1.0, 10.0, 20)
    >>> fit = fit_law(law, x[:, None], 3.0 * x**0.5)
    >>> np.round(fit.params, 6).tolist(), fit.success
    ([3.0, 0.5], True)
    """
    X_arr, y_arr = _check_data(law, X, y)
    specs = law.constants
    lower = np.array([c.lower for c in specs])
    upper = np.array([c.upper for c in specs])
    free = lower < upper
    notes = []
    if len(y_arr) == 0:
        return FitResult(None, False, "no rows to fit", math.inf, 0)
    if len(y_arr) < free.sum():
        notes.append(f"fewer rows ({len(y_arr)}) than free constants ({free.sum()}): underdetermined")
    use_log = config.log_residuals
    if use_log and not np.all(y_arr > 0):
        notes.append("log residuals need every y > 0; fitted linear residuals")
        use_log = False
    starts = _starts(specs, config.n_starts, config.seed, initial_params)
    problem = _Problem(law.compiled, np.ascontiguousarray(X_arr.T), y_arr, use_log, free, lower)
    best_cost, best_theta, best_message, n_ok = math.inf, None, "", 0
    with np.errstate(all="ignore"):
        for x0 in starts:
            outcome = problem.solve(x0, lower, upper, config)
            if outcome is None:
                continue
            theta, cost, message = outcome
            n_ok += 1
            if cost < best_cost:
                best_cost, best_theta, best_message = cost, theta, message
                if problem.mse(theta) <= _NEAR_ZERO * np.var(y_arr):
                    break  # an exact fit: no other start can do better
    if best_theta is None:
        message = "; ".join([f"no start of {len(starts)} gave finite predictions", *notes])
        return FitResult(None, False, message, math.inf, 0)
    with np.errstate(all="ignore"):
        mse = problem.mse(best_theta)
    summary = f"best of {n_ok} finite starts (of {len(starts)}): {best_message}"
    return FitResult(best_theta, True, "; ".join([summary, *notes]), mse, n_ok)


def _check_data(law: Law, X: ArrayLike, y: ArrayLike) -> tuple[Array, Array]:
    X_arr = np.asarray(X, dtype=np.float64)
    y_arr = np.asarray(y, dtype=np.float64)
    if X_arr.ndim != 2 or X_arr.shape[1] != len(law.variables) or y_arr.shape != (X_arr.shape[0],):
        raise ValueError(
            f"X has shape {X_arr.shape} and y {y_arr.shape}; expected (n, {len(law.variables)}) and (n,) "
            f"for variables ({', '.join(law.variables)})"
        )
    if not np.all(np.isfinite(y_arr)):
        raise ValueError(f"y has {np.sum(~np.isfinite(y_arr))} non-finite values; drop or impute them first")
    return X_arr, y_arr


def _default_init(spec: ConstantSpec) -> float:
    lower, upper = float(spec.lower), float(spec.upper)
    if spec.init is not None:
        return float(spec.init)
    if math.isfinite(lower) and math.isfinite(upper):
        if lower > 0 and upper >= 100 * lower:
            return math.sqrt(lower * upper)
        return 0.5 * (lower + upper)
    if math.isfinite(lower):
        return lower + max(1.0, abs(lower))
    if math.isfinite(upper):
        return upper - max(1.0, abs(upper))
    return 1.0


def _sample(spec: ConstantSpec, u: Array, coin: Array) -> Array:
    """Map uniform samples ``u`` in [0, 1) to values of one constant; ``coin`` picks signs if unbounded."""
    lower, upper = float(spec.lower), float(spec.upper)
    if math.isfinite(lower) and math.isfinite(upper):
        if lower > 0 and upper >= 100 * lower:
            return np.asarray(lower * (upper / lower) ** u)  # log-uniform over many decades
        return np.asarray(lower + u * (upper - lower))
    # Unbounded sides: magnitudes log-uniform over 10^-2..10^2 times the scale of init.
    magnitude = 10.0 ** (4.0 * u - 2.0)
    if math.isfinite(lower):
        offset = spec.init - lower if spec.init is not None and spec.init > lower else max(1.0, abs(lower))
        return np.asarray(lower + offset * magnitude)
    if math.isfinite(upper):
        offset = upper - spec.init if spec.init is not None and spec.init < upper else max(1.0, abs(upper))
        return np.asarray(upper - offset * magnitude)
    scale = abs(spec.init) if spec.init else 1.0
    sign = math.copysign(1.0, spec.init) if spec.init else 1.0
    return np.where(coin < 0.7, sign, -sign) * scale * magnitude


def _starts(specs: tuple[ConstantSpec, ...], n_starts: int, seed: int, initial_params: ArrayLike | None) -> list[Array]:
    """Return the starts: ``initial_params`` (or the inits), then a Latin hypercube; all within bounds."""
    lower = np.array([c.lower for c in specs])
    upper = np.array([c.upper for c in specs])
    if initial_params is None:
        first = np.array([_default_init(c) for c in specs])
    else:
        first = np.asarray(initial_params, dtype=np.float64)
        if first.shape != (len(specs),):
            raise ValueError(f"initial_params has shape {first.shape}; expected ({len(specs)},)")
    starts = [first]
    if n_starts > 1 and specs:
        from scipy.stats import qmc  # scipy.stats takes ~0.4 s to import; `import sld` stays light

        rng = np.random.default_rng(seed)
        unit = qmc.LatinHypercube(d=len(specs), rng=rng).random(n_starts - 1)
        coins = rng.random(unit.shape)
        columns = [_sample(spec, unit[:, j], coins[:, j]) for j, spec in enumerate(specs)]
        starts.extend(np.column_stack(columns))
    return [np.clip(np.nan_to_num(s, nan=1.0), lower, upper) for s in starts]


class _Problem:
    """Residuals and Jacobian of one fit, over the free constants only."""

    def __init__(
        self,
        compiled: CompiledLaw,
        cols: Array,
        y: Array,
        use_log: bool,
        free: NDArray[np.bool_],
        base: Array,
    ) -> None:
        self.compiled, self.cols, self.y, self.use_log, self.free = compiled, cols, y, use_log, free
        self.base = base  # values of the fixed constants (lower == upper) sit here
        self.target = np.log(y) if use_log else y
        self.penalty = _PENALTY * (1.0 + float(np.max(np.abs(self.target))))

    def theta(self, z: Array) -> Array:
        theta = self.base.copy()
        theta[self.free] = z
        return theta

    def residuals(self, z: Array) -> Array:
        pred: Array = self.compiled.values(self.cols, self.theta(z))
        if self.use_log:
            pred = np.log(pred)
        r = pred - self.target
        r[~np.isfinite(r)] = self.penalty
        return np.clip(r, -self.penalty, self.penalty)

    def jacobian(self, z: Array) -> Array:
        pred, full = self.compiled.values_and_jacobian(self.cols, self.theta(z))
        jac: Array = full[:, self.free]
        if self.use_log:
            jac /= pred[:, None]
        jac[~np.isfinite(jac)] = 0.0
        return jac

    def mse(self, theta: Array) -> float:
        return float(np.mean((self.compiled.values(self.cols, theta) - self.y) ** 2))

    def solve(self, x0: Array, lower: Array, upper: Array, config: FitConfig) -> tuple[Array, float, str] | None:
        """Run one start; None if it fails or ends with non-finite predictions."""
        free = self.free
        if not free.any():
            theta, cost, message = (
                x0,
                0.5 * float(np.sum(self.residuals(x0[free]) ** 2)),
                "all constants fixed",
            )
        else:
            from scipy.optimize import least_squares  # lazy like qmc; cached after the first fit

            try:
                result = least_squares(
                    self.residuals,
                    x0[free],
                    jac=self.jacobian,
                    bounds=(lower[free], upper[free]),
                    method="trf",
                    loss=config.loss,
                    f_scale=config.f_scale,
                    max_nfev=config.max_nfev,
                )
            except (ValueError, np.linalg.LinAlgError):
                return None
            theta, cost, message = self.theta(result.x), float(result.cost), str(result.message)
        pred = self.compiled.values(self.cols, theta)
        if not np.all(np.isfinite(pred)) or (self.use_log and not np.all(pred > 0)):
            return None
        return theta, cost, message


@dataclass
class GroupedFit:
    """One `FitResult` per group, keyed by the group name as a string."""

    fits: dict[str, FitResult] = field(default_factory=dict)

    @property
    def success(self) -> bool:
        """Whether every group's fit succeeded."""
        return all(fit.success for fit in self.fits.values())

    def predict(self, law: Law, X: ArrayLike, groups: ArrayLike) -> Array:
        """Predict rows with their group's constants.

        Parameters
        ----------
        law : Law
            The fitted law.
        X : array_like, shape (n, n_vars)
            Features.
        groups : array_like, shape (n,)
            Group of each row.

        Returns
        -------
        ndarray, shape (n,)
            Predictions; ``nan`` for rows of groups without a successful fit.
        """
        X_arr = np.asarray(X, dtype=np.float64)
        group_arr = _group_names(groups, len(X_arr))
        out = np.full(len(X_arr), np.nan)
        for name in np.unique(group_arr):
            fit = self.fits.get(str(name))
            if fit is not None and fit.params is not None:
                rows = group_arr == name
                out[rows] = law.predict(X_arr[rows], fit.params)
        return out


def _group_names(groups: ArrayLike, n: int) -> NDArray[np.str_]:
    names = np.asarray(groups).astype(str)
    if names.shape != (n,):
        raise ValueError(f"groups has shape {names.shape}; expected ({n},), one group per row")
    return names


def fit_law_grouped(
    law: Law,
    X: ArrayLike,
    y: ArrayLike,
    groups: ArrayLike,
    *,
    config: FitConfig = FitConfig(),  # noqa: B008 -- frozen, so a shared default is safe
    initial_params: ArrayLike | None = None,
) -> GroupedFit:
    """Fit one set of constants per group (the SLDBench protocol: one law form, constants per group).

    Parameters
    ----------
    law : Law
        The law.
    X : array_like, shape (n, n_vars)
        Features.
    y : array_like, shape (n,)
        Targets.
    groups : array_like, shape (n,)
        Group of each row (compared as strings).
    config : FitConfig, optional
        Passed to `fit_law` for every group.
    initial_params : array_like of shape (n_params,), optional
        Warm start for every group.

    Returns
    -------
    GroupedFit
        Fits keyed by group name, in sorted order.

    Raises
    ------
    ValueError
        If shapes disagree.
    """
    X_arr, y_arr = _check_data(law, X, y)
    group_arr = _group_names(groups, len(y_arr))
    fits = {}
    for name in np.unique(group_arr):
        rows = group_arr == name
        fits[str(name)] = fit_law(law, X_arr[rows], y_arr[rows], config=config, initial_params=initial_params)
    return GroupedFit(fits)

"""Fit a law's constants to data: multi-start bounded nonlinear least squares.

Every start of every fit in one call is solved together by the batched Levenberg-Marquardt of
`sld.search.batched_fits` (exact Jacobians from the compiled law); ``FitConfig(solver="scipy")`` runs each start
through ``scipy.optimize.least_squares`` (trust-region reflective) instead, the reference the batched solver is
tested against. The start with the lowest objective wins. Numerical trouble (overflow, ``nan`` predictions, a start
outside the law's domain) costs that start, never an exception: a fit where no start gives finite
predictions is ``FitResult(success=False, message=...)``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray
from pydantic import BaseModel, ConfigDict, Field

from sld.search.batched_fits import REASONS, BatchSolution, solve_batch
from sld.search.evaluate import CompiledLaw
from sld.search.expressions import ConstantSpec, Law

if TYPE_CHECKING:
    from threadpoolctl import ThreadpoolLimiter

Array = NDArray[np.float64]

# Residuals of non-finite predictions are replaced by this (times the target scale), so that the optimizer
# sees a large finite cost and moves away instead of stopping with an error.
_PENALTY = 1e6
# A start whose MSE is below this fraction of Var(y) fits exactly; the other starts cannot do better.
_NEAR_ZERO = 1e-12


def one_blas_thread() -> ThreadpoolLimiter:
    """Limit numpy's and scipy's BLAS to one thread; use as a context manager, or call to limit from now on.

    The fits solve many small linear systems, where a second BLAS thread only adds contention: on the shared 2-core
    machine, scipy's SVD of the 589 x 85 joint Jacobian of a shared-constant fit on sft took 96 ms with the default
    two threads and 3.4 ms with one. threadpoolctl limits only libraries already loaded, so scipy's own OpenBLAS
    (which ``scipy.optimize.least_squares`` uses, loaded on its first import) is loaded first.
    """
    import scipy.linalg  # noqa: F401 -- loads scipy's OpenBLAS, so that the limit reaches it
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1, user_api="blas")


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
    solver : {"batched", "scipy"}, default "batched"
        ``batched`` solves all starts (and, in `fit_law_grouped` and `fit_groups_warm`, all groups) at once with
        `sld.search.batched_fits.solve_batch`; ``scipy`` runs one ``least_squares`` call per start (the reference).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    n_starts: int = Field(default=12, ge=1)
    loss: Literal["linear", "soft_l1", "huber", "cauchy"] = "linear"
    f_scale: float = Field(default=1.0, gt=0)
    log_residuals: bool = False
    max_nfev: int = Field(default=400, ge=1)
    seed: int = 0
    solver: Literal["batched", "scipy"] = "batched"


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
    if config.solver == "batched":
        starts = start_points(law.constants, config.n_starts, config.seed, initial_params)
        return fit_datasets(law, [(X_arr, y_arr)], [starts], config=config)[0]
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
    starts = start_points(specs, config.n_starts, config.seed, initial_params)
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


def fit_datasets(
    law: Law,
    datasets: Sequence[tuple[Array, Array]],
    starts: Sequence[Sequence[Array]],
    *,
    config: FitConfig,
) -> list[FitResult]:
    """Fit ``law`` to several datasets at once, every start of every dataset in one batched solve.

    Parameters
    ----------
    law : Law
        The law.
    datasets : sequence of (X, y)
        Rows of each fit, shapes (n_i, n_vars) and (n_i,), already checked (`_check_data`).
    starts : sequence of sequences of ndarray
        The starts of each dataset, each of shape (n_params,) and within the bounds (`_starts`).
    config : FitConfig
        Loss, residual space and evaluation budget (``max_nfev`` bounds each start's iterations).

    Returns
    -------
    list of FitResult
        One per dataset, the best of its starts, as `fit_law` returns it.
    """
    specs = law.constants
    lower = np.array([c.lower for c in specs], dtype=np.float64)
    upper = np.array([c.upper for c in specs], dtype=np.float64)
    n_free = int(np.sum(lower < upper))
    notes: list[list[str]] = []
    use_log: list[bool] = []
    for _, y_rows in datasets:
        note = []
        if 0 < len(y_rows) < n_free:
            note.append(f"fewer rows ({len(y_rows)}) than free constants ({n_free}): underdetermined")
        log_here = config.log_residuals
        if log_here and not np.all(y_rows > 0):
            note.append("log residuals need every y > 0; fitted linear residuals")
            log_here = False
        notes.append(note)
        use_log.append(log_here)
    # One problem per (dataset, start); datasets without rows cannot be fitted and get no problem.
    owner = [i for i, (_, y_rows) in enumerate(datasets) if len(y_rows) for _ in starts[i]]
    results: list[FitResult | None] = [None] * len(datasets)
    if owner:
        solution = _solve_padded(law, datasets, starts, owner, use_log, lower, upper, config)
        fitted = [i for i, (_, y_rows) in enumerate(datasets) if len(y_rows)]
        # The problems of each dataset are one block of the batch, in dataset order.
        ends = np.cumsum([len(starts[i]) for i in fitted])
        chosen: dict[int, tuple[int, int]] = {}  # dataset -> (its first problem, its best problem)
        for i, end in zip(fitted, ends, strict=True):
            first = int(end) - len(starts[i])
            cost = solution.cost[first:end]
            finite = np.isfinite(cost)
            if not finite.any():
                message = "; ".join([f"no start of {cost.size} gave finite predictions", *notes[i]])
                results[i] = FitResult(None, False, message, math.inf, 0)
                continue
            # Several starts may fit exactly (an underdetermined fold); like the scipy path, which stops at the
            # first exact fit, take the earliest (the init or warm start) rather than the one that rounds lowest.
            y_rows = datasets[i][1]
            target = np.log(y_rows) if use_log[i] else y_rows
            exact = np.flatnonzero(2 * cost / len(y_rows) <= _NEAR_ZERO * np.var(target))
            best = first + (int(exact[0]) if exact.size else int(np.argmin(np.where(finite, cost, np.inf))))
            chosen[i] = (first, best)
        mse = _mse_of(law, [datasets[i] for i in chosen], solution.theta[[best for _, best in chosen.values()]])
        for (i, (first, best)), error in zip(chosen.items(), mse, strict=True):
            n_ok = int(np.isfinite(solution.cost[first : first + len(starts[i])]).sum())
            summary = (
                f"best of {n_ok} finite starts (of {len(starts[i])}): "
                f"{REASONS[int(solution.reason[best])]} after {int(solution.iterations[best])} batched LM iterations"
            )
            results[i] = FitResult(solution.theta[best], True, "; ".join([summary, *notes[i]]), float(error), n_ok)
    return [result or FitResult(None, False, "no rows to fit", math.inf, 0) for result in results]


def _mse_of(law: Law, datasets: Sequence[tuple[Array, Array]], theta: Array) -> Array:
    """Return the training MSE of each dataset under its constants (rows of ``theta``), in one compiled call."""
    if not datasets:
        return np.zeros(0)
    sizes = np.array([len(y_rows) for _, y_rows in datasets])
    X_all = np.concatenate([X_rows for X_rows, _ in datasets])
    y_all = np.concatenate([y_rows for _, y_rows in datasets])
    per_row = np.repeat(theta, sizes, axis=0).T
    with np.errstate(all="ignore"):
        squared = (law.compiled.values(np.ascontiguousarray(X_all.T), np.ascontiguousarray(per_row)) - y_all) ** 2
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    mse: Array = np.add.reduceat(squared, offsets) / sizes
    return mse


def _solve_padded(
    law: Law,
    datasets: Sequence[tuple[Array, Array]],
    starts: Sequence[Sequence[Array]],
    owner: list[int],
    use_log: list[bool],
    lower: Array,
    upper: Array,
    config: FitConfig,
) -> BatchSolution:
    """Lay every problem's rows side by side, padded to the largest dataset with copies of its first row."""
    m = max(len(y_rows) for _, y_rows in datasets)
    n_vars = len(law.variables)
    padded_X = np.empty((len(datasets), m, n_vars))
    padded_y = np.ones((len(datasets), m))
    padded_mask = np.zeros((len(datasets), m), dtype=bool)
    for i, (X_rows, y_rows) in enumerate(datasets):
        n = len(y_rows)
        if n:
            padded_X[i, :n], padded_X[i, n:] = X_rows, X_rows[0]
            padded_y[i, :n], padded_y[i, n:] = y_rows, y_rows[0]
            padded_mask[i, :n] = True
    owner_arr = np.asarray(owner)
    start_index = np.concatenate([np.arange(len(starts[i])) for i in sorted(set(owner))])
    theta0 = np.stack([starts[i][k] for i, k in zip(owner, start_index, strict=True)])
    cols = np.ascontiguousarray(padded_X[owner_arr].reshape(-1, n_vars).T)
    return solve_batch(
        law.compiled,
        cols,
        padded_y[owner_arr],
        padded_mask[owner_arr],
        theta0,
        lower=lower,
        upper=upper,
        log_residuals=np.asarray(use_log)[owner_arr],
        loss=config.loss,
        f_scale=config.f_scale,
        max_iterations=config.max_nfev,
        fit_of=owner_arr,
    )


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


def start_points(
    specs: tuple[ConstantSpec, ...], n_starts: int, seed: int, initial_params: ArrayLike | None
) -> list[Array]:
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
        if group_arr.size and bool((group_arr == group_arr[0]).all()):
            # One group (most tasks, and every probe of a check): its constants as scalars, which the evaluator
            # broadcasts, instead of sorting the rows' names and gathering a table of per-row constants.
            fit = self.fits.get(str(group_arr[0]))
            if fit is None or fit.params is None:
                return np.full(len(X_arr), np.nan)
            with np.errstate(all="ignore"):
                return law.compiled.values(np.ascontiguousarray(X_arr.T), np.asarray(fit.params, dtype=np.float64))
        # One compiled call for all rows, each with its group's constants (the evaluator takes per-row constants).
        theta, known = self.row_constants(group_arr, law.n_params)
        with np.errstate(all="ignore"):
            out = law.compiled.values(np.ascontiguousarray(X_arr.T), theta)
        return np.where(known, out, np.nan)

    def row_constants(self, groups: ArrayLike, n_params: int) -> tuple[Array, NDArray[np.bool_]]:
        """Return each row's group constants, shape (n_params, n), and whether its group has a successful fit.

        Rows of groups without one get ones (finite placeholders; mask them with the second array).
        """
        group_arr = np.asarray(groups).astype(str)
        names, row_group = np.unique(group_arr, return_inverse=True)
        params = [self.fits.get(str(name)) for name in names]
        known = np.array([fit is not None and fit.params is not None for fit in params], dtype=bool)
        table = np.ones((len(names), n_params))
        for index, fit in enumerate(params):
            if fit is not None and fit.params is not None:
                table[index] = fit.params
        return np.ascontiguousarray(table[row_group].T), known[row_group]


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
    names = [str(name) for name in np.unique(group_arr)]
    if config.solver == "batched":
        datasets = [(X_arr[group_arr == name], y_arr[group_arr == name]) for name in names]
        starts = start_points(law.constants, config.n_starts, config.seed, initial_params)
        results = fit_datasets(law, datasets, [starts] * len(names), config=config)
        return GroupedFit(dict(zip(names, results, strict=True)))
    fits = {}
    for name in np.unique(group_arr):
        rows = group_arr == name
        fits[str(name)] = fit_law(law, X_arr[rows], y_arr[rows], config=config, initial_params=initial_params)
    return GroupedFit(fits)

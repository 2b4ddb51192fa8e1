"""Solve many small bounded least-squares problems of one law at once: a batched Levenberg-Marquardt.

A candidate law is fitted thousands of times per evaluation (every group of every fold, from every start), each a
problem of a few constants on a dozen rows. Solved one by one (``scipy.optimize.least_squares``) the arithmetic is
microseconds and the Python overhead is everything. Here all problems of one law advance together: their rows are
laid side by side in one padded array, the compiled law (`sld.search.evaluate`) evaluates values and exact
Jacobians for all of them in one call (it accepts one value of each constant per problem), and each iteration solves
every problem's damped ``p x p`` normal equations at once (LAPACK's batched solve, or for large batches a Cholesky
written over the batch). Each problem keeps its own damping and stops on its own; finished problems drop out of the
arrays.

Bounds: a step is projected onto the box, and constants sitting on a bound whose gradient pushes outward are held
for that step (an active set), so the other constants still take a full Gauss-Newton step. Robust losses rescale
residuals and Jacobian as ``scipy.optimize.least_squares`` does (Triggs et al. 2000, "Bundle adjustment", 4.3).

Example
-------
>>> import numpy as np
>>> from sld.search.expressions import parse_law
>>> law = parse_law("a * x**b", ["x"])
>>> x = np.linspace(1.0, 10.0, 8)
>>> cols = np.tile(x, 2)[None, :]  # two problems of 8 rows each
>>> y = np.concatenate([2 * x**0.5, 3 * x**-0.2])
>>> mask = np.ones((2, 8), dtype=bool)
>>> out = solve_batch(law.compiled, cols, y.reshape(2, 8), mask, np.ones((2, 2)),
...                   lower=np.full(2, -np.inf), upper=np.full(2, np.inf))
>>> np.round(out.theta, 6).tolist()
[[2.0, 0.5], [3.0, -0.2]]
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

import numpy as np
from numpy.typing import NDArray

from sld.search.evaluate import CompiledLaw

Array = NDArray[np.float64]
BoolArray = NDArray[np.bool_]
Loss = Literal["linear", "soft_l1", "huber", "cauchy"]

# Residuals of non-finite predictions become this (times the target scale), as in `sld.search.fitting`: the start
# sees a large finite cost and moves away rather than failing.
_PENALTY = 1e6
# Stopping tolerances on the relative cost decrease, the relative step and the scaled gradient; scipy's defaults.
_FTOL = _XTOL = 1e-8  # the gradient's is `sld.search.lm_iteration.GRADIENT_TOLERANCE`
# Marquardt damping: start, the largest drop after an accepted step, the first rise after a rejected one, the end.
DAMPING_START, _DAMPING_DOWN, _DAMPING_UP, _DAMPING_MAX = 1e-3, 1.0 / 3.0, 2.0, 1e12


# A problem whose cost falls by less than this share over this many iterations stops: it crawls along a flat valley
# (typically more constants than its few rows determine), where further iterations buy nothing a choice between
# laws could see.
STALL_DECREASE, STALL_WINDOW = 1e-5, 10
# From this many iterations on, a start whose cost exceeds its fit's best start by this factor stops: only the best
# start of a fit is kept, and one that far behind after that long practically never overtakes. (30 rather than 60:
# the 32 laws of `sld bench --fit-speed` keep their statuses and validation R^2 to 5 digits; at 20 one does not.)
DOMINATED_AFTER, DOMINATED_FACTOR = 30, 10.0


@dataclass(frozen=True)
class BatchSolution:
    """Where every problem of a batch ended.

    Attributes
    ----------
    theta : ndarray of shape (n_problems, n_params)
        Constants (fixed ones at their value).
    cost : ndarray of shape (n_problems,)
        Half the sum of squared (loss-transformed) residuals in the fitted space, as scipy reports it; ``inf`` when
        the end point gives non-finite predictions.
    iterations : ndarray of shape (n_problems,)
        Jacobian evaluations used.
    reason : ndarray of shape (n_problems,)
        Why each stopped: one of `REASONS`.
    """

    theta: Array
    cost: Array
    iterations: NDArray[np.int64]
    reason: NDArray[np.int64]


REASONS = (
    "iteration budget exhausted",
    "relative cost change below ftol",
    "relative step below xtol",
    "gradient below gtol",
    "damping overflow: no step lowers the cost",
    "all constants fixed",
    "stalled: cost fell less than STALL_DECREASE over STALL_WINDOW iterations",
    "dominated: another start of the same fit is far better",
)


def solve_batch(
    compiled: CompiledLaw,
    cols: Array,
    y: Array,
    mask: BoolArray,
    starts: Array,
    *,
    lower: Array,
    upper: Array,
    log_residuals: NDArray[np.bool_] | None = None,
    loss: Loss = "linear",
    f_scale: float = 1.0,
    max_iterations: int = 400,
    fit_of: NDArray[np.intp] | None = None,
) -> BatchSolution:
    """Fit every problem of a batch from its start.

    Parameters
    ----------
    compiled : CompiledLaw
        The law's evaluators.
    cols : ndarray of shape (n_vars, n_problems * m)
        Features of problem ``b``'s padded rows in columns ``b*m .. b*m+m-1``; padding rows must hold values where
        the law is defined (a copy of a real row), as they are evaluated and then ignored.
    y : ndarray of shape (n_problems, m)
        Targets (anything finite on padding rows); with ``log_residuals`` they must be positive there.
    mask : ndarray of bool, shape (n_problems, m)
        Which rows are real.
    starts : ndarray of shape (n_problems, n_params)
        Start of each problem, within the bounds.
    lower, upper : ndarray of shape (n_params,)
        Bounds; ``lower == upper`` holds a constant fixed.
    log_residuals : ndarray of bool, shape (n_problems,), optional
        Problems whose residuals are ``log(pred) - log(y)``.
    loss : {"linear", "soft_l1", "huber", "cauchy"}
        Loss on the residuals, scaled by ``f_scale``, as in ``scipy.optimize.least_squares``.
    f_scale : float
        Residual scale of the robust losses.
    max_iterations : int
        Iterations (one Jacobian evaluation each) per problem.
    fit_of : ndarray of int, shape (n_problems,), optional
        Which fit each problem is a start of; starts far behind their fit's best stop early (`DOMINATED_FACTOR`).

    Returns
    -------
    BatchSolution
    """
    n_problems = y.shape[0]
    free = lower < upper
    use_log = np.zeros(n_problems, dtype=bool) if log_residuals is None else np.asarray(log_residuals, dtype=bool)
    target = np.where(use_log[:, None], np.log(np.where(use_log[:, None], y, 1.0)), y)
    masked_target = np.where(mask, target, 0.0)
    penalty = _PENALTY * (1.0 + np.max(np.abs(masked_target), axis=1))
    system = _System(compiled, compiled.prepare(cols), target, mask, use_log, penalty, free, loss, f_scale)
    return solve_systems(system, starts, lower=lower, upper=upper, max_iterations=max_iterations, fit_of=fit_of)


class ResidualSystem(Protocol):
    """The least-squares problems of one batch, as the Levenberg-Marquardt loop of `solve_systems` sees them."""

    def evaluate(self, theta: Array) -> tuple[Array, Array, Array]:
        """Return residuals (b, m), the free constants' Jacobian and cost (b,) at ``theta`` (b, p).

        The Jacobian's layout is the system's own (problems on axis 1); only its `normal_equations` reads it.
        """
        ...

    def normal_equations(self, jac: Array, residual: Array) -> tuple[Array, Array, Array]:
        """Return each problem's ``J^T J`` (b, q, q), gradient ``J^T r`` (b, q) and ``r.r`` (b,)."""
        ...

    def subset(self, keep: BoolArray) -> ResidualSystem:
        """Return the system of the problems ``keep`` selects."""
        ...

    @property
    def arrow(self) -> tuple[int, int] | None:
        """``(n_coupled, block)`` when every problem's ``J^T J`` is block-arrow shaped, else ``None``.

        The first ``n_coupled`` free constants couple to all; the others fall in independent blocks of ``block``
        (`sld.search.lm_iteration.damped_steps` then factors each block alone).
        """
        ...

    def finite(self, theta: Array) -> BoolArray:
        """Return whether each problem's predictions at ``theta`` are finite (and valid) on its real rows."""
        ...


def solve_systems(
    system: ResidualSystem,
    starts: Array,
    *,
    lower: Array,
    upper: Array,
    max_iterations: int = 400,
    fit_of: NDArray[np.intp] | None = None,
    first_damping: float | Array = DAMPING_START,
) -> BatchSolution:
    """Run the batched Levenberg-Marquardt loop on any `ResidualSystem` (`solve_batch` gives it a law's problems).

    Parameters
    ----------
    system : ResidualSystem
        The problems; its Jacobian covers the constants with ``lower < upper``, in order.
    starts : ndarray of shape (n_problems, n_params)
        Start of each problem, within the bounds.
    lower, upper : ndarray of shape (n_params,)
        Bounds; ``lower == upper`` holds a constant fixed.
    max_iterations : int
        Iterations (one Jacobian evaluation each) per problem.
    fit_of : ndarray of int, shape (n_problems,), optional
        Which fit each problem is a start of (`DOMINATED_FACTOR`).
    first_damping : float or ndarray of shape (n_problems,)
        Marquardt damping of the first step, relative to each constant's curvature: larger when the starts are
        already near an optimum and the first Gauss-Newton step could run along a flat direction.

    Returns
    -------
    BatchSolution
    """
    # numba and the compiled parts take ~1.5 s to load: `import sld` and the commands that fit nothing stay light.
    from sld.search.lm_iteration import update_after_trials

    free = lower < upper
    n_problems = starts.shape[0]
    theta = np.array(starts, dtype=np.float64)
    iterations = np.zeros(n_problems, dtype=np.int64)
    reason = np.zeros(n_problems, dtype=np.int64)
    with np.errstate(all="ignore"):
        residual, jac, cost = system.evaluate(theta)
        normal, gradient, squares = system.normal_equations(jac, residual)
        if not free.any():
            reason[:] = REASONS.index("all constants fixed")
            return BatchSolution(theta, np.where(system.finite(theta), cost, np.inf), iterations, reason)
        lo, hi = lower[free], upper[free]
        all_free = bool(free.all())
        # The block structure is over all constants: with some held fixed, the free ones are solved dense.
        arrow = system.arrow if all_free else None
        # The state of the problems still iterating, compacted: row k belongs to problem active[k]. Finished problems
        # are written back to theta, cost, reason and iterations, and drop out of every array (the system's rows
        # too), so that a slow tail iterates on small arrays. Each problem's normal equations are kept rather than
        # its Jacobian: a rejected step (about a quarter) reuses them with a larger damping.
        active, live = np.arange(n_problems), system
        point, z, now = theta.copy(), theta[:, free], cost.copy()
        damping = np.broadcast_to(np.asarray(first_damping, dtype=np.float64), (n_problems,)).copy()
        growth = np.full(n_problems, _DAMPING_UP)
        checkpoint = cost.copy()
        iteration = 0
        for iteration in range(1, max_iterations + 1):
            if active.size == 0:
                break
            step, gradient_small, predicted = _damped_step(normal, gradient, squares, z, lo, hi, damping, arrow)
            trial = np.minimum(np.maximum(z + step, lo), hi)
            if all_free:
                trial_theta = trial
            else:
                trial_theta = point.copy()
                trial_theta[:, free] = trial
            new_residual, new_jac, new_cost = live.evaluate(trial_theta)
            # Accepted problems take the trial point and loosen the damping, the others tighten it; then the
            # stopping tests (compiled: `sld.search.lm_iteration.update_after_trials`).
            stall_check = iteration % STALL_WINDOW == 0
            dominated = None
            if stall_check and fit_of is not None and iteration >= DOMINATED_AFTER:
                dominated = (cost, active, fit_of)
            accepted, done = update_after_trials(
                (now, z, damping, growth, checkpoint),
                new_cost,
                trial,
                predicted,
                gradient_small,
                settings=_UPDATE_SETTINGS,
                codes=_UPDATE_CODES,
                stall_check=stall_check,
                dominated=dominated,
            )
            if accepted.all():
                point = z if all_free else trial_theta
                normal, gradient, squares = live.normal_equations(new_jac, new_residual)
            elif accepted.any():
                normal[accepted], gradient[accepted], squares[accepted] = live.normal_equations(
                    new_jac[:, accepted], new_residual[accepted]
                )
                if all_free:
                    point = z
                else:
                    point[accepted] = trial_theta[accepted]
            finished = done > 0
            if finished.any():
                rows = active[finished]
                theta[rows], cost[rows], reason[rows], iterations[rows] = (
                    point[finished],
                    now[finished],
                    done[finished],
                    iteration,
                )
                keep = ~finished
                active, live = active[keep], live.subset(keep)
                point, z, now = point[keep], z[keep], now[keep]
                damping, growth, checkpoint = damping[keep], growth[keep], checkpoint[keep]
                normal, gradient, squares = normal[keep], gradient[keep], squares[keep]
        theta[active], cost[active], iterations[active] = point, now, iteration
        return BatchSolution(theta, np.where(system.finite(theta), cost, np.inf), iterations, reason)


_GTOL_REASON = REASONS.index("gradient below gtol")
_XTOL_REASON = REASONS.index("relative step below xtol")
_FTOL_REASON = REASONS.index("relative cost change below ftol")
_OVERFLOW_REASON = REASONS.index("damping overflow: no step lowers the cost")
_STALLED_REASON = REASONS.index("stalled: cost fell less than STALL_DECREASE over STALL_WINDOW iterations")
_DOMINATED_REASON = REASONS.index("dominated: another start of the same fit is far better")
# What `update_after_trials` needs of the constants above, in its order.
_UPDATE_SETTINGS = np.array(
    [_XTOL, _FTOL, _DAMPING_DOWN, _DAMPING_UP, _DAMPING_MAX, STALL_DECREASE, DOMINATED_FACTOR], dtype=np.float64
)
_UPDATE_CODES = np.array(
    [_GTOL_REASON, _XTOL_REASON, _FTOL_REASON, _OVERFLOW_REASON, _STALLED_REASON, _DOMINATED_REASON], dtype=np.int64
)


def _normal_equations(jac: Array, residual: Array) -> tuple[Array, Array, Array]:
    """Return each problem's ``J^T J`` (b, q, q), gradient ``J^T r`` (b, q) and ``r.r`` (b,).

    ``jac`` has the compiled law's layout, shape (q, b, m).
    """
    # A compiled pass over the (q, b, m) layout is several times faster than numpy on stacks of tiny matrices
    # (many problems of few rows); BLAS's matmul wins on few problems of many rows.
    if jac.shape[2] >= _MATMUL_ROWS:
        stacked = jac.transpose(1, 0, 2)
        gradient = np.matmul(stacked, residual[:, :, None])[:, :, 0]
        normal = np.matmul(stacked, stacked.transpose(0, 2, 1))
        return normal, gradient, np.einsum("bm,bm->b", residual, residual)
    from sld.search.lm_iteration import normal_equations  # loaded by `solve_systems`, the only caller

    return normal_equations(jac, residual)


def _damped_step(
    normal: Array,
    gradient: Array,
    squares: Array,
    z: Array,
    lower: Array,
    upper: Array,
    damping: Array,
    arrow: tuple[int, int] | None,
) -> tuple[Array, BoolArray, Array]:
    """Return each problem's Levenberg-Marquardt step, whether its gradient is negligible, and the predicted decrease.

    ``normal``, ``gradient`` and ``squares`` come from `_normal_equations` (and are not changed); the predicted
    decrease is that of the linearised cost. The step is compiled (`sld.search.lm_iteration`); a problem whose
    Cholesky factorisation rounding broke is solved by LAPACK instead.
    """
    from sld.search.lm_iteration import damped_steps  # loaded by `solve_systems`, the only caller

    step, gradient_small, predicted, broken, damped_normal, rhs, damped = damped_steps(
        normal, gradient, squares, z, lower, upper, damping, arrow
    )
    if broken.any():
        fallback = _lapack_solve(damped_normal[broken], rhs[broken])
        fallback = np.where(np.isfinite(fallback), fallback, 0.0)
        step[broken] = fallback
        predicted[broken] = 0.5 * np.einsum("bq,bq->b", fallback, damped[broken] * fallback + rhs[broken])
    return step, gradient_small, predicted


# From this many rows per problem on, the normal equations come from matmul (BLAS) rather than einsum (measured on
# SLDBench shapes: einsum 3x faster for 1,260 problems of 12 rows, matmul faster for 8 problems of 1,730 rows).
_MATMUL_ROWS = 256


def _lapack_solve(normal: Array, rhs: Array) -> Array:
    try:
        return np.asarray(np.linalg.solve(normal, rhs[:, :, None])[:, :, 0])
    except np.linalg.LinAlgError:
        return np.stack([_solve_one(a, g) for a, g in zip(normal, rhs, strict=True)])


def _solve_one(a: Array, b: Array) -> Array:
    try:
        return np.asarray(np.linalg.solve(a, b))
    except np.linalg.LinAlgError:
        return np.asarray(np.linalg.lstsq(a, b, rcond=None)[0])


class _System:
    """Residuals, Jacobians and costs of a set of the batch's problems, in one compiled call."""

    def __init__(
        self,
        compiled: CompiledLaw,
        prepared: Array,
        target: Array,
        mask: BoolArray,
        use_log: BoolArray,
        penalty: Array,
        free: BoolArray,
        loss: Loss,
        f_scale: float,
    ) -> None:
        self.compiled, self.target, self.mask, self.use_log, self.penalty = compiled, target, mask, use_log, penalty
        self.free, self.loss, self.f_scale = free, loss, f_scale
        # The law's feature-only subtrees were evaluated once (`CompiledLaw.prepare`); the trees see each problem's
        # rows as a (b, m) block and its constants as (b, 1), broadcast rather than repeated per row.
        self.cols = prepared.reshape(prepared.shape[0], target.shape[0], target.shape[1])
        self.free_indices = np.flatnonzero(free).tolist()
        self.padded = not bool(mask.all())
        self.any_log = bool(use_log.any())

    def subset(self, keep: BoolArray) -> _System:
        """Return the system of the problems ``keep`` selects (their rows gathered once, not per iteration)."""
        return _System(
            self.compiled,
            self.cols[:, keep].reshape(self.cols.shape[0], -1),
            self.target[keep],
            self.mask[keep],
            self.use_log[keep],
            self.penalty[keep],
            self.free,
            self.loss,
            self.f_scale,
        )

    def normal_equations(self, jac: Array, residual: Array) -> tuple[Array, Array, Array]:
        return _normal_equations(jac, residual)

    @property
    def arrow(self) -> None:
        """Independent problems: each one's few constants make one dense system."""
        return None

    def evaluate(self, theta: Array) -> tuple[Array, Array, Array]:
        """Return residuals (b, m), the free constants' Jacobian (q, b, m) and cost (b,) at ``theta`` (b, p)."""
        pred, jac = self.compiled.values_and_gradients(self.cols, theta.T[:, :, None], self.free_indices, prepared=True)
        if self.any_log:
            use_log = self.use_log[:, None]
            jac = np.where(use_log, jac / pred, jac)
            pred = np.where(use_log, np.log(pred), pred)
        residual = pred - self.target
        if not np.isfinite(residual).all():
            penalty = self.penalty[:, None]
            residual = np.clip(np.where(np.isfinite(residual), residual, penalty), -penalty, penalty)
        if not np.isfinite(jac).all():
            jac = np.where(np.isfinite(jac), jac, 0.0)
        if self.padded:
            residual = residual * self.mask
            jac = jac * self.mask
        if self.loss == "linear":
            return residual, jac, 0.5 * np.einsum("bm,bm->b", residual, residual)
        return self._robust(residual, jac)

    def _robust(self, residual: Array, jac: Array) -> tuple[Array, Array, Array]:
        # As scipy.optimize._lsq.common.scale_for_robust_loss_function: an equivalent linear problem per step.
        z = (residual / self.f_scale) ** 2
        rho, rho1, rho2 = _loss(self.loss, z)
        cost = 0.5 * self.f_scale**2 * np.sum(rho, axis=1)
        curvature = np.maximum(rho1 + 2 * rho2 * z, np.finfo(float).eps)
        root = np.sqrt(curvature)
        return residual * rho1 / root, jac * root, cost

    def finite(self, theta: Array) -> BoolArray:
        """Whether each problem's predictions are finite (and positive under log residuals) on its real rows."""
        pred = self.compiled.values(self.cols, theta.T[:, :, None], prepared=True)
        ok = np.isfinite(pred) & (~self.use_log[:, None] | (pred > 0))
        finite: BoolArray = np.all(ok | ~self.mask, axis=1)
        return finite


def _loss(kind: Loss, z: Array) -> tuple[Array, Array, Array]:
    """Return rho(z), rho'(z), rho''(z) of scipy's robust losses (z is the squared scaled residual)."""
    if kind == "soft_l1":
        t = 1 + z
        return 2 * (np.sqrt(t) - 1), 1 / np.sqrt(t), -0.5 * t**-1.5
    if kind == "huber":
        big = z > 1
        root = np.sqrt(np.where(big, z, 1.0))
        return np.where(big, 2 * root - 1, z), np.where(big, 1 / root, 1.0), np.where(big, -0.5 / root**3, 0.0)
    if kind == "cauchy":
        return np.log1p(z), 1 / (1 + z), -1 / (1 + z) ** 2
    return z, np.ones_like(z), np.zeros_like(z)

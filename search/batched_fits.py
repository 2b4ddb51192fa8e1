"""Solve many small bounded least-squares problems of one law at once: a batched Levenberg-Marquardt.

A candidate law is fitted thousands of times per evaluation (every group of every fold, from every start), each a
problem of a few constants on a dozen rows. Solved one by one (``scipy.optimize.least_squares``) the arithmetic is
microseconds and the Python overhead is everything. Here all problems of one law advance together: their rows are
laid side by side in one padded array, the compiled law (`sld.search.evaluate`) evaluates values and exact
Jacobians for all of them in one call (it accepts one value of each constant per row), and each iteration solves
every problem's damped ``p x p`` normal equations in one batched ``np.linalg.solve``. Each problem keeps its own
damping and stops on its own; finished problems drop out of the arrays.

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
from typing import Literal

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
_FTOL = _XTOL = _GTOL = 1e-8
# Marquardt damping: start, the largest drop after an accepted step, the first rise after a rejected one, the end.
_DAMPING_START, _DAMPING_DOWN, _DAMPING_UP, _DAMPING_MAX = 1e-3, 1.0 / 3.0, 2.0, 1e12


# A problem whose cost falls by less than this share over this many iterations stops: it crawls along a flat valley
# (typically more constants than its few rows determine), where further iterations buy nothing a choice between
# laws could see.
STALL_DECREASE, STALL_WINDOW = 1e-5, 10
# From this many iterations on, a start whose cost exceeds its fit's best start by this factor stops: only the best
# start of a fit is kept, and one that far behind after that long practically never overtakes.
DOMINATED_AFTER, DOMINATED_FACTOR = 60, 10.0


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
    system = _System(compiled, cols, target, mask, use_log, penalty, free, loss, f_scale)
    theta = np.array(starts, dtype=np.float64)
    iterations = np.zeros(n_problems, dtype=np.int64)
    reason = np.zeros(n_problems, dtype=np.int64)
    with np.errstate(all="ignore"):
        everyone = np.arange(n_problems)
        residual, jac, cost = system.evaluate(everyone, theta)
        if not free.any():
            reason[:] = REASONS.index("all constants fixed")
            return BatchSolution(theta, _finite_cost(system, everyone, theta, cost), iterations, reason)
        lo, hi = lower[free], upper[free]
        # The state of the problems still iterating, compacted: row k belongs to problem active[k]. Finished problems
        # are written back to theta, cost, reason and iterations, and drop out of every array (residual, jac too),
        # so that a slow tail iterates on small arrays.
        active = everyone
        point, z, now = theta.copy(), theta[:, free], cost.copy()
        damping = np.full(n_problems, _DAMPING_START)
        growth = np.full(n_problems, _DAMPING_UP)
        checkpoint = cost.copy()
        iteration = 0
        for iteration in range(1, max_iterations + 1):
            if active.size == 0:
                break
            step, gradient_small, predicted = _damped_step(jac, residual, z, lo, hi, damping)
            trial = np.clip(z + step, lo, hi)
            trial_theta = point.copy()
            trial_theta[:, free] = trial
            new_residual, new_jac, new_cost = system.evaluate(active, trial_theta)
            accepted = new_cost < now
            decrease = now - new_cost
            moved = np.linalg.norm(trial - z, axis=1)
            # Accepted problems take the trial point and loosen the damping; the others tighten it.
            if accepted.all():
                z, point, now, residual, jac = trial, trial_theta, new_cost, new_residual, new_jac
            elif accepted.any():
                z[accepted], point[accepted], now[accepted] = trial[accepted], trial_theta[accepted], new_cost[accepted]
                residual[accepted], jac[:, accepted] = new_residual[accepted], new_jac[:, accepted]
            # Nielsen's update (Madsen, Nielsen & Tingleff 2004, eq. 3.16): the better the quadratic model predicted
            # the decrease, the more the damping drops; repeated rejections raise it ever faster.
            gain = decrease / np.maximum(predicted, 1e-300)
            shrink = np.maximum(_DAMPING_DOWN, 1.0 - (2.0 * np.clip(gain, 0.0, 1.0) - 1.0) ** 3)
            damping = np.where(accepted, damping * shrink, damping * growth)
            growth = np.where(accepted, _DAMPING_UP, growth * 2.0)
            done = np.zeros(active.size, dtype=np.int64)
            done[gradient_small] = REASONS.index("gradient below gtol")
            # As in scipy, the step test applies to accepted steps: a rejected step is small because the damping is
            # large, not because the problem has converged.
            small_step = accepted & (moved <= _XTOL * (_XTOL + np.linalg.norm(z, axis=1)))
            done[(done == 0) & small_step] = REASONS.index("relative step below xtol")
            flat = accepted & (decrease <= _FTOL * np.maximum(now, 1e-300))
            done[(done == 0) & (flat | (now == 0))] = REASONS.index("relative cost change below ftol")
            done[(done == 0) & (damping > _DAMPING_MAX)] = REASONS.index("damping overflow: no step lowers the cost")
            if iteration % STALL_WINDOW == 0:
                stalled = now >= (1.0 - STALL_DECREASE) * checkpoint
                done[(done == 0) & stalled] = REASONS.index(
                    "stalled: cost fell less than STALL_DECREASE over STALL_WINDOW iterations"
                )
                checkpoint = now.copy()
                if fit_of is not None and iteration >= DOMINATED_AFTER:
                    cost[active] = now
                    best = np.full(int(fit_of.max()) + 1, np.inf)
                    np.minimum.at(best, fit_of, cost)
                    behind = now > DOMINATED_FACTOR * best[fit_of[active]] + 1e-300
                    done[(done == 0) & behind] = REASONS.index("dominated: another start of the same fit is far better")
            finished = done > 0
            if finished.any():
                rows = active[finished]
                theta[rows], cost[rows], reason[rows], iterations[rows] = (
                    point[finished], now[finished], done[finished], iteration
                )
                keep = ~finished
                active, point, z, now = active[keep], point[keep], z[keep], now[keep]
                damping, growth, checkpoint = damping[keep], growth[keep], checkpoint[keep]
                residual, jac = residual[keep], jac[:, keep]
        theta[active], cost[active], iterations[active] = point, now, iteration
        return BatchSolution(theta, _finite_cost(system, everyone, theta, cost), iterations, reason)


def _finite_cost(system: _System, rows: NDArray[np.intp], theta: Array, cost: Array) -> Array:
    """Cost of each problem, ``inf`` where its end point predicts a non-finite value on a real row."""
    finite = system.finite(rows, theta)
    return np.where(finite, cost, np.inf)


def _damped_step(
    jac: Array, residual: Array, z: Array, lower: Array, upper: Array, damping: Array
) -> tuple[Array, BoolArray, Array]:
    """Return each problem's Levenberg-Marquardt step, whether its gradient is negligible, and the predicted decrease.

    ``jac`` has the compiled law's layout, shape (q, b, m); the predicted decrease is that of the linearised cost.
    """
    # einsum over the (q, b, m) layout: several times faster than matmul on stacks of tiny matrices.
    gradient = np.einsum("ibm,bm->bi", jac, residual)
    normal = np.einsum("ibm,jbm->bij", jac, jac)
    # Constants on a bound whose descent direction leaves the box are held for this step.
    held = ((z <= lower) & (gradient > 0)) | ((z >= upper) & (gradient < 0))
    q = z.shape[1]
    index = np.arange(q)
    diagonal = normal[:, index, index].copy()
    if held.any():
        gradient = np.where(held, 0.0, gradient)
        normal = np.where(held[:, :, None] | held[:, None, :], 0.0, normal)
    undamped = normal.copy()
    # Marquardt's scaling by diag(J^T J) makes the damping invariant to the constants' units; a floor keeps
    # constants the residuals ignore (zero Jacobian column) from making the system singular.
    scale = np.maximum(diagonal, 1e-12 * np.maximum(diagonal.max(axis=1, keepdims=True), 1e-300))
    normal[:, index, index] = np.where(held, 1.0, diagonal + damping[:, None] * scale)
    step = _solve_damped(normal, -gradient)
    step = np.where(np.isfinite(step), step, 0.0)
    # Scaled gradient test: |g_j| against the size of the Jacobian column and of the cost, as in scipy.
    cost_scale = np.maximum(np.sum(residual**2, axis=1), 1e-300)
    gradient_small = np.max(np.abs(gradient) * np.sqrt(scale), axis=1) <= _GTOL * cost_scale
    # Decrease the linear model predicts for the step: -(g.s + s.(J^T J).s / 2).
    curvature = np.einsum("bq,bqr,br->b", step, undamped, step)
    predicted = -(np.einsum("bq,bq->b", gradient, step) + 0.5 * curvature)
    return step, gradient_small, predicted


# From this many problems per constant on, the damped systems are solved by a Cholesky factorisation written over the
# batch (`_cholesky_solve`): its cost is a few dozen numpy operations whatever the batch size, where LAPACK's batched
# solve costs about 0.3 us per problem (measured: 70 us against 405 us for 1,260 problems of 3 constants).
_CHOLESKY_PROBLEMS_PER_CONSTANT = 64


def _solve_damped(normal: Array, rhs: Array) -> Array:
    """Solve every problem's damped normal equations ``normal @ x = rhs`` (symmetric positive definite)."""
    b, q = rhs.shape
    if b >= _CHOLESKY_PROBLEMS_PER_CONSTANT * q:
        step = _cholesky_solve(normal, rhs)
        # A factorisation that rounding made fail (a pivot not above zero) falls back to LAPACK for that problem.
        broken = ~np.isfinite(step).all(axis=1)
        if broken.any():
            step[broken] = _lapack_solve(normal[broken], rhs[broken])
        return step
    return _lapack_solve(normal, rhs)


def _lapack_solve(normal: Array, rhs: Array) -> Array:
    try:
        return np.asarray(np.linalg.solve(normal, rhs[:, :, None])[:, :, 0])
    except np.linalg.LinAlgError:
        return np.stack([_solve_one(a, g) for a, g in zip(normal, rhs, strict=True)])


def _cholesky_solve(normal: Array, rhs: Array) -> Array:
    """Solve ``normal @ x = rhs`` for every problem at once: Cholesky, then forward and back substitution.

    Each entry of the factor is one array over the batch, so the loops run over the ``q`` constants only.
    """
    q = rhs.shape[1]
    low: dict[tuple[int, int], Array] = {}  # the factor's lower triangle, (i, j) with j <= i
    for j in range(q):
        pivot = _minus_products(normal[:, j, j], [(low[j, k], low[j, k]) for k in range(j)])
        low[j, j] = np.sqrt(np.where(pivot > 0, pivot, np.nan))
        for i in range(j + 1, q):
            low[i, j] = _minus_products(normal[:, i, j], [(low[i, k], low[j, k]) for k in range(j)]) / low[j, j]
    forward: list[Array] = []
    for i in range(q):
        forward.append(_minus_products(rhs[:, i], [(low[i, k], forward[k]) for k in range(i)]) / low[i, i])
    solution: dict[int, Array] = {}
    for i in reversed(range(q)):
        solution[i] = _minus_products(forward[i], [(low[k, i], solution[k]) for k in range(i + 1, q)]) / low[i, i]
    return np.stack([solution[i] for i in range(q)], axis=1)


def _minus_products(start: Array, pairs: list[tuple[Array, Array]]) -> Array:
    """Return ``start - sum(a * b for a, b in pairs)``."""
    out = start
    for left, right in pairs:
        out = out - left * right
    return out


def _solve_one(a: Array, b: Array) -> Array:
    try:
        return np.asarray(np.linalg.solve(a, b))
    except np.linalg.LinAlgError:
        return np.asarray(np.linalg.lstsq(a, b, rcond=None)[0])


class _System:
    """Residuals, Jacobians and costs of a subset of the batch's problems, in one compiled call."""

    def __init__(
        self,
        compiled: CompiledLaw,
        cols: Array,
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
        self.m = target.shape[1]
        # Feature-only subtrees are evaluated once here, not per iteration (`CompiledLaw.prepare`); the trees then
        # see each problem's rows as a (b, m) block and its constants as (b, 1), broadcast rather than repeated.
        prepared = compiled.prepare(cols)
        self.cols3 = prepared.reshape(prepared.shape[0], target.shape[0], self.m)
        self.all_rows = target.shape[0]
        self.free_indices = np.flatnonzero(free).tolist()
        self.padded = not bool(mask.all())

    def _cols(self, rows: NDArray[np.intp]) -> Array:
        return self.cols3 if rows.size == self.all_rows else self.cols3[:, rows]

    def evaluate(self, rows: NDArray[np.intp], theta: Array) -> tuple[Array, Array, Array]:
        """Return residuals (b, m), the free constants' Jacobian (q, b, m) and cost (b,) of problems ``rows``."""
        pred, grads = self.compiled.values_and_gradients(
            self._cols(rows), theta.T[:, :, None], self.free_indices, prepared=True
        )
        jac = grads
        use_log = self.use_log[rows]
        if use_log.any():
            jac = np.where(use_log[:, None], jac / pred, jac)
            pred = np.where(use_log[:, None], np.log(pred), pred)
        residual = pred - self.target[rows]
        if not np.isfinite(residual).all():
            penalty = self.penalty[rows][:, None]
            residual = np.clip(np.where(np.isfinite(residual), residual, penalty), -penalty, penalty)
        if not np.isfinite(jac).all():
            jac = np.where(np.isfinite(jac), jac, 0.0)
        if self.padded:
            mask = self.mask[rows]
            residual = residual * mask
            jac = jac * mask
        if self.loss == "linear":
            return residual, jac, 0.5 * np.sum(residual**2, axis=1)
        return self._robust(residual, jac)

    def _robust(self, residual: Array, jac: Array) -> tuple[Array, Array, Array]:
        # As scipy.optimize._lsq.common.scale_for_robust_loss_function: an equivalent linear problem per step.
        z = (residual / self.f_scale) ** 2
        rho, rho1, rho2 = _loss(self.loss, z)
        cost = 0.5 * self.f_scale**2 * np.sum(rho, axis=1)
        curvature = np.maximum(rho1 + 2 * rho2 * z, np.finfo(float).eps)
        root = np.sqrt(curvature)
        return residual * rho1 / root, jac * root, cost

    def finite(self, rows: NDArray[np.intp], theta: Array) -> BoolArray:
        """Whether each problem's predictions are finite (and positive under log residuals) on its real rows."""
        pred = self.compiled.values(self._cols(rows), theta.T[:, :, None], prepared=True)
        ok = np.isfinite(pred) & (~self.use_log[rows][:, None] | (pred > 0))
        finite: BoolArray = np.all(ok | ~self.mask[rows], axis=1)
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

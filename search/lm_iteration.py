"""The compiled parts of one batched Levenberg-Marquardt iteration: the damped step and the update after a trial.

The batched fitter (`sld.search.batched_fits.solve_systems`) iterates on every problem of a batch at once. Per
iteration it takes one damped Gauss-Newton step per problem (hold the constants whose descent leaves their bounds,
damp the normal equations by Marquardt's scaling, solve the small ``q x q`` system, test the gradient, predict the
decrease), evaluates the law at the trial points, then updates each problem (accept or reject, Nielsen's damping
update, the stopping tests). In numpy each of those is a few dozen array operations on ``(b, q, q)`` stacks of tiny
matrices and ``(b,)`` vectors, so their call overhead, not the arithmetic, set the cost: about 0.2-0.4 ms per
iteration, 30-45% of every fit on SLDBench's tasks. Compiled, each is one call that loops over the problems (a
``q x q`` Cholesky each); measurements in docs/ARCHITECTURE.md.

Only this bookkeeping is compiled. The law's residuals and Jacobian stay the numpy trees built from the whitelisted
expression (`sld.search.evaluate`), which run at memory speed, and no law becomes generated code. Tolerances and
reason codes are arguments, not globals: numba would freeze another module's globals into its cached machine code.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numba
import numpy as np
from numpy.typing import NDArray

Array = NDArray[np.float64]
BoolArray = NDArray[np.bool_]

# The scaled-gradient tolerance (scipy's gtol) and the floor of Marquardt's scale relative to its largest entry,
# which keeps a constant the residuals ignore (a zero Jacobian column) from making the damped system singular.
GRADIENT_TOLERANCE = 1e-8
_SCALE_FLOOR = 1e-12


@numba.njit(cache=True, nogil=True)
def _damped_block(
    normal: Array, p: int, held: BoolArray, damped: Array, row: int, column: int, out: Array
) -> None:
    """Fill ``out`` with the block of problem ``p``'s damped system at ``(row, column)``, of ``out``'s shape.

    Held constants' rows and columns are the identity's; the diagonal carries the damping.
    """
    rows, columns = out.shape
    for i in range(rows):
        for j in range(columns):
            a, c = row + i, column + j
            if held[a] or held[c]:
                out[i, j] = 1.0 if a == c else 0.0
            else:
                out[i, j] = normal[p, a, c] + damped[p, a] if a == c else normal[p, a, c]


@numba.njit(cache=True, nogil=True, inline="always")
def _cholesky(matrix: Array, size: int) -> bool:
    """Overwrite the lower triangle of ``matrix[:size, :size]`` with its Cholesky factor; False if a pivot fails."""
    for j in range(size):
        pivot = matrix[j, j]
        for k in range(j):
            pivot -= matrix[j, k] * matrix[j, k]
        if not pivot > 0.0:  # also catches nan
            return False
        matrix[j, j] = math.sqrt(pivot)
        for i in range(j + 1, size):
            entry = matrix[i, j]
            for k in range(j):
                entry -= matrix[i, k] * matrix[j, k]
            matrix[i, j] = entry / matrix[j, j]
    return True


def _steps(
    normal: Array,
    gradient: Array,
    squares: Array,
    z: Array,
    lower: Array,
    upper: Array,
    damping: Array,
    n_coupled: int,
    block: int,
    damped_normal: Array,
    rhs: Array,
    damped: Array,
    step: Array,
    gradient_small: BoolArray,
    predicted: Array,
    broken: BoolArray,
) -> None:
    """Fill the outputs (the last seven arguments) problem by problem; see `damped_steps`.

    The damped system is solved by block elimination: each independent block of ``block`` constants (after the
    first ``n_coupled``) is factored alone, and its coupling to the first constants is folded into their Schur
    complement, which is factored last. With no blocks this is one dense Cholesky factorisation.
    """
    b, q = z.shape
    blocks = (q - n_coupled) // block if block > 0 else 0
    coupled = np.empty((n_coupled, n_coupled))  # the first constants' Schur complement, then its factor
    coupled_rhs = np.empty(n_coupled)
    factors = np.empty((max(blocks, 1), block, block))  # each block's Cholesky factor L_g
    links = np.empty((max(blocks, 1), block, n_coupled))  # L_g^-1 times the block's coupling to the first constants
    forward = np.empty((max(blocks, 1), block))  # L_g^-1 times the block's right-hand side
    solution = np.empty(q)
    held = np.empty(q, dtype=np.bool_)
    for p in range(b):
        largest = 0.0
        for i in range(q):
            held[i] = (z[p, i] <= lower[i] and gradient[p, i] > 0.0) or (z[p, i] >= upper[i] and gradient[p, i] < 0.0)
            if normal[p, i, i] > largest:
                largest = normal[p, i, i]
        floor = _SCALE_FLOOR * max(largest, 1e-300)
        worst = 0.0
        for i in range(q):
            scale = max(normal[p, i, i], floor)
            damped[p, i] = damping[p] * scale
            rhs[p, i] = 0.0 if held[i] else -gradient[p, i]
            worst = max(worst, abs(rhs[p, i]) * math.sqrt(scale))
        gradient_small[p] = worst <= GRADIENT_TOLERANCE * max(squares[p], 1e-300)
        _damped_block(normal, p, held, damped, 0, 0, coupled)
        for i in range(n_coupled):
            coupled_rhs[i] = rhs[p, i]
        ok = True
        for g in range(blocks):
            first = n_coupled + g * block
            _damped_block(normal, p, held, damped, first, first, factors[g])
            if not _cholesky(factors[g], block):
                ok = False
                break
            # Forward substitution of the coupling columns and the right-hand side, then the Schur update.
            for i in range(block):
                for c in range(n_coupled):
                    entry = 0.0 if held[first + i] or held[c] else normal[p, first + i, c]  # off the diagonal
                    for k in range(i):
                        entry -= factors[g, i, k] * links[g, k, c]
                    links[g, i, c] = entry / factors[g, i, i]
                entry = rhs[p, first + i]
                for k in range(i):
                    entry -= factors[g, i, k] * forward[g, k]
                forward[g, i] = entry / factors[g, i, i]
            for c in range(n_coupled):
                for d in range(c + 1):
                    total = 0.0
                    for i in range(block):
                        total += links[g, i, c] * links[g, i, d]
                    coupled[c, d] -= total
                total = 0.0
                for i in range(block):
                    total += links[g, i, c] * forward[g, i]
                coupled_rhs[c] -= total
        if ok:
            ok = _cholesky(coupled, n_coupled)
        if not ok:
            broken[p] = True
            _damped_block(normal, p, held, damped, 0, 0, damped_normal[p])
            continue
        broken[p] = False
        for i in range(n_coupled):
            entry = coupled_rhs[i]
            for k in range(i):
                entry -= coupled[i, k] * solution[k]
            solution[i] = entry / coupled[i, i]
        for i in range(n_coupled - 1, -1, -1):
            entry = solution[i]
            for k in range(i + 1, n_coupled):
                entry -= coupled[k, i] * solution[k]
            solution[i] = entry / coupled[i, i]
        for g in range(blocks):
            first = n_coupled + g * block
            for i in range(block):
                entry = forward[g, i]
                for c in range(n_coupled):
                    entry -= links[g, i, c] * solution[c]
                solution[first + i] = entry
            for i in range(block - 1, -1, -1):
                entry = solution[first + i]
                for k in range(i + 1, block):
                    entry -= factors[g, k, i] * solution[first + k]
                solution[first + i] = entry / factors[g, i, i]
        decrease = 0.0
        for i in range(q):
            value = solution[i] if math.isfinite(solution[i]) else 0.0
            step[p, i] = value
            decrease += value * (damped[p, i] * value + rhs[p, i])
        predicted[p] = 0.5 * decrease


def _updates(
    now: Array,
    z: Array,
    damping: Array,
    growth: Array,
    checkpoint: Array,
    new_cost: Array,
    trial: Array,
    predicted: Array,
    gradient_small: BoolArray,
    cost: Array,
    active: NDArray[np.int64],
    fit_of: NDArray[np.int64],
    settings: Array,
    codes: NDArray[np.int64],
    stall_check: bool,
    dominated_check: bool,
    accepted: BoolArray,
    done: NDArray[np.int64],
) -> None:
    """Update every problem after its trial, in place; see `update_after_trials`."""
    step_tolerance, cost_tolerance, damping_down, damping_up = settings[0], settings[1], settings[2], settings[3]
    damping_max, stall_decrease, dominated_factor = settings[4], settings[5], settings[6]
    b, q = z.shape
    decrease = np.empty(b)
    moved = np.empty(b)
    for p in range(b):
        accepted[p] = new_cost[p] < now[p]
        decrease[p] = now[p] - new_cost[p]
        squared = 0.0
        for i in range(q):
            squared += (trial[p, i] - z[p, i]) ** 2
        moved[p] = math.sqrt(squared)
        gain = decrease[p] / max(predicted[p], 1e-300)
        if accepted[p]:
            for i in range(q):
                z[p, i] = trial[p, i]
            now[p] = new_cost[p]
            # Nielsen's update (Madsen, Nielsen & Tingleff 2004, eq. 3.16): the better the quadratic model predicted
            # the decrease, the more the damping drops; repeated rejections raise it ever faster.
            damping[p] *= max(damping_down, 1.0 - math.pow(2.0 * min(max(gain, 0.0), 1.0) - 1.0, 3.0))
            growth[p] = damping_up
        else:
            damping[p] *= growth[p]
            growth[p] *= 2.0
    best = np.full(1, np.inf)
    if dominated_check:
        for p in range(b):
            cost[active[p]] = now[p]
        best = np.full(fit_of.max() + 1, np.inf)
        for k in range(cost.size):
            best[fit_of[k]] = min(best[fit_of[k]], cost[k])
    for p in range(b):
        # The first test that holds names the reason. As in scipy, the step and cost tests apply to accepted steps:
        # a rejected step is small because the damping is large, not because the problem has converged.
        size = 0.0
        for i in range(q):
            size += z[p, i] ** 2
        if gradient_small[p]:
            done[p] = codes[0]
        elif accepted[p] and moved[p] <= step_tolerance * (step_tolerance + math.sqrt(size)):
            done[p] = codes[1]
        elif (accepted[p] and decrease[p] <= cost_tolerance * max(now[p], 1e-300)) or now[p] == 0.0:
            done[p] = codes[2]
        elif damping[p] > damping_max:
            done[p] = codes[3]
        elif stall_check and now[p] >= (1.0 - stall_decrease) * checkpoint[p]:
            done[p] = codes[4]
        elif dominated_check and now[p] > dominated_factor * best[fit_of[active[p]]] + 1e-300:
            done[p] = codes[5]
        else:
            done[p] = 0
        if stall_check:
            checkpoint[p] = now[p]


def _joint_normals(
    jac: Array, residual: Array, group_of_row: NDArray[np.int64], n_shared: int, normal: Array, gradient: Array
) -> None:
    """Accumulate every problem's joint ``J^T J`` and ``J^T r`` row by row; see `joint_normal_equations`."""
    q, b, n = jac.shape
    n_own = q - n_shared
    for p in range(b):
        for row in range(n):
            r = residual[p, row]
            first = n_shared + group_of_row[row] * n_own  # this row's group's own constants start here
            for i in range(q):
                ji = jac[i, p, row]
                if ji == 0.0:
                    continue
                column_i = i if i < n_shared else first + i - n_shared
                gradient[p, column_i] += ji * r
                for j in range(i + 1):
                    column_j = j if j < n_shared else first + j - n_shared
                    normal[p, column_i, column_j] += ji * jac[j, p, row]
        size = normal.shape[1]
        for i in range(size):  # mirror the lower triangle
            for j in range(i):
                normal[p, j, i] = normal[p, i, j]


def _normals(jac: Array, residual: Array, normal: Array, gradient: Array, squares: Array) -> None:
    """Fill every problem's ``J^T J``, ``J^T r`` and ``r.r`` in one pass; see `normal_equations`."""
    q, b, m = jac.shape
    for p in range(b):
        total = 0.0
        for row in range(m):
            total += residual[p, row] * residual[p, row]
        squares[p] = total
        for i in range(q):
            g = 0.0
            for row in range(m):
                g += jac[i, p, row] * residual[p, row]
            gradient[p, i] = g
            for j in range(i + 1):
                s = 0.0
                for row in range(m):
                    s += jac[i, p, row] * jac[j, p, row]
                normal[p, i, j] = s
                normal[p, j, i] = s


# numba compiles on first use and caches the machine code beside this module, so later processes only load it.
_compiled_steps: Callable[..., None] = numba.njit(cache=True, nogil=True)(_steps)
_compiled_updates: Callable[..., None] = numba.njit(cache=True, nogil=True)(_updates)
_compiled_joint_normals: Callable[..., None] = numba.njit(cache=True, nogil=True)(_joint_normals)
_compiled_normals: Callable[..., None] = numba.njit(cache=True, nogil=True)(_normals)


def normal_equations(jac: Array, residual: Array) -> tuple[Array, Array, Array]:
    """Return each independent problem's ``J^T J`` (b, q, q), gradient ``J^T r`` (b, q) and ``r.r`` (b,).

    ``jac`` has the compiled law's layout, shape (q, b, m). One compiled pass over the problems replaces three
    einsums, whose call overhead dominated on many problems of few rows (sft: 42 groups x starts x folds of 12
    rows).
    """
    q, b, _ = jac.shape
    normal, gradient, squares = np.empty((b, q, q)), np.empty((b, q)), np.empty(b)
    _compiled_normals(
        np.ascontiguousarray(jac, dtype=np.float64),
        np.ascontiguousarray(residual, dtype=np.float64),
        normal,
        gradient,
        squares,
    )
    return normal, gradient, squares


def damped_steps(
    normal: Array,
    gradient: Array,
    squares: Array,
    z: Array,
    lower: Array,
    upper: Array,
    damping: Array,
    arrow: tuple[int, int] | None = None,
) -> tuple[Array, BoolArray, Array, BoolArray, Array, Array, Array]:
    """Return each problem's Levenberg-Marquardt step and what the loop tests with it.

    Constants on a bound whose descent direction leaves the box are held (step 0) for this step. The damping is
    relative to Marquardt's scale ``diag(J^T J)``, which makes it invariant to the constants' units.

    Parameters
    ----------
    normal : ndarray of shape (b, q, q)
        Each problem's ``J^T J`` (not changed).
    gradient : ndarray of shape (b, q)
        Each problem's ``J^T r``.
    squares : ndarray of shape (b,)
        Each problem's ``r.r``.
    z : ndarray of shape (b, q)
        The free constants, within ``lower`` and ``upper`` (shape (q,)).
    lower, upper : ndarray of shape (q,)
        Bounds of the free constants.
    damping : ndarray of shape (b,)
        Marquardt damping of each problem.
    arrow : tuple of int, optional
        ``(n_coupled, block)`` when ``J^T J`` is block-arrow shaped: the first ``n_coupled`` constants couple to
        all, the others fall in independent blocks of ``block`` (a joint fit's shared constants, then each group's
        own). Each block is then factored alone and only the first constants' Schur complement is dense: for sft's
        42 groups of 2 constants plus 1 shared, about 40 small factorisations instead of one of size 85, whose
        cubic cost was a third of every shared fit. ``None``: one dense system.

    Returns
    -------
    step : ndarray of shape (b, q)
        Solution of ``(J^T J + damping * scale) s = -g`` (0 where not finite, and for held constants).
    gradient_small : ndarray of bool, shape (b,)
        Whether the scaled gradient ``|g_j| sqrt(scale_j)`` is below `GRADIENT_TOLERANCE` times ``r.r``.
    predicted : ndarray of shape (b,)
        Decrease of the linearised cost along the step, ``(s.D.s - g.s) / 2`` (Madsen, Nielsen & Tingleff 2004,
        eq. 3.14).
    broken : ndarray of bool, shape (b,)
        Problems whose Cholesky factorisation failed (a pivot not above zero after rounding, or not finite); their
        ``step`` and ``predicted`` are not set, and the caller solves ``damped_normal`` for them.
    damped_normal, rhs, damped : ndarray
        Each problem's damped system ``(b, q, q)`` (filled for the broken problems only: the others never need it
        dense), its right-hand side ``-g`` with held constants zeroed ``(b, q)``, and the damping added to the
        diagonal ``(b, q)``.
    """
    b, q = z.shape
    n_coupled, block = (q, 0) if arrow is None else arrow
    if block < 0 or not 0 <= n_coupled <= q or (block == 0 and n_coupled != q) or (block and (q - n_coupled) % block):
        raise ValueError(f"arrow={arrow} does not split {q} constants into {n_coupled} coupled and blocks of {block}")
    damped_normal, rhs, damped = np.empty((b, q, q)), np.empty((b, q)), np.empty((b, q))
    step, predicted = np.zeros((b, q)), np.zeros(b)
    gradient_small, broken = np.zeros(b, dtype=bool), np.zeros(b, dtype=bool)
    arrays: list[Any] = [normal, gradient, squares, z, lower, upper, damping]
    _compiled_steps(
        *(np.ascontiguousarray(a, dtype=np.float64) for a in arrays),
        n_coupled,
        block,
        damped_normal,
        rhs,
        damped,
        step,
        gradient_small,
        predicted,
        broken,
    )
    return step, gradient_small, predicted, broken, damped_normal, rhs, damped


def update_after_trials(
    state: tuple[Array, Array, Array, Array, Array],
    new_cost: Array,
    trial: Array,
    predicted: Array,
    gradient_small: BoolArray,
    *,
    settings: Array,
    codes: NDArray[np.int64],
    stall_check: bool,
    dominated: tuple[Array, NDArray[np.int64], NDArray[np.int64]] | None,
) -> tuple[BoolArray, NDArray[np.int64]]:
    """Accept or reject every problem's trial, update its damping and run the stopping tests, in place.

    Parameters
    ----------
    state : tuple of ndarray
        ``(now, z, damping, growth, checkpoint)`` of the live problems: cost (b,), free constants (b, q), damping
        (b,), its growth after a rejection (b,) and the cost at the last stall test (b,); C-contiguous float64,
        updated in place (an accepted problem takes its trial point and cost; ``checkpoint`` moves on stall tests).
    new_cost, trial, predicted, gradient_small : ndarray
        The trials' costs (b,) and points (b, q), the decrease the linear model predicted (b,), and whether the
        gradient was already negligible (b,).
    settings : ndarray of shape (7,)
        The relative step and cost tolerances, the damping's largest drop, first rise and end, the stall decrease
        and the dominated factor.
    codes : ndarray of int, shape (6,)
        Reason codes of the tests, in the order they are tried: gradient, step, cost, damping overflow, stall,
        dominated.
    stall_check : bool
        Whether this iteration runs the stall test (and moves ``checkpoint``).
    dominated : tuple of ndarray, optional
        ``(cost, active, fit_of)`` to run the dominated-start test: every problem's cost (live ones are written in),
        the live problems' indices into it, and each problem's fit.

    Returns
    -------
    accepted : ndarray of bool, shape (b,)
    done : ndarray of int, shape (b,)
        The reason code of each problem that stops now, 0 for the others.
    """
    now = state[0]
    accepted, done = np.zeros(now.size, dtype=bool), np.zeros(now.size, dtype=np.int64)
    cost, active, fit_of = dominated if dominated is not None else (now, np.zeros(0, np.int64), np.zeros(1, np.int64))
    _compiled_updates(
        *state,
        np.ascontiguousarray(new_cost, dtype=np.float64),
        np.ascontiguousarray(trial, dtype=np.float64),
        predicted,
        gradient_small,
        cost,
        np.ascontiguousarray(active, dtype=np.int64),
        np.ascontiguousarray(fit_of, dtype=np.int64),
        settings,
        codes,
        stall_check,
        dominated is not None,
        accepted,
        done,
    )
    return accepted, done


def joint_normal_equations(
    jac: Array, residual: Array, group_of_row: NDArray[np.int64], n_shared: int, n_groups: int
) -> tuple[Array, Array, Array]:
    """Return the joint normal equations of problems whose rows depend on shared constants and their group's own.

    A joint fit of constants shared by all groups (`sld.search.shared_fits`) has a Jacobian that is mostly zeros:
    row ``k`` depends on the ``n_shared`` shared constants and on the ``n_own`` constants of its own group. The
    Jacobian is kept compact and ``J^T J`` is accumulated row by row into its blocks (shared x shared, each group's
    own x own, shared x own): in numpy this took three-operand einsums over one-hot group masks and a Python loop
    over the groups.

    Parameters
    ----------
    jac : ndarray of shape (n_shared + n_own, b, n)
        Each row's derivatives by the shared constants, then by its group's own ones, for each of ``b`` problems.
    residual : ndarray of shape (b, n)
    group_of_row : ndarray of int, shape (n,)
        The group of each row, in ``range(n_groups)``.
    n_shared, n_groups : int

    Returns
    -------
    normal : ndarray of shape (b, size, size)
        ``J^T J`` over the constants ordered shared, then each group's own (``size = n_shared + n_groups * n_own``).
    gradient : ndarray of shape (b, size)
        ``J^T r``.
    squares : ndarray of shape (b,)
        ``r.r``.
    """
    q, b, _ = jac.shape
    size = n_shared + n_groups * (q - n_shared)
    normal, gradient = np.zeros((b, size, size)), np.zeros((b, size))
    residual = np.ascontiguousarray(residual, dtype=np.float64)
    _compiled_joint_normals(
        np.ascontiguousarray(jac, dtype=np.float64),
        residual,
        np.ascontiguousarray(group_of_row, dtype=np.int64),
        n_shared,
        normal,
        gradient,
    )
    squares: Array = np.einsum("bm,bm->b", residual, residual)
    return normal, gradient, squares

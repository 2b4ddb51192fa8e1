"""The learning-curve estimators M1-M4 of Alabdulmohsin et al. 2022 ("Revisiting Neural Scaling Laws"), sklearn-like.

Written from the algorithm summary in ``../shared/rnsl/METHODS.md`` (no upstream code copied). Every estimator fits
``g(y) = f(x)`` with a power law ``f = beta * x^c`` by least squares between ``log g(y)`` and ``log f(x)``,
alternating a closed-form regression with updates of the non-linear offsets:

- :class:`M1`: ``y = beta x^c``;
- :class:`M2`: ``y = eps_inf + beta x^c``;
- :class:`M3`: ``y = beta (1/x + gamma)^c``;
- :class:`M4`: ``(y - eps_inf) / (eps_0 - y)^alpha = beta x^c`` (implicit in ``y``; predicted by solving it).

The offset updates are scalar Newton or gradient steps whose cost is vectorised over the training points; the
schedules, projections and stopping rules are the paper's (1,000 gradient steps at 1e-8 in each of the first 100
outer iterations, then 100 damped Newton steps, stop when beta moves by < 1e-10 after iteration 101).

Example
-------
>>> import numpy as np
>>> x = np.geomspace(1e3, 1e6, 12)
>>> model = M2().fit(x, 0.5 + 20.0 * x**-0.4)
>>> bool(abs(model.eps_inf_ - 0.5) < 0.01)
True
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.optimize import nnls

from sld.search.errors import SearchError

Array = NDArray[np.float64]
DELTA = 1e-3  # ERR_MARGIN of the paper's code: offsets stay this far inside the data's range
GRADIENT_ITERATIONS = 100  # outer iterations that take plain gradient steps before Newton steps begin
GRADIENT_STEPS, GRADIENT_LR = 1_000, 1e-8
NEWTON_STEPS, NEWTON_DAMPING = 100, 0.1
MIN_CURVATURE = 1e-5  # a Newton step is skipped for a coordinate flatter than this
BETA_TOL = 1e-10


def distinct_points(x: ArrayLike, y: ArrayLike) -> tuple[Array, Array]:
    """Return the training points as the paper's code sees them: sorted by x, one per x (the last one given).

    Parameters
    ----------
    x, y : array_like, shape (n,)
        Seen examples (> 0) and losses (> 0).

    Returns
    -------
    x, y : ndarray, shape (m,)
        ``m <= n`` distinct x values in increasing order, each with the last y given for it (a ``{x: y}`` dict).

    Raises
    ------
    SearchError
        If the shapes differ, a value is not finite and positive, or fewer than two distinct x remain.
    """
    xs, ys = np.asarray(x, dtype=float).ravel(), np.asarray(y, dtype=float).ravel()
    if xs.shape != ys.shape:
        raise SearchError(f"x has {xs.size} values but y has {ys.size}; pass one loss per x")
    if not (np.all(np.isfinite(xs)) and np.all(np.isfinite(ys)) and np.all(xs > 0) and np.all(ys > 0)):
        raise SearchError("learning-curve estimators need finite x > 0 and y > 0; drop the other rows")
    last = {float(a): float(b) for a, b in zip(xs, ys, strict=True)}
    keys = np.array(sorted(last), dtype=float)
    if keys.size < 2:
        raise SearchError(f"need at least 2 distinct x values to fit a power law; got {keys.size}")
    return keys, np.array([last[k] for k in keys], dtype=float)


def _line(design: Array, target: Array) -> Array:
    """Least-squares coefficients of ``target`` on the columns of ``design``."""
    coefficients, *_ = np.linalg.lstsq(design, target, rcond=None)
    return np.asarray(coefficients, dtype=float)


def _floor_steps(ys: Array, fitted: Array, eps: float, newton: bool, low: float, high: float) -> float:
    """Run one outer iteration's steps on the floor ``eps`` of ``r = log(y - eps) - fitted`` (M2, and M4's eps_inf).

    ``L = 1/2 mean r^2`` has gradient ``-mean(r / (y - eps))`` and curvature ``mean((1 - r) / (y - eps)^2)``; the
    means are dot products because numpy's ``mean`` costs more than the arithmetic on a few dozen points.
    """
    n = ys.size
    for _ in range(NEWTON_STEPS if newton else GRADIENT_STEPS):
        gap = ys - eps
        inv = 1.0 / gap
        r = np.log(gap) - fitted
        gradient = -float(r @ inv) / n
        if newton:
            squared = inv * inv
            curvature = (float(squared.sum()) - float(r @ squared)) / n
            step = NEWTON_DAMPING * gradient / curvature if abs(curvature) > MIN_CURVATURE else 0.0
        else:
            step = GRADIENT_LR * gradient
        eps = min(max(eps - step, low), high)
    return eps


@dataclass
class M1:
    """Pure power law ``y = beta * x^c`` (one ordinary least-squares line in log-log space).

    Attributes
    ----------
    beta_, c_ : float
        Fitted scale and exponent (``c_`` unconstrained).
    """

    n_params = 2
    beta_: float = field(default=1.0, init=False)
    c_: float = field(default=-0.5, init=False)

    def formula(self) -> str:
        """Return the fitted law as text in ``x``."""
        return f"{self.beta_:.6g}*x^{self.c_:.6g}"

    def fit(self, x: ArrayLike, y: ArrayLike) -> M1:
        """Fit on training points, shape (n,) each; returns ``self``."""
        xs, ys = distinct_points(x, y)
        log_beta, self.c_ = _line(np.column_stack([np.ones_like(xs), np.log(xs)]), np.log(ys))
        self.beta_ = math.exp(log_beta)
        return self

    def predict(self, x: ArrayLike) -> Array:
        """Predict losses at ``x``, shape (n,)."""
        return self.beta_ * np.asarray(x, dtype=float) ** self.c_


@dataclass
class M2:
    """Power law plus a limiting loss, ``y = eps_inf + beta * x^c``.

    Parameters
    ----------
    max_iterations : int, default 10000
        Outer iterations at most.
    lo_bound : float, default 0.0
        eps_inf stays in ``[max(0, lo_bound - DELTA), min(y) - DELTA]``.

    Attributes
    ----------
    beta_, c_, eps_inf_ : float
        Fitted constants.
    n_iter_ : int
        Outer iterations run.
    """

    max_iterations: int = 10_000
    lo_bound: float = 0.0
    n_params = 3
    beta_: float = field(default=1.0, init=False)
    c_: float = field(default=-0.5, init=False)
    eps_inf_: float = field(default=0.0, init=False)
    n_iter_: int = field(default=0, init=False)

    def formula(self) -> str:
        """Return the fitted law as text in ``x``."""
        return f"{self.eps_inf_:.6g} + {self.beta_:.6g}*x^{self.c_:.6g}"

    def fit(self, x: ArrayLike, y: ArrayLike) -> M2:
        """Fit on training points, shape (n,) each; returns ``self``."""
        xs, ys = distinct_points(x, y)
        log_x, design = np.log(xs), np.column_stack([np.ones_like(xs), np.log(xs)])
        low, high = max(0.0, self.lo_bound - DELTA), float(ys.min()) - DELTA
        eps = high
        for iteration in range(self.max_iterations):
            previous = self.beta_
            log_beta, self.c_ = _line(design, np.log(ys - eps))
            self.beta_ = math.exp(log_beta)
            fitted = log_beta + self.c_ * log_x
            eps = _floor_steps(ys, fitted, eps, iteration >= GRADIENT_ITERATIONS, low, high)
            self.n_iter_ = iteration + 1
            if iteration > GRADIENT_ITERATIONS + 1 and abs(self.beta_ - previous) < BETA_TOL:
                break
        self.eps_inf_ = eps
        return self

    def predict(self, x: ArrayLike) -> Array:
        """Predict losses at ``x``, shape (n,)."""
        return self.eps_inf_ + self.beta_ * np.asarray(x, dtype=float) ** self.c_


@dataclass
class M3:
    """Shifted power law ``y = beta * (1/x + gamma)^c`` with ``c >= 0``, ``gamma >= 0``.

    Parameters
    ----------
    max_iterations : int, default 10000
        Outer iterations at most.

    Attributes
    ----------
    beta_, c_, gamma_ : float
        Fitted constants; ``beta_ * gamma_**c_`` is the implied limiting loss.
    n_iter_ : int
        Outer iterations run.
    """

    max_iterations: int = 10_000
    n_params = 3
    beta_: float = field(default=1.0, init=False)
    c_: float = field(default=-0.5, init=False)
    gamma_: float = field(default=0.0, init=False)
    n_iter_: int = field(default=0, init=False)

    def formula(self) -> str:
        """Return the fitted law as text in ``x``."""
        return f"{self.beta_:.6g}*(1/x + {self.gamma_:.6g})^{self.c_:.6g}"

    def fit(self, x: ArrayLike, y: ArrayLike) -> M3:
        """Fit on training points, shape (n,) each; returns ``self``."""
        xs, ys = distinct_points(x, y)
        log_y, gamma = np.log(ys), 0.0
        for iteration in range(self.max_iterations):
            previous = self.beta_
            shifted = np.log(1.0 / xs + gamma)
            log_beta, c = _line(np.column_stack([np.ones_like(xs), shifted]), log_y)
            # A clip after the fit, not a constrained regression (METHODS.md, M3 step 1).
            self.beta_, self.c_ = math.exp(log_beta), max(0.0, float(c))
            self.n_iter_ = iteration + 1
            if self.c_ > 0:
                gamma = self._grid_step(xs, log_y, gamma)
            if abs(self.beta_ - previous) < BETA_TOL:
                break
        self.gamma_ = gamma
        return self

    def _grid_step(self, xs: Array, log_y: Array, gamma: float) -> float:
        """Return the candidate gamma (one per point, solving the curve through it) that lowers the objective."""
        with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
            candidates = np.exp((log_y - math.log(self.beta_)) / self.c_) - 1.0 / xs
        candidates = candidates[np.isfinite(candidates) & (candidates >= 0)]
        if candidates.size == 0:
            return gamma

        def objective(values: Array) -> Array:
            residual = log_y[None, :] - math.log(self.beta_) - self.c_ * np.log(1.0 / xs[None, :] + values[:, None])
            return np.asarray(0.5 * np.linalg.norm(residual, axis=1), dtype=float)

        scores = objective(candidates)
        best = int(np.argmin(scores))
        current = float(objective(np.array([gamma]))[0])
        return float(candidates[best]) if scores[best] < current else gamma

    def predict(self, x: ArrayLike) -> Array:
        """Predict losses at ``x``, shape (n,)."""
        return self.beta_ * (1.0 / np.asarray(x, dtype=float) + self.gamma_) ** self.c_


@dataclass
class M4:
    """The paper's estimator: ``(y - eps_inf) / (eps_0 - y)^alpha = beta * x^c`` with ``c <= 0``, ``alpha >= 0``.

    Parameters
    ----------
    eps_0 : float or None, default 1.0
        Initial loss (of random guessing); ``None`` starts at ``max(y) + DELTA``. The paper uses 1.0 on NMT and LM
        and 1.001 with ``up_bound=1.0`` on BIG-bench (see :func:`m4_for_domain`).
    eps_inf : float or None, default None
        Initial limiting loss; ``None`` starts at ``min(y) - DELTA``.
    up_bound : float or None, default None
        eps_0 stays ``<= up_bound + DELTA`` (and always ``>= max(y) + DELTA``).
    lo_bound : float, default 0.0
        eps_inf stays in ``[max(0, lo_bound - DELTA), min(y) - DELTA]``.
    update_eps_0, update_eps_inf : bool, default True
        Which offsets are learned; with both frozen one outer iteration runs.
    max_iterations : int, default 10000
        Outer iterations at most.
    solver : {"scan", "root"}, default "scan"
        Prediction: the paper's 10,000-point scan of ``w`` in ``[0, eps_0 - eps_inf]`` or an exact bisection of
        the same (monotone) equation; they agree within ``(eps_0 - eps_inf) / 10^4``.

    Attributes
    ----------
    beta_, c_, alpha_, eps_inf_, eps_0_ : float
        Fitted constants.
    n_iter_ : int
        Outer iterations run.
    """

    eps_0: float | None = 1.0
    eps_inf: float | None = None
    up_bound: float | None = None
    lo_bound: float = 0.0
    update_eps_0: bool = True
    update_eps_inf: bool = True
    max_iterations: int = 10_000
    solver: Literal["scan", "root"] = "scan"
    n_params = 5
    beta_: float = field(default=1.0, init=False)
    c_: float = field(default=-0.5, init=False)
    alpha_: float = field(default=0.0, init=False)
    eps_inf_: float = field(default=0.0, init=False)
    eps_0_: float = field(default=1.0, init=False)
    n_iter_: int = field(default=0, init=False)

    def formula(self) -> str:
        """Return the fitted (implicit) law as text in ``x`` and ``y``."""
        return (
            f"(y - {self.eps_inf_:.6g}) / ({self.eps_0_:.6g} - y)^{self.alpha_:.6g} = {self.beta_:.6g}*x^{self.c_:.6g}"
        )

    def fit(self, x: ArrayLike, y: ArrayLike) -> M4:
        """Fit on training points, shape (n,) each; returns ``self``.

        Raises
        ------
        SearchError
            If ``eps_0`` is not above every training loss (its log column would be undefined).
        """
        xs, ys = distinct_points(x, y)
        eps_0 = float(ys.max()) + DELTA if self.eps_0 is None else float(self.eps_0)
        if eps_0 <= ys.max():
            raise SearchError(
                f"M4 eps_0={eps_0} must exceed every training loss (max {ys.max():.6g}); pass a larger eps_0 or None"
            )
        log_x = np.log(xs)
        # The paper builds this column once from the initial eps_0 and never refreshes it (METHODS.md, M4 step 1).
        design = np.column_stack([np.ones_like(xs), -log_x, np.log(eps_0 - ys)])
        inf_low, inf_high = max(0.0, self.lo_bound - DELTA), float(ys.min()) - DELTA
        zero_low = float(ys.max()) + DELTA
        zero_high = math.inf if self.up_bound is None else self.up_bound + DELTA
        eps_inf = inf_high if self.eps_inf is None else float(self.eps_inf)
        if not 0 <= eps_inf < ys.min():
            raise SearchError(f"M4 eps_inf={eps_inf} must lie in [0, min(y)) = [0, {ys.min():.6g}); pass None")
        learning = self.update_eps_0 or self.update_eps_inf
        for iteration in range(self.max_iterations if learning else 1):
            previous = self.beta_
            (log_beta, minus_c, alpha), _ = nnls(design, np.log(ys - eps_inf))
            self.beta_, self.c_, self.alpha_ = math.exp(log_beta), -float(minus_c), float(alpha)
            fitted = log_beta + self.c_ * log_x
            eps_inf, eps_0 = self._offsets(
                ys, fitted, eps_inf, eps_0, iteration, (inf_low, inf_high), (zero_low, zero_high)
            )
            self.n_iter_ = iteration + 1
            if iteration > GRADIENT_ITERATIONS + 1 and abs(self.beta_ - previous) < BETA_TOL:
                break
        self.eps_inf_, self.eps_0_ = eps_inf, eps_0
        return self

    def _offsets(
        self,
        ys: Array,
        fitted: Array,
        eps_inf: float,
        eps_0: float,
        iteration: int,
        inf_range: tuple[float, float],
        zero_range: tuple[float, float],
    ) -> tuple[float, float]:
        """Run one outer iteration's gradient or Newton steps on (eps_inf, eps_0) with beta, c, alpha held."""
        if not (self.update_eps_0 or self.update_eps_inf):
            return eps_inf, eps_0
        alpha, newton = self.alpha_, iteration >= GRADIENT_ITERATIONS
        if alpha == 0.0 or not self.update_eps_0:
            # eps_0 has no gradient at alpha = 0 (and is frozen otherwise): only the eps_inf steps remain, with the
            # eps_0 term of the residual held fixed.
            if self.update_eps_inf:
                held = fitted + alpha * np.log(eps_0 - ys)
                eps_inf = _floor_steps(ys, held, eps_inf, newton, *inf_range)
            return eps_inf, eps_0
        n = ys.size
        for _ in range(NEWTON_STEPS if newton else GRADIENT_STEPS):
            low_gap, high_gap = ys - eps_inf, eps_0 - ys
            inv_low, inv_high = 1.0 / low_gap, 1.0 / high_gap
            r = np.log(low_gap) - alpha * np.log(high_gap) - fitted
            grad_inf, grad_zero = -float(r @ inv_low) / n, -alpha * float(r @ inv_high) / n
            if newton:
                low_sq, high_sq = inv_low * inv_low, inv_high * inv_high
                curv_inf = (float(low_sq.sum()) - float(r @ low_sq)) / n
                curv_zero = alpha * (alpha * float(high_sq.sum()) + float(r @ high_sq)) / n
                step_inf = NEWTON_DAMPING * grad_inf / curv_inf if abs(curv_inf) > MIN_CURVATURE else 0.0
                step_zero = NEWTON_DAMPING * grad_zero / curv_zero if abs(curv_zero) > MIN_CURVATURE else 0.0
            else:
                step_inf, step_zero = GRADIENT_LR * grad_inf, GRADIENT_LR * grad_zero
            if self.update_eps_inf:
                eps_inf = min(max(eps_inf - step_inf, inf_range[0]), inf_range[1])
            eps_0 = min(max(eps_0 - step_zero, zero_range[0]), zero_range[1])
        return eps_inf, eps_0

    def predict(self, x: ArrayLike) -> Array:
        """Predict losses at ``x``, shape (n,), by solving ``w = f (b - w)^alpha`` for ``w`` in ``[0, b]``."""
        f = self.beta_ * np.asarray(x, dtype=float).ravel() ** self.c_
        if abs(self.alpha_) < 1e-5:
            return self.eps_inf_ + f  # the M2 form, as in the paper
        b = self.eps_0_ - self.eps_inf_
        if self.solver == "scan":
            grid = np.linspace(0.0, b, 10_000)
            mismatch = np.abs(grid[None, :] - f[:, None] * (b - grid[None, :]) ** self.alpha_)
            return np.asarray(self.eps_inf_ + grid[np.argmin(mismatch, axis=1)], dtype=np.float64)
        # w - f (b - w)^alpha rises from -f b^alpha at 0 to b at b: one root, found by bisection (60 halvings).
        low, high = np.zeros_like(f), np.full_like(f, b)
        for _ in range(60):
            middle = 0.5 * (low + high)
            below = middle - f * (b - middle) ** self.alpha_ < 0
            low, high = np.where(below, middle, low), np.where(below, high, middle)
        return self.eps_inf_ + 0.5 * (low + high)


Estimator = M1 | M2 | M3 | M4
PeerName = Literal["m1", "m2", "m3", "m4"]
PEER_NAMES: tuple[PeerName, ...] = ("m1", "m2", "m3", "m4")


def m4_for_domain(domain: Literal["NMT", "LM", "BB"]) -> M4:
    """Return M4 with the paper notebook's settings for a language domain.

    NMT and LM: ``eps_0 = 1.0``, learnable, no upper bound. BIG-bench: ``eps_0 = 1.001`` with ``up_bound = 1.0``.
    """
    if domain == "BB":
        return M4(eps_0=1.001, up_bound=1.0)
    return M4(eps_0=1.0)


def make_peer(name: PeerName, domain: Literal["NMT", "LM", "BB"]) -> Estimator:
    """Return an unfitted estimator by name (``"m1"`` ... ``"m4"``) with the paper's settings for ``domain``.

    Raises
    ------
    SearchError
        For an unknown name, listing the known ones.
    """
    if name == "m1":
        return M1()
    if name == "m2":
        return M2()
    if name == "m3":
        return M3()
    if name == "m4":
        return m4_for_domain(domain)
    raise SearchError(f"Unknown peer estimator {name!r}. Known: {', '.join(PEER_NAMES)}.")

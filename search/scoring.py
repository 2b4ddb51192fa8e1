"""The official SLDBench score: fit constants per group on train rows, score predictions of test rows.

R^2 = 1 - NMSE with NMSE = MSE / Var(y_test) over all groups' test rows together, averaged over targets
(Lin et al., "Can Language Models Discover Scaling Laws?", ICLR 2026). Leaderboard means clip R^2 to
[-1, 1] (`clip_r2`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from sld.search import fitting
from sld.search.expressions import Law
from sld.search.fitting import FitConfig, GroupedFit

Array = NDArray[np.float64]


@dataclass(frozen=True)
class Scores:
    """Scores of predictions against held-out targets.

    Attributes
    ----------
    r2 : float
        ``1 - nmse``; ``-inf`` when failed.
    nmse : float
        MSE / Var(y), averaged over targets.
    nmae : float
        mean|y - yhat| / mean|y - mean(y)|, averaged over targets.
    failed : bool
        True if the predictions could not be scored (non-finite, missing groups, failed fits).
    message : str
        Why it failed; empty otherwise.
    """

    r2: float
    nmse: float
    nmae: float
    failed: bool = False
    message: str = ""

    @classmethod
    def failure(cls, message: str) -> Scores:
        """Scores of predictions that could not be scored: ``r2 = -inf``."""
        return cls(-math.inf, math.inf, math.inf, True, message)


def finite_or_none(value: float) -> float | None:
    """Return ``value`` as a float, or ``None`` when it is not finite (JSON has no NaN or infinity)."""
    return float(value) if math.isfinite(value) else None


def clip_r2(r2: float) -> float:
    """Clip R^2 to [-1, 1] as the SLDBench leaderboard does (``nan`` and ``-inf`` become -1).

    Examples
    --------
    >>> clip_r2(float("-inf")), clip_r2(0.5)
    (-1.0, 0.5)
    """
    if math.isnan(r2):
        return -1.0
    return min(1.0, max(-1.0, r2))


def score_predictions(y_true: ArrayLike, y_pred: ArrayLike) -> Scores:
    """Score predictions with the official rule.

    Parameters
    ----------
    y_true : array_like, shape (n,) or (n, k)
        Held-out targets (finite).
    y_pred : array_like, same shape as ``y_true``
        Predictions.

    Returns
    -------
    Scores
        Failed (``r2 = -inf``) if any prediction is not finite or a target is constant.

    Raises
    ------
    ValueError
        If shapes differ or ``y_true`` is not finite.

    Examples
    --------
    >>> score_predictions([1.0, 2.0, 3.0, 4.0], [1.5, 2.0, 2.5, 4.0])
    Scores(r2=0.9, nmse=0.1, nmae=0.25, failed=False, message='')
    """
    true = np.asarray(y_true, dtype=np.float64)
    pred = np.asarray(y_pred, dtype=np.float64)
    if true.shape != pred.shape or true.ndim not in (1, 2):
        raise ValueError(f"y_true has shape {true.shape} and y_pred {pred.shape}; expected equal (n,) or (n, k)")
    if not np.all(np.isfinite(true)):
        raise ValueError("y_true has non-finite values")
    if true.ndim == 1:
        true, pred = true[:, None], pred[:, None]
    if len(true) == 0:
        return Scores.failure("no rows to score")
    bad = int(np.sum(~np.isfinite(pred)))
    if bad:
        return Scores.failure(f"{bad} of {pred.size} predictions are not finite")
    variance = true.var(axis=0)
    if np.any(variance == 0):
        return Scores.failure("a target is constant on the scored rows, so R^2 is undefined")
    with np.errstate(all="ignore"):
        error = true - pred
        nmse = float(np.mean(np.mean(error**2, axis=0) / variance))
        spread = np.mean(np.abs(true - true.mean(axis=0)), axis=0)
        nmae = float(np.mean(np.mean(np.abs(error), axis=0) / spread))
    if not math.isfinite(nmse):
        return Scores.failure("predictions overflow when squared")
    return Scores(1.0 - nmse, nmse, nmae)


@dataclass(frozen=True, eq=False)
class SplitArrays:
    """Rows of one split as arrays.

    Parameters
    ----------
    X : array_like, shape (n, d)
        Features.
    Y : array_like, shape (n, k) or (n,)
        Targets (a 1-D array is one target).
    groups : array_like, shape (n,)
        Group of each row (compared as strings).
    """

    X: Array
    Y: Array
    groups: NDArray[np.str_]

    def __post_init__(self) -> None:
        X = np.asarray(self.X, dtype=np.float64)
        Y = np.asarray(self.Y, dtype=np.float64)
        Y = Y[:, None] if Y.ndim == 1 else Y
        groups = np.asarray(self.groups).astype(str)
        if X.ndim != 2 or Y.ndim != 2 or groups.shape != (len(X),) or len(Y) != len(X):
            raise ValueError(
                f"X has shape {X.shape}, Y {Y.shape}, groups {groups.shape}; expected (n, d), (n, k), (n,)"
            )
        object.__setattr__(self, "X", X)
        object.__setattr__(self, "Y", Y)
        object.__setattr__(self, "groups", groups)


@dataclass(frozen=True, eq=False)
class SplitScore:
    """The outcome of `score_split`.

    Attributes
    ----------
    scores : Scores
        Scores over all test rows and targets.
    predictions : ndarray, shape (n_test, k)
        Predictions in the order of the test rows; ``nan`` where a group could not be fitted.
    fits : list of GroupedFit
        One per target, with fits for the groups present in the test split.
    """

    scores: Scores
    predictions: Array
    fits: list[GroupedFit]


def score_split(
    laws: Sequence[Law],
    train: SplitArrays,
    test: SplitArrays,
    *,
    config: FitConfig = FitConfig(),  # noqa: B008 -- frozen, so a shared default is safe
) -> SplitScore:
    """Fit each target's law per group on ``train`` and score its predictions of ``test``.

    Only train rows reach the fitter, and only for groups that appear in ``test``.

    Parameters
    ----------
    laws : sequence of Law
        One law per target (column of ``Y``), all over the columns of ``X``.
    train, test : SplitArrays
        The splits; every test group needs train rows.
    config : FitConfig, optional
        Fitting configuration.

    Returns
    -------
    SplitScore
        Failed scores (``r2 = -inf``) name the missing group or failed fit.

    Raises
    ------
    ValueError
        If the number of laws, variables or targets disagree with the arrays.

    Examples
    --------
    >>> import numpy as np
    >>> from sld.search import parse_law
    >>> x = np.arange(1.0, 9.0)[:, None]
    >>> train = SplitArrays(x[:6], 2.0 * x[:6, 0] + 1.0, np.zeros(6))
    >>> test = SplitArrays(x[6:], 2.0 * x[6:, 0] + 1.0, np.zeros(2))
    >>> round(score_split([parse_law("a*x + b", ["x"])], train, test).scores.r2, 6)
    1.0
    """
    k = train.Y.shape[1]
    if len(laws) != k or test.Y.shape[1] != k or train.X.shape[1] != test.X.shape[1]:
        raise ValueError(
            f"{len(laws)} laws for train Y {train.Y.shape} and test Y {test.Y.shape}; expected one law per target"
        )
    for law in laws:
        if len(law.variables) != train.X.shape[1]:
            raise ValueError(f"law {law.text} has {len(law.variables)} variables; X has {train.X.shape[1]} columns")
    test_groups = np.unique(test.groups)
    used = np.isin(train.groups, test_groups)
    predictions = np.full(test.Y.shape, np.nan)
    fits, problems = [], []
    missing = sorted(set(test_groups) - set(train.groups[used]))
    if missing:
        problems.append(f"test groups without train rows: {', '.join(missing)}")
    for j, law in enumerate(laws):
        grouped = fitting.fit_law_grouped(law, train.X[used], train.Y[used, j], train.groups[used], config=config)
        fits.append(grouped)
        predictions[:, j] = grouped.predict(law, test.X, test.groups)
        problems.extend(
            f"target {j} group {name}: {fit.message}" for name, fit in grouped.fits.items() if not fit.success
        )
    scores = Scores.failure("; ".join(problems)) if problems else score_predictions(test.Y, predictions)
    return SplitScore(scores, predictions, fits)


def log_rmse(y_true: ArrayLike, y_pred: ArrayLike) -> tuple[float, float]:
    """Return the RMSE of natural-log loss and its "standard error", the metric of Alabdulmohsin et al. 2022.

    Parameters
    ----------
    y_true, y_pred : array_like, shape (n,)
        Observed and predicted losses (> 0) on the extrapolation rows, repeats kept as published.

    Returns
    -------
    rmse, se : float
        ``sqrt(mean(e))`` with ``e = (log y_pred - log y_true)^2``, and
        ``sqrt(mean(e) + std(e) / sqrt(n)) - sqrt(mean(e))`` (population std): the rise in RMSE when the mean
        squared error grows by one standard error. Both ``nan`` when a prediction is not finite and positive.

    Examples
    --------
    >>> rmse, se = log_rmse([1.0, 1.0], [np.e, 1.0])
    >>> round(rmse, 6), round(se, 6)
    (0.707107, 0.216773)
    """
    true, pred = np.asarray(y_true, dtype=float).ravel(), np.asarray(y_pred, dtype=float).ravel()
    if true.shape != pred.shape or true.size == 0:
        raise ValueError(f"need equal, non-empty shapes; got {true.shape} and {pred.shape}")
    if not (np.all(np.isfinite(pred)) and np.all(pred > 0)):
        return float("nan"), float("nan")
    errors = (np.log(pred) - np.log(true)) ** 2
    mean = float(np.mean(errors))
    return math.sqrt(mean), math.sqrt(mean + float(np.std(errors)) / math.sqrt(errors.size)) - math.sqrt(mean)

"""What the data looks like, variable by variable: the facts the proposers build law forms from.

Example
-------
>>> import numpy as np
>>> from sld.search.profile import profile_data
>>> X = np.array([[1e6], [1e7], [1e8], [1e9]])
>>> profile_data(X, np.array([4.0, 3.0, 2.5, 2.2]), ("N",)).variables[0].kind
'scale'
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Literal

import numpy as np
from numpy.typing import NDArray

VariableKind = Literal["scale", "proportion", "positive", "real"]
Trend = Literal["increasing", "decreasing", "optimum", "flat", "mixed"]


@dataclass(frozen=True)
class VariableProfile:
    """One input variable.

    Attributes
    ----------
    name : str
        Column name.
    kind : {"scale", "proportion", "positive", "real"}
        ``scale``: strictly positive over more than a factor of 3 (power laws and logs apply);
        ``proportion``: inside [0, 1] with zeros allowed; ``positive``: strictly positive, narrow;
        ``real``: anything else.
    minimum, maximum : float
        Range in the training rows.
    reference : float
        A typical value (geometric mean for positive variables, mean otherwise) used to normalise power terms.
    trend : str
        The target's trend in this variable (``optimum`` when a quadratic in log-space has its minimum inside the
        range and fits much better than a line).
    n_unique : int
        Distinct values.
    """

    name: str
    kind: VariableKind
    minimum: float
    maximum: float
    reference: float
    trend: Trend
    n_unique: int


@dataclass(frozen=True)
class DataProfile:
    """All variables, the target's range and sign, and the groups.

    Attributes
    ----------
    variables : tuple of VariableProfile
        In the order of the columns of X.
    target_min, target_max : float
        Range of the target.
    target_positive : bool
        Whether every target value is above zero (log-space residuals and log-target forms apply).
    n_rows, n_groups : int
        Sizes.
    mixture : bool
        Whether the proportion variables sum to one on every row (one of their coefficients is redundant).
    """

    variables: tuple[VariableProfile, ...]
    target_min: float
    target_max: float
    target_positive: bool
    n_rows: int
    n_groups: int
    mixture: bool = False
    notes: tuple[str, ...] = field(default=())

    def by_name(self, name: str) -> VariableProfile:
        """Return the profile of variable ``name``."""
        return next(variable for variable in self.variables if variable.name == name)

    def as_dict(self) -> dict[str, object]:
        """Return a JSON-ready dictionary (for prompts and run logs)."""
        return asdict(self)


def _as_regressor(column: NDArray[np.float64]) -> NDArray[np.float64]:
    u = np.log(column) if np.all(column > 0) else column
    scaled: NDArray[np.float64] = (u - u.mean()) / (u.std() or 1.0)
    return scaled


def _trend(X: NDArray[np.float64], index: int, y: NDArray[np.float64], groups: NDArray[np.str_]) -> Trend:
    # Trends are read within groups (a group shift would otherwise look like a trend) and with the other
    # variables as linear covariates (in a grid of runs, an optimum in one variable only shows at fixed others),
    # pooled by votes.
    votes: list[float] = []
    optimum_votes = 0
    for group in np.unique(groups):
        mask = groups == group
        x, t = X[mask, index], y[mask]
        if np.unique(x).size < 3:
            continue
        u = _as_regressor(x)
        others = [_as_regressor(X[mask, j]) for j in range(X.shape[1]) if j != index and np.ptp(X[mask, j]) > 0]
        base = np.column_stack([np.ones_like(u), *others, u])
        linear, *_ = np.linalg.lstsq(base, t, rcond=None)
        quadratic, *_ = np.linalg.lstsq(np.column_stack([base, u**2]), t, rcond=None)
        linear_sse = float(np.sum((base @ linear - t) ** 2))
        quadratic_sse = float(np.sum((np.column_stack([base, u**2]) @ quadratic - t) ** 2))
        slope, curvature = quadratic[-2], quadratic[-1]
        vertex = -slope / (2 * curvature) if curvature != 0 else np.inf
        # An optimum must sit well inside the range: a convex decreasing curve (a power law seen in log-space)
        # also fits a parabola better than a line, with its vertex at the edge.
        inner_low, inner_high = np.quantile(u, [0.2, 0.8])
        if curvature > 0 and inner_low < vertex < inner_high and quadratic_sse < 0.9 * linear_sse:
            optimum_votes += 1
        votes.append(float(np.sign(linear[-1])))
    if not votes:
        return "flat"
    if optimum_votes > len(votes) / 2:
        return "optimum"
    mean_vote = float(np.mean(votes))
    if mean_vote >= 0.8:
        return "increasing"
    if mean_vote <= -0.8:
        return "decreasing"
    return "mixed"


def is_scale(values: NDArray[np.float64]) -> bool:
    """Whether a column is a scale variable: positive and spanning more than a factor of 3.

    The one rule for where laws take powers and logs of a column, and where probes beyond the data multiply it
    rather than shift it.

    Examples
    --------
    >>> is_scale(np.array([1e6, 1e9])), is_scale(np.array([0.1, 0.2])), is_scale(np.array([-1.0, 5.0]))
    (True, False, False)
    """
    lo, hi = float(np.min(values)), float(np.max(values))
    return lo > 0 and hi / lo > 3


def profile_data(
    X: NDArray[np.float64],
    y: NDArray[np.float64],
    variables: tuple[str, ...],
    groups: NDArray[np.str_] | None = None,
) -> DataProfile:
    """Describe each variable and the target.

    Parameters
    ----------
    X : ndarray of shape (n, d)
        Inputs, columns in the order of ``variables``.
    y : ndarray of shape (n,)
        Target.
    variables : tuple of str
        Column names.
    groups : ndarray of shape (n,), optional
        Group labels; trends are read within groups.

    Returns
    -------
    DataProfile
    """
    groups_ = np.full(len(y), "all") if groups is None else np.asarray(groups).astype(str)
    profiles = []
    for index, name in enumerate(variables):
        column = X[:, index]
        lo, hi = float(column.min()), float(column.max())
        kind: VariableKind
        if is_scale(column):
            kind = "scale"
        elif lo >= 0 and hi <= 1:
            kind = "proportion"
        elif lo > 0:
            kind = "positive"
        else:
            kind = "real"
        reference = float(np.exp(np.mean(np.log(column)))) if lo > 0 else float(np.mean(column))
        profiles.append(
            VariableProfile(
                name=name,
                kind=kind,
                minimum=lo,
                maximum=hi,
                reference=float(f"{reference:.4g}"),
                trend=_trend(X, index, y, groups_),
                n_unique=int(np.unique(column).size),
            )
        )
    proportion_columns = [i for i, p in enumerate(profiles) if p.kind == "proportion"]
    mixture = len(proportion_columns) >= 2 and bool(np.allclose(X[:, proportion_columns].sum(axis=1), 1.0, atol=1e-6))
    return DataProfile(
        variables=tuple(profiles),
        target_min=float(y.min()),
        target_max=float(y.max()),
        target_positive=bool(np.all(y > 0)),
        n_rows=len(y),
        n_groups=int(np.unique(groups_).size),
        mixture=mixture,
    )

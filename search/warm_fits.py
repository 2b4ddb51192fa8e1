"""Per-group fits that pass what earlier fits learned on as warm starts, to fit many groups and folds fast.

Groups of one task usually share a law's shape, so the constants found for one group are a good start for the
next; likewise a fold's constants are a good start for the next, larger fold. Warm starts come only from rows
the later fit may also see (earlier groups' training rows, a smaller fold's training rows), never from rows it
is validated on.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from numpy.typing import NDArray

from sld.search.expressions import Law
from sld.search.fitting import FitConfig, FitResult, GroupedFit, fit_datasets, fit_law, start_points

FloatArray = NDArray[np.float64]


def fit_groups_warm(
    law: Law,
    X: FloatArray,
    y: FloatArray,
    groups: NDArray[np.str_],
    *,
    config: FitConfig,
    initial: Mapping[str, FloatArray] | None = None,
    shared: frozenset[str] = frozenset(),
) -> GroupedFit:
    """Fit one set of constants per group, warm-starting each group from what is already known.

    Parameters
    ----------
    law : Law
        The law.
    X, y, groups : ndarray
        Rows of shapes (n, d), (n,), (n,).
    config : FitConfig
        ``n_starts`` is used in full for the first group without a warm start; warm-started groups get a third
        of it (at least 2) besides their warm start.
    initial : mapping of str to ndarray, optional
        Warm start per group (e.g. from a smaller fold).
    shared : frozenset of str
        Constants with one value for all groups, fitted jointly after the per-group fits
        (`sld.search.shared_fits.fit_shared`).

    Returns
    -------
    GroupedFit
    """
    if shared:
        from sld.search.shared_fits import fit_shared  # it builds on the per-group fits below

        return fit_shared(law, X, y, groups, shared=shared, config=config, initial=initial)
    if config.solver == "batched":
        return _fit_groups_batched(law, X, y, groups, config=config, initial=initial)
    names, counts = np.unique(groups, return_counts=True)
    # Largest groups first: their constants are the best determined, and warm-start the others.
    ordered = [str(name) for name in names[np.argsort(-counts, kind="stable")]]
    fitted: list[FloatArray] = []
    fits: dict[str, FitResult] = {}
    few = config.model_copy(update={"n_starts": max(2, config.n_starts // 3)})
    for name in ordered:
        rows = groups == name
        start = None if initial is None else initial.get(name)
        if start is None and fitted:
            start = np.median(np.vstack(fitted), axis=0)
        fit = fit_law(law, X[rows], y[rows], config=config if start is None else few, initial_params=start)
        fits[name] = fit
        if fit.params is not None:
            fitted.append(fit.params)
    return GroupedFit({name: fits[name] for name in sorted(fits)})


def _fit_groups_batched(
    law: Law,
    X: FloatArray,
    y: FloatArray,
    groups: NDArray[np.str_],
    *,
    config: FitConfig,
    initial: Mapping[str, FloatArray] | None,
) -> GroupedFit:
    """Fit every group in one batched solve: warm-started groups get a third of the starts, the others all.

    The scipy path warm-starts a group from the groups fitted before it, which orders the fits; in one batch a
    group without a warm start instead gets the full ``n_starts``, which costs little once starts are batched.
    """
    names = [str(name) for name in np.unique(groups)]
    few = max(2, config.n_starts // 3)
    # The sampled starts depend on the seed only, so every group shares them; a warm start replaces the first.
    full = start_points(law.constants, config.n_starts, config.seed, None)
    lower, upper = (np.array([getattr(c, side) for c in law.constants]) for side in ("lower", "upper"))
    fewer = full[:few]
    datasets, starts = [], []
    for name in names:
        rows = groups == name
        datasets.append((X[rows], y[rows]))
        warm = None if initial is None else initial.get(name)
        starts.append(full if warm is None else [np.clip(warm, lower, upper), *fewer[1:]])
    return GroupedFit(dict(zip(names, fit_datasets(law, datasets, starts, config=config), strict=True)))


def group_params(fit: GroupedFit) -> dict[str, FloatArray]:
    """Return the fitted constants of every group that has them."""
    return {name: result.params for name, result in fit.fits.items() if result.params is not None}

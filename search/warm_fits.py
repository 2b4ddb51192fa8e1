"""Per-group fits that pass what earlier fits learned on as warm starts, to fit many groups and folds fast.

Groups of one task usually share a law's shape, so the constants found for one group are a good start for the
next; likewise a fold's constants are a good start for the next, larger fold. Warm starts come only from rows
the later fit may also see (earlier groups' training rows, a smaller fold's training rows), never from rows it
is validated on.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import numpy as np
from numpy.typing import NDArray

from sld.search.expressions import Law
from sld.search.fitting import FitConfig, FitResult, GroupedFit, fit_datasets, fit_law, start_points

FloatArray = NDArray[np.float64]

# Up to this many rows (summed over subsets and starts), every subset of `fit_row_sets` from every start is one batch:
# Python overhead per iteration dominates there (many small groups, e.g. sft). Beyond, the arithmetic dominates and
# warm-starting the larger subsets from the smallest saves more (few large groups, e.g. vocab, lr_bsz).
ONE_BATCH_ROWS = 20_000


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
    """Fit every group in one batched solve (`fit_row_sets` with one row set)."""
    return _fit_row_sets_batched(law, X, y, groups, [np.arange(y.size)], config=config, initial=[initial])[0]


def _fit_row_sets_batched(
    law: Law,
    X: FloatArray,
    y: FloatArray,
    groups: NDArray[np.str_],
    row_sets: Sequence[NDArray[np.intp]],
    *,
    config: FitConfig,
    initial: Sequence[Mapping[str, FloatArray] | None],
) -> list[GroupedFit]:
    """Fit every group of every row set in one batched solve: warm-started groups get a third of the starts.

    The scipy path warm-starts a group from the groups fitted before it, which orders the fits; in one batch a
    group without a warm start instead gets the full ``n_starts``, which costs little once starts are batched.
    """
    few = max(2, config.n_starts // 3)
    # The sampled starts depend on the seed only, so every group shares them; a warm start replaces the first.
    full = start_points(law.constants, config.n_starts, config.seed, None)
    lower = np.array([c.lower for c in law.constants])
    upper = np.array([c.upper for c in law.constants])
    datasets, starts, keys = [], [], []
    for index, (rows, warm_starts) in enumerate(zip(row_sets, initial, strict=True)):
        set_groups = groups[rows]
        for name in np.unique(set_groups):
            in_group = rows[set_groups == name]
            datasets.append((X[in_group], y[in_group]))
            warm = None if warm_starts is None else warm_starts.get(str(name))
            starts.append(full if warm is None else [np.clip(warm, lower, upper), *full[1:few]])
            keys.append((index, str(name)))
    fits: list[dict[str, FitResult]] = [{} for _ in row_sets]
    for (index, name), fit in zip(keys, fit_datasets(law, datasets, starts, config=config), strict=True):
        fits[index][name] = fit
    return [GroupedFit(found) for found in fits]


def fit_row_sets(
    law: Law,
    X: FloatArray,
    y: FloatArray,
    groups: NDArray[np.str_],
    row_sets: Sequence[NDArray[np.intp]],
    *,
    config: FitConfig,
    shared: frozenset[str] = frozenset(),
) -> list[GroupedFit]:
    """Fit one set of constants per group on each of several subsets of the rows (e.g. every fold's training rows).

    With the batched solver the subsets are batched as :class:`RowSetFits` batches them. With the scipy solver the
    subsets are fitted from the smallest to the largest, each warm-starting the next (the reference behaviour of
    `sld.search.selection.validate_law`).

    Parameters
    ----------
    law : Law
        The law.
    X, y, groups : ndarray
        Rows of shapes (n, d), (n,), (n,).
    row_sets : sequence of ndarray of int
        Row indices of each subset.
    config : FitConfig
        Constant-fit settings.
    shared : frozenset of str
        Constants with one value for all groups (`sld.search.shared_fits.fit_shared`), fitted jointly per subset
        from the batched per-group fits.

    Returns
    -------
    list of GroupedFit
        One per subset, in the order of ``row_sets``.
    """
    if config.solver != "batched":
        out: dict[int, GroupedFit] = {}
        warm: dict[str, FloatArray] | None = None
        for index in sorted(range(len(row_sets)), key=lambda i: row_sets[i].size):
            rows = row_sets[index]
            out[index] = fit_groups_warm(
                law, X[rows], y[rows], groups[rows], config=config, initial=warm, shared=shared
            )
            warm = group_params(out[index]) or None
        return [out[index] for index in range(len(row_sets))]
    return RowSetFits(law, X, y, groups, row_sets, config=config, shared=shared).fits(range(len(row_sets)))


class RowSetFits:
    """The batched fits of one law on several subsets of the rows, each made when it is first asked for.

    A candidate's fit on all its training rows decides most rejections (no floor, a turn beyond the data, no
    optimum) before any fold is fitted, so `sld.search.candidates.evaluate_proposal` asks for that fit first and for
    the folds' only when it passes (on lr_bsz half the candidates are rejected on it). Asking for the subsets in any
    order, in one call or several, gives the fits `fit_row_sets` gives in one call: every problem of a batch stops
    on its own, and how the subsets are started is decided once for all of them here. Up to ``ONE_BATCH_ROWS``
    rows (summed over subsets and starts) every subset is fitted from every start, all in one batch on the first
    request (there the overhead of a second batch outweighs the rows it would save); beyond, the smallest subset is
    fitted first from every start and warm-starts the others with a third of the starts (as the scipy path
    warm-starts each subset from the previous one), each set when it is asked for.

    Parameters
    ----------
    law, X, y, groups, row_sets, config, shared
        As for :func:`fit_row_sets` (``config`` names the batched solver).
    """

    def __init__(
        self,
        law: Law,
        X: FloatArray,
        y: FloatArray,
        groups: NDArray[np.str_],
        row_sets: Sequence[NDArray[np.intp]],
        *,
        config: FitConfig,
        shared: frozenset[str] = frozenset(),
    ) -> None:
        self._law, self._X, self._y, self._groups = law, X, y, groups
        self._row_sets, self._config, self._shared = list(row_sets), config, shared
        self._done: dict[int, GroupedFit] = {}
        self._warm_from: int | None = None
        if sum(rows.size for rows in row_sets) * config.n_starts > ONE_BATCH_ROWS:
            self._warm_from = min(range(len(row_sets)), key=lambda i: row_sets[i].size)

    def fits(self, indices: Iterable[int]) -> list[GroupedFit]:
        """Return the fits of the subsets at ``indices`` (in that order), fitting those not fitted yet in one batch."""
        wanted = list(indices)
        if self._warm_from is None:
            # Python overhead per iteration dominates these small fits: a second batch for the other subsets would
            # cost more than the rows it might save (domain_mixture's and moe's searches were 20% slower).
            todo = [index for index in range(len(self._row_sets)) if index not in self._done]
            initial = None
        else:
            if self._warm_from not in self._done:
                self._done[self._warm_from] = self._fit_batch([self._warm_from], initial=None)[0]
            todo = sorted({index for index in wanted if index not in self._done})
            initial = group_params(self._done[self._warm_from]) or None
        if todo:
            self._done.update(zip(todo, self._fit_batch(todo, initial=initial), strict=True))
        return [self._done[index] for index in wanted]

    def _fit_batch(self, indices: list[int], *, initial: Mapping[str, FloatArray] | None) -> list[GroupedFit]:
        row_sets = [self._row_sets[index] for index in indices]
        law, X, y, groups = self._law, self._X, self._y, self._groups
        independent = _fit_row_sets_batched(
            law, X, y, groups, row_sets, config=self._config, initial=[initial] * len(row_sets)
        )
        if not self._shared:
            return independent
        return _fit_shared_sets(law, X, y, groups, row_sets, independent, self._shared, self._config)


def _fit_shared_sets(
    law: Law,
    X: FloatArray,
    y: FloatArray,
    groups: NDArray[np.str_],
    row_sets: Sequence[NDArray[np.intp]],
    independent: list[GroupedFit],
    shared: frozenset[str],
    config: FitConfig,
) -> list[GroupedFit]:
    from sld.search.shared_fits import fit_shared  # it builds on the per-group fits above

    return [
        fit_shared(law, X[rows], y[rows], groups[rows], shared=shared, config=config, independent=fit)
        for rows, fit in zip(row_sets, independent, strict=True)
    ]


def group_params(fit: GroupedFit) -> dict[str, FloatArray]:
    """Return the fitted constants of every group that has them."""
    return {name: result.params for name, result in fit.fits.items() if result.params is not None}

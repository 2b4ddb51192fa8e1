"""Choose among near-ties by what they predict beyond the data, and report how much they disagree there.

Dozens of candidates can validate within noise of each other and still disagree wildly beyond the data; the
folds cannot tell which is right. The median prediction of the best validated laws (the near-ties, and the next
ones up to ``MAX_NEAR_TIES``, since the median of one or two near-ties is no vote) is a robust estimate of where
the curve goes (one law that explodes, or one that flattens too early, moves it little), so the choice keeps the
near-ties that stay close to it and, among them, prefers the literature families, then the validation objective, then
the plainer form (shorter expression tree). The order matters for stability: which generated forms are near-ties
changes with the seed, and so does their median, so "closest to the median" alone (or "plainest among those that
agree") flips between laws that disagree on the test; the families and their objectives are the same at every
seed. The spread of the near-ties' predictions over the probe region is the uncertainty band.

Example
-------
>>> import numpy as np
>>> predictions = np.array([[[1.0, 2.0]], [[1.1, 2.1]], [[1.4, 2.6]]])  # 3 laws, 1 factor, 2 rows
>>> distance_to(predictions, np.median(predictions, axis=0), span=1.0).round(3).tolist()
[0.1, 0.0, 0.4]
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from sld.search.candidates import Candidate
from sld.search.expressions import Law
from sld.search.fitting import GroupedFit
from sld.search.plausibility import description_length, trends_left_out
from sld.search.selection import ProbeRegion, moved_along

FloatArray = NDArray[np.float64]
StrArray = NDArray[np.str_]

# Near-ties refitted to compare their predictions (each costs one evaluation in the final step).
MAX_NEAR_TIES = 8
# Laws whose mean distance to the consensus is within this share of the target's span of the closest one agree.
CONSENSUS_TOLERANCE = 0.02


def probe_predictions(law: Law, fit: GroupedFit, X: FloatArray, groups: StrArray, region: ProbeRegion) -> FloatArray:
    """Return predictions at the training rows moved along all axis columns together by each probe factor.

    Shape (len(region.factors), n); with no axis, shape (1, n) at the rows themselves.
    """
    if not region.axis_columns:
        return fit.predict(law, X, groups)[None, :]
    curves = []
    with np.errstate(all="ignore"):
        for factor in region.factors:
            moved = X
            for column in region.axis_columns:
                moved = moved_along(moved, column, factor)
            curves.append(fit.predict(law, moved, groups))
    return np.vstack(curves)


def distance_to(predictions: FloatArray, consensus: FloatArray, *, span: float) -> FloatArray:
    """Return each law's mean absolute distance to ``consensus``, in units of ``span``.

    Parameters
    ----------
    predictions : ndarray of shape (m, k, n)
        ``m`` laws' (or fits') predictions at ``k`` probe factors and ``n`` rows.
    consensus : ndarray of shape (k, n)
        The median prediction of the near-ties and the panel (the third value :func:`consensus_choice` returns).
    span : float
        The observed target's range.
    """
    distance: FloatArray = np.mean(np.abs(predictions - consensus), axis=(1, 2)) / (span or 1.0)
    return distance


@dataclass(frozen=True)
class UncertaintyBand:
    """How far the near-ties' predictions spread beyond the data.

    Attributes
    ----------
    factors : tuple of float
        Probe factors along the axis (1.0 alone when the task has no axis: spread at the data).
    low, median, high : tuple of float
        Per factor, the mean over training rows (moved by the factor) of the lowest, median and highest
        near-tie prediction.
    relative_spread : float
        Largest, over factors, mean over rows of (highest - lowest) / |median|.
    laws : tuple of str
        The near-ties compared (the chosen one among them).
    constants : dict
        Per near-tie (by its place in ``laws``), ``{group: {constant: value}}``: enough to draw each near-tie's
        curve, e.g. as a band in the report's plots.
    """

    factors: tuple[float, ...]
    low: tuple[float, ...]
    median: tuple[float, ...]
    high: tuple[float, ...]
    relative_spread: float
    laws: tuple[str, ...]
    constants: tuple[dict[str, dict[str, float]], ...] = ()

    def as_dict(self) -> dict[str, object]:
        """Return a JSON-ready dictionary."""
        return {
            "factors": list(self.factors),
            "low": list(self.low),
            "median": list(self.median),
            "high": list(self.high),
            "relative_spread": self.relative_spread,
            "near_ties": len(self.laws),
            "laws": list(self.laws),
            "constants": list(self.constants),
        }

    def describe(self) -> str:
        """Return one line for the CLI."""
        far = self.factors[-1]
        return (
            f"{len(self.laws)} near-ties predict {self.low[-1]:.4g} to {self.high[-1]:.4g} "
            f"(median {self.median[-1]:.4g}) at {far:g}x the scale: spread {100 * self.relative_spread:.1f}%"
        )


def band_of(
    predictions: FloatArray,
    factors: Sequence[float],
    laws: Sequence[str],
    constants: Sequence[dict[str, dict[str, float]]] = (),
) -> UncertaintyBand:
    """Summarise near-ties' predictions of shape (m, k, n) as an :class:`UncertaintyBand`."""
    low, high = predictions.min(axis=0), predictions.max(axis=0)
    median = np.median(predictions, axis=0)
    with np.errstate(all="ignore"):
        relative = np.mean((high - low) / np.maximum(np.abs(median), 1e-12), axis=1)
    return UncertaintyBand(
        factors=tuple(float(f) for f in factors),
        low=tuple(float(v) for v in low.mean(axis=1)),
        median=tuple(float(v) for v in median.mean(axis=1)),
        high=tuple(float(v) for v in high.mean(axis=1)),
        relative_spread=round(float(np.max(relative)), 6),
        laws=tuple(laws),
        constants=tuple(constants),
    )


def group_constants(law: Law, fit: GroupedFit) -> dict[str, dict[str, float]]:
    """Return ``{group: {constant: value}}`` of a fit (groups whose fit failed are left out)."""
    names = [spec.name for spec in law.constants]
    return {
        group: dict(zip(names, (float(v) for v in result.params), strict=True))
        for group, result in fit.fits.items()
        if result.params is not None
    }


def consensus_choice(
    entries: Sequence[tuple[Candidate, Law, GroupedFit]],
    X: FloatArray,
    y: FloatArray,
    groups: StrArray,
    region: ProbeRegion,
    *,
    panel: Sequence[tuple[Candidate, Law, GroupedFit]] = (),
) -> tuple[int, UncertaintyBand, FloatArray]:
    """Return the index of the near-tie to choose, the near-ties' uncertainty band and the consensus.

    Parameters
    ----------
    entries : sequence of (Candidate, Law, GroupedFit)
        Near-ties fitted on all training rows (each passed the extrapolation checks): the laws to choose from.
    X, y, groups : ndarray
        Training rows only.
    region : ProbeRegion
        Where the law will predict.
    panel : sequence of (Candidate, Law, GroupedFit)
        The next validated laws in the order of the choice rule, which join the consensus but are not chosen.
        With one or two near-ties the median of the near-ties is the near-ties themselves (two that disagree are
        equally far from their midpoint); the panel makes the consensus a vote of the best ``MAX_NEAR_TIES``
        validated laws whatever the number of near-ties.

    Returns
    -------
    tuple of (int, UncertaintyBand, ndarray)
        Among the near-ties within ``CONSENSUS_TOLERANCE`` of the closest one to the consensus, the first by
        (leaves a trend variable out, not a literature family, objective, description length, expression); the
        near-ties' band; and the consensus, the median prediction of the (finite) near-ties and panel at the probe
        points of :func:`probe_predictions`, shape (k, n), against which another fit of the chosen law can be
        measured (:func:`distance_to`).
    """
    voters = [*entries, *panel]
    predictions = np.stack([probe_predictions(law, fit, X, groups, region) for _, law, fit in voters])
    # A law that is non-finite where the axis columns move together takes no part in the consensus.
    finite = np.all(np.isfinite(predictions), axis=(1, 2))
    if not finite[: len(entries)].any():
        finite[: len(entries)] = True
        predictions = np.nan_to_num(predictions, nan=0.0, posinf=0.0, neginf=0.0)
    consensus = np.median(predictions[finite], axis=0)
    candidates = np.flatnonzero(finite[: len(entries)])
    deviation = distance_to(predictions[candidates], consensus, span=float(np.ptp(y)))
    agree = [int(i) for i, d in zip(candidates, deviation, strict=True) if d <= deviation.min() + CONSENSUS_TOLERANCE]

    def key(index: int) -> tuple[bool, bool, float, int, str]:
        candidate, law, _ = entries[index]
        left_out = bool(trends_left_out(law, region))
        return (left_out, candidate.source != "family", candidate.objective, description_length(law),
                candidate.expression)

    chosen = min(agree, key=key)
    factors = region.factors if region.axis_columns else (1.0,)
    tied = [entries[int(i)] for i in candidates]
    constants = [group_constants(law, fit) for _, law, fit in tied]
    band = band_of(predictions[candidates], factors, [candidate.expression for candidate, _, _ in tied], constants)
    return chosen, band, consensus

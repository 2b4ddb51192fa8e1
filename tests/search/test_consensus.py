import numpy as np

from sld.search import parse_law
from sld.search.candidates import Candidate
from sld.search.consensus import consensus_choice
from sld.search.fitting import FitResult, GroupedFit
from sld.search.selection import ProbeRegion, near_ties


def _entry(
    text: str, params: list[float], *, objective: float = 0.01, source: str = "family"
) -> tuple[Candidate, object, GroupedFit]:
    law = parse_law(text, ("x",))
    fit = GroupedFit(fits={"g": FitResult(np.array(params), True, "", 0.0, 1)})
    candidate = Candidate(text, source=source, status="ok", objective=objective, n_params=law.n_params)
    return candidate, law, fit


def test_consensus_picks_the_middle_law_even_when_it_is_the_longest():
    x = np.geomspace(1.0, 10.0, 8)
    y = 1.0 + 0.1 * x
    groups = np.full(x.size, "g")
    entries = [
        _entry("a + b*x", [1.0, 0.0]),  # flat beyond the data
        _entry("a + b*x + c*x**2", [1.0, 0.1, 0.0]),  # the middle: agrees with the median
        _entry("c0 + c1*x", [1.0, 0.2]),  # rises twice as fast
    ]
    chosen, band, _ = consensus_choice(entries, x[:, None], y, groups, ProbeRegion(axis_columns=(0,)))
    assert chosen == 1
    assert band.factors == (1.5, 2.0, 4.0)
    assert all(low < median < high for low, median, high in zip(band.low, band.median, band.high, strict=True))
    assert band.relative_spread > 0.5 and len(band.laws) == 3


def test_among_agreeing_laws_a_family_then_the_objective_decide_before_the_plainer_form():
    # Which generated near-ties a seed finds moves the median; the families and their objectives do not, so they
    # decide among the laws that agree (here all three agree within the tolerance).
    x = np.geomspace(1.0, 10.0, 8)
    y = 1.0 + 0.1 * x
    groups = np.full(x.size, "g")
    entries = [
        _entry("a + b*x", [1.0, 0.1], objective=0.02),
        _entry("a + b*x + c*x**2", [1.0, 0.1, 0.00001], objective=0.01),
        _entry("c0 + c1*x", [1.0, 0.1], objective=0.005, source="evolution"),
    ]
    chosen, _, _ = consensus_choice(entries, x[:, None], y, groups, ProbeRegion(axis_columns=(0,)))
    assert chosen == 1


def test_agreeing_laws_with_equal_objectives_fall_back_to_the_plainer_form():
    x = np.geomspace(1.0, 10.0, 8)
    y = 1.0 + 0.1 * x
    groups = np.full(x.size, "g")
    entries = [_entry("a + b*x + c*x**2", [1.0, 0.1, 0.0]), _entry("a + b*x", [1.0, 0.1])]
    chosen, band, _ = consensus_choice(entries, x[:, None], y, groups, ProbeRegion(axis_columns=(0,)))
    assert chosen == 1 and band.relative_spread == 0


def test_near_ties_are_within_tolerance_or_one_standard_error_of_the_best():
    def candidate(objective: float, folds: tuple[float, ...]) -> Candidate:
        return Candidate(
            f"{objective}", "t", status="ok", objective=objective, validation_nmse=objective, fold_r2=folds
        )

    best = candidate(0.010, (0.99, 0.97, 0.95))
    # Fold errors 0.01, 0.03, 0.05: one standard error is 0.0115, so 0.02 is tied (though 2x the best) and 0.03 not.
    ranked = [best, candidate(0.0105, (0.99,)), candidate(0.02, (0.99,)), candidate(0.03, (0.99,))]
    assert near_ties(ranked, 0.1) == ranked[:3]
    assert near_ties([], 0.1) == []


def test_the_next_validated_laws_vote_when_two_near_ties_disagree():
    # Two near-ties are equally far from their own midpoint; the panel of the next validated laws decides which
    # of them the consensus beyond the data supports, even against the first by the choice rule.
    x = np.geomspace(1.0, 10.0, 8)
    y = 1.0 + 0.1 * x
    groups = np.full(x.size, "g")
    entries = [_entry("a + b*x", [1.0, 0.3], objective=0.01), _entry("c0 + c1*x", [1.0, 0.1], objective=0.02)]
    panel = [_entry("d0 + d1*x", [1.0, 0.11], objective=0.05), _entry("e0 + e1*x", [1.0, 0.09], objective=0.06)]
    alone, _, _ = consensus_choice(entries, x[:, None], y, groups, ProbeRegion(axis_columns=(0,)))
    chosen, band, consensus = consensus_choice(entries, x[:, None], y, groups, ProbeRegion(axis_columns=(0,)),
                                               panel=panel)
    assert alone == 0 and chosen == 1
    assert len(band.laws) == 2  # the band is the near-ties' spread; the panel only votes
    assert consensus.shape == (3, x.size)


def test_among_agreeing_laws_one_that_keeps_every_trend_wins_over_a_family_that_leaves_one_out():
    # Two variables, both with a trend; the family ignores the second (it predicts no change along it), the
    # generated law uses both. They agree beyond the data along the axis, so the folds cannot tell them apart.
    x = np.geomspace(1.0, 10.0, 8)
    z = np.linspace(1.0, 2.0, 8)
    X = np.column_stack([x, z])
    y = 1.0 + 0.1 * x
    groups = np.full(x.size, "g")

    def entry(text: str, params: list[float], source: str) -> tuple[Candidate, object, GroupedFit]:
        law = parse_law(text, ("x", "z"))
        fit = GroupedFit(fits={"g": FitResult(np.array(params), True, "", 0.0, 1)})
        return Candidate(text, source=source, status="ok", objective=0.01, n_params=law.n_params), law, fit

    entries = [entry("a + b*x", [1.0, 0.1], "family"), entry("a + b*x + c*z", [1.0, 0.1, -1e-6], "evolution")]
    region = ProbeRegion(axis_columns=(0,), monotone={0: "increasing", 1: "decreasing"})
    chosen, _, _ = consensus_choice(entries, X, y, groups, region)
    assert chosen == 1
    # With no trend along z, nothing is left out and the family wins as before.
    chosen, _, _ = consensus_choice(entries, X, y, groups, ProbeRegion(axis_columns=(0,), monotone={0: "increasing"}))
    assert chosen == 0

import numpy as np
import pytest

from sld.search.candidates import Candidate, Problem, candidate_from_record, evaluate_proposal
from sld.search.engine import SearchState
from sld.search.expressions import parse_law
from sld.search.fitting import FitConfig
from sld.search.proposals import Proposal, deduplicate, sharing_proposals
from sld.search.selection import extrapolation_folds
from sld.search.shared_fits import effective_params, fit_shared
from sld.search.warm_fits import fit_groups_warm

CONFIG = FitConfig(n_starts=4, seed=0)


def _three_groups(noise: float = 0.0, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    # One exponent for all groups, offsets and scales per group.
    rng = np.random.default_rng(seed)
    x = np.tile(np.geomspace(1, 1000, 10), 3)
    groups = np.repeat(["a", "b", "c"], 10)
    offset = {"a": 1.0, "b": 2.0, "c": 3.0}
    scale = {"a": 2.0, "b": 1.0, "c": 4.0}
    y = np.array([offset[g] + scale[g] * v**-0.4 for g, v in zip(groups, x, strict=True)])
    return x[:, None], y + rng.normal(0, noise, y.size), groups


def test_shared_constant_takes_one_value_and_others_stay_per_group():
    X, y, groups = _three_groups()
    law = parse_law("E + A * x**(-alpha)", ("x",))
    fit = fit_shared(law, X, y, groups, shared=frozenset({"alpha"}), config=CONFIG)
    alphas = {round(float(fit.fits[g].params[2]), 6) for g in "abc"}
    assert alphas == {0.4}
    offsets = [round(float(fit.fits[g].params[0]), 4) for g in "abc"]
    assert offsets == [1.0, 2.0, 3.0]
    np.testing.assert_allclose(fit.predict(law, X, groups), y, atol=1e-6)


def test_nothing_shared_or_one_group_is_the_per_group_fit():
    X, y, groups = _three_groups(noise=0.01)
    law = parse_law("E + A * x**(-alpha)", ("x",))
    independent = fit_groups_warm(law, X, y, groups, config=CONFIG)
    same = fit_shared(law, X, y, groups, shared=frozenset(), config=CONFIG)
    for group in "abc":
        np.testing.assert_allclose(same.fits[group].params, independent.fits[group].params)
    one = groups == "a"
    alone = fit_shared(law, X[one], y[one], groups[one], shared=frozenset({"alpha"}), config=CONFIG)
    assert list(alone.fits) == ["a"]


def test_sharing_costs_fit_on_train_rows_but_never_below_the_joint_optimum():
    X, y, groups = _three_groups(noise=0.02, seed=3)
    law = parse_law("E + A * x**(-alpha)", ("x",))
    independent = fit_groups_warm(law, X, y, groups, config=CONFIG)
    shared = fit_groups_warm(law, X, y, groups, config=CONFIG, shared=frozenset({"alpha"}))
    sse = {
        name: float(np.sum((fit.predict(law, X, groups) - y) ** 2))
        for name, fit in (("independent", independent), ("shared", shared))
    }
    assert sse["independent"] <= sse["shared"] < 2 * sse["independent"] + 0.05


def test_shared_candidates_record_round_trip_and_differ_from_the_unshared_form():
    X, y, groups = _three_groups(noise=0.01)
    problem = Problem(variables=("x",), X=X, y=y, groups=groups, order=np.log(X[:, 0]), max_params=3)
    folds = extrapolation_folds(problem.order, groups)
    plain = Proposal("E + A * x**(-alpha)")
    shared = Proposal("E + A * x**(-alpha)", shared=("alpha",))
    candidate, _ = evaluate_proposal(problem, shared, folds, config=CONFIG, complexity_penalty=0.01)
    assert candidate.status == "ok" and candidate.shared == ("alpha",)
    assert candidate_from_record(candidate.as_record()) == candidate
    # The same text with other shared constants is another proposal; the same pair twice is one.
    state = SearchState(candidates=[candidate])
    assert [p.shared for p in deduplicate([plain, shared, plain], state, ("x",))] == [()]


def test_effective_constants_spread_shared_ones_over_groups():
    assert effective_params(4, 0, 3) == 4
    assert effective_params(4, 2, 2) == 3
    assert effective_params(4, 2, 1) == 4


@pytest.mark.parametrize(("n_groups", "expected"), [(1, 0), (3, 2)])
def test_sharing_proposals_only_with_several_groups(n_groups, expected):
    X, y, groups = _three_groups()
    rows = np.isin(groups, ["a", "b", "c"][:n_groups])
    problem = Problem(variables=("x",), X=X[rows], y=y[rows], groups=groups[rows], order=None, max_params=3)
    parent = Candidate("E + A * x**(-alpha)", source="family", family="additive power law", status="ok")
    law = parse_law(parent.expression, ("x",))
    children = sharing_proposals(parent, law, problem, np.random.default_rng(0))
    assert len(children) == expected
    for child in children:
        assert child.expression == parent.expression and child.shared and child.source == "family"

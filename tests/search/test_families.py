import itertools

import numpy as np
import pytest

from sld.search.expressions import parse_law
from sld.search.families import family_proposals
from sld.search.plausibility import FLOOR_SHARE
from sld.search.profile import profile_data


def _hyperparameter_grid() -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    # Loss U-shaped in lr and bsz around an optimum that moves with N and with the batch size.
    rows = []
    for lr, bsz, n in itertools.product(np.geomspace(1e-4, 1e-2, 7), [32.0, 128.0, 512.0, 2048.0], [1e8, 1e9]):
        best_lr = 1e-3 * (bsz / 128) ** 0.5 * (n / 1e8) ** -0.3
        loss = 2 + 5 * (n / 1e8) ** -0.3 + 0.05 * np.log(lr / best_lr) ** 2 + 0.03 * np.log(bsz / 256) ** 2
        rows.append((lr, bsz, n, loss))
    data = np.array(rows)
    return data[:, :3], data[:, 3], ("lr", "bsz", "N")


def test_every_proposal_parses_and_respects_the_budget():
    X, y, names = _hyperparameter_grid()
    profile = profile_data(X, y, names)
    for budget in (3, 6, 9):
        proposals = family_proposals(profile, max_params=budget)
        assert proposals
        assert len({p.expression for p in proposals}) == len(proposals)
        for proposal in proposals:
            law = parse_law(proposal.expression, names)
            assert law.n_params <= budget, proposal.expression


def test_power_law_families_cover_each_scale_variable():
    X = np.array([[1e6, 1e9], [1e7, 1e9], [1e8, 1e10], [1e9, 1e11], [1e9, 1e10]])
    profile = profile_data(X, np.array([4.0, 3.0, 2.5, 2.2, 2.3]), ("N", "D"))
    families = {p.family for p in family_proposals(profile, max_params=5)}
    assert {"additive power law", "multiplicative power law", "rectified power law", "broken power law"} <= families


def test_an_optimum_may_move_with_another_hyperparameter_but_not_both_ways():
    X, y, names = _hyperparameter_grid()
    profile = profile_data(X, y, names)
    assert {v.name: v.trend for v in profile.variables}["lr"] == "optimum"
    moving = [p.expression for p in family_proposals(profile, max_params=12) if p.family == "moving optimum"]
    assert moving
    lr_moves_with_bsz = "(log(lr / " in " ".join(moving) and any(
        text.split("log(lr /")[1].split("**2")[0].count("log(bsz") == 1 for text in moving
    )
    assert lr_moves_with_bsz
    for text in moving:
        lr_penalty = text.split("(log(lr /")[1].split("**2")[0]
        bsz_penalty = text.split("(log(bsz /")[1].split("**2")[0]
        assert not ("log(bsz" in lr_penalty and "log(lr" in bsz_penalty), text


@pytest.mark.parametrize("budget", [4, 8])
def test_optimum_forms_stay_within_small_budgets(budget):
    X, y, names = _hyperparameter_grid()
    profile = profile_data(X, y, names)
    for proposal in family_proposals(profile, max_params=budget):
        if proposal.family == "moving optimum":
            assert len(proposal.bounds) <= budget


def test_a_falling_positive_loss_gets_a_positive_irreducible_loss_and_a_limit_form():
    X = np.geomspace(1e6, 1e9, 8)[:, None]
    y = 2.0 + 30.0 * X[:, 0] ** -0.3
    proposals = family_proposals(profile_data(X, y, ("N",)), max_params=5)
    additive = next(p for p in proposals if p.family == "additive power law")
    low, high, _ = additive.bounds["B"]
    assert low == pytest.approx(FLOOR_SHARE * y.min()) and high == pytest.approx(y.max())
    assert any(p.family == "power law with a limit" for p in proposals)
    # A target that rises with scale keeps a free offset.
    rising = family_proposals(profile_data(X, 5.0 - y, ("N",)), max_params=5)
    low, _, _ = next(p for p in rising if p.family == "additive power law").bounds["B"]
    assert low < 0

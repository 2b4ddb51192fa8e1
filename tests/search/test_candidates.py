import numpy as np

from sld.search import FitConfig
from sld.search.candidates import Problem, evaluate_proposal, prefit_reason
from sld.search.expressions import parse_law
from sld.search.proposals import Proposal
from sld.search.selection import extrapolation_folds


def test_a_candidate_gives_back_the_proposal_it_evaluated():
    N = np.geomspace(1e6, 1e9, 12)
    problem = Problem(("N",), N[:, None], 2 + 30 * N**-0.2, np.full(12, "g"), np.log(N), max_params=3)
    folds = extrapolation_folds(problem.order, problem.groups)
    proposal = Proposal("E + A * (N / 1e8)**(-alpha)", source="family", family="additive power law",
                        bounds={"E": (0.5, 4.0, 2.0)}, rationale="Hoffmann et al.")
    config = FitConfig(n_starts=2, seed=0)
    first, _ = evaluate_proposal(problem, proposal, folds, config=config, complexity_penalty=0.02)
    again, _ = evaluate_proposal(problem, first.proposal(), folds, config=config, complexity_penalty=0.02)
    assert first.proposal() == proposal
    assert first.status == again.status == "ok"
    assert (again.key, again.objective) == (first.key, first.objective)


def test_prefit_reason_names_the_budget_and_nesting():
    assert prefit_reason(parse_law("a * N**b + c", ("N",)), 2) == "uses 3 constants; the budget is 2"
    assert prefit_reason(parse_law("a * exp(b * exp(N))", ("N",)), 5) == "nests exp inside exp"
    assert prefit_reason(parse_law("a * N**b", ("N",)), 5) is None

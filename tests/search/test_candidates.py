import numpy as np

from sld.search import FitConfig, candidates, warm_fits
from sld.search.candidates import Problem, evaluate_proposal, parsed_law, prefit_reason
from sld.search.engine import make_folds
from sld.search.expressions import parse_law
from sld.search.proposals import Proposal
from sld.search.selection import ProbeRegion, extrapolation_folds


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


def test_a_proposal_parsed_by_the_caller_is_not_parsed_again(monkeypatch):
    N = np.geomspace(1e6, 1e9, 12)
    problem = Problem(("N",), N[:, None], 2 + 30 * N**-0.2, np.full(12, "g"), np.log(N), max_params=3)
    folds = extrapolation_folds(problem.order, problem.groups)
    proposal, config = Proposal("E + A * (N / 1e8)**(-alpha)"), FitConfig(n_starts=2, seed=0)
    parsed, _ = evaluate_proposal(problem, proposal, folds, config=config, complexity_penalty=0.02)
    given = parsed_law(proposal, problem.variables)
    assert given is not None and parsed_law(Proposal("E + ("), problem.variables) is None

    def refuse(*args, **kwargs):
        raise AssertionError("parsed again")

    monkeypatch.setattr(candidates, "law_from_proposal", refuse)
    reused, _ = evaluate_proposal(problem, proposal, folds, config=config, complexity_penalty=0.02, law=given)
    assert reused.status == parsed.status == "ok"
    assert (reused.key, reused.objective, reused.n_params) == (parsed.key, parsed.objective, parsed.n_params)


def test_prefit_reason_names_the_budget_and_nesting():
    assert prefit_reason(parse_law("a * N**b + c", ("N",)), 2) == "uses 3 constants; the budget is 2"
    assert prefit_reason(parse_law("a * exp(b * exp(N))", ("N",)), 5) == "nests exp inside exp"
    assert prefit_reason(parse_law("a * N**b", ("N",)), 5) is None


def _fitted(monkeypatch):
    """Record the row sets each batch of `RowSetFits` fits."""
    batches: list[list[int]] = []
    fit_batch = warm_fits.RowSetFits._fit_batch

    def record(self, indices, *, initial):
        batches.append(list(indices))
        return fit_batch(self, indices, initial=initial)

    monkeypatch.setattr(warm_fits.RowSetFits, "_fit_batch", record)
    return batches


def test_a_law_rejected_on_its_fit_to_all_rows_is_not_fitted_on_the_other_folds(monkeypatch):
    N = np.geomspace(1e6, 1e9, 12)
    region = ProbeRegion(axis_columns=(0,), monotone={0: "decreasing"}, floor=True)
    problem = Problem(("N",), N[:, None], 2 + 30 * N**-0.2, np.full(12, "g"), np.log(N), 3, region, "loss")
    folds = make_folds(problem, 0)  # the two that hold out 3+ rows
    smallest, every_row = int(np.argmin([fold.train.size for fold in folds])), len(folds)
    config = FitConfig(n_starts=6, seed=0)
    batches = _fitted(monkeypatch)
    monkeypatch.setattr(warm_fits, "ONE_BATCH_ROWS", 0)  # fitted apart, as the large tasks are
    floorless, fit = evaluate_proposal(problem, Proposal("A - B * log(N)"), folds, config=config,
                                       complexity_penalty=0.0)
    assert floorless.status == "rejected" and floorless.reason.startswith("has no floor")
    # The smallest fold warm-starts the fit on all rows; the other fold is never fitted.
    assert fit is not None and batches == [[smallest], [every_row]]
    batches.clear()
    floored, _ = evaluate_proposal(problem, Proposal("E + A * (N / 1e8)**(-alpha)"), folds, config=config,
                                   complexity_penalty=0.0)
    assert floored.status == "ok", floored.reason
    assert len(floored.fold_r2) == len(folds)
    assert batches == [[smallest], [every_row], [1 - smallest]]
    batches.clear()
    monkeypatch.setattr(warm_fits, "ONE_BATCH_ROWS", 20_000)  # small fits: every set in the first batch
    evaluate_proposal(problem, Proposal("A - B * log(N)"), folds, config=config, complexity_penalty=0.0)
    assert batches == [[0, 1, 2]]


def test_a_law_without_a_variable_that_has_an_optimum_is_rejected_before_any_fit(monkeypatch):
    rng = np.random.default_rng(0)
    lr, D = 10 ** rng.uniform(-4, -2, 40), 10 ** rng.uniform(8, 10, 40)
    y = 2 + 0.1 * np.log(lr / 1e-3) ** 2 + 50 * D**-0.2
    region = ProbeRegion(axis_columns=(1,), optima=(0,))
    problem = Problem(("lr", "D"), np.column_stack([lr, D]), y, np.full(40, "g"), np.log(D), 5, region, "loss")
    batches = _fitted(monkeypatch)
    folds = extrapolation_folds(problem.order, problem.groups)
    candidate, fit = evaluate_proposal(problem, Proposal("E + B / D**b"), folds, config=FitConfig(n_starts=2),
                                       complexity_penalty=0.0)
    assert candidate.status == "rejected" and fit is None and batches == []
    assert candidate.reason == (
        "has no interior minimum in column 0, where the target has an optimum (lr is not in the law)"
    )

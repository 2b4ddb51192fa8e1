import numpy as np
import pytest

from sld.search import fit_law_grouped, parse_law, score_predictions
from sld.search.candidates import Candidate, Problem, evaluate_proposal, law_from_proposal
from sld.search.engine import EngineConfig, SearchState, finalize, make_folds
from sld.search.errors import SearchError
from sld.search.fitting import FitConfig
from sld.search.proposals import Proposal, deduplicate
from sld.search.selection import ProbeRegion


def _power_law_problem(noise: float = 0.0, seed: int = 0) -> Problem:
    rng = np.random.default_rng(seed)
    N = np.geomspace(1e6, 1e10, 25)
    y = 1.7 + 400 * N**-0.3 + rng.normal(0, noise, N.size)
    return Problem(
        ("N",),
        N[:, None],
        y,
        np.full(N.size, "g"),
        np.log(N),
        max_params=6,
        region=ProbeRegion(axis_columns=(0,), monotone={0: "decreasing"}),
        target="loss",
    )


FAST = {"backend": "none", "n_starts": 2}


def test_selector_avoids_the_in_sample_best_that_extrapolates_badly():
    problem = _power_law_problem(noise=0.02, seed=1)
    wiggly = Proposal("c0 + c1*log(N) + c2*log(N)**2 + c3*log(N)**3 + c4*log(N)**4 + c5*log(N)**5", source="test")
    true_form = Proposal("E + A * (N / 1e8)**(-alpha)", source="test")
    folds = make_folds(problem, 0)
    config = FitConfig(n_starts=6, seed=0)
    evaluated = {
        name: evaluate_proposal(problem, proposal, folds, config=config, complexity_penalty=0.01)[0]
        for name, proposal in (("wiggly", wiggly), ("true", true_form))
    }
    # The premise: the flexible form fits the training rows better...
    in_sample = {}
    for name, proposal in (("wiggly", wiggly), ("true", true_form)):
        law = law_from_proposal(proposal, problem.variables)
        fit = fit_law_grouped(law, problem.X, problem.y, problem.groups, config=config)
        in_sample[name] = score_predictions(problem.y, fit.predict(law, problem.X, problem.groups)).r2
    assert in_sample["wiggly"] > in_sample["true"]
    # ...yet the selector ranks the true form first, by extrapolation inside the training rows.
    state = SearchState(candidates=list(evaluated.values()))
    assert state.ranked()[0].expression == true_form.expression


def test_canonical_duplicates_are_fitted_once():
    state = SearchState()
    proposals = [Proposal("A * N**(-a) + E"), Proposal("E + B * N**(-b)"), Proposal("E + B * N**(-b)")]
    assert len(deduplicate(proposals, state, ("N",))) == 1


def test_over_budget_and_unsafe_proposals_are_rejected_with_reasons():
    problem = _power_law_problem()
    folds = make_folds(problem, 0)
    config = FitConfig(n_starts=2, seed=0)
    too_big = evaluate_proposal(
        problem, Proposal("a+b*N+c*N**2+d*N**3+e*N**4+f*N**5+g*N**6"), folds, config=config, complexity_penalty=0.0
    )[0]
    assert too_big.status == "rejected" and "budget is 6" in too_big.reason
    unsafe = evaluate_proposal(problem, Proposal("__import__('os')"), folds, config=config, complexity_penalty=0.0)[0]
    assert unsafe.status == "rejected" and unsafe.reason


def test_nothing_validated_still_gives_a_law_with_a_warning():
    state = SearchState(candidates=[Candidate(expression="a*N", source="test", reason="hopeless: training R^2 -3")])
    best, _law, fit = finalize(_power_law_problem(), state, EngineConfig(**FAST))
    assert best.expression == "a*N" and fit.fits
    assert "passed validation" in state.warning and "hopeless" in state.warning


def test_nothing_fittable_is_a_clear_error():
    state = SearchState(candidates=[Candidate(expression="a*(", source="test", reason="syntax")])
    with pytest.raises(SearchError, match="could be fitted"):
        finalize(_power_law_problem(), state, EngineConfig(**FAST))


def test_near_ties_prefer_a_literature_family_then_the_objective():
    def candidate(expression, source, n_params, objective):
        return Candidate(
            expression=expression,
            source=source,
            n_params=n_params,
            status="ok",
            objective=objective,
            validation_nmse=objective,
            fold_r2=(1 - objective, 1 - objective),
        )

    state = SearchState(
        candidates=[
            candidate("generated", "evolution", 3, 0.100),
            candidate("family, 5 constants", "family", 5, 0.105),
            candidate("family, 4 constants", "family", 4, 0.108),
            candidate("family, far behind", "family", 2, 0.200),
        ]
    )
    order = [c.expression for c in state.preferred(0.1)[0]]
    assert order == ["family, 5 constants", "family, 4 constants", "generated", "family, far behind"]
    assert state.preferred(0.0)[0][0].expression == "generated"


def test_one_standard_error_of_the_folds_widens_the_near_ties():
    noisy_best = Candidate(
        "generated", source="evolution", status="ok", objective=0.20, validation_nmse=0.20, fold_r2=(0.95, 0.65)
    )
    family = Candidate("family", source="family", status="ok", objective=0.30, validation_nmse=0.30, fold_r2=(0.7, 0.7))
    state = SearchState(candidates=[noisy_best, family])
    # Fold errors 0.05 and 0.35: standard error 0.15, so 0.30 is within one error of 0.20 and the family wins.
    assert state.preferred(0.1)[0][0].expression == "family"
    steady_best = Candidate(
        "generated", source="evolution", status="ok", objective=0.20, validation_nmse=0.20, fold_r2=(0.8, 0.8)
    )
    assert SearchState(candidates=[steady_best, family]).preferred(0.1)[0][0].expression == "generated"


def test_a_refit_that_fits_barely_better_must_also_be_closer_to_the_consensus():
    from sld.search.consensus import probe_predictions
    from sld.search.engine import _refit_wins
    from sld.search.fitting import FitResult, GroupedFit
    from sld.search.selection import check_extrapolation

    rng = np.random.default_rng(0)
    x = np.linspace(1.0, 10.0, 30)
    y = 1.0 + 0.1 * x + rng.normal(0, 0.02, x.size)
    problem = Problem(("x",), x[:, None], y, np.full(x.size, "g"), x, max_params=3,
                      region=ProbeRegion(axis_columns=(0,), factors=(1.5, 2.0)), target="y")
    law = parse_law("a + b*x + c*x**2", ("x",))

    def fitted(params: np.ndarray) -> GroupedFit:
        return GroupedFit(fits={"g": FitResult(np.asarray(params, dtype=float), True, "", 0.0, 1)})

    truth = fitted(np.array([1.0, 0.1, 0.0]))
    # The least-squares optimum bends to the noise: a little lower training error, a curve beyond the data.
    optimum = fitted(np.linalg.lstsq(np.vander(x, 3, increasing=True), y, rcond=None)[0])
    assert check_extrapolation(law, optimum, problem.X, y, problem.groups, problem.region) is None
    at = {name: probe_predictions(law, f, problem.X, problem.groups, problem.region) for name, f in
          (("truth", truth), ("optimum", optimum))}
    assert not _refit_wins(law, truth, optimum, problem, at["truth"], tolerance=0.1)
    assert _refit_wins(law, truth, optimum, problem, at["optimum"], tolerance=0.1)
    # Clearly better on the training rows (beyond the tolerance), the refit wins whatever the consensus says.
    off = fitted(np.array([1.1, 0.1, 0.0]))
    assert _refit_wins(law, off, optimum, problem, at["truth"], tolerance=0.1)
    # A worse refit never wins.
    assert not _refit_wins(law, optimum, truth, problem, at["truth"], tolerance=0.1)


def _grouped_problem() -> Problem:
    N = np.tile(np.geomspace(1e6, 1e10, 12), 3)
    groups = np.repeat(["a", "b", "c"], 12)
    y = np.select([groups == "a", groups == "b"], [1.5, 2.0], 2.5) + 300 * N**-0.3
    region = ProbeRegion(axis_columns=(0,), monotone={0: "decreasing"})
    return Problem(("N",), N[:, None], y, groups, np.log(N), max_params=4, region=region, target="loss")


def test_a_validated_candidate_keeps_its_fit_and_the_choice_reads_it_instead_of_fitting_again():
    problem = _grouped_problem()
    config = EngineConfig(**FAST)
    candidate, fit = evaluate_proposal(
        problem, Proposal("E + A * (N / 1e8)**(-alpha)", shared=("alpha",)), make_folds(problem, 0),
        config=config.fit_config(), complexity_penalty=0.01,
    )
    assert candidate.status == "ok" and fit is not None
    assert set(candidate.group_constants) == {"a", "b", "c"}
    law = law_from_proposal(candidate.proposal(), problem.variables)
    recorded = candidate.recorded_fit(law, problem.X, problem.y, problem.groups)
    assert recorded is not None
    np.testing.assert_array_equal(
        recorded.predict(law, problem.X, problem.groups), fit.predict(law, problem.X, problem.groups)
    )
    # Through the run log and back, exactly.
    from sld.search.candidates import candidate_from_record

    assert candidate_from_record(candidate.as_record()) == candidate
    # A record without its fit, or one for other groups, is evaluated again, to the same choice.
    bare = Candidate(**{**candidate.__dict__, "group_constants": {}})
    assert bare.recorded_fit(law, problem.X, problem.y, problem.groups) is None
    assert candidate.recorded_fit(law, problem.X[:12], problem.y[:12], problem.groups[:12]) is None
    chosen = [finalize(problem, SearchState(candidates=[c]), config) for c in (candidate, bare)]
    assert chosen[0][0].expression == chosen[1][0].expression
    np.testing.assert_allclose(
        chosen[0][2].predict(law, problem.X, problem.groups), chosen[1][2].predict(law, problem.X, problem.groups)
    )


def test_a_choice_made_on_one_validation_fold_comes_with_a_warning():
    # 4 sizes, 3 runs each: the folds keep 3 sizes to fit on, so all of them hold out the largest, one fold.
    N = np.repeat(np.geomspace(1e6, 1e9, 4), 3)
    y = 1.7 + 400 * N**-0.3 + np.random.default_rng(0).normal(0, 0.01, N.size)
    region = ProbeRegion(axis_columns=(0,), monotone={0: "decreasing"})
    one_fold = Problem(("N",), N[:, None], y, np.full(N.size, "g"), np.log(N), 6, region, "loss")
    config = EngineConfig(**FAST)
    # 25 sizes: 4 folds, less the one holding out the largest size alone (one row cannot rank laws).
    for problem, folds in ((one_fold, 1), (_power_law_problem(), 3)):
        assert len(make_folds(problem, 0)) == folds
        candidate, _fit = evaluate_proposal(
            problem,
            Proposal("E + A * (N / 1e8)**(-alpha)"),
            make_folds(problem, 0),
            config=config.fit_config(),
            complexity_penalty=0.01,
        )
        state = SearchState(candidates=[candidate])
        finalize(problem, state, config)
        assert state.ranked()
        if folds == 1:
            assert state.warning.startswith("Validation of target 'loss' rests on one fold (3 held-out rows of 12)")
            assert "--seed" in state.warning
        else:
            assert state.warning == ""


def test_laws_that_keep_every_trend_come_before_the_ones_that_leave_a_trend_out():
    def candidate(expression: str, source: str, objective: float) -> Candidate:
        return Candidate(expression, source=source, status="ok", objective=objective, validation_nmse=objective,
                         fold_r2=(1 - objective, 1 - objective))

    state = SearchState(
        candidates=[
            candidate("E + A/N**a", "family", 0.100),  # leaves D out
            candidate("E + A/N**a + B/D**b", "evolution", 0.105),
            candidate("E + B/D**b + A*N", "evolution", 0.300),  # not a near-tie: stays behind
        ]
    )
    region = ProbeRegion(axis_columns=(1,), monotone={0: "decreasing", 1: "decreasing"})
    order, n_tied = state.preferred(0.1, variables=("N", "D"), region=region)
    # The law without D predicts no change along D, which the data show falling: it comes after every law with
    # both, and the near-ties are those of the best law with both.
    assert [c.expression for c in order] == ["E + A/N**a + B/D**b", "E + B/D**b + A*N", "E + A/N**a"]
    assert n_tied == 1
    # Only when no validated law keeps every trend do the others lead.
    alone, _ = SearchState(candidates=[state.candidates[0]]).preferred(0.1, variables=("N", "D"), region=region)
    assert [c.expression for c in alone] == ["E + A/N**a"]
    # Without a region no trend is known: the family leads the near-ties.
    assert state.preferred(0.1)[0][0].expression == "E + A/N**a"

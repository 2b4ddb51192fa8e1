import time

import numpy as np

from sld.search.candidates import Candidate, Problem
from sld.search.engine import EngineConfig, SearchState, finalize, make_folds
from sld.search.pool import make_pool
from sld.search.profile import profile_data
from sld.search.proposals import deduplicate, round_proposals
from sld.search.selection import ProbeRegion

# The clean NMT learning curve "6 Enc, 6 Dec" of Alabdulmohsin et al. 2022 (rnsl benchmark, Training == 1 rows):
# log-perplexity vs seen examples. Its tail flattens, so folds' R^2 can be hopeless although the families fit.
EXAMPLES = 5e5 * 2.0 ** np.arange(10)
LOSS = np.array([0.931175, 0.743928, 0.636239, 0.556788, 0.482007, 0.409609, 0.373741, 0.353173, 0.349071, 0.340278])
GROUPS = np.full(LOSS.size, "a")


def _problem() -> Problem:
    region = ProbeRegion(axis_columns=(0,), monotone={0: "decreasing"}, floor=True)
    return Problem(("examples",), EXAMPLES[:, None], LOSS, GROUPS, np.log(EXAMPLES), 6, region, "loss")


def test_a_clean_curve_always_gets_a_law():
    # The offline schedule's family round, evaluated and finalized as the loop does.
    problem, config, state = _problem(), EngineConfig(backend="none"), SearchState()
    profile = profile_data(problem.X, problem.y, problem.variables, problem.groups)
    proposals = deduplicate(round_proposals(problem, state, config, profile), state, problem.variables)
    with make_pool(problem, make_folds(problem, config.seed), config) as pool:
        state.add(pool.evaluate(proposals, time.monotonic() + 60))
    _best, law, fit = finalize(problem, state, config)
    predicted = fit.predict(law, EXAMPLES[:, None], GROUPS)
    assert np.all(np.isfinite(predicted)) and np.max(np.abs(predicted - LOSS)) < 0.05
    assert bool(state.warning) == (not state.ranked())


def test_when_nothing_validates_the_best_plausible_law_comes_with_a_warning_naming_why():
    hopeless = "validation: hopeless: a fold's validation R^2 is -26.8"
    state = SearchState(
        candidates=[
            Candidate("a + b * log(examples)", "family", reason=hopeless),  # falls without a floor: implausible
            Candidate("E + A * examples**(-alpha)", "family", reason=hopeless),
            Candidate("a * exp(b * exp(c * examples))", "evolution", reason=hopeless),
        ]
    )
    best, law, fit = finalize(_problem(), state, EngineConfig(backend="none"))
    assert best.expression == "E + A * examples**(-alpha)"
    assert np.max(np.abs(fit.predict(law, EXAMPLES[:, None], GROUPS) - LOSS)) < 0.05
    warning = state.warning
    assert warning.startswith("No law for target 'loss' passed validation (3 tried)")
    assert "flattens" in warning and "hopeless (3)" in warning and "passes the plausibility checks" in warning

import numpy as np
import pytest

from sld.search import SearchError, fit_law, parse_law
from sld.search.backends.base import InputTransform, ProposedLaw, select_diverse
from sld.search.backends.operon import OperonBackend, OperonConfig

N = np.geomspace(1e6, 1e9, 100)
POWER_LAW = 2 + 3 * N**-0.5
FAST = OperonConfig(restarts=1, generations=30)


@pytest.fixture(scope="module")
def power_law_laws():
    """Operon's proposals for y = 2 + 3 N^-0.5 (noise-free, 100 points)."""
    return OperonBackend().propose_laws(N[:, None], POWER_LAW, ["N"], max_params=3, seed=0)


def r2(y, prediction):
    return 1 - np.mean((y - prediction) ** 2) / np.var(y)


def test_recovers_an_offset_power_law(power_law_laws):
    best = -np.inf
    for proposal in power_law_laws:
        law = parse_law(proposal.expression, ["N"])
        fit = fit_law(law, N[:, None], POWER_LAW)
        if fit.success:
            best = max(best, r2(POWER_LAW, law.predict(N[:, None], fit.params)))
    assert best > 0.999


def test_proposals_parse_respect_the_budget_and_use_original_names(power_law_laws):
    assert 0 < len(power_law_laws) <= 20
    texts = [p.expression for p in power_law_laws]
    assert len(set(texts)) == len(texts)
    for proposal in power_law_laws:
        law = parse_law(proposal.expression, ["N"])
        assert law.n_params == proposal.n_params <= 3
        assert set(proposal.init) == set(law.constant_names)
        assert "X1" not in proposal.expression and "log_N" not in proposal.expression
    # On log N, the power law is c0 + c1*exp(c2*log N); it comes back as a power of N.
    assert any("N**" in text for text in texts)


def test_max_params_and_n_laws_are_limits():
    laws = OperonBackend(FAST).propose(N[:, None], POWER_LAW, ["N"], max_params=2, n_laws=3, seed=1)
    assert 0 < len(laws) <= 3
    assert all(parse_law(text, ["N"]).n_params <= 2 for text in laws)


def test_same_seed_same_output():
    backend = OperonBackend(FAST)
    first = backend.propose(N[:, None], POWER_LAW, ["N"], max_params=3, seed=3)
    assert first == backend.propose(N[:, None], POWER_LAW, ["N"], max_params=3, seed=3)


def test_log_target_finds_a_product_of_power_laws():
    rng = np.random.default_rng(0)
    X = np.column_stack([10 ** rng.uniform(6, 9, 200), 10 ** rng.uniform(8, 11, 200), rng.uniform(1, 2, 200)])
    y = 5 * X[:, 0] ** -0.3 * X[:, 1] ** 0.2
    laws = OperonBackend(FAST).propose_laws(X, y, ["N", "D", "lr"], max_params=3, seed=0)
    assert any(p.r2 > 0.9999 and "log" not in p.expression for p in laws)


def test_inputs_are_logged_when_positive_and_wide():
    X = np.column_stack([np.geomspace(1, 1e3, 5), np.linspace(1, 2, 5), np.linspace(-1, 10, 5)])
    transform = InputTransform.choose(X, ["N", "lr", "t"])
    assert transform.logged == (True, False, False)
    assert transform.input_names() == ["log_N", "lr", "t"]
    assert [str(s) for s in transform.symbols()] == ["log(N)", "lr", "t"]
    np.testing.assert_allclose(transform.apply(X)[:, 0], np.log(X[:, 0]))
    np.testing.assert_array_equal(transform.apply(X)[:, 1:], X[:, 1:])


def test_selection_walks_the_pareto_front_before_repeating():
    proposals = [
        ProposedLaw("a", n_params=1, size=5, r2=0.5),
        ProposedLaw("b", n_params=2, size=9, r2=0.9),
        ProposedLaw("c", n_params=2, size=9, r2=0.8),
        ProposedLaw("d", n_params=3, size=15, r2=0.99),
        ProposedLaw("a", n_params=1, size=5, r2=0.6),
    ]
    chosen = select_diverse(proposals, 3)
    assert [p.expression for p in chosen] == ["d", "b", "a"]
    assert chosen[2].r2 == 0.6


def test_bad_shapes_are_search_errors():
    with pytest.raises(SearchError, match="shape"):
        OperonBackend().propose(N[:, None], POWER_LAW[:10], ["N"], max_params=3)
    with pytest.raises(SearchError, match="shape"):
        OperonBackend().propose(N[:, None], POWER_LAW, ["N", "D"], max_params=3)


def test_engine_starts_refits_from_the_values_operon_found():
    from sld.search.candidates import Problem
    from sld.search.engine import EngineConfig
    from sld.search.proposals import backend_proposals

    problem = Problem(("N",), N[:, None], POWER_LAW, np.full(N.size, "g"), np.log(N), max_params=3)
    proposals = backend_proposals(problem, EngineConfig(backend="operon", backend_time_s=5, seed=0))
    assert proposals and all(p.source == "operon" for p in proposals)
    for proposal in proposals:
        law = parse_law(proposal.expression, ["N"])
        assert set(proposal.bounds) == set(law.constant_names)
        assert all(np.isfinite(init) for _, _, init in proposal.bounds.values())

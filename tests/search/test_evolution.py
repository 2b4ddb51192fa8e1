from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest
import sympy
from hypothesis import given, settings
from hypothesis import strategies as st

from sld.search.evolution import Mutation, _rank_deficiency, crossover, mutate, sharing_variants
from sld.search.expressions import Law, parse_law

ND = ("N", "D")
CHINCHILLA = "E + A/N**alpha + B/D**beta"


@pytest.fixture(scope="module")
def chinchilla() -> Law:
    """The Chinchilla form over N and D (5 constants)."""
    return parse_law(CHINCHILLA, ND)


@pytest.fixture(scope="module")
def rich_children(chinchilla: Law) -> list[Mutation]:
    """Every child of the Chinchilla form within 8 constants."""
    return all_children(chinchilla, ND, max_params=8)


def all_children(law: Law, variables: Sequence[str], max_params: int, **kwargs: object) -> list[Mutation]:
    return mutate(law, variables=variables, max_params=max_params, rng=np.random.default_rng(0), n=500, **kwargs)


def check_children(children: Sequence[Mutation], parents: Sequence[Law], max_params: int) -> list[Law]:
    """Every child parses over the parents' variables, fits the budget, and is new."""
    variables = parents[0].variables
    laws = [parse_law(child.expression, variables) for child in children]
    keys = [law.canonical_key for law in laws]
    assert len(set(keys)) == len(keys)
    assert not set(keys) & {parent.canonical_key for parent in parents}
    for law in laws:
        assert 1 <= law.n_params <= max_params
        assert {str(s) for s in law.expr.free_symbols} & set(variables)
        assert parse_law(law.text, variables).canonical_key == law.canonical_key
    return laws


def texts(children: Sequence[Mutation], operator: str) -> set[str]:
    return {child.expression for child in children if child.operator == operator}


def test_every_operator_makes_valid_children_of_chinchilla(chinchilla: Law, rich_children: list[Mutation]) -> None:
    laws = check_children(rich_children, [chinchilla], max_params=8)
    # No child has constants the data cannot tell apart, e.g. k1*(E + A/N**alpha + B/D**beta).
    assert all(_rank_deficiency(law) == 0 for law in laws)
    assert "wrap_scale" not in {c.operator for c in rich_children}
    assert {c.operator for c in rich_children} >= {
        "add_term",
        "remove_term",
        "swap_transform",
        "perturb_exponent",
        "wrap_power",
    }


def test_remove_term_drops_each_top_level_term(chinchilla: Law) -> None:
    removed = texts(all_children(chinchilla, ND, max_params=5), "remove_term")
    assert removed == {"A/N**alpha + B/D**beta", "A/N**alpha + E", "B/D**beta + E"}


def test_add_term_uses_the_menu_with_fresh_constants(rich_children: list[Mutation]) -> None:
    added = texts(rich_children, "add_term")
    assert "A/N**alpha + B/D**beta + E + k1*log(N)" in added
    assert "A/N**alpha + B/D**beta + E + k1/N**k2" in added
    assert "A/N**alpha + B/D**beta + E + N*k1" in added
    assert "A/N**alpha + B/D**beta + E + k1/(D**k3*N**k2)" in added
    assert "A/N**alpha + B/D**beta + E/N**k1" in added  # a term times a power of a variable it lacks


def test_swap_transform_and_perturb_exponent(chinchilla: Law) -> None:
    children = all_children(chinchilla, ND, max_params=6)
    swapped = texts(children, "swap_transform")
    assert {"A/log(N)**alpha + B/D**beta + E", "A/(N + k1)**alpha + B/D**beta + E"} <= swapped
    perturbed = texts(children, "perturb_exponent")
    assert {"A/sqrt(N) + B/D**beta + E", "A/N + B/D**beta + E", "A/N**2 + B/D**beta + E"} <= perturbed
    one_var = parse_law("E + A/N", ["N"])
    perturbed = texts(all_children(one_var, ["N"], max_params=3), "perturb_exponent")
    assert {"A/N**k1 + E", "A/sqrt(N) + E", "A/N**2 + E"} <= perturbed
    normalised = parse_law("E + A*(N/1e9)**(-alpha)", ["N"])
    # The offset of a normalised variable is added after the normalisation, so it stays near unit scale.
    assert "A/(1.0e-9*N + k1)**alpha + E" in texts(all_children(normalised, ["N"], max_params=4), "swap_transform")
    logged = parse_law("E + A*log(N)", ["N"])
    assert "A*N + E" in texts(all_children(logged, ["N"], max_params=3), "swap_transform")


def test_wraps_on_a_one_variable_law() -> None:
    law = parse_law("A/N**alpha", ["N"])
    children = all_children(law, ["N"], max_params=3)
    check_children(children, [law], max_params=3)
    assert "A/N**alpha + k1" in texts(children, "wrap_offset")
    shifted = parse_law("E + N**(-alpha)", ["N"])
    assert "k1*(E + N**(-alpha))" in texts(all_children(shifted, ["N"], max_params=3), "wrap_scale")


def test_one_variable_law_children_are_valid() -> None:
    law = parse_law("a*x**(-b) + c", ["x"])
    for max_params in (3, 4, 6):
        children = all_children(law, ["x"], max_params)
        assert children
        check_children(children, [law], max_params)


def test_budget_is_respected(chinchilla: Law) -> None:
    children = all_children(chinchilla, ND, max_params=5)
    assert children
    assert "add_term" not in {c.operator for c in children}
    check_children(children, [chinchilla], max_params=5)
    assert mutate(chinchilla, variables=ND, max_params=1, rng=np.random.default_rng(0)) == []


def test_rank_deficiency_counts_redundant_constants() -> None:
    assert _rank_deficiency(parse_law("E + A/N**alpha", ["N"])) == 0
    assert _rank_deficiency(parse_law("k1*(E + A/N**alpha)", ["N"])) == 1
    assert _rank_deficiency(parse_law("A*N**(-alpha - k1) + E + k2", ["N"])) == 2


def test_fresh_names_do_not_collide() -> None:
    law = parse_law("k1 + k3/N**k2", ["N"])
    added = [c for c in all_children(law, ["N"], max_params=6) if c.operator == "add_term"]
    assert added
    for child in added:
        assert parse_law(child.expression, ["N"]).n_params > law.n_params


def test_positive_limits_powers_and_logs(chinchilla: Law) -> None:
    children = all_children(chinchilla, ND, max_params=8, positive=frozenset({"N"}))
    joined = " ".join(c.expression for c in children if c.operator in ("add_term", "swap_transform"))
    assert "log(N)" in joined
    assert "log(D)" not in joined
    assert "D**k" not in joined


def test_mutate_is_deterministic_for_a_seed(chinchilla: Law) -> None:
    def run(seed: int) -> list[Mutation]:
        return mutate(chinchilla, variables=ND, max_params=7, rng=np.random.default_rng(seed), n=6)

    assert run(3) == run(3)
    assert len(run(3)) == 6
    assert run(3) != run(4)


@settings(max_examples=8, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 6), max_params=st.integers(2, 7))
def test_children_are_always_valid(seed: int, n: int, max_params: int) -> None:
    law = parse_law(CHINCHILLA, ND)
    children = mutate(law, variables=ND, max_params=max_params, rng=np.random.default_rng(seed), n=n)
    assert len(children) <= n
    check_children(children, [law], max_params)


def test_crossover_swaps_terms_and_renames_constants() -> None:
    a = parse_law("E + A/N**alpha", ["N", "D"])
    b = parse_law("E + A*log(D) + B*N", ["N", "D"])
    children = crossover(a, b, max_params=6, rng=np.random.default_rng(0), n=50)
    assert children
    assert {c.operator for c in children} == {"crossover"}
    laws = check_children(children, [a, b], max_params=6)
    texts_ = {law.text for law in laws}
    # Incoming constants that clash with the receiving law's are renamed, so the two scales stay apart.
    assert "B*N + E + k1/N**alpha" in texts_
    assert "A/N**alpha + k1*log(D)" in texts_
    # A sum of halves never keeps two additive constants.
    variables = {sympy.Symbol("N"), sympy.Symbol("D")}
    for law in laws:
        assert sum(not (t.free_symbols & variables) for t in law.expr.args) <= 1


def test_crossover_budget_determinism_and_variables(chinchilla: Law) -> None:
    other = parse_law("L + C*log(N)*D**(-gamma)", ND)
    first = crossover(chinchilla, other, max_params=5, rng=np.random.default_rng(1))
    assert first == crossover(chinchilla, other, max_params=5, rng=np.random.default_rng(1))
    assert 0 < len(first) <= 4
    check_children(first, [chinchilla, other], max_params=5)
    with pytest.raises(ValueError, match="same variables"):
        crossover(chinchilla, parse_law("E + A/N**alpha", ["N"]), max_params=5, rng=np.random.default_rng(0))


def test_sharing_variants_add_or_remove_one_constant(chinchilla: Law) -> None:
    none_shared = sharing_variants(chinchilla, shared=frozenset())
    assert none_shared == [frozenset({name}) for name in chinchilla.constant_names]
    variants = sharing_variants(chinchilla, shared=frozenset({"alpha", "beta", "gone"}))
    assert variants == [
        frozenset({"alpha", "beta", "E"}),
        frozenset({"alpha", "beta", "A"}),
        frozenset({"alpha", "beta", "B"}),
        frozenset({"beta"}),
        frozenset({"alpha"}),
    ]
    assert sharing_variants(chinchilla, shared=frozenset(chinchilla.constant_names))[-1] == frozenset(
        {"E", "A", "alpha", "B"}
    )

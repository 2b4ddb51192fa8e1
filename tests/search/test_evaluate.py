"""The compiled evaluators: prepared feature-only columns, powers through their logs, batched constants."""

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from sld.search import parse_law


def test_prepared_columns_hold_feature_only_subtrees_once_and_give_the_same_values():
    law = parse_law("A * (N / 1e9)**(-alpha) + B * (N / 1e9)**(-beta) + C * log(D / 1e6)", ["N", "D"])
    cols = np.array([np.geomspace(1e8, 1e11, 7), np.geomspace(1e7, 1e9, 7)])
    prepared = law.compiled.prepare(cols)
    # N/1e9 and its log (shared by both powers), and log(D/1e6): three columns after the two features.
    assert prepared.shape == (5, 7)
    assert_array_equal(prepared[:2], cols)
    theta = np.array([2.0, 0.3, 1.5, 0.1, -0.2])
    N, D = cols
    expected = 2.0 * (N / 1e9) ** -0.3 + 1.5 * (N / 1e9) ** -0.1 - 0.2 * np.log(D / 1e6)
    assert_allclose(law.compiled.values(cols, theta), expected, rtol=1e-13)
    assert_allclose(law.compiled.values(prepared, theta, prepared=True), expected, rtol=1e-13)
    value, gradients = law.compiled.values_and_gradients(prepared, theta, [1], prepared=True)
    assert_allclose(value, expected, rtol=1e-13)
    assert_allclose(gradients[0], -2.0 * (N / 1e9) ** -0.3 * np.log(N / 1e9), rtol=1e-12)


@pytest.mark.parametrize("b", [0.0, 1.0, 3.0, 0.5, -1.0])
def test_powers_of_bases_that_are_not_positive_keep_numpys_answers(b):
    law = parse_law("a * x**b", ["x"])
    x = np.array([0.0, -2.0, 2.0, np.inf, 0.5])
    with np.errstate(all="ignore"):
        got = law.compiled.values(x[None, :], np.array([1.0, b]))
        value, jac = law.compiled.values_and_jacobian(x[None, :], np.array([1.0, b]))
        expected = np.power(x, b)
    outside = np.array([True, True, False, True, False])  # 0, -2 and inf: pow's own answers, exactly
    for out in (got, value):
        assert_array_equal(out[outside], expected[outside])  # 0**0 == 1, (-2)**3 == -8, nan for (-2)**0.5
        assert_allclose(out[~outside], expected[~outside], rtol=1e-14)  # exp(b * log(x)) within rounding
    assert_allclose(jac[2:3, 1], expected[2:3] * np.log(2.0), rtol=1e-13)


@pytest.mark.parametrize("exponent", [2.0, -1.0, 0.5, -0.5, -2.0, 1.5])
def test_numeric_powers_of_a_fitted_base_give_pows_values_and_slopes(exponent):
    # The common exponents (a/b is a*b**-1, sqrt(b) is b**(1/2)) take their slope from the value instead of a
    # second pow; at 0, negative and infinite bases the answers must stay pow's.
    law = parse_law(f"(a + x)**({exponent})", ["x"])
    x = np.array([-1.0, -3.0, 1.0, np.inf, 0.5, 2.0])  # a = 1: bases 0, -2, 2, inf, 1.5, 3
    with np.errstate(all="ignore"):
        value, jac = law.compiled.values_and_jacobian(x[None, :], np.array([1.0]))
        base = 1.0 + x
        expected = np.power(base, exponent)
        slope = exponent * np.power(base, exponent - 1.0)
    assert_allclose(value, expected, rtol=1e-15, equal_nan=True)
    assert_allclose(jac[:, 0], slope, rtol=1e-14, equal_nan=True)


def test_constants_per_problem_broadcast_over_a_batch_of_rows():
    law = parse_law("E + A * (x / 10)**(-alpha)", ["x"])
    x = np.geomspace(1.0, 100.0, 6)
    thetas = np.array([[1.0, 2.0, 0.3], [0.5, 4.0, 0.7], [2.0, 1.0, 0.1]])  # three problems
    cols = np.broadcast_to(x, (3, 6))[None]  # (n_vars, b, m)
    prepared = law.compiled.prepare(cols)
    value, gradients = law.compiled.values_and_gradients(prepared, thetas.T[:, :, None], [0, 1, 2], prepared=True)
    assert value.shape == (3, 6) and gradients.shape == (3, 3, 6)
    for k, theta in enumerate(thetas):
        alone, jac = law.compiled.values_and_jacobian(x[None, :], theta)
        assert_allclose(value[k], alone, rtol=1e-14)
        assert_allclose(gradients[:, k].T, jac, rtol=1e-14)


def test_laws_without_feature_only_subtrees_need_no_preparation():
    law = parse_law("a * x + b", ["x"])
    cols = np.arange(1.0, 4.0)[None, :]
    assert law.compiled.prepare(cols) is cols
    assert_allclose(law.compiled.values(cols, np.array([2.0, 1.0])), [3.0, 5.0, 7.0])


def test_overflow_is_a_result_even_outside_errstate():
    # Warnings are errors in the test suite: a caller that forgets np.errstate must still get inf, not a raise.
    law = parse_law("a * x**b", ["x"])
    value, gradients = law.compiled.values_and_gradients(np.array([[1e-300, 2.0]]), np.array([1.0, -5.0]), [1])
    assert law.compiled.values(np.array([[1e-300, 2.0]]), np.array([1.0, -5.0]))[0] == np.inf
    assert value[0] == np.inf and np.isfinite(gradients[0, 1])

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from pydantic import ValidationError

from sld.search import ConstantSpec, FitConfig, fit_law, fit_law_grouped, parse_law

# Hoffmann et al. 2022 (Chinchilla), Approach 3: L = E + A/N^alpha + B/D^beta.
CHINCHILLA = np.array([1.69, 406.4, 0.34, 410.7, 0.28])
BOUNDS = {
    "E": ConstantSpec("E", 0.0, 10.0),
    "A": ConstantSpec("A", 0.0, 1e4),
    "alpha": ConstantSpec("alpha", 0.0, 2.0),
    "B": ConstantSpec("B", 0.0, 1e4),
    "beta": ConstantSpec("beta", 0.0, 2.0),
}


def chinchilla_law(constants=BOUNDS):
    return parse_law("E + A/N^alpha + B/D^beta", ["N", "D"], constants=constants)


def chinchilla_grid():
    N, D = np.meshgrid(np.logspace(7, 10, 8), np.logspace(9, 12, 8))
    return np.column_stack([N.ravel(), D.ravel()])


@pytest.mark.parametrize("log_residuals", [False, True])
def test_recovers_chinchilla_constants_from_noise_free_data(log_residuals):
    law, X = chinchilla_law(), chinchilla_grid()
    fit = fit_law(law, X, law.predict(X, CHINCHILLA), config=FitConfig(log_residuals=log_residuals))
    assert fit.success, fit.message
    assert_allclose(fit.params, CHINCHILLA, rtol=1e-3)
    assert fit.mse < 1e-12
    assert fit.n_starts_ok >= 1


def test_recovers_chinchilla_constants_without_bounds_from_poor_inits():
    law, X = chinchilla_law(constants={"alpha": ConstantSpec("alpha", init=0.5)}), chinchilla_grid()
    assert all(c.lower == -np.inf for c in law.constants)
    fit = fit_law(law, X, law.predict(X, CHINCHILLA), config=FitConfig(n_starts=16, seed=1))
    assert fit.success, fit.message
    assert_allclose(fit.params, CHINCHILLA, rtol=1e-3)


def test_recovers_constants_per_group_in_sorted_group_order():
    law = parse_law("E + A/N^alpha", ["N"], constants={k: BOUNDS[k] for k in ("E", "A", "alpha")})
    truth = {"small": np.array([2.0, 50.0, 0.3]), "big": np.array([1.5, 400.0, 0.45])}
    N = np.logspace(6, 10, 15)
    X = np.concatenate([N, N])[:, None]
    groups = np.repeat(["small", "big"], 15)
    y = np.concatenate([law.predict(N[:, None], truth["small"]), law.predict(N[:, None], truth["big"])])
    grouped = fit_law_grouped(law, X, y, groups)
    assert list(grouped.fits) == ["big", "small"]
    assert grouped.success
    for name, params in truth.items():
        assert_allclose(grouped.fits[name].params, params, rtol=1e-4)
    assert_allclose(grouped.predict(law, X, groups), y, rtol=1e-8)
    assert np.isnan(grouped.predict(law, X[:2], ["unseen", "small"])[0])


def test_fits_are_deterministic_for_a_seed():
    law = chinchilla_law()
    rng = np.random.default_rng(5)
    X = np.column_stack([10 ** rng.uniform(7, 10, 60), 10 ** rng.uniform(9, 12, 60)])
    y = law.predict(X, CHINCHILLA) * (1 + 0.02 * rng.standard_normal(60))
    config = FitConfig(n_starts=5, seed=7)
    first, second = fit_law(law, X, y, config=config), fit_law(law, X, y, config=config)
    assert_array_equal(first.params, second.params)
    assert first.mse == second.mse
    assert first.message == second.message


def test_a_law_without_finite_predictions_is_a_failed_result():
    law = parse_law("a * sqrt(-1 - x**2)", ["x"])
    fit = fit_law(law, np.linspace(0, 1, 10)[:, None], np.ones(10), config=FitConfig(n_starts=3))
    assert not fit.success
    assert fit.params is None
    assert fit.mse == np.inf
    assert fit.n_starts_ok == 0
    assert "no start of 3 gave finite predictions" in fit.message


def test_overflowing_starts_cost_only_those_starts():
    law = parse_law("exp(k*x) + c", ["x"])
    x = np.linspace(0, 700, 30)
    fit = fit_law(law, x[:, None], np.exp(0.01 * x) + 2.0, config=FitConfig(n_starts=8))
    assert fit.success
    assert_allclose(fit.params, [0.01, 2.0], rtol=1e-6)


def test_fewer_rows_than_constants_fits_anyway_with_a_note():
    law = parse_law("a + b*x + c*x**2", ["x"])
    fit = fit_law(law, [[1.0], [2.0]], [1.0, 2.0])
    assert fit.success
    assert "fewer rows (2) than free constants (3)" in fit.message
    assert fit.mse < 1e-12


def test_no_rows_is_a_failed_result():
    fit = fit_law(parse_law("a*x", ["x"]), np.empty((0, 1)), np.empty(0))
    assert not fit.success
    assert "no rows" in fit.message


def test_log_residuals_fall_back_to_linear_for_non_positive_targets():
    law = parse_law("a*x + b", ["x"])
    x = np.linspace(-1, 1, 10)
    fit = fit_law(law, x[:, None], 2 * x, config=FitConfig(log_residuals=True))
    assert "fitted linear residuals" in fit.message
    assert_allclose(fit.params, [2.0, 0.0], atol=1e-8)


def test_robust_loss_resists_an_outlier():
    law = parse_law("a*x + b", ["x"])
    x = np.linspace(0, 10, 21)
    y = 2 * x + 1
    y[5] += 100.0
    robust = fit_law(law, x[:, None], y, config=FitConfig(loss="soft_l1", f_scale=0.1))
    plain = fit_law(law, x[:, None], y)
    assert_allclose(robust.params, [2.0, 1.0], rtol=2e-2)
    assert abs(plain.params[1] - 1.0) > 1.0


def test_fixed_constants_keep_their_value():
    law = parse_law("a*x + b", ["x"], constants={"b": ConstantSpec("b", 1.0, 1.0)})
    x = np.linspace(0, 1, 5)
    fit = fit_law(law, x[:, None], 3 * x + 2)
    assert fit.params[1] == 1.0
    assert_allclose(fit.params[0], 3 * np.sum(x * (3 * x + 1)) / (3 * np.sum(x * x)), rtol=1e-6)


def test_warm_start_is_the_first_start_and_is_clipped_to_bounds():
    law = chinchilla_law()
    X = chinchilla_grid()
    fit = fit_law(law, X, law.predict(X, CHINCHILLA), config=FitConfig(n_starts=1), initial_params=CHINCHILLA)
    assert_allclose(fit.params, CHINCHILLA, rtol=1e-9)
    clipped = fit_law(law, X, law.predict(X, CHINCHILLA), config=FitConfig(n_starts=1), initial_params=-CHINCHILLA)
    assert clipped.success
    with pytest.raises(ValueError, match=r"initial_params has shape \(2,\); expected \(5,\)"):
        fit_law(law, X, law.predict(X, CHINCHILLA), initial_params=[1.0, 2.0])


def test_programmer_errors_raise_value_errors_naming_shapes():
    law = parse_law("a*x + b*y", ["x", "y"])
    with pytest.raises(ValueError, match=r"X has shape \(4, 3\) and y \(4,\); expected \(n, 2\)"):
        fit_law(law, np.ones((4, 3)), np.ones(4))
    with pytest.raises(ValueError, match=r"y \(3,\)"):
        fit_law(law, np.ones((4, 2)), np.ones(3))
    with pytest.raises(ValueError, match="non-finite"):
        fit_law(law, np.ones((2, 2)), [1.0, np.nan])
    with pytest.raises(ValueError, match=r"groups has shape \(3,\); expected \(4,\)"):
        fit_law_grouped(law, np.ones((4, 2)), np.ones(4), ["a", "b", "c"])


def test_config_is_frozen_and_strict():
    with pytest.raises(ValidationError):
        FitConfig(n_start=3)
    with pytest.raises(ValidationError):
        FitConfig(loss="l1")
    with pytest.raises(ValidationError):
        FitConfig().n_starts = 2  # type: ignore[misc]


def test_one_blas_thread_limits_every_blas_scipy_fits_with():
    import scipy.linalg  # noqa: F401 -- whatever BLAS scipy's solvers use must be among the limited ones
    from threadpoolctl import threadpool_info

    from sld.search.fitting import one_blas_thread

    with one_blas_thread():
        blas = [info for info in threadpool_info() if info["user_api"] == "blas"]
        assert blas and all(info["num_threads"] == 1 for info in blas)


def test_rows_of_one_group_predict_as_the_multi_group_path_does_and_unfitted_groups_give_nan():
    from sld.search.fitting import FitResult, GroupedFit

    law = parse_law("A * (N / 1e8)**(-alpha) + E", ["N"])
    X = np.linspace(1e7, 1e9, 50)[:, None]
    fit = GroupedFit(
        {
            "a": FitResult(np.array([2.0, 0.3, 1.5]), True, "", 0.0, 1),
            "b": FitResult(np.array([1.0, 0.1, 0.5]), True, "", 0.0, 1),
            "c": FitResult(None, False, "no finite start", float("inf"), 0),
        }
    )
    one = fit.predict(law, X, np.full(50, "a"))
    mixed = fit.predict(law, np.vstack([X, X]), np.array(["a"] * 50 + ["b"] * 50))
    assert_array_equal(one, mixed[:50])  # the one-group path is the same arithmetic, to the bit
    assert_allclose(one, 2.0 * (X[:, 0] / 1e8) ** -0.3 + 1.5, rtol=1e-12)
    assert np.isnan(fit.predict(law, X, np.full(50, "c"))).all()
    assert np.isnan(fit.predict(law, X, np.full(50, "unknown"))).all()

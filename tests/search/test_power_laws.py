import math

import numpy as np
import pytest
from numpy.testing import assert_allclose

from sld.search import SearchError
from sld.search.power_laws import M1, M2, M3, M4, distinct_points, m4_for_domain, make_peer
from sld.search.scoring import log_rmse

X = np.geomspace(1e5, 1e8, 14)


def test_m1_recovers_a_pure_power_law():
    model = M1().fit(X, 7.0 * X**-0.2)
    assert_allclose([model.beta_, model.c_], [7.0, -0.2], rtol=1e-9)
    assert_allclose(model.predict([1e9]), 7.0 * 1e9**-0.2, rtol=1e-9)


def test_m2_recovers_the_limiting_loss():
    model = M2().fit(X, 0.3 + 40.0 * X**-0.35)
    assert_allclose([model.eps_inf_, model.beta_, model.c_], [0.3, 40.0, -0.35], rtol=2e-3)
    assert model.n_iter_ >= 103  # the stopping rule is checked only after iteration 101


def test_m3_recovers_the_shifted_power_law():
    model = M3().fit(X, 2.0 * (1 / X + 1e-7) ** 0.3)
    assert_allclose(model.predict(X), 2.0 * (1 / X + 1e-7) ** 0.3, rtol=2e-3)
    assert model.c_ >= 0 and model.gamma_ >= 0
    assert_allclose(model.beta_ * model.gamma_**model.c_, 2.0 * 1e-7**0.3, rtol=0.05)


def _implicit_curve(eps_inf, eps_0, alpha, beta, c):
    # Choose losses, then solve (y - eps_inf) / (eps_0 - y)^alpha = beta x^c for x.
    y = np.linspace(0.95, 0.42, 16)
    x = (((y - eps_inf) / (eps_0 - y) ** alpha) / beta) ** (1 / c)
    return x, y


def test_m4_regression_recovers_an_implicit_curve_with_its_offsets_known():
    x, y = _implicit_curve(0.35, 1.0, 0.6, 30.0, -0.3)
    model = M4(eps_0=1.0, eps_inf=0.35, update_eps_0=False, update_eps_inf=False).fit(x[:12], y[:12])
    assert model.n_iter_ == 1  # both offsets frozen: one outer iteration
    assert_allclose([model.alpha_, model.beta_, model.c_], [0.6, 30.0, -0.3], rtol=1e-8)
    rmse, _ = log_rmse(y[12:], model.predict(x[12:]))
    assert rmse < 1e-4  # the scan's resolution, (eps_0 - eps_inf) / 10^4


@pytest.mark.slow
def test_m4_learns_the_offsets_of_an_implicit_curve():
    x, y = _implicit_curve(0.35, 1.0, 0.6, 30.0, -0.3)
    model = M4(eps_0=1.0, max_iterations=1000).fit(x, y)
    assert_allclose([model.eps_inf_, model.eps_0_, model.alpha_], [0.35, 1.0, 0.6], rtol=1e-3)


def test_m4_scan_and_root_agree_within_the_scan_resolution():
    x, y = _implicit_curve(0.35, 1.0, 0.6, 30.0, -0.3)
    frozen = {"eps_0": 1.0, "eps_inf": 0.3, "update_eps_0": False, "update_eps_inf": False}
    scan = M4(**frozen).fit(x, y)
    root = M4(**frozen, solver="root").fit(x, y)
    tolerance = (scan.eps_0_ - scan.eps_inf_) / 1e4
    assert np.max(np.abs(scan.predict(x * 10) - root.predict(x * 10))) <= tolerance
    # The exact root satisfies the implicit equation.
    w = root.predict(x * 10) - root.eps_inf_
    f = root.beta_ * (x * 10) ** root.c_
    assert_allclose(w, f * (root.eps_0_ - root.eps_inf_ - w) ** root.alpha_, rtol=1e-8)


def test_m4_keeps_its_offsets_within_the_bigbench_bounds():
    y = np.linspace(0.95, 0.7, 12)
    model = m4_for_domain("BB")
    model.max_iterations = 3  # projection runs after every one of the 3,000 gradient steps
    model.fit(X[:12], y)
    assert y.max() + 1e-3 <= model.eps_0_ <= 1.0 + 1e-3
    assert 0 <= model.eps_inf_ <= y.min() - 1e-3
    assert model.alpha_ >= 0 and model.c_ <= 0 and model.beta_ >= 1


def test_m4_needs_eps_0_above_the_losses():
    with pytest.raises(SearchError, match=r"eps_0=0\.9 must exceed"):
        M4(eps_0=0.9).fit(X[:3], [0.95, 0.93, 0.9])


def test_distinct_points_keep_the_last_loss_of_a_repeated_x():
    x, y = distinct_points([3.0, 1.0, 3.0, 2.0], [0.5, 0.9, 0.4, 0.7])
    assert x.tolist() == [1.0, 2.0, 3.0] and y.tolist() == [0.9, 0.7, 0.4]
    with pytest.raises(SearchError, match="x > 0 and y > 0"):
        distinct_points([1.0, 2.0], [0.5, -0.1])
    with pytest.raises(SearchError, match="Unknown peer"):
        make_peer("m5", "NMT")  # type: ignore[arg-type]


def test_log_rmse_and_standard_error_on_hand_checked_numbers():
    # e = (log 2)^2, 0, 0, 0: mean m = 0.12011325; population std s = sqrt(3) m; SE = sqrt(m + s/2) - sqrt(m).
    rmse, se = log_rmse([1.0, 1.0, 1.0, 1.0], [2.0, 1.0, 1.0, 1.0])
    m = math.log(2) ** 2 / 4
    assert rmse == pytest.approx(math.log(2) / 2)
    assert se == pytest.approx(math.sqrt(m + math.sqrt(3) * m / 2) - math.sqrt(m))
    assert se == pytest.approx(0.12685, abs=1e-5)
    assert all(math.isnan(v) for v in log_rmse([1.0], [-1.0]))

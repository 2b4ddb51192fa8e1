import numpy as np
import pytest

from sld.search import FitConfig, fit_law_grouped, parse_law
from sld.search.plausibility import (
    description_length,
    far_directions,
    far_trend,
    infer_region,
    nesting_reason,
    optimum_left_out_reason,
    printed,
    rounding_reason,
    trends_left_out,
    unit_reason,
)
from sld.search.selection import ProbeRegion, check_extrapolation, extrapolation_folds


def _checked(text: str, x: np.ndarray, y: np.ndarray, region: ProbeRegion) -> str | None:
    law = parse_law(text, ("x",))
    groups = np.full(x.size, "g")
    fit = fit_law_grouped(law, x[:, None], y, groups, config=FitConfig(seed=0, n_starts=8))
    return check_extrapolation(law, fit, x[:, None], y, groups, region)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a * exp(b * exp(c * x))", "nests exp inside exp"),
        ("a * exp(b * x**2 * exp(c))", "nests exp inside exp"),
        ("a + b * log(c * log(x))", "nests log inside log"),
        ("a * exp(b * x) * exp(c * x)", None),
        ("a + b * log(x) + exp(-c * x)", None),
    ],
)
def test_nesting_is_found_at_any_depth(text, expected):
    assert nesting_reason(parse_law(text, ("x",))) == expected


def test_nested_exp_is_rejected_by_the_extrapolation_check():
    x = np.linspace(0.1, 1.0, 12)
    y = 1 + np.exp(np.exp(0.5 * x))
    assert _checked("a + exp(b * exp(c * x))", x, y, ProbeRegion(axis_columns=(0,))) == "nests exp inside exp"


def test_description_length_separates_plain_from_baroque_forms_with_equal_constant_counts():
    plain = parse_law("E + A * x**(-a)", ("x",))
    baroque = parse_law("E * exp(A * exp(a * log(x)**2))", ("x",))
    assert plain.n_params == baroque.n_params == 3
    assert description_length(plain) < description_length(baroque)


def test_law_that_turns_back_up_beyond_the_data_is_rejected():
    x = np.exp(np.linspace(0.0, 4.8, 15))
    y = (np.log(x) - 5.0) ** 2  # falling over the data, with its minimum just beyond them
    region = ProbeRegion(axis_columns=(0,))
    reason = _checked("a + b * (log(x) - c)**2", x, y, region)
    assert reason is not None and "turns back" in reason
    assert _checked("a + b * x**(-c)", x, y, region) is None


def test_turning_point_is_allowed_along_a_declared_optimum():
    x = np.exp(np.linspace(0.0, 4.8, 15))
    y = (np.log(x) - 2.4) ** 2
    assert _checked("a + b * (log(x) - c)**2", x, y, ProbeRegion(axis_columns=(0,), optima=(0,))) is None


def test_floorless_power_law_for_a_loss_is_rejected():
    x = np.geomspace(1e2, 1e5, 12)
    y = 0.5 + 10 * x**-0.3
    region = ProbeRegion(axis_columns=(0,), floor=True)
    reason = _checked("a * x**(-b)", x, y, region)
    assert reason is not None and "has no floor" in reason
    assert _checked("E + a * x**(-b)", x, y, region) is None
    # Without the loss's floor requirement the same power law is acceptable.
    assert _checked("a * x**(-b)", x, y, ProbeRegion(axis_columns=(0,))) is None


def test_loss_falling_without_bound_is_rejected_even_for_a_negative_target():
    x = np.geomspace(1e2, 1e5, 12)
    y = -1.0 - 0.2 * np.log(x)
    reason = _checked("a + b * log(x)", x, y, ProbeRegion(axis_columns=(0,), floor=True))
    assert reason is not None and "has no floor" in reason


def test_rate_leaving_the_unit_interval_is_rejected():
    x = np.geomspace(1e2, 1e5, 12)
    y = 0.1 + 0.2 * np.log10(x) - 0.3  # accuracy rising linearly in log scale: 0.2 .. 0.8
    region = ProbeRegion(axis_columns=(0,), unit_interval=True)
    reason = _checked("a + b * log(x)", x, y, region)
    assert reason is not None and "outside [0, 1]" in reason
    assert _checked("a + b * log(x)", x, y, ProbeRegion(axis_columns=(0,))) is None


def test_law_against_the_trend_the_data_show_is_rejected():
    x = np.geomspace(1, 1e3, 12)
    y = 2 + 3 * x**-0.5
    groups = np.full(x.size, "g")
    region = infer_region(ProbeRegion(axis_columns=(0,)), x[:, None], y, groups, target="y")
    assert region.monotone == {0: "decreasing"} and region.floor
    # A falling power law plus a rising linear term turns up beyond the data.
    law = parse_law("a + b * x**(-0.5) + c * x", ("x",))
    fit = fit_law_grouped(law, x[:, None], y + 0.002 * x, groups, config=FitConfig(seed=0))
    reason = check_extrapolation(law, fit, x[:, None], y, groups, region)
    assert reason is not None and ("decreasing" in reason or "turns back" in reason)


def test_inferred_expectations_keep_what_the_task_declares():
    x = np.column_stack([np.geomspace(1, 1e3, 12), np.linspace(0.1, 0.9, 12)])
    y = np.linspace(0.2, 0.7, 12)
    declared = ProbeRegion(axis_columns=(0,), monotone={1: "decreasing"})
    region = infer_region(declared, x, y, np.full(12, "g"), target="top1_acc")
    assert region.monotone == {1: "decreasing", 0: "increasing"}
    assert region.unit_interval and not region.floor
    named = infer_region(ProbeRegion(), x, y, np.full(12, "g"), target="lm_loss")
    assert named.floor and not named.unit_interval


def test_scale_ratio_fold_holds_out_the_top_of_the_range_where_rows_crowd_at_small_scale():
    order = np.log(np.r_[np.linspace(1.0, 2.0, 20), 50.0, 80.0, 100.0])
    folds = extrapolation_folds(order, np.full(order.size, "g"))
    threshold = order.max() - 0.3 * np.ptp(order)
    expected = set(np.flatnonzero(order >= threshold).tolist())
    assert expected == {20, 21, 22}
    assert any(set(fold.validate.tolist()) == expected for fold in folds)


@pytest.mark.parametrize(
    "text",
    [
        "a + b * log(x)",  # falls linearly in log scale for ever
        "a * x**(-b)",  # a power law with no constant: zero at infinite scale
        "a * exp(b * (log(x) - c)**2)",  # a parabola in log-log that steepens
    ],
)
def test_loss_without_a_floor_at_infinite_scale_is_rejected(text):
    # Over three decades these curves bend like a floored law; only far beyond them (1e12x, 1e24x) do they fall
    # through any floor.
    x = np.geomspace(1e6, 1e9, 10)
    y = 3.0 - 0.08 * np.log(x / 1e6)
    region = ProbeRegion(axis_columns=(0,), monotone={0: "decreasing"}, floor=True)
    reason = _checked(text, x, y, region)
    assert reason is not None and "has no floor" in reason


def test_floored_loss_passes_the_checks_out_to_infinite_scale():
    x = np.geomspace(1e6, 1e9, 10)
    y = 1.8 + 40.0 * x**-0.3
    region = ProbeRegion(axis_columns=(0,), monotone={0: "decreasing"}, floor=True)
    assert _checked("E + A * x**(-a)", x, y, region) is None
    # The shifted power law (the paper's M3 on rnsl) with x in the unit of its smallest value, as the families
    # write it. In raw units its fit runs to B = 0.99998, a = 2.3e5 (the limit exp(c/x)), a degenerate fit.
    assert _checked("A * (1 / (x / 1e6) + B)**a", x, y, region) is None
    assert "digits no one prints" in _checked("A * (1 / x + B)**a", x, y, region)


def test_loss_turning_back_up_far_beyond_the_data_is_rejected():
    # A parabola in logs whose minimum lies 1e9x beyond the data: the near probes (up to 4x) see it fall.
    x = np.geomspace(1e2, 1e5, 12)
    y = 1.0 + 0.002 * (np.log(x) - 30.0) ** 2
    region = ProbeRegion(axis_columns=(0,), monotone={0: "decreasing"})
    reason = _checked("a + b * (log(x) - c)**2", x, y, region)
    assert reason is not None and "turns against the decreasing trend far beyond" in reason
    # Where the task declares an optimum, the best value moves with scale and the far trend is not asked.
    optimum = ProbeRegion(axis_columns=(0,), monotone={0: "decreasing"}, optima=(1,))
    assert far_trend(optimum) is None and far_trend(region) == "decreasing"


def test_loss_turning_back_up_far_along_a_trend_column_off_the_axis_is_rejected():
    # The axis is N; D also lowers the loss over the data, through a parabola in log D whose minimum lies far
    # beyond them. Probes along the axis alone never see it; D moved alone to 1e24x does.
    rng = np.random.default_rng(0)
    N, D = np.geomspace(1e6, 1e9, 40), rng.permutation(np.geomspace(1e8, 1e11, 40))
    X = np.column_stack([N, D])
    y = 1.5 + 30.0 * N**-0.3 + 0.001 * (np.log(D) - 40.0) ** 2
    groups = np.full(N.size, "g")
    region = ProbeRegion(axis_columns=(0,), monotone={0: "decreasing", 1: "decreasing"}, floor=True)
    assert far_directions(region) == [(0,), (1,)]

    def checked(text):
        law = parse_law(text, ("N", "D"))
        fit = fit_law_grouped(law, X, y, groups, config=FitConfig(seed=0, n_starts=8))
        return check_extrapolation(law, fit, X, y, groups, region)

    reason = checked("E + A * N**(-a) + b * (log(D) - c)**2")
    assert reason is not None and "(column 1 alone)" in reason
    assert checked("E + A * N**(-a) + B * D**(-b)") is None


def _fixed(law, groups_params):
    from sld.search.fitting import FitResult, GroupedFit

    return GroupedFit({g: FitResult(np.array(p, dtype=float), True, "", 0.0, 1) for g, p in groups_params.items()})


def test_terms_that_cancel_to_the_target_rest_on_digits_no_one_prints():
    # The fit a BIG-bench curve of rnsl got: two constants of +-463526 whose sum is a loss of about 0.7.
    x = np.geomspace(2.6e9, 1.3e11, 19)
    law = parse_law("c0 + c1*exp(2*log(x)**c2)", ("x",))
    fit = _fixed(law, {"g": [-463526.3508, 463526.9484, -4.9754]})
    y = fit.predict(law, x[:, None], np.full(x.size, "g"))
    assert np.all((y > 0.6) & (y < 0.9))
    reason = rounding_reason(law, fit, x[:, None], y, np.full(x.size, "g"))
    assert reason is not None and "digits no one prints" in reason
    region = ProbeRegion(axis_columns=(0,), monotone={0: "decreasing"}, floor=True)
    assert "digits no one prints" in check_extrapolation(law, fit, x[:, None], y, np.full(x.size, "g"), region)


def test_a_sum_near_one_raised_to_a_huge_power_is_a_degenerate_fit():
    # lr_bsz, seed 2: (A/D**alpha + B/N**beta + ...)**k1 with B = 1.0023, beta = 0.0002, k1 = 303, the limit of
    # exp(k1 * (B - 1 + ...)) that the fit ran towards. Printed as 1.002, B moves the loss by about 10%.
    N = np.geomspace(0.2, 3.0, 12)  # parameters in units of the median size, as the evolved law had them
    law = parse_law("(A*N**(-a) + B*N**(-b))**k", ("N",))
    fit = _fixed(law, {"g": [4.9e-4, 0.28, 1.00231, 2.03e-4, 302.87]})
    y = fit.predict(law, N[:, None], np.full(N.size, "g"))
    assert np.all((y > 1.5) & (y < 3.0))
    assert "digits no one prints" in rounding_reason(law, fit, N[:, None], y, np.full(N.size, "g"))
    # The same data as a published form with a few digits per constant: printing them changes nothing.
    plain = parse_law("E + A*N**(-a)", ("N",))
    plain_fit = fit_law_grouped(plain, N[:, None], y, np.full(N.size, "g"))
    assert rounding_reason(plain, plain_fit, N[:, None], y, np.full(N.size, "g")) is None


def test_printed_rounds_to_significant_digits_and_keeps_zeros():
    values = np.array([1.00231, -463526.3508, 2.03e-4, 0.0, 302.87])
    assert printed(values).tolist() == pytest.approx([1.002, -463500.0, 2.03e-4, 0.0, 302.9])
    assert printed(values, 2).tolist() == pytest.approx([1.0, -460000.0, 2.0e-4, 0.0, 300.0])


def test_published_sums_keep_their_predictions_when_printed():
    x = np.geomspace(1e6, 1e9, 10)
    law = parse_law("E + A * x**(-a)", ("x",))
    groups = np.repeat(["a", "b"], 5)
    X = np.concatenate([x[:5], x[5:]])[:, None]
    fit = _fixed(law, {"a": [1.83457, 40.2345, 0.301234], "b": [2.01234, 35.1234, 0.281234]})
    y = fit.predict(law, X, groups)
    assert rounding_reason(law, fit, X, y, groups) is None
    # A mixture law's shifted power of a proportion that is 0 on some rows: 100x larger there than elsewhere, but
    # there it is (most of) the loss itself, and its offset's printed digits keep it.
    p = np.linspace(0.0, 1.0, 11)
    mixture = parse_law("c + b * (p + e)**(-alpha)", ("p",))
    fit = _fixed(mixture, {"g": [-2.01234, 0.512345, 1.01234e-4, 0.501234]})
    y = fit.predict(mixture, p[:, None], np.full(p.size, "g"))
    assert rounding_reason(mixture, fit, p[:, None], y, np.full(p.size, "g")) is None


def _unit_checked(
    text: str, variables: tuple[str, ...], X: np.ndarray, y: np.ndarray, groups: np.ndarray
) -> str | None:
    law = parse_law(text, variables)
    fit = fit_law_grouped(law, X, y, groups, config=FitConfig(seed=0, n_starts=8))
    assert fit.success
    return unit_reason(law, fit, X, groups)


_N = np.geomspace(1e6, 1e9, 20)
_LOSS = 2.0 + 50.0 * _N**-0.3 + np.random.default_rng(0).normal(0.0, 1e-3, _N.size)


@pytest.mark.parametrize(
    "text",
    [
        "E + A*N**(-a)",  # A absorbs a change of unit
        "a + b*log(N)",  # a does
        "a + b*(log(N) - c)**2",  # c does: the vertex is a fitted size, not N = 1
        "A/sqrt(B + N) + C",  # B does
        "a*tanh(k*(log(N) - m)) + b",
        "A*(N/1e6)**(-a)*(1 + N/B)**(-b) + C",  # a fixed normalisation inside a power is taken up by A
    ],
)
def test_unit_free_laws_pass_the_unit_check(text):
    assert _unit_checked(text, ("N",), _N[:, None], _LOSS, np.full(_N.size, "g")) is None


@pytest.mark.parametrize(
    "text",
    [
        "c0 + c1*log(N)**c2",  # a power of log(N): its bend is set by the point N = 1 of the unit
        "a + b*log(N)**2",  # a parabola in log(N) with its vertex fixed at N = 1
        "a + b/sqrt(log(N))",
        "c0*exp(c1*log(N)**c2) + k1",
        "A*(1 + N/1e6)**(-a) + C",  # a fixed size, 1e6 in the unit of the data, that no constant can move
    ],
)
def test_laws_bound_to_the_unit_of_a_size_fail_the_unit_check(text):
    reason = _unit_checked(text, ("N",), _N[:, None], _LOSS, np.full(_N.size, "g"))
    assert reason is not None and "depends on the unit of N" in reason


def test_the_unit_check_moves_all_scale_columns_together_and_skips_the_others():
    # Tokens and unique tokens share a unit: a law of their ratio is unit-free although either column alone is
    # not (Muennighoff et al.'s data-constrained law). A proportion in [0, 1] is not a size and is not checked.
    rng = np.random.default_rng(1)
    tokens, unique = np.geomspace(1e8, 1e11, 40), np.geomspace(1e8, 1e10, 40)[rng.permutation(40)]
    share = np.linspace(0.0, 1.0, 40)
    X = np.column_stack([tokens, unique, share])
    y = 2.0 + 30.0 * tokens**-0.2 + 0.1 * np.exp(-(tokens / unique - 1.0) / 10.0) + 0.05 * np.exp(share)
    groups = np.full(40, "g")
    variables = ("D", "U", "p")
    assert _unit_checked("E + A*D**(-a) + B*exp(-(D/U - 1)/R) + c*exp(k*p)", variables, X, y, groups) is None
    reason = _unit_checked("E + A*D**(-a) + B*log(U)**2 + c*exp(k*p)", variables, X, y, groups)
    assert reason is not None and "depends on the unit of D, U" in reason


def test_each_group_is_checked_with_its_own_constants():
    N = np.concatenate([_N, _N])
    y = np.concatenate([_LOSS, 1.5 + 20.0 * _N**-0.25])
    groups = np.repeat(["a", "b"], _N.size)
    assert _unit_checked("E + A*N**(-a)", ("N",), N[:, None], y, groups) is None
    assert _unit_checked("a + b*log(N)**2", ("N",), N[:, None], y, groups) is not None


def test_check_extrapolation_rejects_a_law_bound_to_the_unit_of_its_axis():
    region = ProbeRegion(axis_columns=(0,), monotone={0: "decreasing"}, floor=True)
    reason = _checked("c0 + c1*log(x)**c2", _N, _LOSS, region)
    assert reason is not None and reason.startswith("depends on the unit of x")


def test_trends_left_out_names_the_trend_variables_a_law_does_not_use():
    region = ProbeRegion(axis_columns=(2,), monotone={0: "decreasing", 1: "decreasing"})
    variables = ("U", "N", "D")
    assert trends_left_out(parse_law("E + A/U**a + B/D**b", variables), region) == ("N",)
    assert trends_left_out(parse_law("E + A/U**a + B/N**b + C/D**c", variables), region) == ()
    # D is the axis but shows no trend: leaving it out is not leaving a trend out.
    assert trends_left_out(parse_law("E + A/U**a + B/N**b", variables), region) == ()
    assert trends_left_out(parse_law("E + C/D**c", variables), region) == ("U", "N")


def test_a_law_without_a_variable_that_has_an_optimum_cannot_have_that_optimum():
    region = ProbeRegion(axis_columns=(2,), optima=(0, 1))
    variables = ("lr", "bsz", "D")
    assert optimum_left_out_reason(parse_law("E + a*(log(lr) - l0)**2 + b*(log(bsz) - b0)**2 + B/D**c", variables),
                                   region) is None
    assert optimum_left_out_reason(parse_law("E + a*(log(lr) - l0)**2 + B/D**c", variables), region) == (
        "has no interior minimum in column 1, where the target has an optimum (bsz is not in the law)"
    )
    assert optimum_left_out_reason(parse_law("E + B/D**c", variables), region).startswith(
        "has no interior minimum in column 0,"
    )
    assert optimum_left_out_reason(parse_law("E + B/D**c", variables), ProbeRegion(axis_columns=(2,))) is None

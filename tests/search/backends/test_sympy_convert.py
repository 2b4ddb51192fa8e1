import math

import pytest
import sympy

from sld.search import ExpressionError, parse_law
from sld.search.backends.sympy_convert import absorb_numbers, constant_prefix, parse_infix, to_template

N = sympy.Symbol("N", positive=True)
D = sympy.Symbol("D", positive=True)
x = sympy.Symbol("x", real=True)


def test_parse_infix_follows_precedence_and_associativity():
    expr = parse_infix("1 + 2 * X1 ^ 2 - 3 / X1 - -X1", {"X1": x})
    assert math.isclose(float(expr.subs(x, 1.5)), 1 + 2 * 1.5**2 - 3 / 1.5 + 1.5)
    assert float(parse_infix("2 ^ 3 ^ 2", {})) == 2**9  # right-associative


def test_parse_infix_reads_operon_output_with_functions_and_exponents():
    text = "((-0.5) + (1.5e-3 * (exp(((-0.25) * X1)) / sqrt(log((2.0 * X2))))))"
    expr = parse_infix(text, {"X1": N, "X2": D})
    value = expr.subs({N: 4.0, D: 3.0})
    assert math.isclose(float(value), -0.5 + 1.5e-3 * math.exp(-1.0) / math.sqrt(math.log(6.0)))


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("X9 + 1", "unknown name"),
        ("sin(X1)", "unknown function"),
        ("(X1 + 1", "end of model text"),
        ("X1 $ 2", "unexpected character"),
        ("X1 X1", "after the expression"),
        ("__import__(X1)", "unknown function"),
    ],
)
def test_parse_infix_rejects_what_it_does_not_know(text, reason):
    with pytest.raises(ExpressionError, match=reason):
        parse_infix(text, {"X1": x})


def test_small_integer_literals_stay_and_other_literals_become_constants():
    expr = parse_infix("(2.0 * (X1 ^ 2.0)) + (0.37 * X1) + 5.0 + (1.0 * sqrt(X1))", {"X1": N})
    template = to_template(expr, ["N"])
    law = parse_law(template.text, ["N"])
    assert law.n_params == 2  # 0.37 and 5.0; the 2.0s and the 1.0 are structure
    assert sorted(template.values.values()) == [0.37, 5.0]
    assert "N**2" in template.text and "sqrt(N)" in template.text


def test_equal_numbers_share_one_constant_and_names_follow_reading_order():
    expr = sympy.Float(0.7) * (N + D) + sympy.Float(4.5)
    template = to_template(expr, ["N", "D"])
    assert template.n_params == 2
    names = [name for name in ("c0", "c1") if name in template.text]
    assert names == ["c0", "c1"]
    assert template.text.index("c0") < template.text.index("c1")


def test_scale_and_offset_absorb_redundant_numbers():
    # exp(a + f), log(a*f), 1/(a + f): the inner number merges with Operon's linear-scaling constants.
    cases = {
        "(0.1 + (2.5 * exp(((0.3 * X1) + 0.7))))": "c0 + c1*exp(c2*N)",
        "(0.1 + (2.5 * log((0.3 * X1))))": "c0 + c1*log(N)",
        "(0.1 + (2.5 / (0.5 + (0.3 * X1))))": "c0 + c1/(c2*N + 1)",
    }
    for text, expected in cases.items():
        template = to_template(parse_infix(text, {"X1": N}), ["N"])
        assert parse_law(template.text, ["N"]).canonical_key == parse_law(expected, ["N"]).canonical_key


def test_absorbed_form_is_numerically_equal():
    expr = sympy.Float(0.1) + sympy.Float(2.0) / (sympy.Float(0.5) + sympy.Float(0.3) * N) ** sympy.Float(1.5)
    assert math.isclose(float(absorb_numbers(expr).subs(N, 7.0)), float(expr.subs(N, 7.0)))


def test_log_inputs_turn_into_power_laws():
    expr = parse_infix("(2.0071 + (8.8697 * exp(((-0.578) * X1))))", {"X1": sympy.log(N)})
    template = to_template(expr, ["N"])
    law = parse_law(template.text, ["N"])
    assert law.n_params == 3
    assert "log" not in template.text and "N**" in template.text


def test_complex_results_are_rejected():
    with pytest.raises(ExpressionError, match="real finite"):
        to_template(sympy.sqrt(sympy.Float(-2.0)) * N, ["N"])


def test_constant_names_avoid_variable_names():
    assert constant_prefix(["N", "D"]) == "c"
    assert constant_prefix(["c0", "c1"]) == "kc"
    template = to_template(sympy.Symbol("c0", positive=True) * sympy.Float(0.5), ["c0"])
    assert parse_law(template.text, ["c0"]).constant_names == ("kc0",)

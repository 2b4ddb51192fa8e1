import pytest

from sld.search import ConstantSpec, ExpressionError, Law, parse_law

MALICIOUS = [
    ("__import__('os')", "dunder names are not allowed"),
    ("__import__('os').system('true')", "attribute access"),
    ("__builtins__", "dunder names are not allowed"),
    ("x.__class__", "attribute access"),
    ("().__class__.__bases__[0].__subclasses__()", "attribute access"),
    ("lambda: 1", "lambda"),
    ("(lambda: 1)()", "lambda"),
    ("[1][0]", "subscripts"),
    ("x[0]", "subscripts"),
    ('"a"', "string literals"),
    ("b'x'", "string literals"),
    ("f'{x}'", "string literals"),
    ("open('f')", "unknown function 'open'"),
    ("eval('1')", "unknown function 'eval'"),
    ("getattr(x, 'a')", "unknown function 'getattr'"),
    ("x**1e9", "exponent literal"),
    ("x^1e9", "exponent literal"),
    ("x**(10**7)", "exponent"),
    ("9**9**9", "exponent"),
    ("(2*x)**999999", "numeric overflow"),
    ("x" * 10_000, "too long"),
    ("exp(x=1)", "keyword arguments"),
    ("exp(*x)", "starred"),
    ("[x for x in y]", "comprehensions"),
    ("{x for x in y}", "comprehensions"),
    ("(x for x in y)", "comprehensions"),
    ("{1: 2}", "dicts"),
    ("(1, 2)", "tuples"),
    ("x if a else b", "conditional"),
    ("x < 1", "comparisons"),
    ("a and b", "boolean"),
    ("(x := 1)", "assignments"),
    ("x % 2", "Mod is not allowed"),
    ("x // 2", "FloorDiv is not allowed"),
    ("x @ y", "MatMult is not allowed"),
    ("x << 2", "LShift is not allowed"),
    ("~x", "Invert is not allowed"),
    ("not x", "Not is not allowed"),
    ("True", "only numbers"),
    ("None * x", "only numbers"),
    ("...", "only numbers"),
    ("1j * x", "complex numbers"),
    ("1e999 * x", "too large"),
    ("1/0 + x", "not a finite real number"),
    ("log(0) * x", "not a finite real number"),
    ("log(-1) + x", "not a finite real number"),
    ("(-8)**(1/3) * x", "not a finite real number"),
    ("exp", "without arguments"),
    ("sqrt(x, 2)", "exactly 1 argument"),
    ("max()", "at least 1 argument"),
    ("x" + "+x" * 150, "too many nodes"),
    ("exp(" * 31 + "x" + ")" * 31, "too deep"),
    ("y = a*x", "right-hand side"),
    ("import os", "not a valid expression"),
    ("x; y", "not a valid expression"),
    ("x\0", "not a valid expression"),
    ("", "not a valid expression"),
]


@pytest.mark.parametrize(("text", "reason"), MALICIOUS)
def test_unsafe_or_malformed_text_is_rejected_with_its_reason(text, reason):
    with pytest.raises(ExpressionError) as caught:
        parse_law(text, ["x", "y"])
    assert reason in caught.value.reason
    assert reason in str(caught.value)


def test_long_sums_are_flat_not_deep():
    law = parse_law(" + ".join(f"c{i}*x**{i}" for i in range(1, 34)), ["x"])
    assert law.n_params == 33


def test_non_string_text_is_rejected():
    with pytest.raises(ExpressionError, match="string"):
        parse_law(b"x", ["x"])  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda: ConstantSpec("exp"), "shadows the function"),
        (lambda: ConstantSpec("1a"), "not a Python identifier"),
        (lambda: ConstantSpec("a b"), "not a Python identifier"),
        (lambda: ConstantSpec("lambda"), "keyword"),
        (lambda: ConstantSpec("__a"), "dunder"),
        (lambda: ConstantSpec("a", 1.0, 0.0), "invalid bounds"),
        (lambda: ConstantSpec("a", float("nan")), "invalid bounds"),
        (lambda: ConstantSpec("a", 0.0, 1.0, init=2.0), "outside its bounds"),
        (lambda: parse_law("a*x", ["x", "class"]), "keyword"),
        (lambda: parse_law("a*x", ["x-1"]), "not a Python identifier"),
        (lambda: parse_law("a*x", ["x"], constants={"b": ConstantSpec("a")}), "is named"),
        (lambda: parse_law("a*x", ["x"], constants={"x": ConstantSpec("x")}), "names a variable"),
    ],
)
def test_bad_names_and_bounds_are_rejected(make, reason):
    with pytest.raises(ExpressionError, match=reason):
        make()


def test_law_checks_its_symbols():
    x, a = __import__("sympy").symbols("x a")
    with pytest.raises(ExpressionError, match="undeclared symbols a"):
        Law(x + a, ("x",))
    with pytest.raises(ExpressionError, match="do not appear"):
        Law(x, ("x",), (ConstantSpec("a"),))
    with pytest.raises(ExpressionError, match="used twice"):
        Law(x + a, ("x", "a"), (ConstantSpec("a"),))
    with pytest.raises(ExpressionError, match="cannot evaluate"):
        Law(__import__("sympy").sin(x), ("x",))

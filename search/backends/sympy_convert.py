"""Turn symbolic-regression output into law templates: numbers become named constants.

Symbolic regression returns expressions with fitted numbers in them (``2.0071 + 8.8697*exp(-0.578*X1)``).
The discovery engine wants forms whose numbers are free constants that it refits, so this module

1. parses an infix model string (Operon's ``InfixFormatter``) into sympy with a small recursive-descent parser,
   never ``eval``/``sympify`` of text (`parse_infix`);
2. folds numbers that the form cannot tell apart into one, e.g. ``exp(a + f) -> e**a * exp(f)``,
   ``log(a*x) -> log(a) + log(x)`` and ``(a + f)**k -> a**k * (1 + f/a)**k`` (`absorb_numbers`), so that a
   linear-scaling offset or scale does not leave a redundant constant behind;
3. replaces each remaining float by a constant ``c0, c1, ...`` (equal values share one), keeping integer-valued
   floats with ``|v| <= 3`` as fixed numbers (`to_template`).

Example
-------
>>> import sympy
>>> N = sympy.Symbol("N", positive=True)
>>> expr = parse_infix("(2.007 + (8.87 * exp(((-0.578) * X1))))", {"X1": sympy.log(N)})
>>> template = to_template(expr, ("N",))
>>> template.text, template.values
('N**c0*c1 + c2', {'c0': -0.578, 'c1': 8.87, 'c2': 2.007})
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import sympy

from sld.search.errors import ExpressionError

_FUNCTIONS: dict[str, Callable[[sympy.Expr], sympy.Expr]] = {
    "exp": sympy.exp,
    "log": sympy.log,
    "sqrt": sympy.sqrt,
    "tanh": sympy.tanh,
    "abs": sympy.Abs,
    "square": lambda a: a**2,
    "logabs": lambda a: sympy.log(sympy.Abs(a)),
    "sqrtabs": lambda a: sympy.sqrt(sympy.Abs(a)),
}
"""Functions of Operon's infix output that have a law equivalent."""

_TOKEN = re.compile(
    r"\s*(?:(?P<number>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)|(?P<name>[A-Za-z_][A-Za-z_0-9]*)|(?P<op>[-+*/^(),]))"
)
_MAX_SMALL_INTEGER = 3
_MAX_TEXT = 20_000


@dataclass(frozen=True)
class Template:
    """A law form with named constants and the values symbolic regression found for them.

    Attributes
    ----------
    text : str
        Expression over the variables and the constants, readable by ``sld.search.parse_law``.
    values : dict of str to float
        The number each constant replaced (a good first guess for fitting).
    """

    text: str
    values: dict[str, float]

    @property
    def n_params(self) -> int:
        """Number of constants."""
        return len(self.values)


def parse_infix(text: str, symbols: Mapping[str, sympy.Expr]) -> sympy.Expr:
    """Parse an infix model string (numbers, names, ``+ - * / ^``, function calls) into sympy.

    Parameters
    ----------
    text : str
        Model text, e.g. Operon's ``(0.5 + (2.0 * exp((1.5 * X1))))``.
    symbols : mapping of str to sympy.Expr
        What each name stands for (e.g. ``{"X1": log(N)}``); other names are rejected.

    Returns
    -------
    sympy.Expr
        The expression, with floats for the numbers.

    Raises
    ------
    ExpressionError
        If the text has an unknown name or function, bad syntax, or is too long.
    """
    if len(text) > _MAX_TEXT:
        raise ExpressionError(f"model text is too long ({len(text)} characters)", text)
    return _Parser(text, symbols).parse()


class _Parser:
    """Recursive-descent parser of infix model text.

    Grammar: ``expr := term (+|- term)*``, ``term := unary (*|/ unary)*``, ``unary := - unary | power``,
    ``power := atom [^ unary]``, ``atom := number | name | name(args) | (expr)``.
    """

    def __init__(self, text: str, symbols: Mapping[str, sympy.Expr]) -> None:
        self.text = text
        self.symbols = symbols
        self.tokens = self._tokenize(text)
        self.pos = 0

    def _tokenize(self, text: str) -> list[tuple[str, str]]:
        tokens: list[tuple[str, str]] = []
        pos = 0
        while pos < len(text):
            if text[pos:].strip() == "":
                break
            match = _TOKEN.match(text, pos)
            if match is None:
                raise ExpressionError(f"unexpected character {text[pos:].strip()[0]!r}", text)
            kind = match.lastgroup or ""
            tokens.append((kind, match.group(kind)))
            pos = match.end()
        return tokens

    def peek(self) -> str | None:
        return self.tokens[self.pos][1] if self.pos < len(self.tokens) else None

    def take(self, expected: str | None = None) -> tuple[str, str]:
        if self.pos >= len(self.tokens):
            raise ExpressionError("unexpected end of model text", self.text)
        token = self.tokens[self.pos]
        if expected is not None and token[1] != expected:
            raise ExpressionError(f"expected {expected!r}, found {token[1]!r}", self.text)
        self.pos += 1
        return token

    def parse(self) -> sympy.Expr:
        expr = self.expr()
        if self.pos != len(self.tokens):
            raise ExpressionError(f"unexpected {self.peek()!r} after the expression", self.text)
        return expr

    def expr(self) -> sympy.Expr:
        result = self.term()
        while self.peek() in ("+", "-"):
            op = self.take()[1]
            right = self.term()
            result = result + right if op == "+" else result - right
        return result

    def term(self) -> sympy.Expr:
        result = self.unary()
        while self.peek() in ("*", "/"):
            op = self.take()[1]
            right = self.unary()
            result = result * right if op == "*" else result / right
        return result

    def unary(self) -> sympy.Expr:
        if self.peek() == "-":
            self.take()
            return -self.unary()
        if self.peek() == "+":
            self.take()
            return self.unary()
        return self.power()

    def power(self) -> sympy.Expr:
        base = self.atom()
        if self.peek() == "^":
            self.take()
            result: sympy.Expr = base ** self.unary()
            return result
        return base

    def atom(self) -> sympy.Expr:
        kind, value = self.take()
        if kind == "number":
            number = float(value)
            if not math.isfinite(number):
                raise ExpressionError(f"number {value} is out of range", self.text)
            return sympy.Float(value)
        if kind == "name":
            if self.peek() == "(":
                return self.call(value)
            if value not in self.symbols:
                raise ExpressionError(f"unknown name {value!r}", self.text)
            return self.symbols[value]
        if value == "(":
            inner = self.expr()
            self.take(")")
            return inner
        raise ExpressionError(f"unexpected {value!r}", self.text)

    def call(self, name: str) -> sympy.Expr:
        function = _FUNCTIONS.get(name)
        if function is None:
            raise ExpressionError(f"unknown function {name!r}; known: {', '.join(sorted(_FUNCTIONS))}", self.text)
        self.take("(")
        argument = self.expr()
        self.take(")")
        return function(argument)


def absorb_numbers(expr: sympy.Expr) -> sympy.Expr:
    """Fold numbers that the form cannot distinguish from an outer scale or offset.

    Bottom-up rewrites: ``exp(a + f) -> exp(a)*exp(f)``; ``log(a*f) -> log(a) + log(f)`` and
    ``log(a + f) -> log(a) + log(1 + f/a)`` for ``a > 0``; ``(a + f)**k -> a**k * (1 + f/a)**k`` for a number
    ``k`` and ``a > 0``. sympy then merges the numbers that come out with the scale and offset around them.

    Parameters
    ----------
    expr : sympy.Expr
        Expression with float numbers.

    Returns
    -------
    sympy.Expr
        An equal expression with no more numbers than before.
    """
    if not expr.args or expr.is_Number:
        return expr
    args = [absorb_numbers(a) if isinstance(a, sympy.Expr) else a for a in expr.args]
    rebuilt: sympy.Expr = expr.func(*args)
    if isinstance(rebuilt, sympy.exp):
        number, rest = rebuilt.args[0].as_coeff_Add()
        if number != 0:
            result: sympy.Expr = sympy.exp(number) * sympy.exp(rest)
            return result
    elif isinstance(rebuilt, sympy.log):
        inner = rebuilt.args[0]
        scale, factor = inner.as_coeff_Mul()
        if scale.is_positive and scale != 1:
            return sympy.log(scale) + absorb_numbers(sympy.log(factor))
        offset, rest = inner.as_coeff_Add()
        if offset.is_positive and offset != 1 and rest != 0:
            return sympy.log(offset) + sympy.log(1 + sympy.expand(rest / offset, deep=False))
    elif isinstance(rebuilt, sympy.Pow) and rebuilt.exp.is_Number and rebuilt.base.is_Add:
        offset, rest = rebuilt.base.as_coeff_Add()
        if offset.is_positive and offset != 1:
            result = offset**rebuilt.exp * (1 + sympy.expand(rest / offset, deep=False)) ** rebuilt.exp
            return result
    return rebuilt


def constant_prefix(variables: Sequence[str]) -> str:
    """Return ``"c"``, or a prefix that no variable name starts with, so constants never clash with variables."""
    prefix = "c"
    while any(re.fullmatch(re.escape(prefix) + r"\d+", v) for v in variables):
        prefix = "k" + prefix
    return prefix


def to_template(expr: sympy.Expr, variables: Sequence[str]) -> Template:
    """Replace the numbers of ``expr`` by named constants.

    Floats that are integers with ``|v| <= 3`` become fixed integers; every other float becomes a constant
    (floats with the same value share one). Exact sympy numbers (the ``-1`` of a subtraction, the ``2`` of a
    square, the ``1/2`` of a square root) are structure and stay.

    Parameters
    ----------
    expr : sympy.Expr
        Expression over symbols named like ``variables``, with float numbers.
    variables : sequence of str
        The variable names (constants are named so as not to clash with them).

    Returns
    -------
    Template
        The text and the values of its constants, named ``c0, c1, ...`` in the order sympy traverses them.

    Raises
    ------
    ExpressionError
        If the expression is not real and finite (complex unit, infinities, nan) or names unknown symbols.
    """
    expr = _numbers_to_floats(absorb_numbers(_numbers_to_floats(expr)))
    bad = expr.atoms(
        sympy.core.numbers.ImaginaryUnit,
        sympy.core.numbers.NaN,
        sympy.core.numbers.Infinity,
        sympy.core.numbers.NegativeInfinity,
        sympy.core.numbers.ComplexInfinity,
    )
    if bad or expr.has(sympy.I):
        raise ExpressionError(f"not a real finite expression: {expr}")
    unknown = sorted(str(s) for s in expr.free_symbols if str(s) not in set(variables))
    if unknown:
        raise ExpressionError(f"unknown symbols {', '.join(unknown)} in {expr}")
    prefix = constant_prefix(variables)
    mapping: dict[sympy.Basic, sympy.Expr] = {}
    names_by_value: dict[float, sympy.Symbol] = {}
    values: dict[str, float] = {}
    for node in sympy.preorder_traversal(expr):
        if not isinstance(node, sympy.Float) or node in mapping:
            continue
        value = float(node)
        if not math.isfinite(value):
            raise ExpressionError(f"not a real finite expression: {expr}")
        if value.is_integer() and abs(value) <= _MAX_SMALL_INTEGER:
            mapping[node] = sympy.Integer(int(value))
            continue
        symbol = names_by_value.get(value)
        if symbol is None:
            symbol = sympy.Symbol(f"{prefix}{len(names_by_value)}")
            names_by_value[value] = symbol
            values[symbol.name] = value
        mapping[node] = symbol
    result = expr.xreplace(mapping)
    used = {str(s) for s in result.free_symbols}
    values = {name: value for name, value in values.items() if name in used}
    return _renumber(result, values, prefix)


def _renumber(expr: sympy.Expr, values: dict[str, float], prefix: str) -> Template:
    """Rename constants to ``c0, c1, ...`` in reading order of the printed text.

    sympy orders terms by symbol name, so renaming can move them; a few passes until the order is stable.
    """
    text = str(expr)
    pattern = re.compile(rf"\b{re.escape(prefix)}\d+\b")
    for _ in range(3):
        order = list(dict.fromkeys(pattern.findall(text)))
        if order == [f"{prefix}{i}" for i in range(len(order))]:
            break
        renames = {name: f"_tmp{i}" for i, name in enumerate(order)}
        expr = expr.xreplace({sympy.Symbol(a): sympy.Symbol(b) for a, b in renames.items()})
        expr = expr.xreplace({sympy.Symbol(f"_tmp{i}"): sympy.Symbol(f"{prefix}{i}") for i in range(len(order))})
        values = {f"{prefix}{i}": values[name] for i, name in enumerate(order)}
        text = str(expr)
    return Template(text, values)


def _numbers_to_floats(expr: sympy.Expr) -> sympy.Expr:
    """Evaluate number-only subexpressions that are not plain numbers (``E``, ``exp(-1)``, ``log(2)``)."""
    if expr.is_Number:
        return expr
    if not expr.free_symbols:
        value = complex(expr.evalf())
        return sympy.Float(value.real) if value.imag == 0 else sympy.I
    if not expr.args:
        return expr
    args = [_numbers_to_floats(a) if isinstance(a, sympy.Expr) else a for a in expr.args]
    result: sympy.Expr = expr.func(*args)
    return result

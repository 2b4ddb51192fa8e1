"""Scaling-law expressions: the `Law` type and a whitelist parser for law text.

A `Law` is a sympy expression over a task's feature names (the columns of ``X``) and named constants
(the entries of the parameter vector ``theta``, each with bounds and an optional initial value).
Text from users and LLMs goes through `parse_law`, which walks ``ast.parse(text, mode="eval")`` over an
explicit whitelist of node types and builds sympy objects itself; text is never passed to ``eval``,
``exec``, ``sympify`` or ``parse_expr``.
"""

from __future__ import annotations

import ast
import functools
import itertools
import keyword
import math
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import sympy
from numpy.typing import ArrayLike, NDArray

from sld.search.errors import ExpressionError
from sld.search.evaluate import CompiledLaw, compile_law

FUNCTIONS: dict[str, Callable[..., Any]] = {
    "exp": sympy.exp,
    "log": sympy.log,
    "ln": sympy.log,
    "sqrt": sympy.sqrt,
    "tanh": sympy.tanh,
    "Abs": sympy.Abs,
    "abs": sympy.Abs,
    "Min": sympy.Min,
    "min": sympy.Min,
    "Max": sympy.Max,
    "max": sympy.Max,
}
"""Functions a law may call, by the names accepted in text (``ln``, ``min``, ``max``, ``abs`` are aliases)."""

MAX_TEXT_LENGTH = 2000
MAX_NODES = 200
MAX_DEPTH = 30
MAX_EXPONENT_LITERAL = 1e6
# Numbers folded by sympy (e.g. 10**k or a coefficient raised to a power) must stay within float range.
_MAX_DECIMAL_EXPONENT = 300

_VARIADIC = frozenset({"Min", "min", "Max", "max"})
_NODE_REASONS: dict[type[ast.AST], str] = {
    ast.Attribute: "attribute access is not allowed",
    ast.Subscript: "subscripts are not allowed",
    ast.Slice: "subscripts are not allowed",
    ast.Lambda: "lambda expressions are not allowed",
    ast.ListComp: "comprehensions are not allowed",
    ast.SetComp: "comprehensions are not allowed",
    ast.DictComp: "comprehensions are not allowed",
    ast.GeneratorExp: "comprehensions are not allowed",
    ast.JoinedStr: "string literals are not allowed",
    ast.FormattedValue: "string literals are not allowed",
    ast.List: "lists, tuples, sets and dicts are not allowed",
    ast.Tuple: "lists, tuples, sets and dicts are not allowed",
    ast.Set: "lists, tuples, sets and dicts are not allowed",
    ast.Dict: "lists, tuples, sets and dicts are not allowed",
    ast.Compare: "comparisons are not allowed",
    ast.BoolOp: "boolean operators (and/or) are not allowed",
    ast.IfExp: "conditional expressions are not allowed",
    ast.NamedExpr: "assignments are not allowed",
    ast.Starred: "starred arguments are not allowed",
    ast.Await: "await is not allowed",
    ast.Yield: "yield is not allowed",
    ast.YieldFrom: "yield is not allowed",
}
_BINARY: dict[type[ast.operator], Callable[[sympy.Expr, sympy.Expr], sympy.Expr]] = {
    ast.Add: lambda a, b: a + b,
    ast.Sub: lambda a, b: a - b,
    ast.Mult: lambda a, b: a * b,
    ast.Div: lambda a, b: a / b,
}
_CHAINS = ({ast.Add, ast.Sub}, {ast.Mult, ast.Div})


def _check_name(name: object, kind: str) -> str:
    """Return ``name`` if it may name a variable or constant, else raise `ExpressionError`."""
    if not isinstance(name, str) or not name.isidentifier():
        raise ExpressionError(f"{kind} name {name!r} is not a Python identifier (letters, digits, _)")
    if keyword.iskeyword(name):
        raise ExpressionError(f"{kind} name {name!r} is a Python keyword; rename it")
    if name.startswith("__"):
        raise ExpressionError(f"dunder names are not allowed ({kind} {name!r})")
    if name in FUNCTIONS:
        raise ExpressionError(f"{kind} name {name!r} shadows the function {name}(); rename it")
    return name


@dataclass(frozen=True)
class ConstantSpec:
    """A named constant of a law, with bounds for fitting.

    Parameters
    ----------
    name : str
        A Python identifier that is not a keyword, a dunder name, or a function name.
    lower, upper : float, default -inf, inf
        Bounds; ``lower == upper`` fixes the constant at that value.
    init : float or None, default None
        Initial value of the first fitting start (within the bounds); None lets the fitter choose.
    """

    name: str
    lower: float = -math.inf
    upper: float = math.inf
    init: float | None = None

    def __post_init__(self) -> None:
        _check_name(self.name, "constant")
        lower, upper = float(self.lower), float(self.upper)
        if math.isnan(lower) or math.isnan(upper) or lower > upper:
            raise ExpressionError(f"constant {self.name!r} has invalid bounds [{lower}, {upper}]")
        object.__setattr__(self, "lower", lower)
        object.__setattr__(self, "upper", upper)
        if self.init is not None:
            init = float(self.init)
            if not (math.isfinite(init) and lower <= init <= upper):
                raise ExpressionError(f"constant {self.name!r} has init {init} outside its bounds [{lower}, {upper}]")
            object.__setattr__(self, "init", init)


@dataclass(frozen=True)
class Law:
    """A law: a sympy expression over variables (columns of ``X``) and constants (entries of ``theta``).

    Parameters
    ----------
    expr : sympy.Expr
        The expression; its free symbols must be exactly variables and the declared constants.
    variables : tuple of str
        Feature names, in the column order of ``X``.
    constants : tuple of ConstantSpec
        The constants, in the order of the parameter vector ``theta``; each must appear in ``expr``.

    Raises
    ------
    ExpressionError
        If names are invalid or clash, a symbol is undeclared, a constant is unused, or a node cannot be
        evaluated.
    """

    expr: sympy.Expr
    variables: tuple[str, ...]
    constants: tuple[ConstantSpec, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "variables", tuple(self.variables))
        object.__setattr__(self, "constants", tuple(self.constants))
        if not isinstance(self.expr, sympy.Expr):
            raise ExpressionError(f"expected a sympy expression, got {type(self.expr).__name__}")
        names = [_check_name(v, "variable") for v in self.variables] + list(self.constant_names)
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ExpressionError(f"names used twice (as variables or constants): {', '.join(duplicates)}")
        free = {str(s) for s in self.expr.free_symbols}
        undeclared = sorted(free - set(names))
        if undeclared:
            raise ExpressionError(
                f"undeclared symbols {', '.join(undeclared)}; variables are {', '.join(self.variables)}"
            )
        unused = [n for n in self.constant_names if n not in free]
        if unused:
            raise ExpressionError(f"constants {', '.join(unused)} do not appear in {self.expr}")
        # Compiling validates every node and warms the cache.
        compile_law(self.expr, self.variables, self.constant_names)

    def __str__(self) -> str:
        return self.text

    @property
    def n_params(self) -> int:
        """Number of constants (the length of ``theta``)."""
        return len(self.constants)

    @property
    def constant_names(self) -> tuple[str, ...]:
        """Names of the constants, in the order of ``theta``."""
        return tuple(c.name for c in self.constants)

    @functools.cached_property
    def text(self) -> str:
        """The expression as text that `parse_law` reads back."""
        return _normal_text(self.expr)

    @property
    def latex(self) -> str:
        """The expression in LaTeX."""
        return str(sympy.latex(self.expr))

    @property
    def compiled(self) -> CompiledLaw:
        """The numpy evaluators of this law (cached per expression, variables and constant names)."""
        return compile_law(self.expr, self.variables, self.constant_names)

    @property
    def positive_variables(self) -> frozenset[str]:
        """Variables under a log or sqrt, or in the base of a non-integer power: they must be > 0."""
        found: set[str] = set()
        for node in sympy.preorder_traversal(self.expr):
            if isinstance(node, sympy.log):
                found.update(str(s) for s in node.args[0].free_symbols)
            elif isinstance(node, sympy.Pow):
                exponent = node.exp
                if not (exponent.is_Number and float(exponent).is_integer()):
                    found.update(str(s) for s in node.base.free_symbols)
        return frozenset(found & set(self.variables))

    def predict(self, X: ArrayLike, theta: ArrayLike) -> NDArray[np.float64]:
        """Evaluate the law on rows of ``X``.

        Parameters
        ----------
        X : array_like, shape (n, n_vars)
            Feature values, columns in the order of `variables`.
        theta : array_like, shape (n_params,)
            Constant values, in the order of `constants`.

        Returns
        -------
        ndarray, shape (n,)
            Predictions; overflow and invalid operations give ``inf``/``nan`` instead of raising.

        Raises
        ------
        ValueError
            If ``X`` or ``theta`` has the wrong shape.
        """
        X_arr, theta_arr = self._check_inputs(X, theta)
        with np.errstate(all="ignore"):
            values: NDArray[np.float64] = self.compiled.values(np.ascontiguousarray(X_arr.T), theta_arr)
        return values

    def _check_inputs(self, X: ArrayLike, theta: ArrayLike) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        X_arr = np.asarray(X, dtype=np.float64)
        theta_arr = np.asarray(theta, dtype=np.float64)
        if X_arr.ndim != 2 or X_arr.shape[1] != len(self.variables):
            raise ValueError(
                f"X has shape {X_arr.shape}; expected (n, {len(self.variables)}) "
                f"for variables ({', '.join(self.variables)})"
            )
        if theta_arr.shape != (self.n_params,):
            raise ValueError(
                f"theta has shape {theta_arr.shape}; expected ({self.n_params},) "
                f"for constants ({', '.join(self.constant_names)})"
            )
        return X_arr, theta_arr

    def with_constants(self, values: Mapping[str, float]) -> sympy.Expr:
        """Return the expression with the given constants substituted by numbers.

        Parameters
        ----------
        values : mapping of str to float
            Values by constant name; constants not listed stay symbolic.

        Raises
        ------
        ValueError
            If a name is not a constant of this law.
        """
        unknown = sorted(set(values) - set(self.constant_names))
        if unknown:
            raise ValueError(f"unknown constants {', '.join(unknown)}; this law has {', '.join(self.constant_names)}")
        mapping = {sympy.Symbol(name): sympy.Float(float(value)) for name, value in values.items()}
        result: sympy.Expr = self.expr.xreplace(mapping)
        return result

    @functools.cached_property
    def canonical_key(self) -> str:
        """A string equal for laws that differ only in the names or order of their constants."""
        names = sorted(self.constant_names)
        return min(_canonical_key(v, self.variables, names) for v in _odd_sign_variants(_normalize(self.expr)))


# tanh nodes whose sign variants the canonical key tries; a law with more is keyed as it stands (2**n variants).
_MAX_ODD_NODES = 3


def _odd_sign_variants(expr: sympy.Expr) -> list[sympy.Expr]:
    """Return ``expr`` with every choice of writing each ``tanh(u)`` as ``-tanh(-u)``.

    sympy pulls a minus sign out of an odd function by the order of the names in its argument: ``tanh(b - a)``
    becomes ``-tanh(a - b)``, so two laws that differ only in the names of their constants can differ in
    structure. Keying every variant and keeping the smallest key removes that dependence on the names.
    """
    nodes = sorted({n for n in sympy.preorder_traversal(expr) if isinstance(n, sympy.tanh)}, key=sympy.default_sort_key)
    if not nodes or len(nodes) > _MAX_ODD_NODES:
        return [expr]
    variants = [expr]  # no node flipped: the expression as it stands, not rebuilt
    for size in range(1, len(nodes) + 1):
        for flipped in itertools.combinations(nodes, size):
            variants.append(_flipped(expr, frozenset(flipped)))
    return variants


def _flipped(expr: sympy.Basic, flipped: frozenset[sympy.Basic]) -> Any:
    # Rebuild bottom-up, writing the chosen tanh nodes as -tanh(-u) left unevaluated (evaluation would undo it).
    if not expr.args:
        return expr
    args = [_flipped(arg, flipped) for arg in expr.args]
    if expr in flipped:
        return sympy.Mul(-1, sympy.tanh(-args[0], evaluate=False), evaluate=False)
    return expr.func(*args)


def _canonical_key(expr: sympy.Expr, variables: tuple[str, ...], names: list[str]) -> str:
    """Rename constants to c0, c1, ... in an order derived from the expression's structure alone.

    A constant's signature is the expression's structure (`_structure`) with that constant marked, the
    constants already renamed under their new names, and the others as one placeholder. Constants with a unique
    signature are renamed in signature order; among tied ones each is tried in turn (within a budget) and the
    smallest structure wins, so that the key does not depend on the original names.
    """
    prefix = "c"
    while any(v.startswith(prefix) for v in variables):
        prefix = "_" + prefix
    budget = [2000]  # signature evaluations; only ties between constants spend more than n(n+1)/2

    def search(assigned: dict[sympy.Basic, str], remaining: list[sympy.Symbol]) -> dict[sympy.Basic, str]:
        assigned = dict(assigned)
        while remaining:
            signatures = {}
            for k in remaining:
                mapping = {**assigned, **{o: prefix + "_" for o in remaining}, k: prefix + "*"}
                signatures[k] = _structure(expr, mapping)
            budget[0] -= len(remaining)
            counts = Counter(signatures.values())
            unique = sorted((k for k in remaining if counts[signatures[k]] == 1), key=signatures.__getitem__)
            chosen = unique or [min(remaining, key=signatures.__getitem__)]
            if not unique:
                best = signatures[chosen[0]]
                options: list[dict[sympy.Basic, str]] = []
                for k in (k for k in remaining if signatures[k] == best):
                    if options and budget[0] <= 0:
                        break  # out of budget: keep the branches explored so far (deterministic)
                    branch = {**assigned, k: f"{prefix}{len(assigned)}"}
                    options.append(search(branch, [o for o in remaining if o != k]))
                return min(options, key=lambda option: _structure(expr, option))
            for k in chosen:
                assigned[k] = f"{prefix}{len(assigned)}"
            remaining = [k for k in remaining if k not in assigned]
        return assigned

    renaming = search({}, [sympy.Symbol(n) for n in names])
    return str(expr.xreplace({k: sympy.Symbol(v) for k, v in renaming.items()}))


def _structure(expr: sympy.Basic, names: Mapping[sympy.Basic, str]) -> str:
    """Print the tree with symbols renamed and the arguments of commutative nodes sorted."""
    if isinstance(expr, sympy.Symbol):
        return names.get(expr, expr.name)
    if not expr.args:
        return str(expr)
    parts = [_structure(arg, names) for arg in expr.args]
    if isinstance(expr, sympy.Add | sympy.Mul | sympy.Min | sympy.Max):
        parts.sort()
    return f"{type(expr).__name__}({','.join(parts)})"


def parse_law(
    text: str,
    variables: Iterable[str],
    *,
    constants: Mapping[str, ConstantSpec] | None = None,
) -> Law:
    """Parse law text over the given variables; other names become constants.

    Allowed: int and float literals, names, ``+ - * / **`` (``^`` also means power), unary ``-``/``+`` and
    calls to ``exp log sqrt tanh Abs Min Max`` (also ``ln``, ``abs``, ``min``, ``max``).

    Parameters
    ----------
    text : str
        The right-hand side of the law, at most 2000 characters.
    variables : iterable of str
        Feature names (the columns of ``X``, in order).
    constants : mapping of str to ConstantSpec, optional
        Bounds and initial values by constant name; constants not listed are unbounded. Specs of names that
        do not appear in the text are ignored.

    Returns
    -------
    Law
        Constants ordered by first appearance in the text.

    Raises
    ------
    ExpressionError
        With a ``reason`` if the text is unsafe, malformed, too large, or not a finite real expression.

    Examples
    --------
    >>> law = parse_law("E + A/N^alpha + B/D^beta", ["N", "D"])
    >>> law.constant_names
    ('E', 'A', 'alpha', 'B', 'beta')
    >>> law.text
    'A/N**alpha + B/D**beta + E'
    >>> parse_law("__import__('os')", ["N"])
    Traceback (most recent call last):
    ...
    sld.search.errors.ExpressionError: cannot use law "__import__('os')": dunder names are not allowed ('__import__')
    """
    if not isinstance(text, str):
        raise ExpressionError(f"expected law text as a string, got {type(text).__name__}")
    # Laws are immutable, and the search parses the same texts again and again (every evolution round re-derives
    # children its parents already had, every evaluation re-reads its proposal), each a few sympy reprints.
    return _parse_law_cached(text, tuple(variables), tuple(sorted((constants or {}).items())))


@functools.lru_cache(maxsize=8192)
def _parse_law_cached(
    text: str, variables_in: tuple[str, ...], constant_items: tuple[tuple[str, ConstantSpec], ...]
) -> Law:
    variables = tuple(_check_name(v, "variable") for v in variables_in)
    specs = dict(constant_items)
    for name, spec in specs.items():
        if spec.name != name or name in variables:
            raise ExpressionError(f"constant spec {name!r} is named {spec.name!r} or names a variable")
    if len(text) > MAX_TEXT_LENGTH:
        raise ExpressionError(f"text is too long ({len(text)} characters; at most {MAX_TEXT_LENGTH})")
    tree = _parse_tree(text)
    try:
        expr = _Builder(text).build(tree.body)
        _check_numbers(expr, text)
        expr = _normalize(expr, text.strip().replace("^", "**"))  # the text `_parse_tree` read
    except (ValueError, TypeError, ArithmeticError) as exc:  # sympy refusing, e.g. Min of a complex number
        raise ExpressionError(f"not a real expression ({exc})", text) from None
    free = {str(s) for s in expr.free_symbols}
    seen = sorted(
        (node for node in ast.walk(tree) if isinstance(node, ast.Name)),
        key=lambda node: (node.lineno, node.col_offset),
    )
    order = dict.fromkeys(n.id for n in seen if n.id in free and n.id not in variables)
    try:
        return Law(expr, variables, tuple(specs.get(name) or ConstantSpec(name) for name in order))
    except ExpressionError as exc:
        raise ExpressionError(exc.reason, text) from None


# Normal forms already computed, each also recorded as its own normal form, with the normal form's printed text
# when it is known: a parsed law's expression is normal (`_parse_law_cached` normalises it), and its canonical key
# and its text then find it here instead of printing it again, which costs milliseconds on a law of a dozen
# constants. Bounded: cleared when full.
_NORMAL_FORMS: dict[sympy.Expr, tuple[sympy.Expr, str | None]] = {}
_NORMAL_FORMS_MAX = 16384


def _normalize(expr: sympy.Expr, source: str | None = None) -> sympy.Expr:
    """Return the form of ``expr`` that printing and parsing back reproduces.

    Printing can lose sympy's structure: ``-(x + y)/x`` is a product of -1, 1/x and a sum, but its text parses
    as ``(-x - y)/x``. Reprinting until the text is stable makes ``parse_law(law.text)`` give ``law`` back.
    The text comes from sympy's printer, so it is parsed without the size limits meant for untrusted input.
    ``source``, the text ``expr`` was built from if it was, saves building a text that is already known to give
    ``expr`` back.
    """
    known = _NORMAL_FORMS.get(expr)
    if known is not None:
        return known[0]
    normal, text = _reprinted(expr, source)
    if len(_NORMAL_FORMS) >= _NORMAL_FORMS_MAX:
        _NORMAL_FORMS.clear()
    _NORMAL_FORMS[expr] = _NORMAL_FORMS[normal] = (normal, text)
    return normal


def _normal_text(expr: sympy.Expr) -> str:
    """Return ``str(expr)``, printed once by `_normalize` when ``expr`` is a normal form it recorded."""
    known = _NORMAL_FORMS.get(expr)
    if known is not None and known[1] is not None and known[0] == expr:
        return known[1]
    return str(expr)


def _reprinted(expr: sympy.Expr, source: str | None) -> tuple[sympy.Expr, str | None]:
    """Reprint ``expr`` until its text is stable (see `_normalize`); return it and its text (``None``: unknown)."""
    # sympy turns exp(1) into the symbol E, which would print as a name; keep such numbers as floats.
    numbers = expr.atoms(sympy.NumberSymbol)
    if numbers:
        expr, source = expr.xreplace({s: sympy.Float(s) for s in numbers}), None
    for _ in range(3):
        text = str(expr)
        if text == source:
            return expr, text  # built from this very text: building it again gives ``expr`` back
        try:
            again = _Builder(text).build(ast.parse(text, mode="eval").body)
        except (ExpressionError, SyntaxError, ValueError, TypeError, ArithmeticError):
            return expr, text  # a law built in code with nodes text cannot express; it stays as it is
        again = again.xreplace({s: sympy.Float(s) for s in again.atoms(sympy.NumberSymbol)})
        if again == expr:
            return expr, text
        expr, source = again, text
    return expr, None


def _parse_tree(text: str) -> ast.Expression:
    source = text.strip().replace("^", "**")
    try:
        tree = ast.parse(source, mode="eval")
    except SyntaxError as exc:
        hint = "; write only the right-hand side, e.g. 'E + A/N**alpha'" if "=" in source else ""
        raise ExpressionError(f"not a valid expression ({exc.msg}){hint}", text) from None
    except (ValueError, RecursionError, MemoryError) as exc:
        raise ExpressionError(f"not a valid expression ({type(exc).__name__})", text) from None
    n_nodes = sum(isinstance(node, ast.expr) for node in ast.walk(tree))
    if n_nodes > MAX_NODES:
        raise ExpressionError(f"expression has too many nodes ({n_nodes}; at most {MAX_NODES})", text)
    depth = _depth(tree.body)
    if depth > MAX_DEPTH:
        raise ExpressionError(f"expression is too deep (depth {depth}; at most {MAX_DEPTH})", text)
    return tree


def _depth(node: ast.AST) -> int:
    """Nesting depth, counting a chain like ``a + b - c + d`` as one level (sums are flat in math)."""
    deepest = 0
    for child in ast.iter_child_nodes(node):
        if not isinstance(child, ast.expr):
            continue
        chained = (
            isinstance(node, ast.BinOp)
            and isinstance(child, ast.BinOp)
            and any(type(node.op) in chain and type(child.op) in chain for chain in _CHAINS)
        )
        deepest = max(deepest, _depth(child) - chained)
    return 1 + deepest


def _check_numbers(expr: sympy.Expr, text: str) -> None:
    """Reject constant parts that are not finite reals, e.g. ``1/0``, ``log(-1)``, ``(-8)**(1/3)``."""
    if expr.free_symbols:
        for arg in expr.args:
            if isinstance(arg, sympy.Expr):
                _check_numbers(arg, text)
        return
    try:
        with np.errstate(all="ignore"):
            value = compile_law(expr, (), ()).values(np.zeros((0, 1)), np.zeros(0))[0]
    except ExpressionError:
        value = math.nan
    if not math.isfinite(value):
        raise ExpressionError(
            f"the constant part {expr} is not a finite real number "
            "(division by zero, log of a non-positive number, or a negative number to a fractional power?)",
            text,
        )


class _Builder:
    """Turns a whitelisted ast into sympy; anything else raises `ExpressionError` with the reason."""

    def __init__(self, text: str) -> None:
        self.text = text

    def reject(self, reason: str) -> ExpressionError:
        return ExpressionError(reason, self.text)

    def build(self, node: ast.AST) -> sympy.Expr:
        if isinstance(node, ast.Constant):
            return self.number(node.value)
        if isinstance(node, ast.Name):
            return self.name(node.id)
        if isinstance(node, ast.UnaryOp):
            operand = self.build(node.operand)
            if isinstance(node.op, ast.USub):
                return -operand
            if isinstance(node.op, ast.UAdd):
                return operand
            raise self.reject(f"operator {type(node.op).__name__} is not allowed; use + - * / **")
        if isinstance(node, ast.BinOp):
            return self.binary(node)
        if isinstance(node, ast.Call):
            return self.call(node)
        raise self.reject(_NODE_REASONS.get(type(node), f"{type(node).__name__} is not allowed"))

    def number(self, value: object) -> sympy.Expr:
        if isinstance(value, str | bytes):
            raise self.reject("string literals are not allowed")
        if isinstance(value, bool) or not isinstance(value, int | float | complex):
            raise self.reject(f"only numbers may be literals, not {value!r}")
        if isinstance(value, complex):
            raise self.reject("complex numbers are not allowed")
        if isinstance(value, int):
            if value.bit_length() > 1000:
                raise self.reject("number literal is too large")
            return sympy.Integer(value)
        if not math.isfinite(value):
            raise self.reject("number literal is too large")
        return sympy.Float(value)

    def name(self, name: str) -> sympy.Expr:
        if name.startswith("__"):
            raise self.reject(f"dunder names are not allowed ({name!r})")
        if name in FUNCTIONS:
            raise self.reject(f"function {name!r} used without arguments; write {name}(...)")
        return sympy.Symbol(name)

    def binary(self, node: ast.BinOp) -> sympy.Expr:
        left = self.build(node.left)
        if isinstance(node.op, ast.Pow | ast.BitXor):
            return self.power(left, node.right)
        operation = _BINARY.get(type(node.op))
        if operation is None:
            raise self.reject(f"operator {type(node.op).__name__} is not allowed; use + - * / **")
        return operation(left, self.build(node.right))

    def power(self, base: sympy.Expr, exponent_node: ast.expr) -> sympy.Expr:
        for node in ast.walk(exponent_node):
            value = node.value if isinstance(node, ast.Constant) else None
            if isinstance(value, int | float) and abs(value) > MAX_EXPONENT_LITERAL:
                raise self.reject(f"exponent literal {value!r} is too large (|value| > {MAX_EXPONENT_LITERAL:g})")
        exponent = self.build(exponent_node)
        if exponent.is_Number:
            if abs(float(exponent)) > MAX_EXPONENT_LITERAL:
                raise self.reject(f"exponent {exponent} is too large (|value| > {MAX_EXPONENT_LITERAL:g})")
            # sympy folds numeric factors exactly, e.g. (2*x)**k -> 2**k * x**k; keep that in float range.
            coefficient = base.as_coeff_Mul()[0]
            if coefficient.is_Number and coefficient != 0 and abs(coefficient) != 1:
                digits = abs(float(exponent)) * abs(float(sympy.log(abs(coefficient), 10).evalf(5)))
                if digits > _MAX_DECIMAL_EXPONENT:
                    raise self.reject(f"numeric overflow: ({base})**({exponent}) is out of floating-point range")
        result: sympy.Expr = base**exponent
        return result

    def call(self, node: ast.Call) -> sympy.Expr:
        if not isinstance(node.func, ast.Name):
            self.build(node.func)  # raises with the reason for attributes, lambdas, subscripts, ...
            raise self.reject("only calls to named functions are allowed")
        name = node.func.id
        if name.startswith("__"):
            raise self.reject(f"dunder names are not allowed ({name!r})")
        if name not in FUNCTIONS:
            allowed = ", ".join(sorted(FUNCTIONS))
            raise self.reject(f"unknown function {name!r}; allowed: {allowed}")
        if node.keywords:
            raise self.reject(f"keyword arguments are not allowed (in {name}())")
        args = [self.build(arg) for arg in node.args]
        if (name in _VARIADIC and not args) or (name not in _VARIADIC and len(args) != 1):
            expected = "at least 1 argument" if name in _VARIADIC else "exactly 1 argument"
            raise self.reject(f"{name}() takes {expected}, got {len(args)}")
        result: sympy.Expr = FUNCTIONS[name](*args)
        return result

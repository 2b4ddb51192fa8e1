"""Compile a sympy law into a tree of numpy closures (no ``lambdify``, no ``exec``).

Two trees are built per law and cached: one computing values, and one computing values together with the
Jacobian with respect to the constants (forward-mode differentiation), which the fitters use. Both work on
``cols``, the feature matrix transposed to shape ``(n_vars, *shape)`` (``shape`` is ``(n,)``, or ``(b, m)`` for a
batch of ``b`` problems of ``m`` rows), and ``theta``, the constants: shape ``(n_params,)``, or one value per row
or per problem in any shape that broadcasts against ``shape`` (``(n_params, n)``, ``(n_params, b, 1)``).

Subtrees of the features alone (``N / 1e9``, ``log(D)``) do not change while constants are fitted, so they are
not part of the trees: `CompiledLaw.prepare` evaluates them once into extra columns, which the trees read like
features. A power of such a subtree to a fitted exponent, ``(N / 1e9)**(-alpha)``, is evaluated as
``exp(-alpha * log(N / 1e9))`` with the logarithm prepared as a column: an ``exp`` per row costs a third of a
``pow``, and the derivative by the exponent (``value * log(base)``) reuses the column. Rows where the base is not
finite and positive, where the two forms differ, are evaluated with ``pow``.

Inside the trees a value is either a numpy scalar or array that depends on constants and numbers only (evaluated
once per call, or per problem, rather than per row) or an array of ``shape``. A gradient is ``None``
(independent of the constants) or a pair ``(factor, parts)``: a sparse dict from constant index to a derivative,
times a common factor (``None`` for 1). Most nodes depend on one or two of a law's constants, so a dense gradient
per node would multiply mostly zeros (it dominated the batched fits). The factor defers the chain rule's products:
``exp(u)``, ``u**2`` or ``A * u`` scale all of ``u``'s derivatives by one array, which is one product of the
factor rather than one per constant; the parts are multiplied out only where two gradients with different factors
are added (`_add`), so a chain of such nodes over a law's many constants costs one product per constant, not one per
constant and node.
Overflow and invalid operations give ``inf``/``nan`` rather than errors: the `CompiledLaw` methods run the trees
under ``np.errstate(all="ignore")``.
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeAlias

import numpy as np
import sympy
from numpy.typing import NDArray

from sld.search.errors import ExpressionError

Array: TypeAlias = NDArray[np.float64]
# numpy scalar or array; numpy's own annotations cannot express "scalar or array" usefully.
Value: TypeAlias = Any
Grad: TypeAlias = Any
ValueFn: TypeAlias = Callable[[Array, Array], Value]
DualFn: TypeAlias = Callable[[Array, Array], tuple[Value, Grad]]
ColumnFn: TypeAlias = Callable[[Array], Value]

_UNARY: dict[type[sympy.Basic], tuple[Callable[[Value], Value], Callable[[Value, Value], Value]]] = {
    # function, derivative as a function of (argument, value)
    sympy.exp: (np.exp, lambda a, v: v),
    sympy.log: (np.log, lambda a, v: 1.0 / a),
    sympy.tanh: (np.tanh, lambda a, v: 1.0 - v * v),
    sympy.Abs: (np.abs, lambda a, v: np.sign(a)),
}
_NO_CONSTANTS = np.zeros(0)
# The derivative of a constant by itself; `_scale` and `_parts` recognise it by identity.
_UNIT = np.float64(1.0)


@dataclass(frozen=True)
class CompiledLaw:
    """Numpy evaluators of one law; build with `compile_law`.

    The trees read prepared columns (`prepare`): the features, then the law's feature-only subtrees. Every method
    prepares ``cols`` itself unless told (``prepared=True``) that the caller did, once for many calls.
    """

    value_fn: ValueFn
    dual_fn: DualFn
    n_params: int
    derived: tuple[ColumnFn, ...] = field(default=())

    def prepare(self, cols: Array) -> Array:
        """Return ``cols`` of shape ``(n_vars, *shape)`` with the feature-only subtrees appended as rows."""
        if not self.derived:
            return cols
        with np.errstate(all="ignore"):
            extra = [np.broadcast_to(fn(cols), cols.shape[1:]) for fn in self.derived]
        return np.concatenate([cols, np.stack(extra)])

    def values(self, cols: Array, theta: Array, *, prepared: bool = False) -> Array:
        """Return the predictions, of ``cols.shape[1:]``, for ``cols`` of shape ``(n_vars, *shape)``."""
        with np.errstate(all="ignore"):  # non-finite predictions are results, not errors
            ready = cols if prepared else self.prepare(cols)
            return _as_rows(self.value_fn(ready, theta), cols.shape[1:])

    def values_and_jacobian(self, cols: Array, theta: Array) -> tuple[Array, Array]:
        """Return the ``(n,)`` predictions and their ``(n, n_params)`` Jacobian with respect to ``theta``."""
        value, gradients = self.values_and_gradients(cols, theta, range(self.n_params))
        return value, gradients.T

    def values_and_gradients(
        self, cols: Array, theta: Array, indices: Iterable[int], *, prepared: bool = False
    ) -> tuple[Array, Array]:
        """Return the predictions (``cols.shape[1:]``) and their derivatives by the constants ``indices``.

        The derivatives have shape ``(k, *cols.shape[1:])`` for k indices: the leading constant axis keeps each
        derivative contiguous, which the batched fitter's products want.
        """
        shape = cols.shape[1:]
        with np.errstate(all="ignore"):
            value, grad = self.dual_fn(cols if prepared else self.prepare(cols), theta)
        grad = _parts(grad)
        positions = list(indices)
        out = np.zeros((len(positions), *shape))
        for row, index in enumerate(positions):
            if index in grad:
                out[row] = grad[index]
        return _as_rows(value, shape), out


def _as_rows(value: Value, shape: tuple[int, ...]) -> Array:
    if np.shape(value) == shape:
        return np.asarray(value, dtype=np.float64)
    return np.array(np.broadcast_to(value, shape), dtype=np.float64)


@functools.lru_cache(maxsize=4096)
def compile_law(expr: sympy.Expr, variables: tuple[str, ...], constants: tuple[str, ...]) -> CompiledLaw:
    """Compile ``expr`` over ``variables`` (columns) and ``constants`` (entries of theta), cached.

    Raises
    ------
    ExpressionError
        If the expression contains a symbol that is neither a variable nor a constant, or a sympy node
        the evaluator does not support.
    """
    slots: dict[str, tuple[bool, int]] = {name: (True, i) for i, name in enumerate(variables)}
    slots.update({name: (False, j) for j, name in enumerate(constants)})
    builder = _Builder(slots, len(variables), derive=True)
    value_fn, dual_fn = builder.value(expr), builder.dual(expr)
    return CompiledLaw(value_fn, dual_fn, len(constants), tuple(builder.derived))


class _Builder:
    """Builds the closures of one law; with ``derive``, feature-only subtrees become prepared columns."""

    def __init__(self, slots: dict[str, tuple[bool, int]], n_vars: int, *, derive: bool) -> None:
        self.slots, self.n_vars, self.derive = slots, n_vars, derive
        self.variable_names = frozenset(name for name, (is_var, _) in slots.items() if is_var)
        self.columns: dict[tuple[str, sympy.Basic], int] = {}
        self.derived: list[ColumnFn] = []

    def _features_only(self, expr: sympy.Basic) -> bool:
        names = {symbol.name for symbol in expr.free_symbols}
        return bool(names) and names <= self.variable_names

    def column(self, expr: sympy.Basic, *, log: bool = False) -> int:
        """Return the row of the prepared columns holding ``expr`` (or its log), added on first use."""
        leaf = _leaf(expr, self.slots)
        if leaf is not None and leaf[0] == "var" and not log:
            return int(leaf[1])
        key = ("log" if log else "value", expr)
        if key not in self.columns:
            raw = _Builder(self.slots, self.n_vars, derive=False).value(expr)
            if log:
                self.derived.append(lambda c: np.log(raw(c, _NO_CONSTANTS)))
            else:
                self.derived.append(lambda c: raw(c, _NO_CONSTANTS))
            self.columns[key] = self.n_vars + len(self.derived) - 1
        return self.columns[key]

    def _prepared(self, expr: sympy.Basic) -> int | None:
        """Return the prepared column of ``expr`` if it is an inner node of features alone (and columns are derived)."""
        if self.derive and _leaf(expr, self.slots) is None and self._features_only(expr):
            return self.column(expr)
        return None

    def value(self, expr: sympy.Basic) -> ValueFn:
        prepared = self._prepared(expr)
        if prepared is not None:
            return lambda c, t: c[prepared]
        leaf = _leaf(expr, self.slots)
        if leaf is not None:
            kind, payload = leaf
            if kind == "var":
                return lambda c, t: c[payload]
            if kind == "const":
                return lambda c, t: t[payload]
            return lambda c, t: payload
        if isinstance(expr, sympy.Pow) and self.derive and self._features_only(expr.base):
            base_column, log_column = self._log_columns(expr)
            fitted_exponent = self.value(expr.exp)
            return lambda c, t: _power_from_log(fitted_exponent(c, t), c[log_column], c[base_column])
        args = [self.value(arg) for arg in expr.args]
        if isinstance(expr, sympy.Add | sympy.Mul):
            op = operator.add if isinstance(expr, sympy.Add) else operator.mul
            if len(args) == 2:
                f, g = args
                return lambda c, t: op(f(c, t), g(c, t))
            return _folded(args, op)
        if isinstance(expr, sympy.Pow):
            base, exponent = args
            if expr.exp.is_Number:
                return _numeric_power(base, float(expr.exp))
            return lambda c, t: np.power(base(c, t), exponent(c, t))
        if isinstance(expr, sympy.Min | sympy.Max):
            return _folded(args, np.minimum if isinstance(expr, sympy.Min) else np.maximum)
        fn, _ = _unary(expr)
        (f,) = args
        return lambda c, t: fn(f(c, t))

    def _log_columns(self, expr: sympy.Pow) -> tuple[int, int]:
        """Return the prepared columns of a feature-only power base and of its log."""
        return self.column(expr.base), self.column(expr.base, log=True)

    def dual(self, expr: sympy.Basic) -> DualFn:
        prepared = self._prepared(expr)
        if prepared is not None:
            return lambda c, t: (c[prepared], None)
        leaf = _leaf(expr, self.slots)
        if leaf is not None:
            kind, payload = leaf
            if kind == "var":
                return lambda c, t: (c[payload], None)
            if kind == "const":
                unit = (None, {payload: _UNIT})
                return lambda c, t: (t[payload], unit)
            return lambda c, t: (payload, None)
        if isinstance(expr, sympy.Pow) and self.derive and self._features_only(expr.base):
            return self._dual_exp_of_log(expr)
        args = [self.dual(arg) for arg in expr.args]
        if isinstance(expr, sympy.Add):

            def add(c: Array, t: Array) -> tuple[Value, Grad]:
                out, grad = args[0](c, t)
                for f in args[1:]:
                    value, g = f(c, t)
                    out, grad = out + value, _add(grad, g)
                return out, grad

            return add
        if isinstance(expr, sympy.Mul):

            def mul(c: Array, t: Array) -> tuple[Value, Grad]:
                out, grad = args[0](c, t)
                for f in args[1:]:
                    value, g = f(c, t)
                    out, grad = out * value, _add(_scale(grad, value), _scale(g, out))
                return out, grad

            return mul
        if isinstance(expr, sympy.Pow):
            return _dual_power(args[0], args[1], float(expr.exp) if expr.exp.is_Number else None)
        if isinstance(expr, sympy.Min | sympy.Max):
            return _dual_extremum(args, isinstance(expr, sympy.Min))
        fn, derivative = _unary(expr)
        (f,) = args

        def unary(c: Array, t: Array) -> tuple[Value, Grad]:
            arg, grad = f(c, t)
            value = fn(arg)
            return value, (None if grad is None else _scale(grad, derivative(arg, value)))

        return unary

    def _dual_exp_of_log(self, expr: sympy.Pow) -> DualFn:
        base, log_base = self._log_columns(expr)
        exponent = self.dual(expr.exp)

        def power(c: Array, t: Array) -> tuple[Value, Grad]:
            e, ge = exponent(c, t)
            lb = c[log_base]
            value = _power_from_log(e, lb, c[base])
            return value, _scale(ge, value * lb)

        return power


def _power_from_log(exponent: Value, log_base: Array, base: Array) -> Value:
    """``base**exponent`` as ``exp(exponent * log(base))``, with ``pow``'s answers where the log is not finite."""
    value = np.exp(exponent * log_base)
    finite = np.isfinite(log_base)
    if not finite.all():
        # Bases that are 0, negative, infinite or nan: pow has answers there (0**0 == 1, (-2)**3 == -8).
        value = np.where(finite, value, np.power(base, exponent))
    return value


def _leaf(expr: sympy.Basic, slots: dict[str, tuple[bool, int]]) -> tuple[str, Any] | None:
    """Classify a leaf: ("var", column), ("const", index), ("num", value); None for inner nodes."""
    if isinstance(expr, sympy.Symbol):
        if expr.name not in slots:
            raise ExpressionError(f"symbol {expr.name!r} is neither a variable nor a constant")
        is_var, index = slots[expr.name]
        return ("var", index) if is_var else ("const", index)
    if isinstance(expr, sympy.Number | sympy.NumberSymbol):
        try:
            number = complex(expr)
        except (TypeError, ValueError, OverflowError):
            number = complex(np.nan)
        if number.imag != 0 or not np.isfinite(number.real):
            raise ExpressionError(f"the number {expr} is not a finite real number")
        return ("num", np.float64(number.real))
    return None


def _folded(args: list[ValueFn], op: Callable[[Value, Value], Value]) -> ValueFn:
    # A sum, product, min or max of any number of terms, folded left to right.
    def fold(c: Array, t: Array) -> Value:
        out = args[0](c, t)
        for f in args[1:]:
            out = op(out, f(c, t))
        return out

    return fold


def _numeric_power(base: ValueFn, exponent: float) -> ValueFn:
    value_of = _power_of(exponent)
    return lambda c, t: value_of(base(c, t))


def _power_of(exponent: float) -> Callable[[Value], Value]:
    """Return ``b -> b**exponent``, as a cheaper ufunc for the exponents sympy writes most.

    sympy writes a/b as a*b**-1 and sqrt(b) as b**(1/2); ``pow`` per element costs 10-100 times a product.
    """
    if exponent == 2.0:
        return np.square
    if exponent == -1.0:
        return lambda b: 1.0 / b
    if exponent == 0.5:
        return np.sqrt
    if exponent == -0.5:
        return lambda b: 1.0 / np.sqrt(b)
    power = np.float64(exponent)
    return lambda b: np.power(b, power)


def _power_slope(exponent: float) -> Callable[[Value, Value], Value]:
    """Return ``(b, b**exponent) -> exponent * b**(exponent - 1)``, from the value where that saves a ``pow``.

    Equal to the ``pow`` form wherever that is defined, and at 0, inf and negative bases: 1/b**2 at b = 0 is inf
    either way, sqrt of a negative base is nan either way.
    """
    if exponent == 2.0:
        return lambda b, v: 2.0 * b
    if exponent == -1.0:
        return lambda b, v: -(v * v)
    if exponent == 0.5:
        return lambda b, v: 0.5 / v
    if exponent == -0.5:
        return lambda b, v: -0.5 * v / b
    power, lowered = np.float64(exponent), np.float64(exponent - 1.0)
    return lambda b, v: power * np.power(b, lowered)


def _scale(grad: Grad, factor: Value) -> Grad:
    """Multiply a gradient by a per-row (or scalar) factor, ``d(u) * f``: one product, of the common factor."""
    if grad is None:
        return None
    common, parts = grad
    return (factor if common is None else common * factor), parts


def _parts(grad: Grad) -> dict[int, Value]:
    """Return a gradient's derivatives, its common factor multiplied in (``{}`` for ``None``)."""
    if grad is None:
        return {}
    common, parts = grad
    if common is None:
        return dict(parts)
    # A constant's own derivative is the unit: ``A * f`` has derivative ``f`` by A, the factor itself, not a copy
    # (the trees never write into their arrays, so sharing one is safe).
    return {index: common if derivative is _UNIT else derivative * common for index, derivative in parts.items()}


def _add(left: Grad, right: Grad) -> Grad:
    if left is None:
        return right
    if right is None:
        return left
    if left[0] is right[0]:  # the same factor (or none): add the parts, keep the factor
        out = dict(left[1])
        for index, derivative in right[1].items():
            out[index] = out[index] + derivative if index in out else derivative
        return left[0], out
    out = _parts(left)
    for index, derivative in _parts(right).items():
        out[index] = out[index] + derivative if index in out else derivative
    return None, out


def _unary(expr: sympy.Basic) -> tuple[Callable[[Value], Value], Callable[[Value, Value], Value]]:
    for cls, pair in _UNARY.items():
        if isinstance(expr, cls) and len(expr.args) == 1:
            return pair
    raise ExpressionError(f"cannot evaluate {type(expr).__name__} nodes ({expr})")


def _dual_power(base: DualFn, exponent: DualFn, numeric: float | None) -> DualFn:
    if numeric is not None:
        value_of, slope_of = _power_of(numeric), _power_slope(numeric)

        def numeric_power(c: Array, t: Array) -> tuple[Value, Grad]:
            b, gb = base(c, t)
            value = value_of(b)
            if gb is None:
                return value, None
            return value, _scale(gb, slope_of(b, value))

        return numeric_power

    def power(c: Array, t: Array) -> tuple[Value, Grad]:
        b, gb = base(c, t)
        e, ge = exponent(c, t)
        value = np.power(b, e)
        grad = None if gb is None else _scale(gb, e * np.power(b, e - 1.0))
        if ge is not None:
            grad = _add(grad, _scale(ge, value * np.log(b)))
        return value, grad

    return power


def _dual_extremum(args: list[DualFn], is_min: bool) -> DualFn:
    pick = np.minimum if is_min else np.maximum

    def extremum(c: Array, t: Array) -> tuple[Value, Grad]:
        out, grad = args[0](c, t)
        for f in args[1:]:
            value, g = f(c, t)
            keep = out <= value if is_min else out >= value
            if grad is not None or g is not None:
                left, right = _parts(grad), _parts(g)
                grad = None, {
                    index: np.where(keep, left.get(index, 0.0), right.get(index, 0.0))
                    for index in sorted(set(left) | set(right))
                }
            out = pick(out, value)
        return out, grad

    return extremum

"""Evolution of law structures: mutation and crossover of expression trees.

Operators act on the sympy tree of a law; constants are the symbols that are not variables, and every new
constant gets a fresh name (``k1``, ``k2``, ...). A child is kept only if it parses back with `parse_law`,
uses at least one variable, has between 1 and ``max_params`` constants, is new (its canonical key differs
from the parents' and from the other children's), and is no less identifiable than its parents: a child
whose Jacobian with respect to its constants loses rank at random points (``c * (A/N**alpha + E)``,
``A*N**(-alpha - k1)``) has constants the data cannot tell apart, and would waste a fit.

Operators (the ``operator`` of each `Mutation`):

- ``add_term``: add ``k1*v**(-k2)``, ``k1*log(v)``, ``k1*v``, ``k1*v**(-k2)*w**(-k3)``, or multiply an
  additive term by ``v**(-k1)``;
- ``remove_term``: drop one argument of a sum (the top-level one, or one nested inside);
- ``swap_transform``: one occurrence of ``v`` becomes ``log(v)``, ``v**k1`` or ``v + k1``; ``log(v)``
  becomes ``v``;
- ``perturb_exponent``: a fitted exponent becomes 1/2, 1 or 2 (one constant fewer), a numeric exponent becomes
  a fitted one or another simple number;
- ``wrap_offset``, ``wrap_scale``, ``wrap_power``: ``f + k1`` (when ``f`` has no additive constant),
  ``k1*f``, ``f**k1``;
- ``crossover``: swap one additive term between two laws, or sum about half the terms of each.

Example
-------
>>> import numpy as np
>>> from sld.search.expressions import parse_law
>>> from sld.search.evolution import mutate
>>> law = parse_law("E + A/N**alpha + B/D**beta", ["N", "D"])
>>> children = mutate(law, variables=("N", "D"), max_params=6, rng=np.random.default_rng(0), n=4)
>>> len(children), all(c.expression != law.text for c in children)
(4, True)
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import sympy

from sld.search.errors import ExpressionError
from sld.search.expressions import FUNCTIONS, Law, parse_law

Path = tuple[int, ...]
Move = tuple[str, sympy.Expr]  # (operator, child expression)

_SIMPLE_EXPONENTS = (sympy.Rational(1, 2), sympy.Integer(1), sympy.Integer(2))
# Moves are drawn per group, so that the three wraps together weigh as much as one other operator.
_GROUP = {"wrap_offset": "wrap", "wrap_scale": "wrap", "wrap_power": "wrap"}


@dataclass(frozen=True)
class Mutation:
    """A child law and the operator that made it.

    Attributes
    ----------
    expression : str
        Law text that `parse_law` accepts over the parent's variables.
    operator : str
        ``add_term``, ``remove_term``, ``swap_transform``, ``perturb_exponent``, ``wrap_offset``,
        ``wrap_scale``, ``wrap_power`` or ``crossover``.
    """

    expression: str
    operator: str


def mutate(
    law: Law,
    *,
    variables: Sequence[str],
    max_params: int,
    rng: np.random.Generator,
    n: int = 8,
    positive: frozenset[str] | None = None,
) -> list[Mutation]:
    """Return up to ``n`` distinct mutants of a law.

    Operators are drawn uniformly (the three wraps count as one), then a move of that operator uniformly;
    moves whose child is invalid, over budget, already seen or less identifiable are skipped, until ``n``
    children are found or no move is left.

    Parameters
    ----------
    law : Law
        The parent.
    variables : sequence of str
        The variable names (the other symbols of ``law.expr`` are its constants).
    max_params : int
        Most constants a child may have.
    rng : numpy.random.Generator
        The only source of randomness: the same law and seed give the same children.
    n : int, default 8
        Number of children wanted.
    positive : frozenset of str or None, default None
        Variables known to be positive, the only ones given powers and logs; None: every variable.

    Returns
    -------
    list of Mutation
        At most ``n`` children, in the order drawn.
    """
    variables = tuple(variables)
    positive_vars = tuple(v for v in variables if positive is None or v in positive)
    used = set(variables) | {str(s) for s in law.expr.free_symbols}
    fresh = [sympy.Symbol(name) for name in _fresh_names(used, 3)]
    context = _Context(law.expr, variables, positive_vars, fresh)
    moves = [
        *context.add_term(),
        *context.remove_term(),
        *context.swap_transform(),
        *context.perturb_exponent(),
        *context.wrap(),
    ]
    return _select(moves, variables=variables, max_params=max_params, parents=[law], rng=rng, n=n)


def crossover(a: Law, b: Law, *, max_params: int, rng: np.random.Generator, n: int = 4) -> list[Mutation]:
    """Return up to ``n`` distinct children of two laws over the same variables.

    Children: ``a`` with one additive term replaced by one of ``b``'s (and the other way round), and sums of
    about half the terms of each. Constants of the incoming part that collide with names of the receiving law
    are renamed; a child with two additive constants keeps the first.

    Parameters
    ----------
    a, b : Law
        The parents.
    max_params : int
        Most constants a child may have.
    rng : numpy.random.Generator
        The only source of randomness.
    n : int, default 4
        Number of children wanted.

    Returns
    -------
    list of Mutation
        At most ``n`` children (operator ``crossover``), each different from both parents.

    Raises
    ------
    ValueError
        If the laws have different variables.
    """
    if a.variables != b.variables:
        raise ValueError(f"crossover needs the same variables, got {a.variables} and {b.variables}")
    variables = a.variables
    moves: list[Move] = []
    for first, second in ((a, b), (b, a)):
        incoming = _renamed(second.expr, variables, avoid={str(s) for s in first.expr.free_symbols})
        mine, theirs = _terms(first.expr), _terms(incoming)
        for term, other in itertools.product(mine, theirs):
            moves.append(("crossover", _merge_offsets(first.expr - term + other, variables)))
        for _ in range(2):
            half = _subset(mine, (len(mine) + 1) // 2, rng) + _subset(theirs, (len(theirs) + 1) // 2, rng)
            moves.append(("crossover", _merge_offsets(sympy.Add(*half), variables)))
    return _select(moves, variables=variables, max_params=max_params, parents=[a, b], rng=rng, n=n)


def sharing_variants(law: Law, *, shared: frozenset[str]) -> list[frozenset[str]]:
    """Propose the neighbouring sets of constants shared across groups: one constant more, or one fewer.

    Parameters
    ----------
    law : Law
        The law whose constants may take one value for all groups (shared) or one per group.
    shared : frozenset of str
        The constants shared now; names that are not constants of ``law`` are ignored.

    Returns
    -------
    list of frozenset of str
        Sets with one more shared constant (in the order of ``law.constants``), then sets with one fewer.

    Examples
    --------
    >>> from sld.search.expressions import parse_law
    >>> law = parse_law("E + A/N**alpha", ["N"])
    >>> [sorted(s) for s in sharing_variants(law, shared=frozenset({"alpha"}))]
    [['E', 'alpha'], ['A', 'alpha'], []]
    """
    current = frozenset(shared) & set(law.constant_names)
    more = [current | {name} for name in law.constant_names if name not in current]
    fewer = [current - {name} for name in law.constant_names if name in current]
    return more + fewer


class _Context:
    """The moves of each mutation operator on one expression (children not yet validated)."""

    def __init__(
        self,
        expr: sympy.Expr,
        variables: tuple[str, ...],
        positive: tuple[str, ...],
        fresh: list[sympy.Symbol],
    ) -> None:
        self.expr = expr
        self.variables = variables
        self.symbols = [sympy.Symbol(v) for v in variables]
        self.positive = [sympy.Symbol(v) for v in positive]
        self.k1, self.k2, self.k3 = fresh

    def add_term(self) -> Iterator[Move]:
        k1, k2, k3 = self.k1, self.k2, self.k3
        new_terms: list[sympy.Expr] = []
        for v in self.positive:
            new_terms += [k1 * v**-k2, k1 * sympy.log(v)]
        new_terms += [k1 * v for v in self.symbols]
        for v, w in itertools.combinations(self.positive, 2):
            new_terms.append(k1 * v**-k2 * w**-k3)
        for term in new_terms:
            yield "add_term", self.expr + term
        # Multiplying a term by a power of a variable it already holds would only shift that exponent.
        for term in _terms(self.expr):
            for v in self.positive:
                if v not in term.free_symbols:
                    yield "add_term", self.expr - term + term * v**-k1

    def remove_term(self) -> Iterator[Move]:
        sums = sorted({node for node in sympy.preorder_traversal(self.expr) if node.is_Add}, key=str)
        for node in sums:
            for term in node.args:
                rest = sympy.Add(*[a for a in node.args if a is not term])
                yield "remove_term", self.expr.xreplace({node: rest})

    def swap_transform(self) -> Iterator[Move]:
        for path, node, parent in _nodes(self.expr):
            if isinstance(node, sympy.log) and node.args[0] in self.symbols:
                yield "swap_transform", _replace_at(self.expr, path, node.args[0])
            if node not in self.symbols:
                continue
            under_log = isinstance(parent, sympy.log)
            is_base = isinstance(parent, sympy.Pow) and path[-1] == 0
            if node in self.positive and not under_log:
                yield "swap_transform", _replace_at(self.expr, path, sympy.log(node))
            if node in self.positive and not under_log and not is_base:
                yield "swap_transform", _replace_at(self.expr, path, node**self.k1)
            # In a normalised occurrence (N/1.2e9) the offset goes outside, so that it stays near unit scale too.
            scaled = isinstance(parent, sympy.Mul) and len(parent.args) == 2 and parent.args[0].is_Number
            target = path[:-1] if scaled else path
            yield "swap_transform", _replace_at(self.expr, target, _node_at(self.expr, target) + self.k1)

    def perturb_exponent(self) -> Iterator[Move]:
        constants = set(self.expr.free_symbols) - set(self.symbols)
        fitted: set[sympy.Symbol] = set()
        for path, node, _ in _nodes(self.expr):
            if not (isinstance(node, sympy.Pow) and node.base.free_symbols & set(self.symbols)):
                continue
            fitted |= node.exp.free_symbols & constants
            if node.exp.is_Number and node.exp != 0:
                sign = 1 if node.exp > 0 else -1
                yield "perturb_exponent", _replace_at(self.expr, (*path, 1), sign * self.k1)
                for value in _SIMPLE_EXPONENTS:
                    if sign * value != node.exp:
                        yield "perturb_exponent", _replace_at(self.expr, (*path, 1), sign * value)
        for constant in sorted(fitted, key=str):
            for value in _SIMPLE_EXPONENTS:
                yield "perturb_exponent", self.expr.xreplace({constant: value})

    def wrap(self) -> Iterator[Move]:
        if not any(not (term.free_symbols & set(self.symbols)) for term in _terms(self.expr)):
            yield "wrap_offset", self.expr + self.k1
        yield "wrap_scale", self.k1 * self.expr
        yield "wrap_power", self.expr**self.k1


def _select(
    moves: list[Move],
    *,
    variables: tuple[str, ...],
    max_params: int,
    parents: Sequence[Law],
    rng: np.random.Generator,
    n: int,
) -> list[Mutation]:
    """Draw moves (group uniformly, then move uniformly) and keep the valid, new ones until ``n`` are kept."""
    pools: dict[str, list[Move]] = {}
    for move in moves:
        pools.setdefault(_GROUP.get(move[0], move[0]), []).append(move)
    seen = {parent.canonical_key for parent in parents}
    seen_texts = {parent.text for parent in parents}
    allowed: int | None = None  # rank deficiency tolerated in a child: the parents'; computed on first need
    children: list[Mutation] = []
    while pools and len(children) < n:
        groups = sorted(pools)
        group = groups[int(rng.integers(len(groups)))]
        pool = pools[group]
        operator, expr = pool.pop(int(rng.integers(len(pool))))
        if not pool:
            del pools[group]
        child = _child(expr, variables, max_params)
        # Cheap checks first: the canonical key costs more than the text and the identifiability check.
        if child is None or child.text in seen_texts:
            continue
        seen_texts.add(child.text)
        if allowed is None:
            allowed = max(_rank_deficiency(parent) for parent in parents)
        if _rank_deficiency(child) > allowed or child.canonical_key in seen:
            continue
        seen.add(child.canonical_key)
        children.append(Mutation(child.text, operator))
    return children


def _child(expr: sympy.Expr, variables: tuple[str, ...], max_params: int) -> Law | None:
    """Return the law of a candidate child, or None unless it is valid with 1 to ``max_params`` constants."""
    names = {str(s) for s in expr.free_symbols}
    n_constants = len(names - set(variables))
    if not names & set(variables) or not 1 <= n_constants <= max_params:
        return None
    # zoo, nan, I or pi would print as names and parse back as constants.
    for atom in expr.atoms():
        if not (atom.is_Symbol or (atom.is_Number and atom.is_finite and atom.is_real)):
            return None
    try:
        return parse_law(str(expr), variables)
    except ExpressionError:
        return None


def _rank_deficiency(law: Law) -> int:
    """Count the constants the law's Jacobian cannot tell apart at random points (0: locally identifiable).

    The Jacobian with respect to the constants is taken at random constants in [0.3, 1.3] and variables drawn
    log-uniformly in [1e-3, 1e12] (wide, since laws may be normalised to any data scale); rows that are not
    finite are dropped, and rows and columns are scaled to unit size (which keeps the rank). The rank is the
    larger of two draws, so a coincidence does not count. Laws with too few finite rows are not judged (0).
    """
    if law.n_params == 0:
        return 0
    rng = np.random.default_rng(20240601)  # fixed: identifiability is a property of the form, not the search
    n_rows = max(64, 8 * law.n_params)
    ranks: list[int] = []
    for _ in range(4):
        cols = 10.0 ** rng.uniform(-3.0, 12.0, size=(len(law.variables), n_rows))
        theta = rng.uniform(0.3, 1.3, size=law.n_params)
        with np.errstate(all="ignore"):
            values, jacobian = law.compiled.values_and_jacobian(cols, theta)
            finite = np.isfinite(values) & np.all(np.isfinite(jacobian), axis=1)
            rows = jacobian[finite]
            rows = rows[np.max(np.abs(rows), axis=1) > 0] if len(rows) else rows
            if len(rows) < 2 * law.n_params:
                continue
            rows = rows / np.max(np.abs(rows), axis=1, keepdims=True)
            scale = np.max(np.abs(rows), axis=0)
            live = rows[:, scale > 0] / scale[scale > 0]
            singular = np.linalg.svd(live / np.linalg.norm(live, axis=0), compute_uv=False)
        ranks.append(int(np.count_nonzero(singular > 1e-8 * singular[0])))
        if len(ranks) == 2:
            break
    return law.n_params - max(ranks) if ranks else 0


def _terms(expr: sympy.Expr) -> list[sympy.Expr]:
    """Return the additive terms of an expression (the expression itself if it is not a sum)."""
    return list(expr.args) if expr.is_Add else [expr]


def _nodes(expr: sympy.Expr) -> Iterator[tuple[Path, sympy.Basic, sympy.Basic | None]]:
    """Every node with its path of argument indices from the root and its parent, in preorder."""
    stack: list[tuple[Path, sympy.Basic, sympy.Basic | None]] = [((), expr, None)]
    while stack:
        path, node, parent = stack.pop()
        yield path, node, parent
        stack.extend(((*path, i), arg, node) for i, arg in reversed(list(enumerate(node.args))))


def _replace_at(expr: sympy.Basic, path: Path, new: sympy.Basic) -> sympy.Expr:
    """Replace the node at ``path`` (one occurrence, unlike ``xreplace``) and rebuild the tree above it."""
    if not path:
        return new
    args = list(expr.args)
    args[path[0]] = _replace_at(args[path[0]], path[1:], new)
    return expr.func(*args)


def _node_at(expr: sympy.Basic, path: Path) -> sympy.Expr:
    """Return the node at ``path``."""
    for index in path:
        expr = expr.args[index]
    return expr


def _fresh_names(used: set[str], count: int) -> list[str]:
    """Return the first ``count`` names ``k1``, ``k2``, ... not in ``used`` and not a function name."""
    names: list[str] = []
    for i in itertools.count(1):
        name = f"k{i}"
        if name not in used and name not in FUNCTIONS:
            names.append(name)
            if len(names) == count:
                return names
    raise AssertionError("unreachable")  # pragma: no cover


def _renamed(expr: sympy.Expr, variables: tuple[str, ...], *, avoid: set[str]) -> sympy.Expr:
    """Rename the constants of ``expr`` whose names are in ``avoid`` to fresh names."""
    names = sorted(str(s) for s in expr.free_symbols)
    clashing = [name for name in names if name in avoid and name not in variables]
    fresh = _fresh_names(avoid | set(names) | set(variables), len(clashing)) if clashing else []
    mapping = {sympy.Symbol(old): sympy.Symbol(new) for old, new in zip(clashing, fresh, strict=True)}
    result: sympy.Expr = expr.xreplace(mapping)
    return result


def _merge_offsets(expr: sympy.Expr, variables: tuple[str, ...]) -> sympy.Expr:
    """Keep only the first of several additive terms free of variables (``E + k1`` fits like ``E``)."""
    symbols = {sympy.Symbol(v) for v in variables}
    terms = _terms(expr)
    offsets = [t for t in terms if not t.free_symbols & symbols]
    if len(offsets) < 2:
        return expr
    return sympy.Add(*[t for t in terms if t not in offsets[1:]])


def _subset(terms: list[sympy.Expr], size: int, rng: np.random.Generator) -> list[sympy.Expr]:
    """Draw ``size`` of the terms at random; return them in their original order."""
    picked = rng.choice(len(terms), size=min(size, len(terms)), replace=False)
    return [terms[int(i)] for i in sorted(picked)]

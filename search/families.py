"""A library of scaling-law families from the literature, instantiated over a task's variables.

Only general, published forms live here: sums and products of power laws with an offset (Kaplan et al. 2020,
Hoffmann et al. 2022), rectified and shifted power laws (Lin et al. 2024; Hestness et al. 2017), broken power laws
(Caballero et al. 2023), power laws with a limit (Alabdulmohsin et al. 2022), log-polynomials and their
exponentials (Clark et al. 2022), exponential mixing (Ye et al. 2024), effective-scale multipliers (Chen et al.
2025), saturating repetition (Muennighoff et al. 2023), optima that move with scale (hyperparameter laws, e.g. Li
et al. 2025), and sigmoids for emergent abilities.
Each form is written over the variables the data profile says it applies to, and normalised by a reference value
(``(N / 1.2e9)**(-alpha)``) so constants stay near unit scale and the fitter reaches them.

Example
-------
>>> import numpy as np
>>> from sld.search.profile import profile_data
>>> from sld.search.families import family_proposals
>>> X = np.array([[1e6, 1e9], [1e7, 1e9], [1e8, 1e10], [1e9, 1e11]])
>>> profile = profile_data(X, np.array([4.0, 3.0, 2.5, 2.2]), ("N", "D"))
>>> any(p.family == "additive power law" for p in family_proposals(profile, max_params=5))
True
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator, Sequence

from sld.search.plausibility import FLOOR_SHARE
from sld.search.profile import DataProfile, VariableProfile
from sld.search.proposals import Bound, Proposal

_EXPONENT: Bound = (-1.0, 4.0, 0.3)
_FREE: Bound = (float("-inf"), float("inf"), 1.0)


class _Namer:
    """Fresh constant names per form: A, B, C... for coefficients, alpha, beta... for exponents."""

    _COEFFICIENTS = "ABCDFGHJKMPQRSTUVW"
    _EXPONENTS = ("alpha", "beta", "gamma", "delta", "zeta", "eta", "theta", "kappa", "mu", "nu", "xi", "rho")

    def __init__(self) -> None:
        self.coefficients = iter(self._COEFFICIENTS)
        self.exponents = iter(self._EXPONENTS)
        self.counter = itertools.count(1)
        self.bounds: dict[str, Bound] = {}

    def coefficient(self, bound: Bound = _FREE) -> str:
        name = next(self.coefficients)
        self.bounds[name] = bound
        return name

    def exponent(self, bound: Bound = _EXPONENT) -> str:
        name = next(self.exponents)
        self.bounds[name] = bound
        return name

    def named(self, prefix: str, bound: Bound = _FREE) -> str:
        name = f"{prefix}{next(self.counter)}"
        self.bounds[name] = bound
        return name


def _scaled(variable: VariableProfile) -> str:
    # Dividing by a typical value keeps the coefficient of a power term near the target's scale.
    return f"({variable.name} / {variable.reference:.4g})"


def _log(variable: VariableProfile) -> str:
    return f"log{_scaled(variable)}"


def _offset_bound(profile: DataProfile) -> Bound:
    if _is_falling_loss(profile):
        # The offset of a positive target that falls along every scale variable is its irreducible loss: positive
        # and a sizeable share of the smallest loss measured, as the plausibility check asks of any law's floor.
        return (FLOOR_SHARE * profile.target_min, profile.target_max, profile.target_min)
    span = profile.target_max - profile.target_min
    return (profile.target_min - 10 * span - 1, profile.target_max + 10 * span + 1, profile.target_min)


def _is_falling_loss(profile: DataProfile) -> bool:
    scales = _scales(profile)
    return profile.target_positive and bool(scales) and all(v.trend == "decreasing" for v in scales)


FamilyBuilder = Callable[[DataProfile, int], Iterator[Proposal]]


def _subsets(variables: Sequence[VariableProfile], max_size: int) -> Iterator[tuple[VariableProfile, ...]]:
    for size in range(len(variables), 0, -1):
        if size <= max_size:
            yield from itertools.combinations(variables, size)


def _scales(profile: DataProfile) -> list[VariableProfile]:
    return [v for v in profile.variables if v.kind == "scale"]


def _power_law_families(profile: DataProfile, max_params: int) -> Iterator[Proposal]:
    scales = _scales(profile)
    for subset in _subsets(scales, len(scales)):
        k = len(subset)
        if 2 * k + 1 <= max_params:
            n = _Namer()
            terms = [f"{n.coefficient()} * {_scaled(v)}**(-{n.exponent()})" for v in subset]
            offset = n.coefficient(_offset_bound(profile))
            yield Proposal(
                " + ".join([*terms, offset]),
                family="additive power law",
                bounds=n.bounds,
                rationale="sum of power laws with an irreducible loss (Hoffmann et al. 2022)",
            )
        if k + 2 <= max_params:
            n = _Namer()
            factors = " * ".join(f"{_scaled(v)}**(-{n.exponent()})" for v in subset)
            coefficient, offset = n.coefficient(), n.coefficient(_offset_bound(profile))
            yield Proposal(
                f"{coefficient} * {factors} + {offset}",
                family="multiplicative power law",
                bounds=n.bounds,
                rationale="product of power laws with an offset",
            )
        if k + 1 <= max_params and profile.target_positive:
            n = _Namer()
            factors = " * ".join(f"{_scaled(v)}**(-{n.exponent()})" for v in subset)
            yield Proposal(
                f"{n.coefficient()} * {factors}",
                family="pure power law",
                bounds=n.bounds,
                rationale="pure power law, no floor",
            )
        if k >= 2 and 2 * k + 2 <= max_params:
            # Additive terms plus one interaction that lets the exponents couple (Kaplan et al. 2020, L(N, D)).
            n = _Namer()
            terms = [f"{n.coefficient()} * {_scaled(v)}**(-{n.exponent()})" for v in subset]
            first, second = subset[0], subset[1]
            interaction = (
                f"{n.coefficient()} * {_scaled(first)}**(-{n.exponent()}) * {_scaled(second)}**(-{n.exponent()})"
            )
            if 2 * k + 4 <= max_params:
                offset = n.coefficient(_offset_bound(profile))
                yield Proposal(
                    " + ".join([*terms, interaction, offset]),
                    family="power law with interaction",
                    bounds=n.bounds,
                    rationale="additive power laws plus a coupling term",
                )


def _single_scale_families(profile: DataProfile, max_params: int) -> Iterator[Proposal]:
    # Rectified, shifted and broken power laws in one scale variable, with the others as power factors if room.
    for v in _scales(profile):
        s = _scaled(v)
        others = [o for o in _scales(profile) if o is not v]
        n = _Namer()
        a, alpha, b, c = (
            n.coefficient((0, float("inf"), 1.0)),
            n.exponent(),
            n.coefficient((0, 1e6, 1.0)),
            n.coefficient(_offset_bound(profile)),
        )
        if max_params >= 4:
            yield Proposal(
                f"{a} / ({s}**{alpha} + {b}) + {c}",
                family="rectified power law",
                bounds=n.bounds,
                rationale="rectified law: a pre-learned-data term B (Lin et al. 2024)",
            )
        n = _Namer()
        a, b, alpha, c = (
            n.coefficient(),
            n.coefficient((0, 1e6, 0.1)),
            n.exponent(),
            n.coefficient(_offset_bound(profile)),
        )
        if max_params >= 4:
            yield Proposal(
                f"{a} * ({s} + {b})**(-{alpha}) + {c}",
                family="shifted power law",
                bounds=n.bounds,
                rationale="power law with an effective offset in the scale variable (Hestness et al. 2017)",
            )
        if max_params >= 3 and profile.target_positive:
            n = _Namer()
            a, b, alpha = n.coefficient((0, float("inf"), 1.0)), n.coefficient((0, 1e6, 0.01)), n.exponent((0, 4, 0.3))
            yield Proposal(
                f"{a} * (1 / {s} + {b})**{alpha}",
                family="power law with a limit",
                bounds=n.bounds,
                rationale="the limit A*B**alpha is reached as the scale grows (Alabdulmohsin et al. 2022, M3)",
            )
        n = _Namer()
        if max_params >= 5:
            a, alpha, sb, beta, c = (
                n.coefficient(),
                n.exponent((0.0, 4.0, 0.3)),
                n.coefficient((1e-4, 1e4, 1.0)),
                n.exponent((-4.0, 4.0, 0.2)),
                n.coefficient(_offset_bound(profile)),
            )
            yield Proposal(
                f"{a} * {s}**(-{alpha}) * (1 + {s} / {sb})**(-{beta}) + {c}",
                family="broken power law",
                bounds=n.bounds,
                rationale="smoothly broken power law (Caballero et al. 2023)",
            )
        for other in others:
            if max_params >= 6:
                n = _Namer()
                a, alpha, b, c = (
                    n.coefficient((0, float("inf"), 1.0)),
                    n.exponent(),
                    n.coefficient((0, 1e6, 1.0)),
                    n.coefficient(_offset_bound(profile)),
                )
                beta = n.exponent()
                yield Proposal(
                    f"{a} * {_scaled(other)}**(-{beta}) / ({s}**{alpha} + {b}) + {c}",
                    family="rectified power law with a factor",
                    bounds=n.bounds,
                )


def _effective_scale_families(profile: DataProfile, max_params: int) -> Iterator[Proposal]:
    # A second variable multiplies the effective size logarithmically (Chen et al. 2025: N (k log P + 1)).
    scales = _scales(profile)
    for v, m in itertools.permutations(scales, 2):
        if max_params >= 4:
            n = _Namer()
            a, k, alpha, e = (
                n.coefficient((0, float("inf"), 1.0)),
                n.coefficient((0, 100, 0.3)),
                n.exponent(),
                n.coefficient(_offset_bound(profile)),
            )
            yield Proposal(
                f"{a} * ({_scaled(v)} * ({k} * log({m.name}) + 1))**(-{alpha}) + {e}",
                family="effective-scale power law",
                bounds=n.bounds,
                rationale="a second variable multiplies the effective scale logarithmically",
            )
        if max_params >= 5:
            n = _Namer()
            a, alpha, b, beta, e = (
                n.coefficient(),
                n.exponent(),
                n.coefficient(),
                n.exponent(),
                n.coefficient(_offset_bound(profile)),
            )
            yield Proposal(
                f"{a} * {_scaled(v)}**(-{alpha}) + {b} * {_scaled(v)}**(-{alpha}) * {_scaled(m)}**(-{beta}) + {e}",
                family="power law with a modulating factor",
                bounds=n.bounds,
            )


def _log_polynomial_families(profile: DataProfile, max_params: int) -> Iterator[Proposal]:
    positives = [v for v in profile.variables if v.kind in ("scale", "positive")]
    if not positives:
        return
    for subset in _subsets(positives, len(positives)):
        k = len(subset)
        logs = [_log(v) for v in subset]
        n = _Namer()
        linear = " + ".join(f"{n.named('c')} * {u}" for u in logs)
        if k + 1 <= max_params:
            yield Proposal(f"{n.named('c')} + {linear}", family="log-linear", bounds=n.bounds)
            if profile.target_positive:
                yield Proposal(
                    f"exp({n.named('c')} + {linear})", family="power law (exp of log-linear)", bounds=n.bounds
                )
        pairs = list(itertools.combinations(logs, 2))
        quadratic_size = 1 + k + k + len(pairs)
        if quadratic_size <= max_params:
            m = _Namer()
            terms = [f"{m.named('c')} * {u}" for u in logs] + [f"{m.named('q')} * {u}**2" for u in logs]
            terms += [f"{m.named('x')} * {u} * {w}" for u, w in pairs]
            body = " + ".join(terms)
            yield Proposal(f"{m.named('c')} + {body}", family="log-quadratic", bounds=m.bounds)
            if profile.target_positive:
                yield Proposal(
                    f"exp({m.named('c')} + {body})", family="exp of log-quadratic (Clark et al. 2022)", bounds=m.bounds
                )
        if k >= 2 and k + 2 + len(pairs) <= max_params:
            m = _Namer()
            terms = [f"{m.named('c')} * {u}" for u in logs] + [f"{m.named('x')} * {u} * {w}" for u, w in pairs]
            body = " + ".join(terms)
            yield Proposal(f"{m.named('c')} + {body}", family="log-bilinear", bounds=m.bounds)
            if profile.target_positive:
                yield Proposal(
                    f"exp({m.named('c')} + {body})", family="exp of log-bilinear (Clark et al. 2022)", bounds=m.bounds
                )
            if k + 3 + len(pairs) <= max_params:
                offset = m.coefficient(_offset_bound(profile))
                yield Proposal(
                    f"exp({m.named('c')} + {body}) + {offset}",
                    family="exp of log-bilinear with offset",
                    bounds=m.bounds,
                )


def _saturation_families(profile: DataProfile, max_params: int) -> Iterator[Proposal]:
    # Repeated data: D' = U (1 + R (1 - exp(-(D/U - 1)/R))) when one positive variable never falls below another
    # (Muennighoff et al. 2023); the others enter as power laws.
    scales = _scales(profile)
    for big, small in itertools.permutations(scales, 2):
        if not big.minimum >= small.minimum:
            continue
        rest = [v for v in scales if v not in (big, small)]
        if 4 + 2 * len(rest) + 1 > max_params:
            continue
        n = _Namer()
        r = n.named("R", (0.01, 1e4, 5.0))
        effective = (
            f"({small.name} * (1 + {r} * (1 - exp(-({big.name} / {small.name} - 1) / {r}))) / {big.reference:.4g})"
        )
        terms = [f"{n.coefficient()} * {effective}**(-{n.exponent()})"]
        terms += [f"{n.coefficient()} * {_scaled(v)}**(-{n.exponent()})" for v in rest]
        yield Proposal(
            " + ".join([*terms, n.coefficient(_offset_bound(profile))]),
            family="saturating repetition",
            bounds=n.bounds,
            rationale="returns of repeated data decay exponentially (Muennighoff et al.)",
        )
        if rest and 5 + 2 * len(rest) + 1 <= max_params:
            n = _Namer()
            terms = [f"{n.coefficient()} * {_scaled(v)}**(-{n.exponent()})" for v in [*rest, big]]
            ratio = f"({big.name} / {small.name})"
            terms.append(f"{n.coefficient()} * {ratio}**{n.exponent((-2.0, 4.0, 0.5))}")
            yield Proposal(
                " + ".join([*terms, n.coefficient(_offset_bound(profile))]),
                family="power laws with a ratio term",
                bounds=n.bounds,
            )


def _optimum_families(profile: DataProfile, max_params: int) -> Iterator[Proposal]:
    # A hyperparameter has an optimum whose location moves as a power of the scale variables, with a quadratic
    # penalty in log-space around it (hyperparameter scaling laws, e.g. Li et al. 2025). An optimum may also move
    # with another hyperparameter: the best learning rate grows with the batch size (Goyal et al. 2017;
    # McCandlish et al. 2018).
    optima = [v for v in profile.variables if v.trend == "optimum" and v.minimum > 0]
    if not optima:
        return
    bases = [v for v in _scales(profile) if v not in optima]
    for base_subset in _subsets(bases, len(bases)):
        mover_choices = [
            [*_subsets([*base_subset, *(o for o in optima if o is not h)], len(base_subset) + len(optima)), ()]
            for h in optima
        ]
        forms: list[tuple[int, Proposal]] = []
        for shifts in itertools.product(*mover_choices):
            if _mutually_coupled(optima, shifts):
                continue  # each moving with the other only re-parametrises one coupled quadratic
            proposal = _moving_optimum(profile, base_subset, optima, shifts)
            if len(proposal.bounds) <= max_params:
                forms.append((len(proposal.bounds), proposal))
        # The richest forms the budget allows first; the cap keeps the count of slow, large fits in check.
        forms.sort(key=lambda item: -item[0])
        yield from (proposal for _, proposal in forms[:_OPTIMUM_FORMS_PER_BASE])


_OPTIMUM_FORMS_PER_BASE = 16


def _mutually_coupled(optima: Sequence[VariableProfile], shifts: Sequence[tuple[VariableProfile, ...]]) -> bool:
    for (i, first), (j, second) in itertools.combinations(enumerate(optima), 2):
        if second in shifts[i] and first in shifts[j]:
            return True
    return False


def _moving_optimum(
    profile: DataProfile,
    base_subset: Sequence[VariableProfile],
    optima: Sequence[VariableProfile],
    shifts: Sequence[tuple[VariableProfile, ...]],
) -> Proposal:
    n = _Namer()
    base = [f"{n.coefficient()} * {_scaled(v)}**(-{n.exponent()})" for v in base_subset]
    base.append(n.coefficient(_offset_bound(profile)))
    penalties = []
    for h, movers in zip(optima, shifts, strict=True):
        shift = " + ".join(
            [n.named("o", (-20, 20, 0.0)), *(f"{n.named('p', (-2, 2, 0.0))} * {_log(v)}" for v in movers)]
        )
        penalties.append(f"{n.named('w', (0, float('inf'), 0.01))} * ({_log(h)} - ({shift}))**2")
    return Proposal(
        " + ".join(base + penalties),
        family="moving optimum",
        bounds=n.bounds,
        rationale="quadratic in log around an optimum that moves with scale and with the other hyperparameters",
    )


def _mixture_families(profile: DataProfile, max_params: int) -> Iterator[Proposal]:
    proportions = [v for v in profile.variables if v.kind == "proportion"]
    if len(proportions) < 2:
        return
    # On a simplex one linear coefficient is redundant: leave the last proportion out.
    free = proportions[:-1] if profile.mixture else proportions
    n = _Namer()
    linear = " + ".join(f"{n.named('t', (-50, 50, 0.0))} * {v.name}" for v in free)
    if len(free) + 2 <= max_params:
        c, k = n.named("c"), n.named("k")
        yield Proposal(f"{c} + {k} * exp({linear})", family="exponential mixing (Ye et al. 2024)", bounds=n.bounds)
    m = _Namer()
    if len(free) + 1 <= max_params:
        yield Proposal(
            f"{m.named('c')} + " + " + ".join(f"{m.named('t')} * {v.name}" for v in free),
            family="linear mixing",
            bounds=m.bounds,
        )
    for own in proportions:
        # A domain's own share often acts through a power or log with a small offset (data for a domain saturates).
        for form in ("log", "power"):
            m = _Namer()
            others = " + ".join(f"{m.named('t', (-50, 50, 0.0))} * {v.name}" for v in free if v is not own)
            eps = m.named("e", (1e-6, 1.0, 0.01))
            term = (
                f"{m.named('b')} * log({own.name} + {eps})"
                if form == "log"
                else f"{m.named('b')} * ({own.name} + {eps})**(-{m.exponent((-2.0, 4.0, 0.3))})"
            )
            if len(m.bounds) + 1 <= max_params:
                yield Proposal(
                    f"{m.named('c')} + {term}" + (f" + {others}" if others else ""),
                    family=f"mixing with a {form} own-share term",
                    bounds=m.bounds,
                )


def _curve_families(profile: DataProfile, max_params: int) -> Iterator[Proposal]:
    # One-variable shapes for bounded or non-monotone targets (emergent abilities: sigmoids, U-shapes), and the
    # constant per group, the baseline every form must beat out of sample.
    yield Proposal("a", family="constant", bounds={"a": _FREE})
    for v in profile.variables:
        x = _log(v) if v.kind == "scale" else f"({v.name} - {v.reference:.4g})"
        n = _Namer()
        a, b = n.named("a"), n.named("b")
        yield Proposal(f"{a} + {b} * {x}", family="linear", bounds=n.bounds)
        if max_params >= 3:
            yield Proposal(f"{a} + {b} * {x} + {n.named('q')} * {x}**2", family="quadratic", bounds=n.bounds)
        if max_params >= 4:
            m = _Namer()
            a, b, k, x0 = m.named("a"), m.named("b"), m.named("k", (-50, 50, 1.0)), m.named("x", (-50, 50, 0.0))
            yield Proposal(
                f"{a} + {b} * tanh({k} * ({x} - {x0}))",
                family="sigmoid",
                bounds=m.bounds,
                rationale="emergence: a smooth step in log-compute",
            )
            m = _Namer()
            a, b, k = m.named("a"), m.named("b"), m.named("k", (-20, 20, 0.5))
            yield Proposal(f"{a} + {b} * exp({k} * {x})", family="exponential", bounds=m.bounds)


_BUILDERS: tuple[FamilyBuilder, ...] = (
    _power_law_families,
    _single_scale_families,
    _effective_scale_families,
    _log_polynomial_families,
    _saturation_families,
    _optimum_families,
    _mixture_families,
    _curve_families,
)


def family_proposals(profile: DataProfile, *, max_params: int) -> list[Proposal]:
    """Instantiate every applicable family over the profiled variables.

    Parameters
    ----------
    profile : DataProfile
        From :func:`sld.search.profile.profile_data`.
    max_params : int
        Constant budget; larger forms are not generated.

    Returns
    -------
    list of Proposal
        In a deterministic order, duplicates of the same text removed.
    """
    seen: set[str] = set()
    proposals: list[Proposal] = []
    for builder in _BUILDERS:
        for proposal in builder(profile, max_params):
            if proposal.expression not in seen and len(proposal.bounds) <= max_params:
                seen.add(proposal.expression)
                proposals.append(proposal)
    return proposals

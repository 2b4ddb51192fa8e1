"""Law-form proposals: the `Proposal` type, the offline generators, the round schedule and de-duplication.

The offline schedule of one target: round 0 the literature families over the profiled variables
(:mod:`sld.search.families`), round 1 symbolic regression (pyoperon or PySR), rounds 2+ evolution of the
MAP-Elites archive's elites (:mod:`sld.search.evolution`, :mod:`sld.search.archive`). Other proposers (the LLM in
:mod:`sld.agent.proposers`) produce the same `Proposal` records; :func:`deduplicate` drops what was already
evaluated before anything is fitted.

Example
-------
>>> import numpy as np
>>> from sld.search.candidates import Problem
>>> from sld.search.engine import EngineConfig, SearchState
>>> from sld.search.profile import profile_data
>>> N = np.geomspace(1e6, 1e9, 12)
>>> problem = Problem(("N",), N[:, None], 2 + 30 * N**-0.2, np.full(12, "g"), np.log(N), max_params=3)
>>> profile = profile_data(problem.X, problem.y, problem.variables)
>>> proposals = round_proposals(problem, SearchState(), EngineConfig(backend="none"), profile)
>>> proposals[0].source
'family'
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from sld.search.errors import ExpressionError
from sld.search.expressions import Law, parse_law

if TYPE_CHECKING:
    from sld.search.backend_runs import BackendRuns
    from sld.search.candidates import Candidate, Problem
    from sld.search.engine import EngineConfig, SearchState
    from sld.search.profile import DataProfile

Bound = tuple[float, float, float]  # (lower, upper, initial value)


@dataclass(frozen=True)
class Proposal:
    """A law form to fit: expression text, where it came from, and constant bounds.

    Attributes
    ----------
    expression : str
        Law over the variable names; other identifiers are constants.
    source : str
        Generator name (``family``, ``evolution``, ``operon``, ``llm``...).
    family : str
        Human-readable family name.
    bounds : dict
        ``{constant: (lower, upper, init)}`` for constants that need bounds; others are free.
    rationale : str
        Why this form (for reports and LLM feedback).
    shared : tuple of str
        Constants fitted once for all groups instead of once per group (sorted names).
    """

    expression: str
    source: str = "family"
    family: str = ""
    bounds: dict[str, Bound] = field(default_factory=dict)
    rationale: str = ""
    shared: tuple[str, ...] = ()


def round_proposals(
    problem: Problem,
    state: SearchState,
    config: EngineConfig,
    profile: DataProfile,
    backend_runs: BackendRuns | None = None,
) -> list[Proposal]:
    """Return the offline proposals of the state's current round (families, backend, then evolution).

    With ``backend_runs``, round 0 also starts the backend's search, which then runs while the families are
    evaluated, and round 1 takes its proposals (`sld.search.backend_runs`) and starts the backend's search for
    the next independent search of the target (``state.restart + 1``), which begins at round 1.
    """
    # The families module builds on `Proposal`; importing it here keeps the module graph acyclic.
    from sld.search.families import family_proposals

    search_config = config.restarted(state.restart)
    if state.round == 0:
        if backend_runs is not None:
            backend_runs.start(problem, search_config)
        return family_proposals(profile, max_params=problem.max_params)
    if state.round == 1:
        if backend_runs is None:
            return backend_proposals(problem, search_config)
        proposals = backend_runs.take(problem, search_config)
        # A search that follows this one begins at round 1 with its own seed and would wait for its backend
        # there, with the candidate workers idle (sft: 5 of 17 s). The backend reads only the training rows, so
        # its search starts now and runs while this search's rounds are evaluated; unused, closing stops it.
        backend_runs.start(problem, config.restarted(state.restart + 1))
        return proposals
    rng = np.random.default_rng([search_config.seed, state.round])
    return evolution_proposals(problem, state, search_config, rng)


def deduplicate(proposals: Iterable[Proposal], state: SearchState, variables: tuple[str, ...]) -> list[Proposal]:
    """Drop proposals already evaluated or repeated, by text and by canonical form; keep unparseable ones.

    Unparseable proposals are kept so that their rejection reasons are recorded (and fed back to proposers).
    """
    from sld.search.candidates import parsed_law, proposal_key
    from sld.search.shared_fits import shared_identity

    texts, keys = state.seen_texts(), state.seen_keys()
    unique: list[Proposal] = []
    for proposal in proposals:
        identity = shared_identity(proposal.expression, proposal.shared)
        if identity in texts:
            continue
        texts.add(identity)
        law = parsed_law(proposal, variables)
        if law is None:
            unique.append(proposal)
            continue
        key, _ = proposal_key(proposal, law)
        if key not in keys:
            keys.add(key)
            unique.append(proposal)
    return unique


def check_backend(config: EngineConfig) -> None:
    """Make sure the configured symbolic-regression backend can run, before any round does.

    Raises
    ------
    BackendUnavailable
        When it cannot (e.g. PySR without Julia), with how to install it.
    """
    from sld.search.backends import get_backend

    get_backend(config.backend)


def backend_proposals(problem: Problem, config: EngineConfig) -> list[Proposal]:
    """Ask the symbolic-regression backend for structures (on the largest group's rows)."""
    if config.backend == "none":
        return []
    from sld.search.backends import get_backend

    backend = get_backend(config.backend)
    if backend is None:
        return []
    names, counts = np.unique(problem.groups, return_counts=True)
    rows = problem.groups == names[int(np.argmax(counts))]
    laws = backend.propose_laws(
        problem.X[rows],
        problem.y[rows],
        problem.variables,
        max_params=problem.max_params,
        seed=config.seed,
        time_limit_s=config.backend_time_s,
    )
    # The backend's constant values start the refit (unbounded: the per-group fits may move far from them).
    return [
        Proposal(
            law.expression,
            source=config.backend,
            family="symbolic regression",
            bounds={name: (-math.inf, math.inf, value) for name, value in law.init.items() if math.isfinite(value)},
        )
        for law in laws
    ]


def evolution_proposals(
    problem: Problem, state: SearchState, config: EngineConfig, rng: np.random.Generator
) -> list[Proposal]:
    """Mutate and cross the archive's elites (MAP-Elites over the number of constants) of the current search."""
    from sld.search.archive import Archive, ArchiveEntry
    from sld.search.evolution import crossover, mutate

    archive = Archive()
    lineage = state.lineage()
    for candidate in lineage:
        archive.add(
            ArchiveEntry(
                expression=candidate.expression,
                n_params=candidate.n_params,
                score=-candidate.objective,
                source=candidate.source,
                key=candidate.key,
            )
        )
    parents = archive.sample_parents(rng, config.parents_per_round)
    by_key = {candidate.key: candidate for candidate in lineage}
    children: list[Proposal] = []
    parent_laws = []
    for parent in parents:
        try:
            law = parse_law(parent.expression, problem.variables)
        except ExpressionError:
            continue
        parent_laws.append(law)
        for child in mutate(
            law, variables=problem.variables, max_params=problem.max_params, rng=rng, n=config.children_per_parent
        ):
            children.append(Proposal(child.expression, source="evolution", family=child.operator))
        if parent.key in by_key:
            children.extend(sharing_proposals(by_key[parent.key], law, problem, rng))
    for first, second in zip(parent_laws[::2], parent_laws[1::2], strict=False):
        for child in crossover(first, second, max_params=problem.max_params, rng=rng):
            children.append(Proposal(child.expression, source="evolution", family=child.operator))
    return children


def _sharing_family(family: str) -> str:
    suffix = ", shared constants"
    return family if family.endswith(suffix) else family + suffix


# Sharing moves tried per parent and round: one constant more shared across groups, or one fewer.
SHARING_CHILDREN = 2


def sharing_proposals(parent: Candidate, law: Law, problem: Problem, rng: np.random.Generator) -> list[Proposal]:
    """Propose the parent's form with one constant more (or fewer) shared across groups.

    A literature family keeps its source (the form is the same law with a constant made global); other forms
    are tagged ``sharing``. Problems with one group have nothing to share.
    """
    from sld.search.evolution import sharing_variants

    if len(np.unique(problem.groups)) < 2:
        return []
    variants = sharing_variants(law, shared=frozenset(parent.shared))
    picked = rng.permutation(len(variants))[:SHARING_CHILDREN]
    literature = parent.source == "family"
    return [
        Proposal(
            parent.expression,
            source="family" if literature else "sharing",
            family=_sharing_family(parent.family) if literature else "sharing",
            bounds=parent.bounds,
            rationale="one value for all groups pools their evidence",
            shared=tuple(sorted(variants[int(index)])),
        )
        for index in sorted(picked)
    ]

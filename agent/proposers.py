"""Who proposes law forms each round: the engine's offline proposers, an LLM, or both.

- :class:`OfflineProposer` wraps :func:`sld.search.proposals.round_proposals` (round 0 the literature families,
  round 1 symbolic regression, then evolution of the archive's elites).
- :class:`LLMProposer` asks an OpenAI-compatible model (through :class:`~sld.agent.llm.LLMClient`) with a prompt
  carrying the task, the data profile, the constant budget, the best candidates with their validation scores and
  the rejected ones with reasons. Each expression goes through the whitelist parser; what fails comes back as a
  rejected candidate with its reason, so the next prompt shows it.
- :class:`HybridProposer` asks both; with ``offline_always=False`` it is the LLM proposer that falls back to the
  offline one when the endpoint keeps failing.

Example
-------
>>> import numpy as np
>>> from sld.search.candidates import Problem
>>> from sld.search.engine import EngineConfig, SearchState
>>> from sld.search.profile import profile_data
>>> N = np.geomspace(1e6, 1e9, 12)
>>> problem = Problem(("N",), N[:, None], 2 + 30 * N**-0.2, np.full(12, "g"), np.log(N), max_params=3)
>>> request = ProposalRequest(problem, SearchState(), profile_data(problem.X, problem.y, ("N",)), {})
>>> batch = OfflineProposer(EngineConfig(backend="none")).propose(request)
>>> batch.used_offline_round, batch.proposals[0].source
(True, 'family')
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol

from sld.search.backend_runs import BackendRuns
from sld.search.candidates import Candidate, Problem
from sld.search.engine import EngineConfig, SearchState
from sld.search.profile import DataProfile
from sld.search.proposals import Proposal, round_proposals

from .errors import LLMBudgetExhausted, LLMResponseError, LLMUnavailable
from .prompts import build_messages
from .replies import parse_reply, validate_expressions

if TYPE_CHECKING:
    from sld.search.expressions import Law

    from .llm import LLMClient

LLMStatus = Literal["unused", "active", "exhausted", "failing"]
SOURCE_LLM = "llm"
# Scale variables whose typical value is this far from 1 (in decades) get a normalised twin of each LLM law.
_NORMALISE_DECADES = 2.0
# How many rejections of each kind the prompt lists (LLM's own mistakes first).
_LISTED_OWN_REJECTIONS = 12
_LISTED_OTHER_REJECTIONS = 8


@dataclass(frozen=True)
class ProposalRequest:
    """What a proposer sees at the start of a round.

    Attributes
    ----------
    problem : Problem
        Training rows of the target.
    search : SearchState
        Candidates evaluated so far; ``search.round`` is the offline proposer's round.
    profile : DataProfile
        The profiled variables (offline families are built from it).
    profile_record : dict
        The data profile as given to the LLM.
    notes : sequence of str
        Reflections on recent rounds (what failed and why).
    llm_calls : int
        LLM requests already made for this target.
    llm_status : str
        ``active`` until the LLM is ``exhausted`` (budget spent) or ``failing`` (endpoint unusable).
    """

    problem: Problem
    search: SearchState
    profile: DataProfile
    profile_record: dict[str, Any]
    notes: Sequence[str] = ()
    llm_calls: int = 0
    llm_status: LLMStatus = "active"


@dataclass
class ProposalBatch:
    """What a proposer returns for one round.

    Attributes
    ----------
    proposals : list of Proposal
        Law forms to evaluate.
    rejected : list of Candidate
        Proposals rejected before evaluation (unsafe or malformed), with reasons.
    used_offline_round : bool
        Whether the offline schedule advanced by one round.
    llm_called : bool
        Whether an LLM request was made (answered or not).
    llm_status : str or None
        The LLM's new status, when it changed.
    llm_note : str
        Why it changed.
    """

    proposals: list[Proposal] = field(default_factory=list)
    rejected: list[Candidate] = field(default_factory=list)
    used_offline_round: bool = False
    llm_called: bool = False
    llm_status: LLMStatus | None = None
    llm_note: str = ""

    def extend(self, other: ProposalBatch) -> None:
        """Add another batch's proposals, rejections and flags to this one."""
        self.proposals.extend(other.proposals)
        self.rejected.extend(other.rejected)
        self.used_offline_round |= other.used_offline_round
        self.llm_called |= other.llm_called
        if other.llm_status is not None:
            self.llm_status, self.llm_note = other.llm_status, other.llm_note


class Proposer(Protocol):
    """A source of law forms for the discovery graph."""

    def propose(self, request: ProposalRequest) -> ProposalBatch:
        """Return this round's proposals."""
        ...

    def finished(self, request: ProposalRequest) -> bool:
        """Tell whether there is nothing left to propose for this target."""
        ...

    def close(self) -> None:
        """Stop whatever the proposer still runs in the background (the discovery loop calls it at the end)."""
        ...


class OfflineProposer:
    """The engine's proposers: literature families, symbolic regression, then evolution of the elites.

    Parameters
    ----------
    config : EngineConfig
        Backend, seed, evolution schedule.
    """

    def __init__(self, config: EngineConfig) -> None:
        self.config = config
        # The backend's search for round 1 starts in round 0, beside the families' evaluation.
        self.backend_runs = BackendRuns()

    @property
    def rounds(self) -> int:
        """Rounds in the offline schedule (families, backend, evolution rounds)."""
        return 2 + self.config.evolution_rounds

    def propose(self, request: ProposalRequest) -> ProposalBatch:
        """Return the proposals of the offline schedule's current round (none once it is over)."""
        if self.finished(request):
            return ProposalBatch()
        proposals = round_proposals(request.problem, request.search, self.config, request.profile, self.backend_runs)
        return ProposalBatch(proposals=proposals, used_offline_round=True)

    def finished(self, request: ProposalRequest) -> bool:
        """Tell whether the offline schedule is over."""
        return request.search.round >= self.rounds

    def close(self) -> None:
        """Stop backend searches started ahead that no round took."""
        self.backend_runs.close()


class LLMProposer:
    """Law forms from a language model, checked by the whitelist parser.

    Parameters
    ----------
    client : LLMClient
        The endpoint, its budget, retries and replay cache.
    task_description : str
        What is measured (the task's description).
    laws_per_call : int, default 8
        Laws asked for per request.
    max_calls_per_target : int, default 6
        Requests per target at most.
    failures_before_offline : int, default 3
        Unusable replies in a row after which the LLM counts as failing.
    calls_before : int, default 0
        Calls made by earlier processes of a resumed run (counted against the client's ``max_calls``).
    tokens_before : int, default 0
        Tokens spent by earlier processes of a resumed run (counted against the client's ``max_tokens``).
    """

    def __init__(
        self,
        client: LLMClient,
        *,
        task_description: str,
        laws_per_call: int = 8,
        max_calls_per_target: int = 6,
        failures_before_offline: int = 3,
        calls_before: int = 0,
        tokens_before: int = 0,
    ) -> None:
        self.client = client
        self.task_description = task_description
        self.laws_per_call = laws_per_call
        self.max_calls_per_target = max_calls_per_target
        self.failures_before_offline = failures_before_offline
        self.calls_before, self.tokens_before = calls_before, tokens_before
        self._failures_in_a_row = 0

    @property
    def budget_spent(self) -> bool:
        """Tell whether the run's LLM budget (calls or tokens, earlier processes included) is spent."""
        usage, config = self.client.usage, self.client.config
        return (self.calls_before + usage.calls >= config.max_calls
                or self.tokens_before + usage.total_tokens >= config.max_tokens)

    def finished(self, request: ProposalRequest) -> bool:
        """Tell whether no more requests will be made for this target."""
        return (request.llm_status in ("exhausted", "failing") or self.budget_spent
                or request.llm_calls >= self.max_calls_per_target)

    def close(self) -> None:
        """Nothing runs in the background: each request is answered before the round goes on."""

    def propose(self, request: ProposalRequest) -> ProposalBatch:
        """Ask the model for laws; return the parsed ones and the rejected ones with reasons."""
        if request.llm_status in ("exhausted", "failing") or request.llm_calls >= self.max_calls_per_target:
            return ProposalBatch()
        if self.budget_spent:
            return ProposalBatch(llm_status="exhausted", llm_note=self.budget_note())
        problem = request.problem
        try:
            reply = self.client.complete(self.messages(request))
        except LLMBudgetExhausted as exc:
            return ProposalBatch(llm_status="exhausted", llm_note=str(exc))
        except LLMUnavailable as exc:
            return ProposalBatch(llm_called=True, llm_status="failing", llm_note=str(exc))
        except LLMResponseError as exc:
            self._failures_in_a_row += 1
            refused = _rejected(f"(LLM reply {request.llm_calls + 1} refused)", str(exc))
            batch = ProposalBatch(rejected=[refused], llm_called=True)
            if self._failures_in_a_row >= self.failures_before_offline:
                batch.llm_status = "failing"
                batch.llm_note = f"{self._failures_in_a_row} unusable replies in a row; the last: {exc}"
            return batch
        self._failures_in_a_row = 0
        proposed, rejections = parse_reply(reply.content, max_laws=2 * self.laws_per_call)
        batch = ProposalBatch(llm_called=True, rejected=[_rejected(r.text, r.reason) for r in rejections])
        for text in proposed:
            laws, invalid = validate_expressions([text], problem.variables, max_params=problem.max_params)
            if invalid:
                batch.rejected.append(_rejected(invalid[0].text, invalid[0].reason))
                continue
            batch.proposals.append(Proposal(text.expression, source=SOURCE_LLM, family="llm",
                                            rationale=text.rationale))
            twin = normalised_twin(laws[0], request.profile, text.expression)
            if twin is not None:
                batch.proposals.append(Proposal(twin, source=SOURCE_LLM, family="llm, normalised",
                                                rationale=text.rationale))
        return batch

    def messages(self, request: ProposalRequest) -> list[dict[str, str]]:
        """Build the prompt: task, profile, budget, best candidates, rejected ones with reasons, notes."""
        ranked = request.search.ranked()
        best = [{"expression": c.expression, "validation_r2": c.validation_r2, "n_params": c.n_params}
                for c in ranked[:15]]
        failed = [c for c in request.search.candidates if c.status != "ok"]
        own = [c for c in failed if c.source == SOURCE_LLM][-_LISTED_OWN_REJECTIONS:]
        other = [c for c in failed if c.source != SOURCE_LLM][-_LISTED_OTHER_REJECTIONS:]
        rejected = [{"expression": c.expression, "reason": c.reason or c.status} for c in [*other, *own]]
        profile = dict(request.profile_record)
        if request.notes:
            profile["search_notes"] = list(request.notes)
        return build_messages(
            task_description=self.task_description, variables=request.problem.variables,
            targets=[request.problem.target], max_params=request.problem.max_params, data_profile=profile,
            best=best, rejected=rejected, n_laws=self.laws_per_call,
        )

    def budget_note(self) -> str:
        """Describe the spent budget (calls and tokens over the run)."""
        usage, config = self.client.usage, self.client.config
        return (f"LLM budget spent: {self.calls_before + usage.calls}/{config.max_calls} calls, "
                f"{self.tokens_before + usage.total_tokens}/{config.max_tokens} tokens")


class HybridProposer:
    """The offline proposers and the LLM together.

    Parameters
    ----------
    offline : OfflineProposer
        Families, backend, evolution.
    llm : LLMProposer
        The language model.
    offline_always : bool
        True: both propose every round (``--proposer hybrid``). False: only the LLM, and the offline proposers
        once the LLM endpoint is failing (``--proposer llm``).
    """

    def __init__(self, offline: OfflineProposer, llm: LLMProposer, *, offline_always: bool) -> None:
        self.offline, self.llm, self.offline_always = offline, llm, offline_always

    def _offline_active(self, request: ProposalRequest) -> bool:
        return self.offline_always or request.llm_status == "failing"

    def propose(self, request: ProposalRequest) -> ProposalBatch:
        """Return the offline round's proposals (when active) followed by the LLM's."""
        batch = ProposalBatch()
        if self._offline_active(request):
            batch.extend(self.offline.propose(request))
        batch.extend(self.llm.propose(request))
        if batch.llm_status == "failing" and not self.offline_always and not batch.used_offline_round:
            # Switch now rather than lose the round: ``--proposer llm`` continues with the offline schedule.
            batch.extend(self.offline.propose(request))
        return batch

    def finished(self, request: ProposalRequest) -> bool:
        """Tell whether neither proposer has anything left for this target."""
        offline_done = not self._offline_active(request) or self.offline.finished(request)
        return offline_done and self.llm.finished(request)

    def close(self) -> None:
        """Stop the offline proposer's background searches."""
        self.offline.close()


def make_proposer(kind: Literal["offline", "llm", "hybrid"], config: EngineConfig,
                  llm: LLMProposer | None) -> Proposer:
    """Return the proposer of a ``--proposer`` choice.

    Raises
    ------
    ValueError
        When ``kind`` needs an LLM and ``llm`` is None.
    """
    offline = OfflineProposer(config)
    if kind == "offline":
        return offline
    if llm is None:
        raise ValueError(f"proposer {kind!r} needs an LLM client")
    return HybridProposer(offline, llm, offline_always=kind == "hybrid")


def _rejected(text: str, reason: str) -> Candidate:
    return Candidate(expression=text, source=SOURCE_LLM, family="llm", status="rejected", reason=reason)


def normalised_twin(law: Law, profile: DataProfile, text: str | None = None) -> str | None:
    """Return the law with its raw scale variables divided by their typical values, or None when none is raw.

    The constant fit starts near unit scale; a law over raw counts (``(A / N)**alpha`` with N ~ 1e9) needs
    constants many decades away, which multi-start fitting rarely reaches. Dividing N by its typical value
    (``N / 1.2e9``) changes nothing in the family but brings the constants to unit scale. The text is rewritten
    name by name, so the twin keeps the model's own way of writing the law.

    Parameters
    ----------
    law : Law
        The parsed law.
    profile : DataProfile
        Typical values of the variables.
    text : str, optional
        The law as written (default: ``law.text``).

    Examples
    --------
    >>> import numpy as np
    >>> from sld.search.expressions import parse_law
    >>> from sld.search.profile import profile_data
    >>> profile = profile_data(np.array([[1e8], [1e9], [1e10]]), np.array([3.0, 2.5, 2.2]), ("N",))
    >>> normalised_twin(parse_law("E + A * N**(-alpha)", ("N",)), profile, "E + A * N**(-alpha)")
    'E + A * (N / 1e+09)**(-alpha)'
    """
    import sympy

    text = law.text if text is None else text
    twin = text
    for symbol in law.expr.free_symbols:
        if symbol.name not in law.variables or not isinstance(symbol, sympy.Symbol):
            continue
        variable = profile.by_name(symbol.name)
        if variable.kind != "scale" or variable.reference <= 0:
            continue
        if abs(math.log10(variable.reference)) < _NORMALISE_DECADES or _is_scaled(law.expr, symbol):
            continue
        # Whole names only: not inside a longer identifier, nor after a dot.
        twin = re.sub(rf"(?<![\w.]){re.escape(symbol.name)}(?!\w)", f"({symbol.name} / {variable.reference:.4g})",
                      twin)
    return None if twin == text else twin


def _is_scaled(expr: Any, symbol: Any) -> bool:
    """Tell whether every occurrence of ``symbol`` is multiplied by a number other than 1 (already normalised)."""
    found = False
    stack = [expr]
    while stack:
        node = stack.pop()
        for arg in node.args:
            if arg == symbol:
                found = True
                numbers = [a for a in node.args if a.is_Number and abs(a) != 1] if node.is_Mul else []
                if not numbers:
                    return False
            else:
                stack.append(arg)
    return found

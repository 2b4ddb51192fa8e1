"""The typed state of the discovery graph, and the settings of a run.

The state is what the LangGraph checkpointer stores after every node, so it holds only plain data: candidates as
:meth:`~sld.search.candidates.Candidate.as_record` dictionaries, proposals as dictionaries, counters and strings.
The arrays (training rows, folds) are rebuilt from the data when a run resumes; they never enter a checkpoint.

Example
-------
>>> state = initial_state(["loss"])
>>> state["targets"], state["target_index"], state["round"]
(['loss'], 0, 0)
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any, Literal, TypedDict

from pydantic import BaseModel, ConfigDict, Field

from sld.search.candidates import candidate_from_record, json_number
from sld.search.engine import EngineConfig, SearchState
from sld.search.proposals import Proposal
from sld.search.stopping import StopPolicy

ProposerKind = Literal["offline", "llm", "hybrid"]
Record = dict[str, Any]


class AgentConfig(BaseModel):
    """Settings of one discovery run of the agent.

    Attributes
    ----------
    engine : EngineConfig
        Workers, seed, symbolic-regression backend, evolution schedule.
    stop : StopPolicy
        When each target's search stops: budget (split across targets), refit reserve, patience, candidate cap.
    proposer : {"offline", "llm", "hybrid"}
        Who proposes law forms: the engine's offline proposers (families, backend, evolution), the LLM, or both.
    llm_rounds : int
        Most LLM requests per target (the run's ``--max-llm-calls`` and ``--max-tokens`` bound them too).
    laws_per_call : int
        Laws asked of the LLM per request.
    failures_before_offline : int
        Unusable LLM replies in a row after which the run continues offline (an endpoint that stays unreachable
        after the client's retries switches at once).
    llm_starts_factor : int
        LLM proposals are few and costly, so their constants get this many times the engine's multi-starts.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    engine: EngineConfig = Field(default_factory=EngineConfig)
    stop: StopPolicy = Field(default_factory=StopPolicy)
    proposer: ProposerKind = "offline"
    llm_rounds: int = Field(default=6, ge=0)
    laws_per_call: int = Field(default=8, ge=1)
    failures_before_offline: int = Field(default=3, ge=1)
    llm_starts_factor: int = Field(default=2, ge=1)


class AgentState(TypedDict):
    """Everything the graph has done; a checkpoint of it is enough to resume.

    Attributes
    ----------
    targets : list of str
        The task's targets, searched one after the other.
    target_index : int
        The target being searched (``len(targets)``: all done).
    round : int
        Round of the current target.
    offline_round : int
        The offline proposer's own round (families 0, backend 1, evolution 2+); it lags ``round`` when the run
        switched to offline mid-way.
    llm_calls : int
        LLM requests made for the current target.
    profile : dict
        The current target's data profile (ranges, trends, groups, budget), as given to the LLM.
    pending : list of dict
        Proposals of the current round awaiting evaluation (:func:`proposal_record`).
    rejected : list of dict
        Candidate records the proposers rejected themselves this round (unsafe or malformed LLM laws).
    evaluated : list of dict
        Candidate records evaluated this round, before ``store`` adds them to ``candidates``.
    duplicates : int
        LLM proposals of this round skipped as already evaluated (reported to the LLM).
    candidates : dict
        ``{target: [candidate record, ...]}``, every evaluated candidate in evaluation order.
    proposals : dict
        ``{target: {source: count}}`` of evaluated proposals.
    best_objective : float or None
        Best validation objective of the current target (None: nothing validated yet).
    stale_rounds : int
        Rounds in a row without improvement (of the current search).
    restart : int
        Which of the current target's independent searches runs (`StopPolicy.restarts`).
    restart_start : int
        Index in the target's ``candidates`` of the first candidate of that search.
    stale_searches : int
        The current target's searches in a row that found no better law than the searches before them
        (`StopPolicy.search_patience`).
    notes : list of str
        Reflections on recent rounds (what failed and why), fed to the next prompt.
    chosen : dict
        ``{target: expression}`` of finished targets.
    stopped : dict
        ``{target: why the search of this target stopped}``.
    llm_status : str
        ``unused`` (offline run), ``active``, ``exhausted`` (budget spent) or ``failing`` (endpoint unusable: the
        run continues offline).
    llm_note : str
        Why the LLM status last changed.
    llm_usage : dict
        Totals over the run: ``calls``, ``cached_calls``, ``prompt_tokens``, ``completion_tokens``, ``failures``.
    spent_s : float
        Wall-clock seconds spent so far, over every process that worked on the run.
    """

    targets: list[str]
    target_index: int
    round: int
    offline_round: int
    llm_calls: int
    profile: dict[str, Any]
    pending: list[Record]
    rejected: list[Record]
    evaluated: list[Record]
    duplicates: int
    candidates: dict[str, list[Record]]
    proposals: dict[str, dict[str, int]]
    best_objective: float | None
    stale_rounds: int
    restart: int
    restart_start: int
    stale_searches: int
    notes: list[str]
    chosen: dict[str, str]
    stopped: dict[str, str]
    llm_status: str
    llm_note: str
    llm_usage: dict[str, int]
    spent_s: float


USAGE_KEYS = ("calls", "cached_calls", "prompt_tokens", "completion_tokens", "failures")


def initial_state(targets: Sequence[str], *, llm: bool = False) -> AgentState:
    """Return the state a new run starts from (``llm``: whether the run asks an LLM)."""
    return AgentState(
        targets=list(targets), target_index=0, round=0, offline_round=0, llm_calls=0, profile={}, pending=[],
        rejected=[], evaluated=[], duplicates=0, candidates={target: [] for target in targets},
        proposals={target: {} for target in targets}, best_objective=None, stale_rounds=0, restart=0, restart_start=0,
        stale_searches=0, notes=[], chosen={},
        stopped={}, llm_status="active" if llm else "unused", llm_note="", llm_usage=dict.fromkeys(USAGE_KEYS, 0),
        spent_s=0.0,
    )


def proposal_record(proposal: Proposal) -> Record:
    """Return a proposal as a checkpoint-ready dictionary (bounds as lists; infinities as strings)."""
    return {
        "expression": proposal.expression, "source": proposal.source, "family": proposal.family,
        "rationale": proposal.rationale,
        "bounds": {name: [json_number(value) for value in bound] for name, bound in proposal.bounds.items()},
        "shared": list(proposal.shared),
    }


def proposal_from_record(record: Mapping[str, Any]) -> Proposal:
    """Rebuild a :class:`~sld.search.families.Proposal` from :func:`proposal_record` output."""
    bounds = {str(name): (float(lo), float(hi), float(init)) for name, (lo, hi, init) in record["bounds"].items()}
    return Proposal(expression=str(record["expression"]), source=str(record["source"]),
                    family=str(record.get("family", "")), bounds=bounds, rationale=str(record.get("rationale", "")),
                    shared=tuple(str(name) for name in record.get("shared", ())))


def search_state(state: AgentState, target: str) -> SearchState:
    """Rebuild the engine's :class:`~sld.search.engine.SearchState` of one target from the graph state."""
    return SearchState(
        candidates=[candidate_from_record(record) for record in state["candidates"].get(target, [])],
        proposals=Counter(state["proposals"].get(target, {})),
        round=state["offline_round"],
        restart=state.get("restart", 0),
        restart_start=state.get("restart_start", 0),
    )


def current_target(state: AgentState) -> str:
    """Return the name of the target being searched."""
    return state["targets"][state["target_index"]]

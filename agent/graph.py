"""The discovery loop (the only one) as a LangGraph state graph: profile, propose, evaluate, store, reflect, finalize.

One pass per target::

    profile -> propose -> evaluate -> store -> reflect --(continue)--> propose
                                                         --(stop)------> finalize --(next target)--> profile
                                                                                  --(done)---------> END

- ``profile`` describes the target's data (ranges, trends, groups, budget) for the proposers;
- ``propose`` asks the proposer (offline, LLM or both) for this round's law forms, drops those already tried;
- ``evaluate`` fits and validates them within the target's share of the time budget, appending each candidate
  to the run log as soon as it is evaluated (a killed run loses nothing evaluated);
- ``store`` adds the round's candidates to the state;
- ``reflect`` sums up what failed and why (for the next prompt), counts rounds without improvement and decides
  whether to stop (:class:`~sld.search.stopping.StopPolicy`: time budget, candidate cap, ``patience`` rounds
  without improvement, round cap, or nothing left to propose); a stopped search hands over to the next
  independent search (its own seed) until ``search_patience`` searches in a row found no better law;
- ``finalize`` chooses among the near-ties by their consensus beyond the data and refits the law on all training
  rows (a fallback law with a warning when nothing validated).

Nodes are plain functions of the state and a :class:`~langgraph.runtime.Runtime` whose context
(:class:`AgentContext`) holds what cannot be checkpointed: the arrays, the candidate pools, the LLM client, the run
directory and the clock.
"""

from __future__ import annotations

import json
import math
import re
import time
from collections import Counter
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sld.search.candidates import Problem, candidate_from_record
from sld.search.engine import SearchOutcome, SearchState, finalize, make_folds
from sld.search.pool import CandidatePool, make_pool
from sld.search.profile import DataProfile, profile_data
from sld.search.proposals import deduplicate
from sld.search.selection import Fold
from sld.search.stopping import StopPolicy
from sld.tasks import Task

from .progress import Progress, RoundStatus
from .proposers import SOURCE_LLM, LLMProposer, ProposalRequest, Proposer
from .state import (
    USAGE_KEYS,
    AgentConfig,
    AgentState,
    Record,
    current_target,
    proposal_from_record,
    proposal_record,
    search_state,
)

if TYPE_CHECKING:
    from langgraph.checkpoint.base import BaseCheckpointSaver
    from langgraph.graph.state import CompiledStateGraph
    from langgraph.runtime import Runtime

    from .rundir import RunDirectory

# A round only counts as an improvement when the best objective drops by more than this share.
_IMPROVEMENT = 1e-6
_KEPT_NOTES = 6
_LAW_PREFIX = re.compile(r"""^cannot use law (["']).*?\1: """, re.DOTALL)


@dataclass
class AgentContext:
    """What the nodes need besides the state: data, settings, proposers, files and the clock.

    Attributes
    ----------
    task : Task
        What is searched.
    problems : dict
        ``{target: Problem}`` over the training rows.
    config : AgentConfig
        Run settings.
    proposer : Proposer
        Source of law forms.
    llm : LLMProposer or None
        The LLM proposer, for usage accounting and the call log.
    directory : RunDirectory or None
        Where candidates (and the LLM call log) are appended.
    progress : Progress
        Receives notes, validated candidates and a status after every round.
    deadline : float
        ``time.monotonic()`` at which the run's budget is spent.
    started : float
        ``time.monotonic()`` when this process started on the run.
    spent_before : float
        Seconds spent by earlier processes of a resumed run.
    usage_before : dict
        LLM usage of earlier processes of a resumed run.
    recovered : dict
        ``{target: {expression: record}}``: candidates in the run log that the checkpoint lacks (a run killed
        mid-round); they are merged back instead of being evaluated again.
    """

    task: Task
    problems: dict[str, Problem]
    config: AgentConfig
    proposer: Proposer
    llm: LLMProposer | None
    directory: RunDirectory | None
    progress: Progress
    deadline: float
    started: float = field(default_factory=time.monotonic)
    spent_before: float = 0.0
    usage_before: dict[str, int] = field(default_factory=dict)
    recovered: dict[str, dict[str, Record]] = field(default_factory=dict)
    outcomes: dict[str, SearchOutcome] = field(default_factory=dict)
    stack: ExitStack = field(default_factory=ExitStack)
    _profiles: dict[str, DataProfile] = field(default_factory=dict)
    _folds: dict[str, list[Fold]] = field(default_factory=dict)
    _pools: dict[str, CandidatePool] = field(default_factory=dict)
    _target_deadlines: dict[str, float] = field(default_factory=dict)
    _restart_starts: dict[tuple[str, int], float] = field(default_factory=dict)
    _logged_calls: int = 0

    def spent_s(self) -> float:
        """Return seconds spent on the run so far, earlier processes included."""
        return round(self.spent_before + time.monotonic() - self.started, 3)

    def profile(self, target: str) -> DataProfile:
        """Return the (cached) profile of a target's training rows."""
        if target not in self._profiles:
            p = self.problems[target]
            self._profiles[target] = profile_data(p.X, p.y, p.variables, p.groups)
        return self._profiles[target]

    def folds(self, target: str) -> list[Fold]:
        """Return the (cached) validation folds of a target."""
        if target not in self._folds:
            self._folds[target] = make_folds(self.problems[target], self.config.engine.seed)
        return self._folds[target]

    def pool(self, target: str, *, thorough: bool = False) -> CandidatePool:
        """Return a target's candidate pool (:func:`~sld.search.pool.make_pool`), closed with the context.

        ``thorough`` pools (for LLM proposals) fit with ``llm_starts_factor`` times the multi-starts.
        """
        key = f"{target}\x1f{thorough}"
        if key not in self._pools:
            engine = self.config.engine
            if thorough:
                engine = engine.model_copy(update={"n_starts": engine.n_starts * self.config.llm_starts_factor})
            pool = make_pool(self.problems[target], self.folds(target), engine)
            self._pools[key] = self.stack.enter_context(pool)
        return self._pools[key]

    def target_deadline(self, state: AgentState) -> float:
        """Return when the current target's search must end (:meth:`~sld.search.stopping.StopPolicy.target_deadline`).

        The deadline is fixed the first time a process asks for it.
        """
        target = current_target(state)
        if target not in self._target_deadlines:
            left = len(state["targets"]) - state["target_index"]
            now = time.monotonic()
            # The search running when the target starts in this process starts with it.
            self._restart_starts[(target, state["restart"])] = now
            self._target_deadlines[target] = self.config.stop.target_deadline(
                now=now, run_deadline=self.deadline, targets_left=left)
        return self._target_deadlines[target]

    def restart_deadline(self, state: AgentState) -> float:
        """Return when the current search of the current target hands over to the next one.

        Each search gets an even share of the target's time left when it starts (in this process: a resumed run
        splits what is left among the searches still to run).
        """
        deadline = self.target_deadline(state)
        start = self._restart_starts.setdefault((current_target(state), state["restart"]), time.monotonic())
        return self.config.stop.restart_deadline(start=start, deadline=deadline, restart=state["restart"])

    def llm_usage(self) -> dict[str, int]:
        """Return the run's LLM usage, earlier processes included."""
        usage = {key: int(self.usage_before.get(key, 0)) for key in USAGE_KEYS}
        if self.llm is not None:
            now = self.llm.client.usage
            for key in USAGE_KEYS:
                usage[key] += int(getattr(now, key))
        return usage

    def log_llm_calls(self, target: str, round_: int) -> None:
        """Append the LLM calls made since the last time to ``llm_calls.jsonl`` (tokens per call)."""
        if self.llm is None:
            return
        entries = self.llm.client.usage_log[self._logged_calls:]
        self._logged_calls += len(entries)
        if self.directory is None or not entries:
            return
        with self.directory.llm_calls_path.open("a") as handle:
            for entry in entries:
                handle.write(json.dumps({"target": target, "round": round_, **entry}) + "\n")


def _context(runtime: Runtime[AgentContext]) -> AgentContext:
    return runtime.context


def profile_node(state: AgentState, runtime: Runtime[AgentContext]) -> dict[str, Any]:
    """Describe the current target's training rows; reset the per-target counters."""
    ctx = _context(runtime)
    target = current_target(state)
    problem = ctx.problems[target]
    profile = ctx.profile(target)
    groups = sorted({str(g) for g in problem.groups})
    record: dict[str, Any] = {
        "rows": profile.n_rows,
        "groups": {"count": profile.n_groups, "names": groups[:12]},
        "target": {"name": target, "min": profile.target_min, "max": profile.target_max,
                   "always_positive": profile.target_positive},
        "variables": {
            v.name: {"kind": v.kind, "min": v.minimum, "max": v.maximum, "typical": v.reference,
                     "trend_in_data": v.trend, "distinct_values": v.n_unique,
                     **({"declared_trend": ctx.task.monotone[v.name]} if v.name in ctx.task.monotone else {})}
            for v in profile.variables
        },
        "constant_budget": problem.max_params,
        "extrapolation": (f"constants are fitted on smaller {', '.join(ctx.task.extrapolation_axis)} and the law "
                          "is scored on larger values" if ctx.task.extrapolation_axis else
                          "the law is scored on held-out rows"),
        "fitting_hint": "constants are fitted from starting values near 1; divide scale variables by a typical "
                        "value (e.g. N / 1e9) so fitted constants stay near unit scale",
    }
    ctx.progress.note(f"{target}: {profile.n_rows} training rows, {profile.n_groups} groups, "
                 f"at most {problem.max_params} constants; proposer {ctx.config.proposer}")
    best = [c.objective for c in search_state(state, target).ranked()[:1]]
    return {"profile": record, "round": 0, "offline_round": 0, "llm_calls": 0, "pending": [], "rejected": [],
            "evaluated": [], "duplicates": 0, "best_objective": best[0] if best else None, "stale_rounds": 0,
            "restart": 0, "restart_start": 0, "stale_searches": 0, "notes": [], "spent_s": ctx.spent_s()}


def propose_node(state: AgentState, runtime: Runtime[AgentContext]) -> dict[str, Any]:
    """Ask the proposer for this round's law forms; drop the ones already evaluated."""
    ctx = _context(runtime)
    target = current_target(state)
    problem = ctx.problems[target]
    search = search_state(state, target)
    request = ProposalRequest(problem=problem, search=search, profile=ctx.profile(target),
                              profile_record=state["profile"], notes=state["notes"],
                              llm_calls=state["llm_calls"], llm_status=state["llm_status"])  # type: ignore[arg-type]
    batch = ctx.proposer.propose(request)
    unseen = deduplicate(batch.proposals, search, problem.variables)
    duplicates = sum(p.source == SOURCE_LLM for p in batch.proposals) - sum(p.source == SOURCE_LLM for p in unseen)
    seen = search.seen_texts()
    rejected: list[Record] = []
    for candidate in batch.rejected:
        if candidate.expression not in seen:  # the same mistake twice is listed once
            seen.add(candidate.expression)
            rejected.append(candidate.as_record())
    room = ctx.config.stop.room(len(search.candidates))
    if room is not None:  # the candidate cap: proposals beyond it are never evaluated
        rejected = rejected[:room]
        unseen = unseen[:room - len(rejected)]
    update: dict[str, Any] = {
        "pending": [proposal_record(p) for p in unseen], "rejected": rejected, "duplicates": duplicates,
        "offline_round": state["offline_round"] + int(batch.used_offline_round),
        "llm_calls": state["llm_calls"] + int(batch.llm_called),
        "llm_usage": ctx.llm_usage(), "spent_s": ctx.spent_s(),
    }
    ctx.log_llm_calls(target, state["round"])
    if batch.llm_status is None and ctx.llm is not None and state["llm_status"] == "active" and ctx.llm.budget_spent:
        batch.llm_status, batch.llm_note = "exhausted", ctx.llm.budget_note()
    if batch.llm_status is not None and batch.llm_status != state["llm_status"]:
        update["llm_status"], update["llm_note"] = batch.llm_status, batch.llm_note
        if batch.llm_status == "failing":
            ctx.progress.note(f"LLM endpoint failing; continuing offline ({batch.llm_note})")
        else:
            ctx.progress.note(f"LLM stopped: {batch.llm_note}")
    n_llm = sum(p.source == SOURCE_LLM for p in unseen)
    if n_llm or rejected:
        ctx.progress.note(f"{target}: round {state['round']}: {len(unseen)} new proposals ({n_llm} from the LLM), "
                          f"{len(rejected)} rejected before fitting")
    return update


def evaluate_node(state: AgentState, runtime: Runtime[AgentContext]) -> dict[str, Any]:
    """Fit and validate the pending proposals; log each candidate as soon as it is evaluated."""
    ctx = _context(runtime)
    target = current_target(state)
    recovered = ctx.recovered.get(target, {})
    evaluated: list[Record] = []

    def keep(record: Record) -> None:
        if ctx.directory is not None:
            ctx.directory.append(target, candidate_from_record(record))
        evaluated.append(record)

    for record in state["rejected"]:
        if record["expression"] in recovered:
            evaluated.append(recovered.pop(record["expression"]))
        else:
            keep(record)
    todo = []
    for record in state["pending"]:
        if record["expression"] in recovered:
            evaluated.append(recovered.pop(record["expression"]))  # evaluated before the run was killed
        else:
            todo.append(proposal_from_record(record))
    deadline = ctx.target_deadline(state)
    # One feed per run of proposals of one kind (LLM proposals get the thorough pool): the workers never wait for
    # each other inside a run (batches of 2 per worker did, at every batch's end: domain_mixture 168 -> 150 s), and
    # each candidate still reaches the run log, in proposal order, once it and those before it are done.
    start = 0
    while start < len(todo) and time.monotonic() < deadline:
        thorough = todo[start].source == SOURCE_LLM
        batch = [todo[start]]
        for proposal in todo[start + 1:]:
            if (proposal.source == SOURCE_LLM) != thorough:
                break
            batch.append(proposal)
        ctx.pool(target, thorough=thorough).evaluate(batch, deadline, report=lambda c: keep(c.as_record()))
        start += len(batch)
    # Anything else the killed run had evaluated for this target comes back too.
    evaluated.extend(recovered.values())
    recovered.clear()
    return {"evaluated": evaluated, "pending": [], "rejected": [], "spent_s": ctx.spent_s()}


def store_node(state: AgentState, runtime: Runtime[AgentContext]) -> dict[str, Any]:
    """Add the round's candidates to the state (and count them per source)."""
    ctx = _context(runtime)
    target = current_target(state)
    candidates = dict(state["candidates"])
    candidates[target] = [*candidates.get(target, []), *state["evaluated"]]
    proposals = {name: dict(counts) for name, counts in state["proposals"].items()}
    counts = Counter(proposals.get(target, {}))
    for record in state["evaluated"]:
        counts[str(record["source"])] += 1
        candidate = candidate_from_record(record)
        if candidate.status == "ok":
            ctx.progress.candidate(target, candidate)
        elif candidate.source == SOURCE_LLM and not candidate.key:
            reason = _LAW_PREFIX.sub("", candidate.reason)
            ctx.progress.note(f"{target}: [llm] rejected {candidate.expression[:60]!r}: {reason[:120]}")
    proposals[target] = dict(sorted(counts.items()))
    return {"candidates": candidates, "proposals": proposals, "spent_s": ctx.spent_s()}


def reflect_node(state: AgentState, runtime: Runtime[AgentContext]) -> dict[str, Any]:
    """Sum up the round (what failed and why), count rounds without improvement, decide whether to stop."""
    ctx = _context(runtime)
    target = current_target(state)
    round_ = [candidate_from_record(record) for record in state["evaluated"]]
    ok = [c for c in round_ if c.status == "ok"]
    previous = state["best_objective"]
    best_now = min((c.objective for c in ok), default=math.inf)
    improved = StopPolicy.found_better(best_now if math.isfinite(best_now) else None, previous, margin=_IMPROVEMENT)
    best = best_now if improved else previous
    # A round that evaluated nothing (e.g. no symbolic-regression backend) tells nothing about convergence.
    stale = 0 if improved else state["stale_rounds"] + int(bool(round_))
    reasons = Counter(_reason_kind(c.reason or c.status) for c in round_ if c.status != "ok")
    note = f"round {state['round']}: {len(round_)} evaluated, {len(ok)} validated"
    if ok:
        top = min(ok, key=lambda c: c.objective)
        note += f", best validation R^2 {top.validation_r2:.4f} ({top.expression[:80]})"
    note += "; improved the best law" if improved else "; no improvement"
    if reasons:
        note += "; rejections: " + ", ".join(f"{reason} ({n})" for reason, n in reasons.most_common(3))
    if state["duplicates"]:
        note += (f"; {state['duplicates']} proposed laws were already evaluated (the same law up to the names of "
                 "its constants) and were skipped")
    update: dict[str, Any] = {
        "evaluated": [], "duplicates": 0, "best_objective": best, "stale_rounds": stale, "round": state["round"] + 1,
        "notes": [*state["notes"], note][-_KEPT_NOTES:], "spent_s": ctx.spent_s(),
    }
    search = search_state(state, target)
    request = ProposalRequest(problem=ctx.problems[target], search=search,
                              profile=ctx.profile(target), profile_record=state["profile"],
                              llm_calls=state["llm_calls"], llm_status=state["llm_status"])  # type: ignore[arg-type]
    stop, now = ctx.config.stop, time.monotonic()
    candidates, rounds = len(search.candidates), state["round"] + 1
    reason = stop.stop_reason(
        now=now, deadline=ctx.restart_deadline(state), stale_rounds=stale, candidates=candidates, rounds=rounds,
        proposer_finished=ctx.proposer.finished(request))
    if reason is not None:
        stale_searches = _stale_searches(state, search)
        update["stale_searches"] = stale_searches
        if stop.restarts_after(restart=state["restart"], now=now, deadline=ctx.target_deadline(state),
                               candidates=candidates, rounds=rounds, stale_searches=stale_searches):
            # The next independent search: its own seed and evolution, from the symbolic-regression round on (the
            # families are evaluated once); the final choice is made over every search's candidates.
            restart = state["restart"] + 1
            update.update({"restart": restart, "restart_start": len(search.candidates), "offline_round": 1,
                           "stale_rounds": 0, "best_objective": None})
            of = f" of {stop.restarts}" if stop.restarts is not None else ""
            ctx.progress.note(f"{target}: search {restart + 1}{of} "
                              f"(seed {ctx.config.engine.restarted(restart).seed}); the last one stopped: {reason}")
            reason = None
        elif stale_searches >= stop.search_patience:  # never after the first search: it counts 0
            reason = (f"converged: {stale_searches} searches in a row found no better law "
                      f"({state['restart'] + 1} searches; the last one stopped: {reason})")
    if reason is not None:
        update["stopped"] = {**state["stopped"], target: reason}
    leader = search.ranked()[:1]
    ctx.progress.round_done(RoundStatus(
        target, state["round"], spent_s=ctx.spent_s(), budget_s=ctx.config.stop.budget_s,
        candidates=len(search.candidates), best_law=leader[0].identity if leader else None,
        best_r2=leader[0].validation_r2 if leader else None))
    return update


def _stale_searches(state: AgentState, search: SearchState) -> int:
    """Return the searches in a row, the one that just stopped included, that found no better law."""
    if state["restart"] == 0:
        return 0  # the first search (the families with it) is what the later ones must beat
    objectives = [c.objective if c.status == "ok" else None for c in search.candidates]
    earlier = min((o for o in objectives[:search.restart_start] if o is not None), default=None)
    own = min((o for o in objectives[search.restart_start:] if o is not None), default=None)
    better = StopPolicy.found_better(own, earlier)
    return 0 if better else state.get("stale_searches", 0) + 1


def _reason_kind(reason: str) -> str:
    """Return the kind of a rejection reason, without the law's text (``cannot use law '...': ``)."""
    reason = _LAW_PREFIX.sub("", reason)
    parts = reason.split(": ")
    kind = ": ".join(parts[:2]) if parts[0] == "validation" and len(parts) > 1 else parts[0]
    return kind[:80]


def finalize_node(state: AgentState, runtime: Runtime[AgentContext]) -> dict[str, Any]:
    """Choose the target's law (:func:`~sld.search.engine.finalize`) and move on to the next target."""
    ctx = _context(runtime)
    target = current_target(state)
    outcome = finalize_target(ctx, state, target)
    if outcome.state.warning:  # nothing validated (the law is a fallback), or the choice rests on one fold
        ctx.progress.note(f"warning: {outcome.state.warning}")
    ctx.progress.note(f"{target}: chose {outcome.best.expression} (validation R^2 {outcome.best.validation_r2:.4f}, "
                 f"{len(outcome.state.candidates)} candidates; {state['stopped'].get(target, '')})")
    return {"chosen": {**state["chosen"], target: outcome.best.expression},
            "target_index": state["target_index"] + 1, "spent_s": ctx.spent_s()}


def finalize_target(ctx: AgentContext, state: AgentState, target: str) -> SearchOutcome:
    """Return the target's outcome: its best candidate refitted on all training rows (cached in ``ctx``).

    Raises
    ------
    SearchError
        When no candidate of the target could be fitted at all (when none validated, the law is a fallback and
        ``outcome.state.warning`` says why).
    """
    if target not in ctx.outcomes:
        started = time.monotonic()
        problem = ctx.problems[target]
        search = search_state(state, target)
        best, law, fit = finalize(problem, search, ctx.config.engine)
        ctx.outcomes[target] = SearchOutcome(problem=problem, best=best, law=law, fit=fit, state=search,
                                             seconds=round(time.monotonic() - started, 3))
    return ctx.outcomes[target]


def route_after_reflect(state: AgentState) -> str:
    """Continue with another round, or finalize the target when ``reflect`` stopped it."""
    return "finalize" if current_target(state) in state["stopped"] else "propose"


def route_after_finalize(state: AgentState) -> str:
    """Profile the next target, or end when every target is done."""
    from langgraph.graph import END

    return "profile" if state["target_index"] < len(state["targets"]) else END


def build_graph(checkpointer: BaseCheckpointSaver[Any] | None = None) -> CompiledStateGraph[Any, Any, Any, Any]:
    """Build and compile the discovery graph.

    Parameters
    ----------
    checkpointer : BaseCheckpointSaver, optional
        Saves the state after every node (e.g. ``SqliteSaver`` on ``RUN_DIR/checkpoints.sqlite``), so that a
        killed run resumes from its last checkpoint.

    Returns
    -------
    CompiledStateGraph
        Invoke it with an :func:`~sld.agent.state.initial_state` and ``context=AgentContext(...)``.
    """
    from langgraph.graph import END, START, StateGraph

    graph = StateGraph(AgentState, context_schema=AgentContext)
    graph.add_node("profile", profile_node)
    graph.add_node("propose", propose_node)
    graph.add_node("evaluate", evaluate_node)
    graph.add_node("store", store_node)
    graph.add_node("reflect", reflect_node)
    graph.add_node("finalize", finalize_node)
    graph.add_edge(START, "profile")
    graph.add_edge("profile", "propose")
    graph.add_edge("propose", "evaluate")
    graph.add_edge("evaluate", "store")
    graph.add_edge("store", "reflect")
    graph.add_conditional_edges("reflect", route_after_reflect, ["propose", "finalize"])
    graph.add_conditional_edges("finalize", route_after_finalize, ["profile", END])
    return graph.compile(checkpointer=checkpointer)


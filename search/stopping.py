"""When a search stops: the one stop policy of every discovery (``sld discover``, ``sld bench``, the CI bench).

The policy holds the whole run's time budget and how it is split across targets, the share of each target's time
kept for the final refit, the patience (rounds without a better validation objective), the candidate cap and the
round cap. The discovery loop asks :meth:`StopPolicy.stop_reason` after every round and
:meth:`StopPolicy.target_deadline` once per target; nothing else decides when a search ends.

Example
-------
>>> policy = StopPolicy(budget_s=100, patience=2, max_candidates=10)
>>> policy.stop_reason(now=0.0, deadline=50.0, stale_rounds=0, candidates=10, rounds=1, proposer_finished=False)
'candidate cap reached: 10 candidates'
>>> policy.target_deadline(now=0.0, run_deadline=100.0, targets_left=2)
45.0
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

# Independent searches per target at most (see ``StopPolicy.restarts``): no cap by default, the search patience
# ends them. A fixed three measured about the same mean at 2.2 times the time (bench/README.md, "Seed agreement");
# a single search finds lr_bsz's best-validating form at one seed in three, ten searches at two in three.
DEFAULT_RESTARTS: int | None = None
# Searches in a row that find no better law before a target ends (see ``StopPolicy.search_patience``). Chosen for
# seed agreement, which reads no test row: at 3, lr_bsz's seeds 0-2 chose laws of two families whose predictions
# beyond the data disagree (relative spread 0.089); at 5, all three chose the same family and agree (0.038), at
# 1.4 times the search time (bench/README.md, "Search patience").
DEFAULT_SEARCH_PATIENCE = 5
# A search "finds a better law" only when its best objective beats every earlier search's by this share: less is
# another optimum or a small variant of a law already found, which the fold errors cannot tell apart anyway.
SEARCH_IMPROVEMENT = 0.01


class StopPolicy(BaseModel):
    """The stop rules of a discovery run.

    Attributes
    ----------
    budget_s : float, default 600
        Wall-clock budget of the whole run; each target gets an even share of what is left when it starts.
    refit_reserve : float, default 0.1
        Share of each target's time kept for the final refit on all training rows, so the run ends within its
        budget.
    patience : int, default 3
        A target stops after this many rounds in a row that evaluated candidates without a better validation
        objective (rounds that evaluated nothing, e.g. with no symbolic-regression backend, do not count).
    max_candidates : int, optional
        Candidates evaluated per target at most. Unlike the wall clock, this cap gives the same result on a fast
        or a busy machine (the quick CI benchmark relies on it).
    max_rounds : int, optional
        Rounds per target at most (default: until the proposers have nothing left, or another rule stops it).
    restarts : int, optional
        Independent searches per target at most, each with its own seed and its own evolution; the final choice is
        made once over all of them (``--restarts``). A single search's choice depends on which forms its seed
        happens to find (on lr_bsz, one seed in three finds the form that validates best); pooling independent
        searches depends on it less. With a number, each search gets an even share of the target's time; without
        (the default), each may use all the time left and ``search_patience`` ends them. A search that stops on
        time, patience or an exhausted schedule hands over to the next one; the candidate and round caps end them
        all.
    search_patience : int, default 5
        A target ends after this many independent searches in a row whose best law is not better (by
        ``SEARCH_IMPROVEMENT``) than the best of all the searches before them: the pool has stopped growing better
        laws, whatever the seed.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    budget_s: float = Field(default=600.0, gt=0)
    refit_reserve: float = Field(default=0.1, ge=0, lt=1)
    patience: int = Field(default=3, ge=1)
    max_candidates: int | None = Field(default=None, ge=1)
    max_rounds: int | None = Field(default=None, ge=1)
    restarts: int | None = Field(default=DEFAULT_RESTARTS, ge=1)
    search_patience: int = Field(default=DEFAULT_SEARCH_PATIENCE, ge=1)

    def target_deadline(self, *, now: float, run_deadline: float, targets_left: int) -> float:
        """Return when a target's search must end: its even share of the time left, less the refit reserve.

        Parameters
        ----------
        now : float
            Clock reading (``time.monotonic()``) when the target starts.
        run_deadline : float
            Clock reading at which the run's budget is spent.
        targets_left : int
            Targets not finished yet, this one included.
        """
        share = max(0.0, run_deadline - now) / max(targets_left, 1)
        return now + (1.0 - self.refit_reserve) * share

    def restart_deadline(self, *, start: float, deadline: float, restart: int) -> float:
        """Return when search ``restart`` (0-based) of a target hands over: an even share of the time left.

        Without a cap on the searches (``restarts`` None), every search may run until the target's deadline.

        Parameters
        ----------
        start : float
            Clock reading when that search started.
        deadline : float
            When the target's search must end (:meth:`target_deadline`).
        restart : int
            Which of the ``restarts`` searches.
        """
        if self.restarts is None:
            return deadline
        return start + max(0.0, deadline - start) / max(1, self.restarts - restart)

    def restarts_after(
        self, *, restart: int, now: float, deadline: float, candidates: int, rounds: int, stale_searches: int = 0
    ) -> bool:
        """Tell whether a search that stopped hands over to another one instead of ending the target.

        A search that reached a cap (:meth:`capped`) ends the target: the caps count the whole target. So do
        ``search_patience`` searches in a row without a better law, the last of ``restarts`` searches, and the
        target's deadline.

        Parameters
        ----------
        restart : int
            The search that stopped (0-based).
        now, deadline : float
            Clock reading and the target's deadline.
        candidates, rounds : int
            Candidates evaluated and rounds run for the target so far.
        stale_searches : int
            Searches in a row, the one that stopped included, that found no better law (:meth:`found_better`).
        """
        capped = self.capped(candidates=candidates, rounds=rounds)
        last = self.restarts is not None and restart + 1 >= self.restarts
        return not capped and not last and stale_searches < self.search_patience and now < deadline

    @staticmethod
    def found_better(best: float | None, earlier: float | None, *, margin: float = SEARCH_IMPROVEMENT) -> bool:
        """Tell whether the best objective ``best`` beats ``earlier`` by the relative ``margin``.

        Used for a search against the searches before it (``SEARCH_IMPROVEMENT``) and for a round against the
        rounds before it. ``None`` means nothing validated. Objectives are errors: lower is better.
        """
        if best is None:
            return False
        return earlier is None or best < earlier - margin * abs(earlier)

    def capped(self, *, candidates: int, rounds: int) -> bool:
        """Tell whether a target reached its candidate cap or its round cap."""
        return self._at_candidate_cap(candidates) or self._at_round_cap(rounds)

    def _at_candidate_cap(self, candidates: int) -> bool:
        return self.max_candidates is not None and candidates >= self.max_candidates

    def _at_round_cap(self, rounds: int) -> bool:
        return self.max_rounds is not None and rounds >= self.max_rounds

    def room(self, candidates: int) -> int | None:
        """Return how many more candidates a target may evaluate (None: no cap)."""
        return None if self.max_candidates is None else max(0, self.max_candidates - candidates)

    def stop_reason(
        self,
        *,
        now: float,
        deadline: float,
        stale_rounds: int,
        candidates: int,
        rounds: int,
        proposer_finished: bool,
    ) -> str | None:
        """Return why a target's search stops after a round, or None to run another round.

        Parameters
        ----------
        now, deadline : float
            Clock reading and the target's deadline (:meth:`target_deadline`).
        stale_rounds : int
            Rounds in a row without improvement.
        candidates : int
            Candidates evaluated for the target so far.
        rounds : int
            Rounds run for the target so far.
        proposer_finished : bool
            Whether the proposers have nothing left to propose.
        """
        if now >= deadline:
            return "time budget spent"
        if self._at_candidate_cap(candidates):
            return f"candidate cap reached: {candidates} candidates"
        if stale_rounds >= self.patience:
            return f"converged: {stale_rounds} rounds without improvement"
        if self._at_round_cap(rounds):
            return f"round cap reached: {rounds} rounds"
        if proposer_finished:
            return "nothing left to propose"
        return None

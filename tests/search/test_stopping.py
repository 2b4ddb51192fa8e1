"""The one stop policy: every rule, and the budget split across targets."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from sld.search.stopping import StopPolicy


def _reason(policy: StopPolicy, **overrides: object) -> str | None:
    state: dict[str, object] = dict(now=0.0, deadline=10.0, stale_rounds=0, candidates=0, rounds=1,
                                    proposer_finished=False)
    state.update(overrides)
    return policy.stop_reason(**state)  # type: ignore[arg-type]


def test_each_rule_stops_the_search_with_its_reason() -> None:
    policy = StopPolicy(patience=2, max_candidates=5, max_rounds=4)
    assert _reason(policy) is None
    assert _reason(policy, now=10.0) == "time budget spent"
    assert _reason(policy, candidates=5) == "candidate cap reached: 5 candidates"
    assert _reason(policy, stale_rounds=2) == "converged: 2 rounds without improvement"
    assert _reason(policy, rounds=4) == "round cap reached: 4 rounds"
    assert _reason(policy, proposer_finished=True) == "nothing left to propose"
    assert _reason(StopPolicy(), candidates=10_000, rounds=10_000) is None  # no cap unless asked


def test_targets_share_what_is_left_and_keep_a_refit_reserve() -> None:
    policy = StopPolicy(refit_reserve=0.1)
    assert policy.target_deadline(now=0.0, run_deadline=100.0, targets_left=2) == pytest.approx(45.0)
    assert policy.target_deadline(now=50.0, run_deadline=100.0, targets_left=1) == pytest.approx(95.0)
    assert policy.target_deadline(now=120.0, run_deadline=100.0, targets_left=1) == 120.0  # overdue: at once
    assert StopPolicy(max_candidates=3).room(2) == 1 and StopPolicy().room(2) is None


def test_the_policy_is_frozen_and_refuses_unknown_or_bad_settings() -> None:
    with pytest.raises(ValidationError):
        StopPolicy(patience=0)
    with pytest.raises(ValidationError):
        StopPolicy(budget_s=10, workers=2)  # type: ignore[call-arg]
    with pytest.raises(ValidationError):
        StopPolicy().patience = 5  # type: ignore[misc]


def test_uncapped_searches_run_until_search_patience_searches_find_no_better_law() -> None:
    policy = StopPolicy(search_patience=2)  # no cap on the searches (the default)
    assert policy.restarts is None
    assert policy.restart_deadline(start=40.0, deadline=90.0, restart=5) == 90.0  # each may use all the time left
    for stale in (0, 1):
        assert policy.restarts_after(restart=7, now=50.0, deadline=90.0, candidates=900, rounds=30,
                                     stale_searches=stale)
    assert not policy.restarts_after(restart=7, now=50.0, deadline=90.0, candidates=900, rounds=30, stale_searches=2)
    assert not policy.restarts_after(restart=1, now=91.0, deadline=90.0, candidates=90, rounds=3)  # out of time
    # The patience also ends a capped number of searches early.
    assert not StopPolicy(restarts=5, search_patience=1).restarts_after(
        restart=1, now=1.0, deadline=90.0, candidates=30, rounds=4, stale_searches=1)
    with pytest.raises(ValidationError):
        StopPolicy(search_patience=0)


def test_a_better_law_must_beat_the_earlier_searches_by_a_margin() -> None:
    assert StopPolicy.found_better(0.5, None)  # the first law that validated
    assert not StopPolicy.found_better(None, 0.5) and not StopPolicy.found_better(None, None)
    assert StopPolicy.found_better(0.98, 1.0)
    assert not StopPolicy.found_better(0.995, 1.0)  # another optimum of a law already found, within the folds' noise
    assert not StopPolicy.found_better(1.2, 1.0)

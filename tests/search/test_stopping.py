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

"""The proposer prompt: complete, deterministic, and bounded in size."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np

from sld.agent.prompts import MAX_LISTED_BEST, MAX_LISTED_REJECTED, build_messages


def inputs(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "task_description": "Final pretraining loss of dense transformers versus parameters N and tokens D.",
        "variables": ["N", "D"],
        "targets": ["loss"],
        "max_params": 5,
        "data_profile": {
            "rows": 120,
            "groups": ["all"],
            "ranges": {"N": {"min": 7e7, "max": 1.6e10}, "D": {"min": 5e9, "max": 5e11}},
            "loss": {"min": 1.9, "max": 3.8},
        },
        "best": [
            {"expression": "E + A/N**alpha", "validation_r2": 0.912345, "n_params": 3},
            {"expression": "E + A/N**alpha + B/D**beta", "validation_r2": 0.987654, "n_params": 5},
        ],
        "rejected": [
            {"expression": "x.__class__", "reason": "attribute access is not allowed"},
            {"expression": "a*Q**b", "reason": "uses none of the variables N, D"},
        ],
    }
    base.update(changes)
    return base


def test_messages_have_system_and_user_roles() -> None:
    messages = build_messages(**inputs())
    assert [m["role"] for m in messages] == ["system", "user"]
    assert all(isinstance(m["content"], str) and m["content"] for m in messages)
    json.dumps(messages)


def test_prompt_explains_format_grammar_and_extrapolation() -> None:
    system, user = (m["content"] for m in build_messages(**inputs(), n_laws=6))
    assert '{"laws": [{"expression":' in system
    for function in ("exp", "log", "sqrt", "Min", "Max", "Abs", "tanh"):
        assert function in system
    assert "+ - * / **" in system
    assert "any other identifier is a constant fitted to the data" in system
    assert "extrapolat" in system
    assert "Variables (use exactly these names): N, D" in user
    assert "At most 5 fitted constants per law." in user
    assert "loss" in user
    assert "Propose 6 new laws" in user
    assert "Final pretraining loss" in user


def test_best_and_rejected_candidates_are_listed_with_scores_and_reasons() -> None:
    user = build_messages(**inputs())[1]["content"]
    # Best first, whatever the input order.
    assert user.index("E + A/N**alpha + B/D**beta") < user.index("1. R2=0.9877") + 40
    assert "1. R2=0.9877 constants=5  E + A/N**alpha + B/D**beta" in user
    assert "2. R2=0.9123 constants=3  E + A/N**alpha" in user
    assert "- x.__class__  ->  attribute access is not allowed" in user
    assert "- a*Q**b  ->  uses none of the variables N, D" in user


def test_prompt_is_deterministic_under_reordering() -> None:
    reference = build_messages(**inputs())
    shuffled = inputs()
    shuffled["best"] = list(reversed(shuffled["best"]))
    shuffled["data_profile"] = dict(reversed(list(shuffled["data_profile"].items())))
    shuffled["data_profile"]["ranges"] = dict(reversed(list(shuffled["data_profile"]["ranges"].items())))
    assert build_messages(**shuffled) == reference
    assert build_messages(**inputs()) == reference


def test_profile_renders_numpy_values_and_short_floats() -> None:
    profile = {
        "rows": np.int64(12),
        "N": {"min": np.float64(123456789.123), "max": float("inf")},
        "column_means": np.array([0.1, 0.2]),
        "seen": {"b", "a"},
    }
    user = build_messages(**inputs(data_profile=profile))[1]["content"]
    assert '"rows": 12' in user
    assert "123457000.0" in user  # 6 significant digits
    assert '"max": "inf"' in user
    assert '"seen": [\n    "a",\n    "b"\n  ]' in user


def test_failed_and_missing_scores_sort_last() -> None:
    best = [
        {"expression": "a*N", "validation_r2": math.nan, "n_params": 1},
        {"expression": "b*D", "validation_r2": None, "n_params": 1},
        {"expression": "c*N**d", "validation_r2": 0.5, "n_params": 2},
    ]
    user = build_messages(**inputs(best=best))[1]["content"]
    assert "1. R2=0.5000 constants=2  c*N**d" in user
    assert "2. R2=failed constants=1  a*N" in user
    assert "3. R2=failed constants=1  b*D" in user


def test_lists_are_capped() -> None:
    best = [{"expression": f"a*N**{k}", "validation_r2": k / 100, "n_params": 2} for k in range(40)]
    rejected = [{"expression": f"bad{k}", "reason": f"reason {k}"} for k in range(40)]
    user = build_messages(**inputs(best=best, rejected=rejected))[1]["content"]
    assert f"{MAX_LISTED_BEST}. R2=" in user
    assert f"{MAX_LISTED_BEST + 1}. R2=" not in user
    assert "a*N**39" in user and "a*N**0\n" not in user
    # The most recent rejections are kept.
    assert "bad39" in user and f"bad{40 - MAX_LISTED_REJECTED - 1} " not in user
    assert user.count("  ->  ") == MAX_LISTED_REJECTED


def test_long_texts_are_truncated() -> None:
    rejected = [{"expression": "a*N+" * 500, "reason": "too long " * 100}]
    user = build_messages(**inputs(rejected=rejected))[1]["content"]
    assert max(len(line) for line in user.splitlines()) < 700


def test_empty_history() -> None:
    user = build_messages(**inputs(best=[], rejected=[]))[1]["content"]
    assert "None evaluated yet." in user
    assert "None." in user

"""Paired comparison of laws fitted identically, with bootstrap intervals over groups or rows."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from sld.cli import main
from sld.search import ConstantSpec, FitConfig, SplitArrays, parse_law
from sld.search.comparison import compare_laws, resample_indices
from tests.sld.report_data import write_sft_corpus

CONFIG = FitConfig(n_starts=3, seed=0)


def power_law_splits(n_groups: int, *, seed: int = 0) -> tuple[SplitArrays, SplitArrays]:
    """Rows of ``E_g + 30 N^-0.3`` with 1 % noise; the test rows lie beyond the training rows in N."""
    rng = np.random.default_rng(seed)
    train_N, test_N = np.geomspace(1e6, 1e9, 12), np.array([3e9, 1e10])
    splits = []
    for sizes in (train_N, test_N):
        N = np.tile(sizes, n_groups)
        groups = np.repeat([f"g{k}" for k in range(n_groups)], len(sizes))
        offset = np.repeat(1.5 + 0.25 * np.arange(n_groups), len(sizes))
        loss = (offset + 30.0 * N**-0.3) * (1 + 0.01 * rng.standard_normal(len(N)))
        splits.append(SplitArrays(N[:, None], loss, groups))
    return splits[0], splits[1]


def test_the_generating_law_beats_a_wrong_one_with_a_clear_paired_interval() -> None:
    train, test = power_law_splits(8)
    truth = parse_law("E + A * N**(-alpha)", ["N"])
    wrong = parse_law("c + k * log(N)", ["N"])

    comparison = compare_laws("toy", [("log-linear", [wrong]), ("power law", [truth])], train, test,
                              fit_config=CONFIG, n_resamples=300)

    assert comparison.unit == "groups" and comparison.n_units == 8
    assert comparison.reference == "log-linear"
    wrong_score, truth_score = comparison.laws
    assert truth_score.scores.r2 > wrong_score.scores.r2
    assert truth_score.r2_interval is not None
    low, high = truth_score.r2_interval
    assert low <= truth_score.scores.r2 <= high
    (difference,) = comparison.differences
    assert difference.delta_r2 == pytest.approx(truth_score.scores.r2 - wrong_score.scores.r2)
    assert difference.interval[0] > 0  # the paired interval excludes no difference
    assert difference.p_better > 0.95
    json.dumps(comparison.as_dict())  # JSON-ready


def test_few_groups_resample_rows_and_a_failed_law_gets_no_interval() -> None:
    train, test = power_law_splits(2)
    truth = parse_law("E + A * N**(-alpha)", ["N"])
    # Undefined beyond c, which its bound keeps below the test rows: no finite prediction of them.
    broken = parse_law("log(c - N)", ["N"], constants={"c": ConstantSpec("c", 0.0, 2e9)})
    comparison = compare_laws("toy", [("truth", [truth]), ("broken", [broken])], train, test, fit_config=CONFIG,
                              n_resamples=50)
    assert comparison.unit == "rows" and comparison.n_units == len(test.X)
    assert comparison.laws[1].scores.failed and comparison.laws[1].r2_interval is None
    assert np.isnan(comparison.differences[0].delta_r2)


def test_group_resamples_take_whole_groups() -> None:
    groups = np.array(["a"] * 3 + ["b"] * 2 + ["c"] * 4)
    for rows in resample_indices(groups, unit="groups", n_resamples=20, seed=1):
        picked = groups[rows]
        for name in set(picked.tolist()):
            assert np.sum(picked == name) % np.sum(groups == name) == 0
    same = resample_indices(groups, unit="rows", n_resamples=3, seed=7)
    again = resample_indices(groups, unit="rows", n_resamples=3, seed=7)
    assert all(np.array_equal(a, b) for a, b in zip(same, again, strict=True))


def test_compare_cli_against_the_human_law(tmp_path: Path) -> None:
    corpus = write_sft_corpus(tmp_path)
    result = CliRunner().invoke(main, [
        "compare", "--task", "sft_scaling_law", "--corpus", str(corpus), "--starts", "4", "--resamples", "200",
        "--law", "plain=E + A * sft_data_size**(-alpha)", "--json", str(tmp_path / "c.json")])
    assert result.exit_code == 0, result.output
    assert "bootstrap over rows (3)" in result.stdout  # 3 test rows, one per group: fewer groups than 5
    assert re.search(r"^human-derived\s+4\s+0\.9\d{3}", result.stdout, re.M)
    assert re.search(r"^plain - human-derived: delta R\^2 [+-]\d\.\d{4}", result.stdout, re.M)
    saved = json.loads((tmp_path / "c.json").read_text())
    assert [law["name"] for law in saved["laws"]] == ["human-derived", "plain"]


def test_compare_json_holds_null_not_nan_for_a_failed_law(tmp_path: Path) -> None:
    corpus = write_sft_corpus(tmp_path)
    out = tmp_path / "c.json"
    result = CliRunner().invoke(main, [
        "compare", "--task", "sft_scaling_law", "--corpus", str(corpus), "--starts", "2", "--resamples", "20",
        # Defined up to 5e5, beyond the training sizes (up to 409600) but not the test size (819200), whatever the fit.
        "--law", "broken=a + b * log(500000 - sft_data_size)", "--json", str(out)])
    assert result.exit_code == 0, result.output
    text = out.read_text()
    assert "NaN" not in text and "Infinity" not in text
    saved = json.loads(text)
    assert saved["laws"][1]["r2"] is None and saved["differences"][0]["delta_r2"] is None


def test_compare_cli_needs_two_laws(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["compare", "--task", "sft_scaling_law", "--no-literature", "--law", "a*x"])
    assert result.exit_code == 2
    assert "at least two laws" in result.output

"""``sld discover --data`` on the bad-input corpus (tests/corpus/bad_inputs/): caught before any search."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from sld.cli import main

BAD_INPUTS = Path(__file__).parent / "bad_inputs"
ROUND = "round 0"  # the first line the search prints: a check that fires "up front" must stop before it


def discover(name: str, *extra: str) -> tuple[int, str]:
    """Run ``sld discover --data bad_inputs/NAME.csv`` with a tiny budget; return exit code and stderr."""
    args = ["discover", "--data", str(BAD_INPUTS / f"{name}.csv"), "--features", "N,D", "--target", "loss",
            "--group", "model", "--max-params", "4", "--backend", "none", "--budget-s", "3", "--no-report", *extra]
    result = CliRunner().invoke(main, args)
    return result.exit_code, result.stderr


@pytest.mark.parametrize(
    ("name", "fragments"),
    [
        ("negative_size", ["column 'N' is a size", "row 3 (group 'small') has -100000000.0",
                           "--allow-nonpositive N"]),
        ("one_row", ["has 1 rows", "needs at least 6", "collect at least 3 rows"]),
        ("short_group", ["group 'large' of column 'model' (first at row 7) has 3 rows", "pass --max-params 1"]),
        ("constant_feature", ["feature 'D' has the same value 10000000000.0 in all 12 rows",
                              "Drop it from --features"]),
    ],
)
def test_bad_input_fails_before_the_search_with_a_one_line_fix(name, fragments):
    code, stderr = discover(name)
    assert code == 1
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {BAD_INPUTS / name}.csv: ")
    for fragment in fragments:
        assert fragment in lines[0]


def test_huge_value_warns_and_the_search_still_runs():
    _, stderr = discover("huge_value")
    first = stderr.splitlines()[0]
    assert first.startswith("warning: ") and "column 'D' row 5 (group 'small') has 1e+308" in first
    assert ROUND in stderr


def test_allow_nonpositive_lets_the_run_start():
    _, stderr = discover("negative_size", "--allow-nonpositive", "N")
    assert "is a size" not in stderr and ROUND in stderr


def test_good_table_passes_the_checks():
    _, stderr = discover("good")
    assert not stderr.startswith(("error", "warning")) and ROUND in stderr

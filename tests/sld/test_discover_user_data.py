"""``sld discover --data`` options that describe user data: --axis N,D, --monotone, --optimum."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from sld.cli import main

GOOD = Path(__file__).parents[1] / "corpus" / "bad_inputs" / "good.csv"


def discover(*extra: str) -> tuple[int, str, str]:
    """Run ``sld discover`` on the good bad-input table; return exit code, stdout and stderr."""
    args = ["discover", "--data", str(GOOD), "--features", "N,D", "--target", "loss", "--group", "model",
            "--max-params", "4", "--backend", "none", "--no-report", *extra]
    result = CliRunner().invoke(main, args)
    return result.exit_code, result.stdout, result.stderr


def test_axis_of_two_features_with_a_declared_trend_runs(tmp_path):
    out = tmp_path / "summary.json"
    code, _, stderr = discover("--axis", "N,D", "--monotone", "loss:N=decreasing", "--monotone", "D=decreasing",
                               "--budget-s", "15", "--json", str(out))
    assert code == 0, stderr
    assert json.loads(out.read_text())["law"]["n_params"] <= 4


@pytest.mark.parametrize(
    ("extra", "fragment"),
    [
        (["--axis", "N,tokens"], "Extrapolation axis 'tokens' (--axis) is not a feature; pick one of: N, D."),
        (["--monotone", "loss:N=flat"], "trend 'flat' is not one of increasing, decreasing."),
        (["--optimum", "lr"], "Optimum feature 'lr' (--optimum) is not a feature; pick one of: N, D."),
        (["--monotone", "N=decreasing", "--optimum", "N"], "declared both monotone"),
    ],
)
def test_bad_declarations_name_the_value_and_the_choices(extra, fragment):
    code, _, stderr = discover(*extra)
    assert code == 1 and stderr.startswith("error: ") and fragment in stderr


def test_declarations_need_data():
    result = CliRunner().invoke(main, ["discover", "--task", "sft_scaling_law", "--monotone", "x=decreasing"])
    assert result.exit_code == 2 and "describe --data" in result.output

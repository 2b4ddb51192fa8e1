"""``sld gate``: fail (exit 1) when a benchmark's mean test R^2 drops below the stored baseline.

Example
-------
``sld gate artifacts/quick.json --baseline bench/baseline.json``; ``--update --tolerance 0.05`` stores a new one.
"""

from __future__ import annotations

import click


@click.command("gate")
@click.argument("result_path", metavar="RESULT", type=click.Path(dir_okay=False))
@click.option("--baseline", "baseline_path", default="bench/baseline.json", show_default=True,
              type=click.Path(dir_okay=False), help="Stored baseline JSON.")
@click.option("--tolerance", type=float, help="Allowed drop of the mean R^2 (default: the baseline's).")
@click.option("--update", is_flag=True, help="Write RESULT as the new baseline instead of checking it.")
@click.option("--command-line", "command_line", default="", help="With --update: how RESULT was produced.")
@click.option("--notes", default="", help="With --update: machine, wall time, why this tolerance.")
def command(result_path: str, baseline_path: str, tolerance: float | None, update: bool, command_line: str,
            notes: str) -> None:
    """Check RESULT (``sld bench --json``) against the baseline: exit 1 when its mean R^2 dropped too far."""
    from sld.benchmark import BenchResult
    from sld.gate import Baseline, baseline_from_result, check_gate, load_json_model, write_baseline

    result = load_json_model(result_path, BenchResult)
    assert isinstance(result, BenchResult)
    if update:
        if tolerance is None:
            raise click.UsageError("--update needs --tolerance (the drop of the mean R^2 that still passes).")
        write_baseline(baseline_from_result(result, tolerance=tolerance, command=command_line, notes=notes),
                       baseline_path)
        click.echo(f"wrote {baseline_path}: mean R^2 {result.mean_r2:.4f}, tolerance {tolerance}")
        return
    baseline = load_json_model(baseline_path, Baseline)
    assert isinstance(baseline, Baseline)
    outcome = check_gate(result, baseline, tolerance=tolerance)
    for line in outcome.lines():
        click.echo(line)
    if not outcome.passed:
        raise SystemExit(1)

"""A discovery killed with SIGKILL mid-search resumes from its checkpoint and keeps every earlier candidate."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from sld.cli import main
from tests.agent.agent_data import toy_frame


def _identity(record: dict[str, object]) -> str:
    # A form with constants shared across groups is another candidate than the same text fitted per group.
    return f"{record['expression']} shared={sorted(record.get('shared') or [])}"  # type: ignore[call-overload]


def _lines(path: Path) -> list[dict[str, object]]:
    if not path.exists():
        return []
    records = []
    for line in path.read_text().splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue  # the line the kill cut short
    return records


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs POSIX signals")
def test_sigkill_mid_search_then_resume_keeps_every_candidate(tmp_path: Path) -> None:
    data = tmp_path / "runs.csv"
    toy_frame(n_per_group=150).to_csv(data, index=False)
    run_dir = tmp_path / "run"
    # The kill comes after 4 candidates; the budget only has to outlast them on a loaded machine.
    args = ["discover", "--data", str(data), "--features", "N", "--target", "loss", "--group", "g",
            "--max-params", "4", "--backend", "none", "--budget-s", "24", "--proposer", "offline",
            "--run-dir", str(run_dir)]
    process = subprocess.Popen([sys.executable, "-c", "from sld.cli import main; main()", *args],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    log = run_dir / "candidates.jsonl"
    try:
        deadline = time.monotonic() + 120
        while len(_lines(log)) < 4:
            assert process.poll() is None, process.stderr.read().decode() if process.stderr else ""
            assert time.monotonic() < deadline, "no candidate logged in time"
            time.sleep(0.05)
        os.kill(process.pid, signal.SIGKILL)
    finally:
        process.wait()
        if process.stderr is not None:
            process.stderr.close()
    assert process.returncode == -signal.SIGKILL
    before = {_identity(record) for record in _lines(log)}
    assert not (run_dir / "result.json").exists()

    result = CliRunner().invoke(main, [*args, "--resume", "--json", str(tmp_path / "out.json")])

    assert result.exit_code == 0, result.output + result.stderr
    assert "resuming:" in result.stderr
    after = [_identity(record) for record in _lines(log)]
    assert before <= set(after)
    assert len(after) == len(set(after))  # nothing evaluated twice
    summary = json.loads((run_dir / "result.json").read_text())
    assert summary["candidates_evaluated"] == len(after) >= len(before)
    assert summary["validation_r2"] > 0.99
    assert json.loads((tmp_path / "out.json").read_text())["law"] == summary["law"]

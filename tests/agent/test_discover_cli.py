"""``sld discover`` with the LLM proposer against a scripted OpenAI-compatible server on 127.0.0.1."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from sld.agent import llm as llm_module
from sld.cli import main
from tests.agent.agent_data import JUNK_LAWS, PARSCALE_LAW, TOY_LAW, sldbench_corpus, toy_frame
from tests.agent.openai_server import (
    OpenAIServer,
    RecordedRequest,
    ScriptedReply,
    chat_completion,
    error_reply,
    laws_json,
)


def _toy_args(tmp_path: Path) -> list[str]:
    data = tmp_path / "runs.csv"
    toy_frame().to_csv(data, index=False)
    return ["discover", "--data", str(data), "--features", "N", "--target", "loss", "--group", "g",
            "--max-params", "4", "--backend", "none", "--budget-s", "60"]


def test_parallel_task_with_the_llm_proposer_reaches_the_parscale_law(
    openai_server: OpenAIServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    corpus = sldbench_corpus()
    if corpus is None:
        pytest.skip("SLDBench parallel_scaling_law is not available (SLD_CORPUS or shared/sldbench)")

    def reply(request: RecordedRequest) -> ScriptedReply:
        return chat_completion(laws_json((PARSCALE_LAW, "ParScale: P streams multiply the effective size"),
                                         *JUNK_LAWS, "A * num_params**alpha * parallel_size.real"))

    openai_server.handler = reply
    monkeypatch.setenv("OPENAI_BASE_URL", openai_server.base_url)
    monkeypatch.setenv("OPENAI_API_KEY", "test")
    out = tmp_path / "summary.json"

    result = CliRunner().invoke(main, [
        "discover", "--task", "parallel_scaling_law", "--corpus", str(corpus), "--proposer", "llm",
        "--llm-model", "M", "--max-llm-calls", "3", "--budget-s", "30", "--backend", "none",
        "--json", str(out), "--run-dir", str(tmp_path / "run"),
    ])

    assert result.exit_code == 0, result.output + result.stderr
    summary = json.loads(out.read_text())
    assert summary["test_r2"] > 0.99
    assert set(summary["proposals"]) == {"llm"} and summary["proposals"]["llm"] > 0
    assert summary["llm"]["model"] == "M" and summary["llm"]["calls"] == 3
    assert summary["llm"]["share_of_proposals"] == 1.0
    assert "(LLM share 100%)" in result.output
    assert {request.json["model"] for request in openai_server.chat_requests} == {"M"}
    assert (tmp_path / "run" / "llm_cache.sqlite").is_file()


def test_failing_endpoint_switches_the_run_to_offline(
    openai_server: OpenAIServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    openai_server.handler = lambda request: error_reply(503, "down for maintenance")
    monkeypatch.setenv("OPENAI_BASE_URL", openai_server.base_url)
    monkeypatch.setattr(llm_module, "BACKOFF_BASE_S", 0.001)
    out = tmp_path / "summary.json"

    args = [*_toy_args(tmp_path), "--budget-s", "6", "--json", str(out)]  # the last --budget-s wins
    result = CliRunner().invoke(main, args)  # default proposer with an endpoint: hybrid

    assert result.exit_code == 0, result.output + result.stderr
    assert "LLM endpoint failing; continuing offline" in result.stderr
    summary = json.loads(out.read_text())
    assert summary["proposer"] == "hybrid"
    assert summary["llm"]["status"] == "failing" and summary["llm"]["failures"] == 5  # first try + 4 retries
    assert "llm" not in summary["proposals"] and summary["proposals"]["family"] > 0


def test_offline_replay_reproduces_the_run_without_the_server(
    openai_server: OpenAIServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    openai_server.handler = lambda request: chat_completion(laws_json(TOY_LAW, "N.__class__"))
    monkeypatch.setenv("OPENAI_BASE_URL", openai_server.base_url)
    args = [*_toy_args(tmp_path), "--proposer", "llm", "--max-llm-calls", "2", "--llm-cache",
            str(tmp_path / "replies.sqlite")]
    live = CliRunner().invoke(main, [*args, "--json", str(tmp_path / "live.json")])
    assert live.exit_code == 0, live.output + live.stderr
    openai_server.stop()
    monkeypatch.delenv("OPENAI_BASE_URL")

    replay = CliRunner().invoke(main, [*args, "--offline-replay", "--json", str(tmp_path / "replay.json")])

    assert replay.exit_code == 0, replay.output + replay.stderr
    first, second = (json.loads((tmp_path / name).read_text()) for name in ("live.json", "replay.json"))
    assert second["law"] == first["law"] and second["proposals"] == first["proposals"]
    assert second["llm"]["calls"] == 2 and second["llm"]["cached_calls"] == 2


@pytest.mark.parametrize(("extra", "message"), [
    (["--resume"], "--resume needs --run-dir"),
    (["--offline-replay"], "--offline-replay needs --llm-cache"),
    (["--proposer", "llm"], "--proposer llm needs an LLM endpoint"),
    (["--workers", "0"], "Invalid value for '--workers': 0 is not in the range x>=1"),
    (["--max-candidates", "0"], "Invalid value for '--max-candidates'"),
])
def test_usage_errors(tmp_path: Path, extra: list[str], message: str) -> None:
    result = CliRunner().invoke(main, [*_toy_args(tmp_path), *extra])
    assert result.exit_code == 2
    assert message in result.stderr


def test_bench_refuses_zero_workers_as_a_usage_error() -> None:
    result = CliRunner().invoke(main, ["bench", "--method", "sld", "--workers", "0"])
    assert result.exit_code == 2
    assert "Invalid value for '--workers'" in result.stderr


def test_a_used_run_directory_needs_resume(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "candidates.jsonl").write_text(json.dumps({"target": "loss", "expression": "a", "source": "family"}))
    result = CliRunner().invoke(main, [*_toy_args(tmp_path), "--run-dir", str(run_dir)])
    assert result.exit_code == 1
    assert "already holds a run; pass --resume" in result.stderr

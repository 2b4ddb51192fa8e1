"""The discovery graph end to end: LLM proposals through a real HTTP server, fallback, replay, resume."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from sld.agent.errors import AgentError
from sld.agent.llm import LLMClient
from sld.agent.replay_cache import ReplayCache
from sld.agent.run import run_agent
from sld.agent.rundir import RunDirectory
from sld.agent.state import AgentConfig
from sld.search.engine import EngineConfig
from sld.search.stopping import StopPolicy
from tests.agent.agent_data import JUNK_LAWS, TOY_LAW, toy_rows, toy_task
from tests.agent.openai_server import OpenAIServer, RecordedRequest, ScriptedReply, error_reply, laws_json

MakeLLM = Callable[..., LLMClient]


def config(proposer: str, evolution_rounds: int = 0, patience: int = 3, **settings: object) -> AgentConfig:
    engine = EngineConfig(backend="none", evolution_rounds=evolution_rounds, n_starts=4)
    stop = StopPolicy(budget_s=120, patience=patience)
    return AgentConfig(engine=engine, stop=stop, proposer=proposer, **settings)  # type: ignore[arg-type]


def test_offline_run_finds_the_law_and_reports_proposals(tmp_path: Path) -> None:
    lines: list[str] = []
    discovery = run_agent(toy_task(), toy_rows(), None, config("offline"), run_dir=tmp_path / "run",
                          progress=lines.append)

    assert discovery.validation_r2 > 0.99
    summary = json.loads((tmp_path / "run" / "result.json").read_text())
    assert "llm" not in summary["proposals"]
    assert sum(summary["proposals"].values()) == summary["candidates_evaluated"] > 0
    assert set(summary["proposals"]) <= {"family", "evolution"}
    assert summary["llm"]["calls"] == 0 and summary["proposer"] == "offline"
    assert summary["stopped"]["loss"]
    logged = (tmp_path / "run" / "candidates.jsonl").read_text().splitlines()
    assert len(logged) == summary["candidates_evaluated"]
    assert (tmp_path / "run" / "checkpoints.sqlite").is_file()
    assert any("chose" in line for line in lines)


def test_llm_proposals_are_scored_and_broken_replies_rejected_with_reasons(
    openai_server: OpenAIServer, make_llm: MakeLLM, tmp_path: Path
) -> None:
    openai_server.add_chat(laws_json((TOY_LAW, "power law with a floor"), *JUNK_LAWS))
    openai_server.add_chat("I believe the loss follows L = A / N, a classic result.")  # not JSON
    openai_server.add_chat("x" * 10_000_000)  # a 10 MB reply
    openai_server.add_chat("```json\n" + laws_json("E + A * exp(-alpha * log(N))") + "\n```")  # fenced JSON
    lines: list[str] = []

    discovery = run_agent(toy_task(), toy_rows(), None, config("llm", llm_rounds=4, patience=10),
                          llm=make_llm(), run_dir=tmp_path / "run", progress=lines.append)

    candidates = discovery.outcomes[0].state.candidates
    assert {c.source for c in candidates} == {"llm"}  # --proposer llm: nothing offline
    best = discovery.outcomes[0].best
    assert best.source == "llm" and best.validation_r2 > 0.99
    reasons = {c.expression: c.reason for c in candidates if c.status == "rejected"}
    assert "attribute access" in reasons["__import__('os').system('true')"]
    assert "attribute access" in reasons["N.__class__"]
    assert "lambda" in reasons["lambda: N"]
    assert "too large" in reasons["N**10**100"]
    assert "uses none of the variables" in reasons["A * model_size**beta"]
    assert "more than the 4 allowed" in reasons["a + b*N + c*N**2 + d*N**3 + e*N**4"]
    assert any("not JSON" in reason for reason in reasons.values())
    assert any("exceeds" in reason for reason in reasons.values())  # the 10 MB body, refused
    assert any(c.expression == "E + A * exp(-alpha * log(N))" and c.status == "ok" for c in candidates)
    # The rejections (with reasons) come back in the next prompt.
    second_prompt = openai_server.chat_requests[1].json["messages"][1]["content"]
    assert "N.__class__" in second_prompt and "attribute access is not allowed" in second_prompt
    summary = discovery.summary().model_dump()
    assert summary["proposals"] == {"llm": len(candidates)}
    llm = summary["llm"]
    assert llm["calls"] == 4 and llm["failures"] >= 1 and llm["tokens"]["total"] > 0  # type: ignore[index]
    assert llm["share_of_proposals"] == 1.0  # type: ignore[index]
    calls = (tmp_path / "run" / "llm_calls.jsonl").read_text().splitlines()
    assert len(calls) == 4 and all("prompt_tokens" in json.loads(line) for line in calls)


def test_failing_endpoint_falls_back_to_offline(
    openai_server: OpenAIServer, make_llm: MakeLLM, sleeps: list[float]
) -> None:
    openai_server.handler = lambda request: error_reply(500, "overloaded")
    lines: list[str] = []

    discovery = run_agent(toy_task(), toy_rows(), None, config("llm"), llm=make_llm(max_retries=2),
                          progress=lines.append)

    assert any(line.startswith("LLM endpoint failing; continuing offline") for line in lines)
    assert len(openai_server.chat_requests) == 3 and len(sleeps) == 2  # one call: first try and 2 retries
    summary = discovery.summary().model_dump()
    assert "llm" not in summary["proposals"] and summary["proposals"]["family"] > 0  # type: ignore[operator,index]
    assert summary["llm"]["status"] == "failing" and summary["llm"]["failures"] == 3  # type: ignore[index]
    assert discovery.validation_r2 > 0.99


def test_replay_cache_reproduces_a_run_with_the_server_stopped(
    openai_server: OpenAIServer, make_llm: MakeLLM, tmp_path: Path
) -> None:
    laws = [laws_json("E + A * N**(-alpha)", "A * N**alpha"), laws_json("E + A / (N + B)**alpha", "N.x")]
    openai_server.handler = lambda request: _by_round(request, laws)
    cache = ReplayCache(tmp_path / "replies.sqlite")

    live = run_agent(toy_task(), toy_rows(), None, config("llm", llm_rounds=2), llm=make_llm(cache=cache))
    openai_server.stop()
    replayed = run_agent(toy_task(), toy_rows(), None, config("llm", llm_rounds=2),
                         llm=make_llm(cache=cache, offline_replay=True))

    def trajectory(discovery: object) -> list[tuple[str, str, float]]:
        return [(c.expression, c.status, round(c.validation_r2, 9))
                for c in discovery.outcomes[0].state.candidates]  # type: ignore[attr-defined]

    assert trajectory(replayed) == trajectory(live)
    assert replayed.expression() == live.expression()
    assert replayed.llm_usage["calls"] == 2 and replayed.llm_usage["cached_calls"] == 2
    assert replayed.summary().llm["status"] == "active"


def _by_round(request: RecordedRequest, replies: list[str]) -> ScriptedReply:
    from tests.agent.openai_server import chat_completion

    # The first prompt lists no earlier law; later ones do.
    first = "None evaluated yet." in request.json["messages"][1]["content"]
    return chat_completion(replies[0] if first else replies[1])


def _crash_after(monkeypatch: pytest.MonkeyPatch, count: int, message: str) -> list[str]:
    """Make the run directory raise ``message`` right after logging its ``count``-th candidate; return the log."""
    appended: list[str] = []
    original = RunDirectory.append

    def crashing(self: RunDirectory, target: str, candidate: object) -> None:
        original(self, target, candidate)  # type: ignore[arg-type]
        appended.append(candidate.expression)  # type: ignore[attr-defined]
        if len(appended) == count:
            raise RuntimeError(message)

    monkeypatch.setattr(RunDirectory, "append", crashing)
    return appended


def test_resume_merges_candidates_logged_after_the_last_checkpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_dir = tmp_path / "run"
    original = RunDirectory.append
    appended = _crash_after(monkeypatch, 5, "simulated crash mid-round")
    with pytest.raises(RuntimeError, match="simulated crash"):
        run_agent(toy_task(), toy_rows(), None, config("offline"), run_dir=run_dir)
    monkeypatch.setattr(RunDirectory, "append", original)

    with pytest.raises(AgentError, match="--resume"):
        run_agent(toy_task(), toy_rows(), None, config("offline"), run_dir=run_dir)
    lines: list[str] = []
    discovery = run_agent(toy_task(), toy_rows(), None, config("offline"), run_dir=run_dir, resume=True,
                          progress=lines.append)

    assert any("5 more from candidates.jsonl" in line for line in lines)
    kept = [c.expression for c in discovery.outcomes[0].state.candidates]
    assert set(appended) <= set(kept)
    logged = [json.loads(line)["expression"] for line in (run_dir / "candidates.jsonl").read_text().splitlines()]
    assert len(logged) == len(set(logged)) == len(kept)  # nothing evaluated twice, nothing lost
    assert discovery.validation_r2 > 0.99


def test_a_run_killed_in_its_second_search_resumes_there(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def restarting(restarts: int) -> AgentConfig:
        base = config("offline", evolution_rounds=2)
        return base.model_copy(update={"stop": base.stop.model_copy(update={"restarts": restarts})})

    first_search = len(run_agent(toy_task(), toy_rows(), None, restarting(1)).outcomes[0].state.candidates)
    whole = run_agent(toy_task(), toy_rows(), None, restarting(2))
    assert len(whole.outcomes[0].state.candidates) > first_search + 2
    run_dir = tmp_path / "run"
    original = RunDirectory.append
    appended = _crash_after(monkeypatch, first_search + 2, "simulated crash in the second search")
    with pytest.raises(RuntimeError, match="second search"):
        run_agent(toy_task(), toy_rows(), None, restarting(2), run_dir=run_dir)
    monkeypatch.setattr(RunDirectory, "append", original)
    resumed = run_agent(toy_task(), toy_rows(), None, restarting(2), run_dir=run_dir, resume=True)

    kept = [c.identity for c in resumed.outcomes[0].state.candidates]
    assert set(appended) <= {c.expression for c in resumed.outcomes[0].state.candidates}  # nothing lost
    assert len(kept) == len(set(kept))  # nothing evaluated twice
    assert kept[:first_search] == [c.identity for c in whole.outcomes[0].state.candidates[:first_search]]
    assert len(kept) > first_search + 2  # the second search went on after the resume

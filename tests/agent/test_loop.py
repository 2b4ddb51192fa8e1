"""The one discovery loop: `sld discover` and `sld bench` run it alike; its stop policy and schedule at work."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from sld.agent.run import run_agent
from sld.agent.state import AgentConfig
from sld.cli import main
from sld.search import SplitArrays
from sld.search.engine import EngineConfig
from sld.search.stopping import StopPolicy
from sld.tasks import generic_task
from tests.agent.openai_server import OpenAIServer, RecordedRequest, ScriptedReply, chat_completion, laws_json

FAST = EngineConfig(backend="none", n_starts=2, parents_per_round=2, children_per_parent=3, evolution_rounds=1)
TASK = generic_task(name="power", features=("N",), targets=("loss",), group="g", max_params=6)


def _rows(offsets: tuple[float, ...] = (1.7,), noise: float = 0.0, seed: int = 0) -> SplitArrays:
    rng = np.random.default_rng(seed)
    N = np.tile(np.geomspace(1e6, 1e10, 25 if len(offsets) == 1 else 8), len(offsets))
    groups = np.repeat([f"g{k}" for k in range(len(offsets))], N.size // len(offsets))
    offset = np.repeat(offsets, N.size // len(offsets))
    y = offset + 400 * N**-0.3 + rng.normal(0, noise, N.size)
    return SplitArrays(N[:, None], y[:, None], groups)


def _config(engine: EngineConfig = FAST, **stop: object) -> AgentConfig:
    return AgentConfig(engine=engine, stop=StopPolicy(**{"budget_s": 300.0, **stop}))  # type: ignore[arg-type]


def test_the_loop_recovers_a_power_law_offline() -> None:
    discovery = run_agent(TASK, _rows(), None, _config())
    assert discovery.validation_r2 > 0.999
    assert discovery.proposals()["family"] > 10 and discovery.proposals()["evolution"] > 0


def test_same_seed_same_run() -> None:
    config = _config(FAST.model_copy(update={"seed": 3}))
    first, second = (run_agent(TASK, _rows(noise=0.01), None, config) for _ in range(2))
    assert first.expression() == second.expression()
    assert [c.expression for c in first.outcomes[0].state.candidates] == [
        c.expression for c in second.outcomes[0].state.candidates]


def test_the_budget_stops_the_loop() -> None:
    # Patience and rounds far beyond what 1 s allows on any machine: only the budget can stop this search (with
    # 10 rounds and the default patience, a fast fitter converged first).
    started = time.monotonic()
    discovery = run_agent(TASK, _rows(), None, _config(FAST.model_copy(update={"evolution_rounds": 100}),
                                                       budget_s=1.0, patience=1000))
    assert time.monotonic() - started < 15
    assert discovery.stopped["loss"] == "time budget spent"


def test_the_candidate_cap_ends_the_loop_whatever_the_machine_speed() -> None:
    config = _config(FAST.model_copy(update={"evolution_rounds": 3}), max_candidates=7)
    first = run_agent(TASK, _rows(), None, config)
    assert first.candidates_evaluated() == 7 and first.stopped["loss"].startswith("candidate cap reached")
    again = run_agent(TASK, _rows(), None, config)
    assert [c.expression for c in again.outcomes[0].state.candidates] == [
        c.expression for c in first.outcomes[0].state.candidates]


def test_restarts_are_independent_searches_and_one_choice_covers_them() -> None:
    engine = FAST.model_copy(update={"evolution_rounds": 2})
    single = run_agent(TASK, _rows(noise=0.01), None, _config(engine, restarts=1))
    three = run_agent(TASK, _rows(noise=0.01), None, _config(engine, restarts=3))
    first, pooled = single.outcomes[0].state.candidates, three.outcomes[0].state.candidates
    # The first search is the single-search run; the next two add their own evolution (other seeds, other parents).
    assert [c.expression for c in pooled[: len(first)]] == [c.expression for c in first]
    later = pooled[len(first):]
    assert later and {c.source for c in later} <= {"evolution", "sharing", "family"}
    assert three.outcomes[0].best.objective <= single.outcomes[0].best.objective
    # The candidate cap ends every search: a capped run never restarts.
    capped = run_agent(TASK, _rows(noise=0.01), None, _config(engine, restarts=3, max_candidates=len(first) - 1))
    assert capped.candidates_evaluated() == len(first) - 1


def test_uncapped_searches_end_when_search_patience_searches_find_no_better_law() -> None:
    engine = FAST.model_copy(update={"evolution_rounds": 2})
    discovery = run_agent(TASK, _rows(noise=0.01), None, _config(engine, search_patience=1))
    state = discovery.outcomes[0].state
    assert state.restart >= 1  # at least one search after the first
    assert discovery.stopped["loss"].startswith("converged: 1 searches in a row found no better law")
    # The last search's best law is not better, by the margin, than the best of every search before it.
    earlier = [c.objective for c in state.candidates[: state.restart_start] if c.status == "ok"]
    last = [c.objective for c in state.candidates[state.restart_start:] if c.status == "ok"]
    assert not StopPolicy.found_better(min(last, default=None), min(earlier))
    # A longer patience runs more searches, and the first ones are the same.
    longer = run_agent(TASK, _rows(noise=0.01), None, _config(engine, search_patience=2)).outcomes[0].state
    assert longer.restart > state.restart
    assert [c.expression for c in longer.candidates[: len(state.candidates)]] == [
        c.expression for c in state.candidates]


def test_each_restart_gets_an_even_share_of_the_time_left() -> None:
    policy = StopPolicy(restarts=3)
    assert policy.restart_deadline(start=0.0, deadline=90.0, restart=0) == 30.0
    assert policy.restart_deadline(start=40.0, deadline=90.0, restart=1) == 65.0
    assert policy.restart_deadline(start=70.0, deadline=90.0, restart=2) == 90.0
    assert policy.restarts_after(restart=0, now=10.0, deadline=90.0, candidates=40, rounds=3)
    assert policy.restarts_after(restart=1, now=65.0, deadline=90.0, candidates=80, rounds=6)
    assert not policy.restarts_after(restart=2, now=80.0, deadline=90.0, candidates=90, rounds=8)  # the last search
    assert not policy.restarts_after(restart=0, now=91.0, deadline=90.0, candidates=40, rounds=3)  # out of time
    capped = StopPolicy(restarts=3, max_candidates=7, max_rounds=5)
    assert not capped.restarts_after(restart=0, now=1.0, deadline=90.0, candidates=7, rounds=2)
    assert not capped.restarts_after(restart=0, now=1.0, deadline=90.0, candidates=3, rounds=5)
    assert capped.restarts_after(restart=0, now=1.0, deadline=90.0, candidates=3, rounds=2)


def test_evolution_searches_which_constants_groups_share() -> None:
    rows = _rows(offsets=(1.5, 2.0, 2.5), noise=0.002)
    discovery = run_agent(TASK, rows, None, _config(FAST.model_copy(update={"evolution_rounds": 2}), patience=5))
    shared = [c for c in discovery.outcomes[0].state.candidates if c.shared]
    assert shared and all(c.identity.endswith("]") and c.key != "" for c in shared)


def test_a_missing_backend_fails_before_any_round(monkeypatch: pytest.MonkeyPatch) -> None:
    from sld.search.backends import pysr

    monkeypatch.setattr(pysr, "pysr_installed", lambda: False)  # this machine has no PySR either way
    lines: list[str] = []
    with pytest.raises(Exception, match="PySR needs Julia"):
        run_agent(TASK, _rows(), None, _config(FAST.model_copy(update={"backend": "pysr"})), progress=lines.append)
    assert lines == []  # not even the first target's profile


def _cli(*args: str) -> dict[str, object]:
    result = CliRunner().invoke(main, list(args))
    assert result.exit_code == 0, result.output + (result.stderr or "")
    return result


def test_discover_and_bench_run_the_same_loop(tmp_path: Path) -> None:
    flags = ["--backend", "none", "--max-candidates", "8", "--seed", "0", "--quiet"]
    _cli("discover", "--task", "proxy_scaling_law", *flags, "--json", str(tmp_path / "discover.json"))
    _cli("bench", "--method", "sld", "--tasks", "proxy_scaling_law", *flags, "--json", str(tmp_path / "bench.json"))
    discovered = json.loads((tmp_path / "discover.json").read_text())
    benched = json.loads((tmp_path / "bench.json").read_text())["tasks"]["proxy_scaling_law"]
    assert benched["law"] == discovered["law"]["expression"]
    assert benched["r2"] == discovered["test_r2"] and benched["validation_r2"] == discovered["validation_r2"]
    assert benched["candidates_evaluated"] == discovered["candidates_evaluated"] == 8
    assert benched["proposals"] == discovered["proposals"] == {"family": 8}
    assert benched["stopped"] == discovered["stopped"]


PROXY_LAW = "E + A * (params / 1e6)**(-alpha) + B * (tokens / 1e8)**(-beta)"


def test_bench_evaluates_llm_proposals_and_replays_them_offline(openai_server: OpenAIServer,
                                                                monkeypatch: pytest.MonkeyPatch,
                                                                tmp_path: Path) -> None:
    def reply(request: RecordedRequest) -> ScriptedReply:
        return chat_completion(laws_json((PROXY_LAW, "Chinchilla's additive form"), "A * params**alpha.real"))

    openai_server.handler = reply
    cache = tmp_path / "replies.sqlite"
    flags = ["bench", "--method", "sld", "--tasks", "proxy_scaling_law", "--backend", "none", "--seed", "0",
             "--max-candidates", "20", "--proposer", "hybrid", "--llm-model", "M", "--max-llm-calls", "2",
             "--llm-cache", str(cache), "--quiet"]
    monkeypatch.setenv("OPENAI_BASE_URL", openai_server.base_url)
    monkeypatch.setenv("OPENAI_API_KEY", "test")
    _cli(*flags, "--json", str(tmp_path / "live.json"))
    live = json.loads((tmp_path / "live.json").read_text())["tasks"]["proxy_scaling_law"]
    assert live["proposals"]["llm"] > 0 and live["proposals"]["family"] > 0
    assert live["llm"]["model"] == "M" and live["llm"]["calls"] >= 1
    asked = len(openai_server.requests)

    monkeypatch.delenv("OPENAI_BASE_URL")
    monkeypatch.delenv("OPENAI_API_KEY")
    _cli(*flags, "--offline-replay", "--json", str(tmp_path / "replayed.json"))
    replayed = json.loads((tmp_path / "replayed.json").read_text())["tasks"]["proxy_scaling_law"]
    assert len(openai_server.requests) == asked  # the replay never reached the endpoint
    assert replayed["law"] == live["law"] and replayed["proposals"] == live["proposals"]
    assert replayed["r2"] == live["r2"]

"""Live progress: one line per round off a terminal, bars on one, nothing with --quiet."""

from __future__ import annotations

import io

from sld.agent.progress import PlainProgress, Progress, RichProgress, RoundStatus, make_progress
from sld.agent.run import run_agent
from sld.agent.state import AgentConfig
from sld.search.candidates import Candidate
from sld.search.engine import EngineConfig
from sld.search.stopping import StopPolicy
from tests.agent.agent_data import toy_rows, toy_task

STATUS = RoundStatus("loss", 2, spent_s=12.0, budget_s=60.0, candidates=30, best_law="E + A * N**(-alpha)",
                     best_r2=0.9876)


class Terminal(io.StringIO):
    """A text stream that says it is a terminal."""

    def isatty(self) -> bool:
        return True


def test_off_a_terminal_each_round_is_one_line_and_candidates_are_not_listed() -> None:
    stream = io.StringIO()
    progress = make_progress(quiet=False, stream=stream)
    assert isinstance(progress, PlainProgress)
    progress.candidate("loss", Candidate("E + A * N**(-alpha)", source="family", status="ok"))
    progress.round_done(STATUS)
    assert stream.getvalue() == ("loss: round 2 done: 30 candidates, 12 s of 60 s; best val R^2 0.9876 "
                                 "E + A * N**(-alpha)\n")


def test_on_a_terminal_a_bar_shows_the_budget_candidates_and_best_law() -> None:
    stream = Terminal()
    progress = make_progress(quiet=False, stream=stream)
    assert isinstance(progress, RichProgress)
    progress.note("loss: 40 training rows")
    progress.round_done(STATUS)
    progress.close()
    shown = stream.getvalue()
    assert "loss: 40 training rows" in shown and "30 candidates" in shown and "0.9876" in shown


def test_quiet_says_nothing() -> None:
    assert type(make_progress(quiet=True, stream=Terminal())) is Progress


def test_a_run_reports_one_status_per_round() -> None:
    statuses: list[RoundStatus] = []

    class Recorder(Progress):
        def round_done(self, status: RoundStatus) -> None:
            statuses.append(status)

    config = AgentConfig(engine=EngineConfig(backend="none", evolution_rounds=1, n_starts=2),
                         stop=StopPolicy(budget_s=120, max_candidates=30))
    discovery = run_agent(toy_task(), toy_rows(), None, config, progress=Recorder())
    assert [s.round for s in statuses] == list(range(len(statuses))) and len(statuses) >= 2
    assert statuses[-1].candidates == discovery.candidates_evaluated()
    assert statuses[-1].best_r2 is not None and statuses[-1].best_r2 > 0.99

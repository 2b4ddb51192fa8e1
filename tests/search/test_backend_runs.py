import multiprocessing
import time

import numpy as np

from sld.search.backend_runs import BackendRuns
from sld.search.candidates import Problem
from sld.search.engine import EngineConfig
from sld.search.proposals import backend_proposals

N = np.geomspace(1e6, 1e9, 60)
PROBLEM = Problem(("N",), N[:, None], 2 + 3 * N**-0.5, np.full(N.size, "g"), np.log(N), max_params=3, target="loss")
OPERON = EngineConfig(backend="operon", backend_time_s=20, seed=3)


def test_a_search_started_ahead_proposes_what_the_search_in_its_round_proposes():
    in_round = backend_proposals(PROBLEM, OPERON)
    with BackendRuns() as runs:
        runs.start(PROBLEM, OPERON)
        runs.start(PROBLEM, OPERON)  # started once per target and seed
        ahead = runs.take(PROBLEM, OPERON)
        assert ahead and ahead == in_round
        # Taken once: asking again searches in the round.
        assert runs.take(PROBLEM, OPERON) == in_round


def test_another_seed_is_another_search_and_a_search_not_started_runs_in_its_round():
    other = OPERON.model_copy(update={"seed": 4})
    with BackendRuns() as runs:
        runs.start(PROBLEM, OPERON)
        assert runs.take(PROBLEM, other) == backend_proposals(PROBLEM, other)
        assert runs.take(PROBLEM, OPERON) == backend_proposals(PROBLEM, OPERON)


def test_closing_stops_the_process_of_a_search_that_no_round_took():
    before = set(multiprocessing.active_children())
    runs = BackendRuns()
    runs.start(PROBLEM, OPERON)
    assert set(multiprocessing.active_children()) - before  # the search runs in a process of its own
    started = time.monotonic()
    runs.close()
    assert time.monotonic() - started < 5
    assert not set(multiprocessing.active_children()) - before
    assert runs.take(PROBLEM, EngineConfig(backend="none")) == []


def test_taking_a_search_starts_the_next_independent_search_and_another_target_drops_it():
    from dataclasses import replace

    from sld.search.engine import SearchState
    from sld.search.profile import profile_data
    from sld.search.proposals import round_proposals

    profile = profile_data(PROBLEM.X, PROBLEM.y, PROBLEM.variables, PROBLEM.groups)
    with BackendRuns() as runs:
        first = round_proposals(PROBLEM, SearchState(round=1), OPERON, profile, runs)
        assert first == backend_proposals(PROBLEM, OPERON)
        # The second search begins at round 1 with its own seed; its backend search is already running.
        second = OPERON.restarted(1)
        assert runs.started == {("loss", second.seed)}
        assert round_proposals(PROBLEM, SearchState(round=1, restart=1), OPERON, profile, runs) == (
            backend_proposals(PROBLEM, second))
        assert runs.started == {("loss", OPERON.restarted(2).seed)}
        # The target ended before its third search: the next target's search does not queue behind it.
        runs.start(replace(PROBLEM, target="accuracy"), OPERON)
        assert runs.started == {("accuracy", OPERON.seed)}

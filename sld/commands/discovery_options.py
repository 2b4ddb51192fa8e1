"""The options of a discovery run, shared by ``sld discover`` and ``sld bench --method sld``.

Both commands build the same :class:`~sld.agent.state.AgentConfig` (engine settings, stop policy, proposer) and
the same LLM client from these options, so the benchmark measures what a user's run does.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar, cast

import click

from sld.commands.options import EXECUTOR_OPTIONS
from sld.search.stopping import DEFAULT_RESTARTS, DEFAULT_SEARCH_PATIENCE

if TYPE_CHECKING:
    from sld.agent.llm import LLMClient
    from sld.agent.progress import Progress
    from sld.agent.state import AgentConfig

F = TypeVar("F", bound=Callable[..., object])
Backend = Literal["operon", "pysr", "none"]
ProposerKind = Literal["offline", "llm", "hybrid"]
Executor = Literal["local", "ray"]


@dataclass(frozen=True)
class DiscoveryOptions:
    """The discovery flags of one command line (see :func:`discovery_options`)."""

    budget_s: float
    workers: int
    seed: int
    backend: Backend
    max_candidates: int | None
    restarts: int | None
    search_patience: int
    proposer: ProposerKind | None
    llm_model: str | None
    max_llm_calls: int | None
    max_tokens: int | None
    llm_cache: str | None
    offline_replay: bool
    quiet: bool
    executor: Executor
    ray_address: str

    def cache_path(self, run_dir: str | None) -> str | None:
        """Return the LLM replay cache: ``--llm-cache``, else ``RUN_DIR/llm_cache.sqlite`` with a run folder."""
        return self.llm_cache or (str(Path(run_dir) / "llm_cache.sqlite") if run_dir else None)

    def proposer_kind(self) -> ProposerKind:
        """Return the proposer: ``--proposer``, else hybrid with an LLM endpoint or a replayed cache, else offline.

        Raises
        ------
        click.UsageError
            When an LLM proposer is asked for without an endpoint or a replayed cache.
        """
        from sld.agent.llm import endpoint_configured

        kind = self.proposer or ("hybrid" if endpoint_configured() or self.offline_replay else "offline")
        if kind != "offline" and not (endpoint_configured() or self.offline_replay):
            raise click.UsageError(f"--proposer {kind} needs an LLM endpoint: set OPENAI_BASE_URL (and "
                                   "OPENAI_API_KEY), or replay a cache with --llm-cache PATH --offline-replay.")
        return kind

    def agent_config(self) -> AgentConfig:
        """Return the run's settings: engine, stop policy and proposer."""
        from sld.agent.state import AgentConfig
        from sld.search.engine import EngineConfig
        from sld.search.stopping import StopPolicy

        engine = EngineConfig(workers=self.workers, seed=self.seed, backend=self.backend, executor=self.executor,
                              ray_address=self.ray_address)
        stop = StopPolicy(budget_s=self.budget_s, max_candidates=self.max_candidates, restarts=self.restarts,
                          search_patience=self.search_patience)
        return AgentConfig(engine=engine, stop=stop, proposer=self.proposer_kind())

    def open_llm(self, stack: ExitStack, run_dir: str | None) -> LLMClient | None:
        """Open the LLM client of an ``llm`` or ``hybrid`` run (closed with ``stack``); None offline.

        Raises
        ------
        click.UsageError
            When ``--offline-replay`` has no cache to replay.
        """
        from sld.agent.llm import LLMClient, llm_config_from_env
        from sld.agent.replay_cache import ReplayCache

        cache = self.cache_path(run_dir)
        if self.offline_replay and cache is None:
            raise click.UsageError("--offline-replay needs --llm-cache PATH (or --run-dir holding llm_cache.sqlite).")
        if self.proposer_kind() == "offline":
            return None
        config = llm_config_from_env(self.llm_model, max_calls=self.max_llm_calls, max_tokens=self.max_tokens)
        return stack.enter_context(LLMClient(config, cache=ReplayCache(cache) if cache else None,
                                             offline_replay=self.offline_replay))

    def progress(self) -> Progress:
        """Return the run's progress on stderr (nothing with ``--quiet``)."""
        from sld.agent.progress import make_progress

        return make_progress(quiet=self.quiet)


_OPTIONS = (
    click.option("--budget-s", default=600.0, show_default=True, type=click.FloatRange(min=0, min_open=True),
                 help="Search time budget per task, seconds, split across its targets (hard with --workers 2+; "
                 "with 1, the candidate being fitted when it runs out still finishes)."),
    click.option("--workers", default=1, show_default=True, type=click.IntRange(min=1),
                 help="Processes fitting candidates in parallel."),
    click.option("--seed", default=0, show_default=True, help="Seed of every random choice."),
    click.option("--backend", type=click.Choice(["operon", "pysr", "none"]), default="operon", show_default=True,
                 help="Symbolic-regression backend."),
    click.option("--max-candidates", type=click.IntRange(min=1),
                 help="Stop each target's search after this many candidates (the same result on any machine)."),
    click.option("--restarts", default=DEFAULT_RESTARTS, type=click.IntRange(min=1),
                 help="Independent searches per target at most (own seed and evolution; with a number, each gets an "
                 "even share of the time); the law is chosen once over all of them. [default: until "
                 "--search-patience searches in a row find no better law, or the budget is spent]"),
    click.option("--search-patience", default=DEFAULT_SEARCH_PATIENCE, show_default=True,
                 type=click.IntRange(min=1),
                 help="End a target after this many independent searches in a row found no better law."),
    click.option("--proposer", type=click.Choice(["offline", "llm", "hybrid"]), default=None,
                 help="Who proposes law forms. [default: hybrid when an LLM endpoint is configured "
                 "(OPENAI_BASE_URL or OPENAI_API_KEY) or --offline-replay is given, else offline]"),
    click.option("--llm-model", help="Model name at the endpoint (default: $SLD_LLM_MODEL, then gpt-4o-mini)."),
    click.option("--max-llm-calls", type=click.IntRange(min=1), default=None,
                 help="LLM requests over the run at most (replayed ones included). [default: 50]"),
    click.option("--max-tokens", type=click.IntRange(min=1), default=None,
                 help="LLM prompt plus completion tokens over the run at most. [default: 1000000]"),
    click.option("--llm-cache", type=click.Path(dir_okay=False),
                 help="SQLite file of LLM replies, read before and written after each request "
                 "(default: RUN_DIR/llm_cache.sqlite with --run-dir)."),
    click.option("--offline-replay", is_flag=True,
                 help="Answer LLM requests from --llm-cache only; never contact the endpoint."),
    click.option("--quiet", is_flag=True, help="No progress on stderr."),
    *EXECUTOR_OPTIONS,
)
_NAMES = tuple(DiscoveryOptions.__dataclass_fields__)


def discovery_options(function: F) -> F:
    """Add the discovery flags; the command receives them as one ``discovery: DiscoveryOptions`` argument."""

    @functools.wraps(function)
    def command(**kwargs: Any) -> object:
        options = DiscoveryOptions(**{name: kwargs.pop(name) for name in _NAMES})
        return function(discovery=options, **kwargs)

    wrapped: Callable[..., object] = command
    for option in reversed(_OPTIONS):
        wrapped = option(wrapped)
    return cast("F", wrapped)

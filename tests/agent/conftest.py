"""Fixtures of the agent tests: a scripted OpenAI-compatible server and LLM clients bound to it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import openai
import pytest

from sld.agent.llm import LLMClient, LLMConfig
from sld.agent.replay_cache import ReplayCache
from tests.agent.openai_server import OpenAIServer


@pytest.fixture(autouse=True)
def _no_llm_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Hide any real endpoint settings, so no test can reach a real LLM."""
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "SLD_LLM_MODEL", "OPENAI_ORG_ID", "OPENAI_PROJECT_ID"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def openai_server() -> Iterator[OpenAIServer]:
    """A chat-completions server on 127.0.0.1 with an empty reply queue; stopped after the test."""
    with OpenAIServer() as server:
        yield server


@pytest.fixture
def openai_client(openai_server: OpenAIServer) -> Iterator[openai.OpenAI]:
    """The real ``openai`` client pointed at ``openai_server``; closed after the test."""
    client = openai.OpenAI(base_url=openai_server.base_url, api_key="test", max_retries=0, timeout=5.0)
    yield client
    client.close()


@pytest.fixture
def sleeps() -> list[float]:
    """Backoff delays an LLMClient asked for (it is given ``sleeps.append`` instead of time.sleep)."""
    return []


@pytest.fixture
def replay_cache(tmp_path: Path) -> ReplayCache:
    """An empty replay cache in the test's temporary folder."""
    return ReplayCache(tmp_path / "replies.sqlite")


@pytest.fixture
def make_llm(
    openai_server: OpenAIServer, openai_client: openai.OpenAI, sleeps: list[float]
) -> Callable[..., LLMClient]:
    """Build an LLMClient on the test server: ``make_llm(cache=..., max_calls=...)``; no real sleeping."""

    def make(*, cache: ReplayCache | None = None, offline_replay: bool = False, **config: Any) -> LLMClient:
        settings: dict[str, Any] = {
            "base_url": openai_server.base_url,
            "api_key": "test",
            "model": "test-model",
            "timeout_s": 5.0,
            "max_retries": 2,
        }
        settings.update(config)
        return LLMClient(
            LLMConfig(**settings),
            client=openai_client,
            cache=cache,
            offline_replay=offline_replay,
            sleep=sleeps.append,
        )

    return make

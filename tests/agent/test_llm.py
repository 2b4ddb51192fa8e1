"""The LLM client against a real local HTTP server, through the real openai client."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import openai
import pydantic
import pytest

from sld.agent.errors import LLMBudgetExhausted, LLMResponseError, LLMUnavailable
from sld.agent.llm import (
    LAWS_SCHEMA,
    LLMClient,
    LLMConfig,
    endpoint_configured,
    llm_config_from_env,
)
from sld.agent.replay_cache import ReplayCache
from sld.agent.replies import parse_reply
from tests.agent.openai_server import OpenAIServer, ScriptedReply, error_reply, laws_json

MESSAGES = [
    {"role": "system", "content": "You discover scaling laws."},
    {"role": "user", "content": "Propose laws for loss(N)."},
]
MakeLLM = Callable[..., LLMClient]


def test_request_asks_for_structured_output(openai_server: OpenAIServer, make_llm: MakeLLM) -> None:
    openai_server.add_chat(laws_json(("E + A / N**alpha", "Kaplan-style power law")))
    llm = make_llm(temperature=0.3, seed=7)

    reply = llm.complete(MESSAGES)

    assert not reply.cached
    assert parse_reply(reply.content)[0][0].expression == "E + A / N**alpha"
    (request,) = openai_server.chat_requests
    body = request.json
    assert body["model"] == "test-model"
    assert body["messages"] == MESSAGES
    assert body["temperature"] == 0.3
    assert body["seed"] == 7
    assert body["response_format"]["type"] == "json_schema"
    assert body["response_format"]["json_schema"]["schema"] == LAWS_SCHEMA
    assert request.headers["authorization"] == "Bearer test"


def test_seed_none_is_not_sent(openai_server: OpenAIServer, make_llm: MakeLLM) -> None:
    openai_server.add_chat(laws_json("a * N**b"))
    make_llm(seed=None).complete(MESSAGES)
    assert "seed" not in openai_server.chat_requests[0].json


def test_falls_back_to_json_object_when_schema_is_rejected(
    openai_server: OpenAIServer, make_llm: MakeLLM, sleeps: list[float]
) -> None:
    openai_server.add_error(400, "response_format json_schema is not supported", param="response_format")
    openai_server.add_chat(laws_json("a * N**b"))
    openai_server.add_chat(laws_json("a * N**b + c"))
    llm = make_llm()

    assert "a * N**b" in llm.complete(MESSAGES).content
    llm.complete(MESSAGES)

    formats = [r.json.get("response_format", {}).get("type") for r in openai_server.chat_requests]
    # The downgrade sticks for the rest of the run: no second refusal.
    assert formats == ["json_schema", "json_object", "json_object"]
    assert llm.response_format == "json_object"
    assert llm.usage.failures == 0
    assert sleeps == []


def test_falls_back_to_no_response_format(openai_server: OpenAIServer, make_llm: MakeLLM) -> None:
    openai_server.add_error(400, "Unknown parameter: response_format.json_schema")
    openai_server.add_error(400, "'response_format' of type 'json_object' is not supported with this model")
    openai_server.add_chat(laws_json("a * N**b"))
    llm = make_llm()

    llm.complete(MESSAGES)

    assert "response_format" not in openai_server.chat_requests[-1].json
    assert len(openai_server.chat_requests) == 3
    assert llm.response_format == "none"


def test_unrelated_bad_request_is_not_retried(
    openai_server: OpenAIServer, make_llm: MakeLLM, sleeps: list[float]
) -> None:
    openai_server.add_error(400, "This model's maximum context length is 8192 tokens")
    llm = make_llm()

    with pytest.raises(LLMResponseError, match="maximum context length"):
        llm.complete(MESSAGES)

    assert len(openai_server.chat_requests) == 1
    assert sleeps == []
    assert llm.usage.failures == 1
    assert llm.response_format == "json_schema"


def test_retries_on_500_then_raises_unavailable(
    openai_server: OpenAIServer, make_llm: MakeLLM, sleeps: list[float]
) -> None:
    openai_server.handler = lambda request: error_reply(500, "the server is on fire")
    llm = make_llm(max_retries=3)

    with pytest.raises(LLMUnavailable, match=r"unavailable after 4 attempts.*on fire"):
        llm.complete(MESSAGES)

    assert len(openai_server.chat_requests) == 4
    assert sleeps == [0.5, 1.0, 2.0]  # exponential backoff
    assert llm.usage.failures == 4
    assert llm.usage.calls == 0
    assert llm.usage_log[-1]["error"].startswith("LLMUnavailable")
    assert llm.usage_log[-1]["attempts"] == 4


def test_retries_recover_and_honour_retry_after(
    openai_server: OpenAIServer, make_llm: MakeLLM, sleeps: list[float]
) -> None:
    openai_server.add_error(503, "overloaded")
    openai_server.add_error(429, "rate limited", headers=[("Retry-After", "3")])
    openai_server.add_chat(laws_json("a * N**b"))
    llm = make_llm(max_retries=2)

    reply = llm.complete(MESSAGES)

    assert "a * N**b" in reply.content
    assert sleeps == [0.5, 3.0]
    assert llm.usage.failures == 2
    assert llm.usage.calls == 1
    assert llm.usage_log[-1]["attempts"] == 3


def test_connection_refused_is_unavailable(
    openai_server: OpenAIServer, make_llm: MakeLLM, sleeps: list[float]
) -> None:
    llm = make_llm(max_retries=1)
    openai_server.stop()

    with pytest.raises(LLMUnavailable, match="APIConnectionError"):
        llm.complete(MESSAGES)
    assert sleeps == [0.5]


def test_slow_reply_times_out(openai_server: OpenAIServer, make_llm: MakeLLM) -> None:
    # Answers after 5 s, far beyond the timeout.
    openai_server.handler = lambda request: ScriptedReply(body=b"{}", delay_s=5.0)
    llm = make_llm(timeout_s=0.2, max_retries=1)
    start = time.monotonic()

    with pytest.raises(LLMUnavailable, match="timed out"):
        llm.complete(MESSAGES)

    assert time.monotonic() - start < 3.0
    assert len(openai_server.chat_requests) == 2


def test_dripping_reply_hits_the_total_deadline(openai_server: OpenAIServer, make_llm: MakeLLM) -> None:
    # Each 64 kB chunk arrives well within the read timeout, but the whole body would take ~1.8 s.
    # Control characters are escaped to 6 bytes each: 100k characters make a 600 kB body (10 chunks).
    openai_server.add_chat("\x01" * 100_000, chunk_delay_s=0.2)
    llm = make_llm(timeout_s=0.6, max_retries=0)

    with pytest.raises(LLMUnavailable, match="timed out while reading"):
        llm.complete(MESSAGES)


def test_huge_reply_is_refused_without_reading_it_all(openai_server: OpenAIServer, make_llm: MakeLLM) -> None:
    openai_server.add_chat("1" * 10_000_000)  # a valid 10 MB chat completion
    llm = make_llm()

    start = time.monotonic()
    with pytest.raises(LLMResponseError, match=r"exceeds \d+ bytes"):
        llm.complete(MESSAGES)

    assert time.monotonic() - start < 2.0
    assert len(openai_server.chat_requests) == 1  # not retried
    # The refused reply still counts against the budget, with estimated tokens.
    assert llm.usage.calls == 1
    assert 0 < llm.usage.completion_tokens < 1_000_000
    assert llm.usage_log[-1]["estimated"]


def test_reply_content_over_200_kb_is_refused(openai_server: OpenAIServer, make_llm: MakeLLM) -> None:
    openai_server.add_chat("1" * 300_000)
    with pytest.raises(LLMResponseError, match="300000 characters"):
        make_llm().complete(MESSAGES)


@pytest.mark.parametrize(
    ("body", "match"),
    [
        ("<html>Bad gateway</html>", "not JSON"),
        ('{"object": "chat.completion"}', "not a chat completion"),
        ('{"choices": []}', "not a chat completion"),
        ('{"choices": [{"message": {"role": "assistant", "content": null}}]}', "no text content"),
        (
            '{"choices": [{"message": {"role": "assistant", "content": null, "refusal": "I cannot"}}]}',
            "refusal: I cannot",
        ),
        (b"\xff\xfe not utf-8", "not JSON"),
    ],
)
def test_malformed_bodies_are_response_errors(
    openai_server: OpenAIServer, make_llm: MakeLLM, body: str | bytes, match: str
) -> None:
    openai_server.add_raw(body)
    llm = make_llm()

    with pytest.raises(LLMResponseError, match=match):
        llm.complete(MESSAGES)
    assert llm.usage.failures == 1


@pytest.mark.parametrize(
    ("status", "match"),
    [(401, "OPENAI_API_KEY"), (403, "OPENAI_API_KEY"), (404, "no model 'test-model'")],
)
def test_credential_and_model_errors_are_unavailable(
    openai_server: OpenAIServer, make_llm: MakeLLM, sleeps: list[float], status: int, match: str
) -> None:
    openai_server.add_error(status, "nope")
    with pytest.raises(LLMUnavailable, match=match):
        make_llm().complete(MESSAGES)
    assert sleeps == []


def test_token_accounting(openai_server: OpenAIServer, make_llm: MakeLLM) -> None:
    openai_server.add_chat(laws_json("a * N**b"), usage=(100, 20))
    openai_server.add_chat(laws_json("a * N**b + c"), usage=(120, 30))
    openai_server.add_chat("x" * 41, usage=None)  # no usage reported: estimated as characters / 4
    llm = make_llm()

    replies = [llm.complete(MESSAGES) for _ in range(3)]

    assert [(r.prompt_tokens, r.completion_tokens) for r in replies[:2]] == [(100, 20), (120, 30)]
    prompt_chars = sum(len(m["content"]) for m in MESSAGES)
    assert replies[2].prompt_tokens == -(-prompt_chars // 4)
    assert replies[2].completion_tokens == 11
    usage = llm.usage
    assert usage.calls == 3
    assert usage.prompt_tokens == 220 + replies[2].prompt_tokens
    assert usage.completion_tokens == 61
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    assert usage.failures == 0
    log = llm.usage_log
    assert [entry["estimated"] for entry in log] == [False, False, True]
    assert {"time", "model", "prompt_tokens", "completion_tokens", "cached", "latency_s"} <= set(log[0])
    assert log[0]["model"] == "test-model"
    assert log[0]["latency_s"] >= 0
    json.dumps(log)  # goes straight into the run log


def test_budget_of_calls(openai_server: OpenAIServer, make_llm: MakeLLM) -> None:
    openai_server.add_chat(laws_json("a * N**b"))
    openai_server.add_chat(laws_json("a * N**b + c"))
    llm = make_llm(max_calls=2)

    llm.complete(MESSAGES)
    assert not llm.budget_exhausted
    llm.complete(MESSAGES)
    assert llm.budget_exhausted

    with pytest.raises(LLMBudgetExhausted, match="2/2 calls"):
        llm.complete(MESSAGES)
    assert len(openai_server.chat_requests) == 2


def test_budget_of_tokens(openai_server: OpenAIServer, make_llm: MakeLLM) -> None:
    openai_server.add_chat(laws_json("a * N**b"), usage=(60, 30))
    openai_server.add_chat(laws_json("a * N**b + c"), usage=(60, 30))
    llm = make_llm(max_tokens=150)

    llm.complete(MESSAGES)
    assert not llm.budget_exhausted
    llm.complete(MESSAGES)
    assert llm.budget_exhausted
    with pytest.raises(LLMBudgetExhausted, match="180/150 tokens"):
        llm.complete(MESSAGES)


def test_replay_cache_reproduces_reply_with_server_stopped(
    openai_server: OpenAIServer, make_llm: MakeLLM, replay_cache: ReplayCache
) -> None:
    openai_server.add_chat(laws_json(("E + A / N**alpha", "power law")), usage=(50, 25))
    live = make_llm(cache=replay_cache).complete(MESSAGES)
    openai_server.stop()

    # Same cache, no endpoint: answered from the cache, with the original token counts.
    for offline in (False, True):
        llm = make_llm(cache=replay_cache, offline_replay=offline)
        replayed = llm.complete(MESSAGES)
        assert replayed.content == live.content
        assert (replayed.prompt_tokens, replayed.completion_tokens) == (50, 25)
        assert replayed.cached
        assert llm.usage.cached_calls == 1
        assert llm.usage_log[0]["cached"]
    assert len(openai_server.chat_requests) == 1


def test_cache_hit_survives_format_downgrade(
    openai_server: OpenAIServer, make_llm: MakeLLM, replay_cache: ReplayCache
) -> None:
    openai_server.add_error(400, "response_format is not supported")
    openai_server.add_chat(laws_json("a * N**b"))
    make_llm(cache=replay_cache).complete(MESSAGES)

    # A fresh client starts at json_schema again; the key ignores response_format, so it still hits.
    assert make_llm(cache=replay_cache, offline_replay=True).complete(MESSAGES).cached


def test_repeated_prompt_replays_in_order(
    openai_server: OpenAIServer, make_llm: MakeLLM, replay_cache: ReplayCache
) -> None:
    openai_server.add_chat(laws_json("a * N**b"))
    openai_server.add_chat(laws_json("a * N**b + c"))
    live = make_llm(cache=replay_cache)
    first, second = live.complete(MESSAGES), live.complete(MESSAGES)
    assert first.content != second.content
    assert len(replay_cache) == 2

    replay = make_llm(cache=replay_cache, offline_replay=True)
    assert [replay.complete(MESSAGES).content for _ in range(2)] == [first.content, second.content]
    with pytest.raises(LLMUnavailable, match="no cached reply"):
        replay.complete(MESSAGES)


def test_cache_is_keyed_by_model_and_sampling(
    openai_server: OpenAIServer, make_llm: MakeLLM, replay_cache: ReplayCache
) -> None:
    openai_server.add_chat(laws_json("a * N**b"))
    make_llm(cache=replay_cache).complete(MESSAGES)

    for changed in ({"model": "other-model"}, {"temperature": 0.1}, {"seed": 1}):
        with pytest.raises(LLMUnavailable):
            make_llm(cache=replay_cache, offline_replay=True, **changed).complete(MESSAGES)


def test_offline_replay_miss_touches_no_network(
    openai_server: OpenAIServer, make_llm: MakeLLM, replay_cache: ReplayCache
) -> None:
    llm = make_llm(cache=replay_cache, offline_replay=True)

    with pytest.raises(LLMUnavailable) as info:
        llm.complete(MESSAGES)

    assert str(info.value) == (
        "no cached reply for this prompt; run once with an endpoint or drop --offline-replay"
    )
    assert openai_server.requests == []
    assert llm.usage_log[-1]["error"].startswith("LLMUnavailable")


def test_offline_replay_needs_a_cache() -> None:
    with pytest.raises(ValueError, match="replay cache"):
        LLMClient(LLMConfig(), offline_replay=True)


def test_client_built_from_config(openai_server: OpenAIServer) -> None:
    openai_server.add_chat(laws_json("a * N**b"))
    config = LLMConfig(base_url=openai_server.base_url, model="test-model", max_retries=0)

    with LLMClient(config) as llm:  # no api_key: a local server needs none
        assert "a * N**b" in llm.complete(MESSAGES).content
    assert openai_server.chat_requests[0].headers["authorization"] == "Bearer unused"


def test_no_key_for_openai_is_unavailable() -> None:
    with LLMClient(LLMConfig()) as llm, pytest.raises(LLMUnavailable, match="OPENAI_API_KEY"):
        llm.complete(MESSAGES)


def test_config_from_environment() -> None:
    env = {"OPENAI_BASE_URL": "http://127.0.0.1:9/v1", "OPENAI_API_KEY": "sk-secret", "SLD_LLM_MODEL": "qwen"}

    config = llm_config_from_env(environ=env, max_calls=5, timeout_s=None)

    assert config.base_url == "http://127.0.0.1:9/v1"
    assert config.model == "qwen"
    assert config.max_calls == 5
    assert config.timeout_s == LLMConfig().timeout_s  # None means "not given"
    assert config.api_key is not None and config.api_key.get_secret_value() == "sk-secret"
    # The key never appears when the config is printed or written to a run directory.
    assert "sk-secret" not in repr(config)
    assert "sk-secret" not in config.model_dump_json()
    # An explicit argument beats the environment.
    assert llm_config_from_env("gpt-x", environ=env).model == "gpt-x"
    assert llm_config_from_env(environ={}).model == "gpt-4o-mini"


def test_config_is_frozen_and_strict() -> None:
    config = LLMConfig()
    with pytest.raises(pydantic.ValidationError):
        setattr(config, "max_calls", 3)  # noqa: B010 (mypy would flag a plain assignment)
    with pytest.raises(pydantic.ValidationError, match="extra"):
        LLMConfig.model_validate({"max_cals": 3})
    with pytest.raises(pydantic.ValidationError):
        LLMConfig(max_calls=0)


def test_endpoint_configured() -> None:
    assert not endpoint_configured({})
    assert not endpoint_configured({"OPENAI_API_KEY": ""})
    assert endpoint_configured({"OPENAI_API_KEY": "sk-x"})
    assert endpoint_configured({"OPENAI_BASE_URL": "http://localhost:8000/v1"})


def test_injected_client_keeps_its_own_settings(
    openai_server: OpenAIServer, openai_client: openai.OpenAI, make_llm: MakeLLM
) -> None:
    openai_server.add_chat(laws_json("a * N**b"))
    llm = make_llm()
    llm.complete(MESSAGES)
    llm.close()  # an injected client belongs to the caller: still usable
    assert openai_client.max_retries == 0
    assert [m.id for m in openai_client.models.list()] == ["test-model"]


def test_bad_request_without_any_format_is_final(openai_server: OpenAIServer, make_llm: MakeLLM) -> None:
    for _ in range(3):
        openai_server.add_error(400, "response_format is broken on this server")
    llm = make_llm()

    with pytest.raises(LLMResponseError, match="rejected the request"):
        llm.complete(MESSAGES)
    assert len(openai_server.chat_requests) == 3
    assert llm.response_format == "none"

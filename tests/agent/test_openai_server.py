"""The scripted OpenAI-compatible test server itself."""

from __future__ import annotations

import openai
import pytest

from tests.agent.openai_server import OpenAIServer, chat_completion, laws_json


def test_models_endpoint(openai_client: openai.OpenAI) -> None:
    assert [model.id for model in openai_client.models.list()] == ["test-model"]


def test_chat_through_the_openai_client(openai_server: OpenAIServer, openai_client: openai.OpenAI) -> None:
    openai_server.add_chat(laws_json("a * N**b"), usage=(5, 6))
    completion = openai_client.chat.completions.create(
        model="test-model", messages=[{"role": "user", "content": "hi"}]
    )
    assert completion.choices[0].message.content == laws_json("a * N**b")
    assert completion.usage is not None and completion.usage.total_tokens == 11
    (request,) = openai_server.chat_requests
    assert request.json["messages"] == [{"role": "user", "content": "hi"}]
    assert openai_server.pending == 0


def test_handler_answers_when_the_queue_is_empty(
    openai_server: OpenAIServer, openai_client: openai.OpenAI
) -> None:
    openai_server.handler = lambda request: chat_completion(f"echo {request.json['model']}")
    completion = openai_client.chat.completions.create(
        model="m1", messages=[{"role": "user", "content": "x"}]
    )
    assert completion.choices[0].message.content == "echo m1"


def test_unscripted_requests_get_500_and_unknown_routes_404(
    openai_server: OpenAIServer, openai_client: openai.OpenAI
) -> None:
    with pytest.raises(openai.InternalServerError, match="no scripted reply left"):
        openai_client.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}])
    with pytest.raises(openai.NotFoundError):
        openai_client.embeddings.create(model="m", input="x")


def test_stop_is_idempotent_and_frees_the_port(openai_server: OpenAIServer) -> None:
    url = openai_server.url
    openai_server.stop()
    openai_server.stop()
    assert url.startswith("http://127.0.0.1:")

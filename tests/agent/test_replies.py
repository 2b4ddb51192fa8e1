"""Reading laws out of LLM replies, and rejecting what is broken or malicious with a reason."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from sld.agent.replies import (
    MAX_EXPRESSION_CHARS,
    ProposedLaw,
    Rejection,
    parse_reply,
    validate_expressions,
)
from tests.agent.openai_server import laws_json

TWO_LAWS = laws_json(
    ("E + A / N**alpha", "irreducible loss plus a power law"), ("a * N**b", "pure power law")
)
EXPECTED = [
    ProposedLaw("E + A / N**alpha", "irreducible loss plus a power law"),
    ProposedLaw("a * N**b", "pure power law"),
]


def test_raw_json() -> None:
    assert parse_reply(TWO_LAWS) == (EXPECTED, [])


@pytest.mark.parametrize("fence", ["```json\n", "```JSON\n", "```\n", "```json "])
def test_fenced_json(fence: str) -> None:
    reply = f"Here are my proposals:\n\n{fence}{TWO_LAWS}\n```\n\nThe first one is Chinchilla-like."
    assert parse_reply(reply) == (EXPECTED, [])


def test_json_embedded_in_prose() -> None:
    reply = f"Sure! Based on the data {{which looks convex}}, I propose: {TWO_LAWS} Hope this helps."
    assert parse_reply(reply) == (EXPECTED, [])


def test_braces_inside_strings_do_not_confuse_the_scanner() -> None:
    reply = 'Answer: {"laws": [{"expression": "a * N**b", "rationale": "a } brace { in text"}]} done'
    assert parse_reply(reply) == ([ProposedLaw("a * N**b", "a } brace { in text")], [])


def test_object_with_laws_is_preferred_over_an_earlier_object() -> None:
    reply = 'Config {"temperature": 0.7} then {"laws": [{"expression": "a * D**b", "rationale": ""}]}'
    assert parse_reply(reply)[0] == [ProposedLaw("a * D**b")]


def test_bare_list_and_plain_strings_are_accepted() -> None:
    reply = json.dumps(["a * N**b", {"expression": "c + d / D", "rationale": "saturating"}])
    assert parse_reply(reply) == ([ProposedLaw("a * N**b"), ProposedLaw("c + d / D", "saturating")], [])


def test_whitespace_is_normalised_and_duplicates_rejected() -> None:
    reply = laws_json("a *  N**b", "a * N**b\n", "c * D")
    proposed, rejections = parse_reply(reply)
    assert [p.expression for p in proposed] == ["a * N**b", "c * D"]
    assert rejections == [Rejection("a * N**b", "duplicate of an earlier law in this reply")]


@pytest.mark.parametrize(
    ("reply", "reason"),
    [
        ("I am sorry, I cannot propose laws today.", "reply is not JSON: no {...} object found"),
        ('{"laws": [{"expression": "a*N", }', "no valid JSON object found"),
        ('{"formulas": ["a*N"]}', 'JSON has no "laws" list (keys: formulas)'),
        ("42", "JSON is a int, not an object"),
        ('{"laws": []}', 'the "laws" list is empty'),
    ],
)
def test_unusable_replies_give_one_rejection_with_a_reason(reply: str, reason: str) -> None:
    proposed, rejections = parse_reply(reply)
    assert proposed == []
    assert len(rejections) == 1
    assert reason in rejections[0].reason
    assert '{"laws": [{"expression"' in rejections[0].reason  # tells the model the expected format


@pytest.mark.parametrize(
    ("item", "reason"),
    [
        ({"rationale": "forgot the expression"}, 'no "expression" string'),
        ({"expression": 3.5}, 'no "expression" string'),
        ({"expression": "   "}, 'no "expression" string'),
        (17, 'an object with an "expression" string'),
        ({"expression": "a*N + " * 400}, f"more than {MAX_EXPRESSION_CHARS}"),
    ],
)
def test_malformed_entries_are_rejected_individually(item: object, reason: str) -> None:
    reply = json.dumps({"laws": [item, {"expression": "a * N**b", "rationale": 1}]})
    proposed, rejections = parse_reply(reply)
    assert proposed == [ProposedLaw("a * N**b")]  # a non-string rationale is dropped, the law kept
    assert len(rejections) == 1
    assert reason in rejections[0].reason
    assert len(rejections[0].text) <= 303


def test_max_laws() -> None:
    reply = laws_json(*(f"a * N**{k}" for k in range(25)))
    proposed, rejections = parse_reply(reply, max_laws=20)
    assert len(proposed) == 20
    assert len(rejections) == 5
    assert all(r.reason == "more than 20 laws in one reply" for r in rejections)


@pytest.mark.parametrize("size", [200_001, 10_000_000])
def test_huge_replies_are_rejected_without_parsing(size: int) -> None:
    reply = laws_json("a * N**b") + " " * (size - len(laws_json("a * N**b")))
    start = time.monotonic()
    proposed, rejections = parse_reply(reply)
    assert time.monotonic() - start < 0.5
    assert proposed == []
    assert f"{size} characters, more than 200000; not parsed" in rejections[0].reason
    assert len(rejections[0].text) < 400


@pytest.mark.parametrize(
    "reply",
    [
        "[" * 100_000,  # deep nesting: RecursionError in json
        '{"a":' * 30_000,
        "{" * 150_000,
        '{"laws": [' + '{"x": "' * 20_000,
    ],
    ids=["deep-list", "deep-object", "braces", "unclosed-strings"],
)
def test_adversarial_replies_are_rejected_quickly(reply: str) -> None:
    start = time.monotonic()
    proposed, rejections = parse_reply(reply)
    assert time.monotonic() - start < 2.0
    assert proposed == []
    assert len(rejections) == 1


# -- validate_expressions: the whitelist parser of sld.search decides what is an expression -----------------


def validate(
    *texts: str, variables: tuple[str, ...] = ("N", "D"), max_params: int | None = 5
) -> tuple[list[Any], list[Rejection]]:
    result: tuple[list[Any], list[Rejection]] = validate_expressions(
        [ProposedLaw(t) for t in texts], variables, max_params=max_params
    )
    return result


def test_valid_laws_are_parsed() -> None:
    laws, rejections = validate("E + A / N**alpha + B / D**beta", "a * N**b")
    assert rejections == []
    assert [law.n_params for law in laws] == [5, 2]
    assert laws[0].variables == ("N", "D")


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("__import__('os').system('rm -rf /')", "not allowed"),
        ("x.__class__", "attribute access is not allowed"),
        ("N.__class__.__bases__", "not allowed"),
        ("(lambda: 1)()", "not allowed"),
        ("N**1e9", "too large"),
        ("9**9**9 * N", "too large"),
        ("open('/etc/passwd')", "unknown function 'open'"),
        ("exp(N)[0]", "subscripts are not allowed"),
        ("L = a * N**b", "right-hand side"),
        ("a * N**", "not a valid expression"),
    ],
)
def test_malicious_and_broken_expressions_are_rejected_with_reasons(text: str, reason: str) -> None:
    laws, rejections = validate(text, "a * N**b")
    assert [law.n_params for law in laws] == [2]  # the good one survives
    (rejection,) = rejections
    assert rejection.text == text
    assert reason in rejection.reason


def test_law_without_any_variable_is_rejected() -> None:
    # A misspelled feature name is just another constant, so the law is a constant: reject it.
    laws, rejections = validate("a * Nparams**b + c")
    assert laws == []
    assert "uses none of the variables N, D" in rejections[0].reason


def test_law_with_too_many_constants_is_rejected() -> None:
    laws, rejections = validate("A/N**alpha + B/D**beta + E + F*N*D", max_params=5)
    assert laws == []
    assert "has 6 constants (A, alpha, B, beta, E, F), more than the 5 allowed" in rejections[0].reason
    assert len(validate("A/N**alpha + B/D**beta + E + F*N*D", max_params=None)[0]) == 1


def test_rejections_feed_back_from_reply_to_laws() -> None:
    reply = laws_json("a * N**b", "__import__('os')", "c * Q")
    proposed, rejected_shape = parse_reply(reply)
    laws, rejected_parse = validate_expressions(proposed, ["N"], max_params=4)
    assert rejected_shape == []
    assert [[c.name for c in law.constants] for law in laws] == [["a", "b"]]
    assert [r.text for r in rejected_parse] == ["__import__('os')", "c * Q"]

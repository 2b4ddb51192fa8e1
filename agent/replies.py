"""Turn an LLM reply into proposed laws, then into parsed laws, with a reason for every rejection.

Two steps, kept apart so each is testable and the reasons can be fed back to the proposer:

1. :func:`parse_reply` reads the reply text: JSON ``{"laws": [{"expression", "rationale"}, ...]}``, raw, in a
   fenced code block, or embedded in prose. It checks shape and size only; expressions stay strings.
2. :func:`validate_expressions` parses each expression with the whitelist parser
   (:func:`sld.search.expressions.parse_law`; never ``eval``) and checks it uses a variable and respects the
   parameter budget.

Examples
--------
>>> reply = 'Here you go: {"laws": [{"expression": "a*N**b", "rationale": "power"}]}'
>>> proposed, rejected = parse_reply(reply)
>>> proposed
[ProposedLaw(expression='a*N**b', rationale='power')]
>>> rejected
[]
>>> parse_reply("I cannot help with that.")[1][0].reason
'reply is not JSON: no {...} object found; answer with {"laws": [{"expression": ..., "rationale": ...}]}'

"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sld.search.expressions import Law

# A reply larger than this is not a list of laws (200 kB is ~50k tokens); the LLM client refuses it too.
MAX_REPLY_CHARS = 200_000
MAX_EXPRESSION_CHARS = 2_000
# How much of a rejected text is kept for the log and the feedback prompt.
_SHOWN_CHARS = 300
# Start positions tried when looking for JSON inside prose; bounds the work on adversarial replies.
_MAX_JSON_STARTS = 64
_FORMAT_HINT = 'answer with {"laws": [{"expression": ..., "rationale": ...}]}'
_FENCE = re.compile(r"```(?:json|JSON)?[ \t]*\n?(.*?)```", re.DOTALL)


@dataclass(frozen=True)
class ProposedLaw:
    """A law as the model wrote it, not yet parsed.

    Parameters
    ----------
    expression : str
        The right-hand side, e.g. ``"E + A / N**alpha"``.
    rationale : str
        The model's one-line justification (may be empty).

    """

    expression: str
    rationale: str = ""


@dataclass(frozen=True)
class Rejection:
    """Something the model proposed that was not accepted, and why.

    Parameters
    ----------
    text : str
        The offending text (truncated to a few hundred characters).
    reason : str
        Why it was rejected, phrased so it can be shown to the model.

    """

    text: str
    reason: str


def _shown(text: str) -> str:
    return text if len(text) <= _SHOWN_CHARS else text[:_SHOWN_CHARS] + "..."


def _decode_json(content: str) -> tuple[Any, str | None]:
    """Find the reply's JSON value: the whole text, a fenced block, or the first object embedded in prose."""
    stripped = content.strip()
    try:
        return json.loads(stripped), None
    except (json.JSONDecodeError, RecursionError):
        pass
    for block in _FENCE.findall(content):
        try:
            return json.loads(block.strip()), None
        except (json.JSONDecodeError, RecursionError):
            continue
    decoder = json.JSONDecoder()
    first_object: dict[str, Any] | None = None
    start = content.find("{")
    tries = 0
    # raw_decode parses one balanced value from a position, respecting strings; prefer an object with "laws".
    while start != -1 and tries < _MAX_JSON_STARTS:
        tries += 1
        try:
            value, _ = decoder.raw_decode(content, start)
        except (json.JSONDecodeError, RecursionError):
            value = None
        if isinstance(value, dict):
            if "laws" in value:
                return value, None
            if first_object is None:
                first_object = value
        start = content.find("{", start + 1)
    if first_object is not None:
        return first_object, None
    if "{" in content:
        return None, "no valid JSON object found (check quotes and commas)"
    return None, "no {...} object found"


def _law_items(value: Any) -> tuple[list[Any] | None, str | None]:
    """Return the list of law entries in a decoded reply, or why there is none."""
    if isinstance(value, list):
        return value, None
    if isinstance(value, dict):
        laws = value.get("laws")
        if isinstance(laws, list):
            return laws, None
        if "expression" in value:
            return [value], None
        return None, f'JSON has no "laws" list (keys: {", ".join(sorted(map(str, value))) or "none"})'
    return None, f"JSON is a {type(value).__name__}, not an object"


def _proposed(item: Any) -> ProposedLaw | Rejection:
    """Check one law entry's shape and size."""
    expression: Any
    rationale: Any
    if isinstance(item, str):
        expression, rationale = item, ""
    elif isinstance(item, dict):
        expression, rationale = item.get("expression"), item.get("rationale", "")
    else:
        return Rejection(_shown(json.dumps(item)), 'a law must be an object with an "expression" string')
    if not isinstance(expression, str) or not expression.strip():
        return Rejection(_shown(json.dumps(item)), 'law has no "expression" string')
    if len(expression) > MAX_EXPRESSION_CHARS:
        return Rejection(
            _shown(expression),
            f"expression has {len(expression)} characters, more than {MAX_EXPRESSION_CHARS}; "
            "propose compact laws",
        )
    if not isinstance(rationale, str):
        rationale = ""
    return ProposedLaw(expression=" ".join(expression.split()), rationale=_shown(rationale.strip()))


def parse_reply(content: str, *, max_laws: int = 20) -> tuple[list[ProposedLaw], list[Rejection]]:
    """Read the proposed laws out of an LLM reply, without parsing the expressions.

    Accepted: the JSON object ``{"laws": [{"expression": str, "rationale": str}, ...]}`` as the whole reply,
    in a fenced code block (```` ```json ````), or embedded in prose (the first balanced ``{...}`` that
    decodes, preferring one with a ``"laws"`` key). A bare list of laws, or plain expression strings in
    place of law objects, are accepted too.

    Parameters
    ----------
    content : str
        The reply text.
    max_laws : int, default 20
        Laws beyond this many are rejected.

    Returns
    -------
    proposed : list of ProposedLaw
        Well-formed entries, in reply order, duplicates removed (whitespace-normalised expressions).
    rejections : list of Rejection
        One per unusable entry, or a single one for the whole reply (too large, not JSON, wrong shape).

    """
    if len(content) > MAX_REPLY_CHARS:
        return [], [
            Rejection(
                content[:_SHOWN_CHARS] + "...",
                f"reply has {len(content)} characters, more than {MAX_REPLY_CHARS}; not parsed",
            )
        ]
    value, problem = _decode_json(content)
    if problem is not None:
        return [], [Rejection(_shown(content.strip()), f"reply is not JSON: {problem}; {_FORMAT_HINT}")]
    items, problem = _law_items(value)
    if items is None:
        return [], [Rejection(_shown(content.strip()), f"{problem}; {_FORMAT_HINT}")]

    proposed: list[ProposedLaw] = []
    rejections: list[Rejection] = []
    seen: set[str] = set()
    for item in items:
        result = _proposed(item)
        if isinstance(result, Rejection):
            rejections.append(result)
        elif result.expression in seen:
            rejections.append(Rejection(result.expression, "duplicate of an earlier law in this reply"))
        elif len(proposed) >= max_laws:
            rejections.append(Rejection(result.expression, f"more than {max_laws} laws in one reply"))
        else:
            seen.add(result.expression)
            proposed.append(result)
    if not proposed and not rejections:
        rejections.append(Rejection(_shown(content.strip()), f'the "laws" list is empty; {_FORMAT_HINT}'))
    return proposed, rejections


def validate_expressions(
    proposed: Sequence[ProposedLaw],
    variables: Sequence[str],
    *,
    max_params: int | None = None,
) -> tuple[list[Law], list[Rejection]]:
    """Parse proposed expressions into laws with the whitelist parser; reject the ones that fail.

    Parameters
    ----------
    proposed : sequence of ProposedLaw
        From :func:`parse_reply`.
    variables : sequence of str
        The feature names (the columns of X, in order). Any other identifier in an expression is a constant.
    max_params : int, optional
        Most fitted constants a law may have; None for no limit.

    Returns
    -------
    laws : list of Law
        Parsed laws, in input order.
    rejections : list of Rejection
        The expression and the reason: the parser's :class:`~sld.search.errors.ExpressionError` message, "uses
        none of the variables", or too many constants.

    """
    # Imported here: sld.search pulls in sympy, which the rest of this module does not need.
    from sld.search.errors import ExpressionError
    from sld.search.expressions import parse_law

    names = tuple(variables)
    laws: list[Law] = []
    rejections: list[Rejection] = []
    for law_text in proposed:
        try:
            law = parse_law(law_text.expression, names)
        except ExpressionError as exc:
            rejections.append(Rejection(_shown(law_text.expression), str(exc)))
            continue
        used = {symbol.name for symbol in law.expr.free_symbols} & set(names)
        if not used:
            rejections.append(
                Rejection(
                    _shown(law_text.expression),
                    f"uses none of the variables {', '.join(names)}; names other than these are fitted "
                    "constants, so write the variable names exactly as given",
                )
            )
            continue
        if max_params is not None and law.n_params > max_params:
            constants = ", ".join(c.name for c in law.constants)
            rejections.append(
                Rejection(
                    _shown(law_text.expression),
                    f"has {law.n_params} constants ({constants}), more than the {max_params} allowed",
                )
            )
            continue
        laws.append(law)
    return laws, rejections

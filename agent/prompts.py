"""The prompt of the LLM proposer: task, grammar, reply format, and what was tried so far.

The text is a pure function of its inputs (dicts rendered with sorted keys, floats to 6 significant digits,
candidates in a fixed order), so the same state gives the same prompt and the replay cache can find it.

Examples
--------
>>> messages = build_messages(
...     task_description="Language-model loss versus parameters N and tokens D.",
...     variables=["N", "D"], targets=["loss"], max_params=5,
...     data_profile={"rows": 40, "N": {"min": 1e7, "max": 1e9}},
...     best=[{"expression": "E + A/N**alpha", "validation_r2": 0.91, "n_params": 3}],
...     rejected=[{"expression": "x.__class__", "reason": "attribute access is not allowed"}],
... )
>>> [m["role"] for m in messages]
['system', 'user']
>>> "E + A/N**alpha" in messages[1]["content"]
True

"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

# How many tried candidates are listed; older rejections are dropped first.
MAX_LISTED_BEST = 15
MAX_LISTED_REJECTED = 20
_SHOWN_CHARS = 300

_SYSTEM = """\
You are a scientist who discovers scaling laws: compact formulas that predict a measured quantity from \
scale variables (model size, data, compute, ...) and keep predicting correctly far beyond the range they \
were fitted on.

Reply with one JSON object and nothing else:
{"laws": [{"expression": "<right-hand side only>", "rationale": "<one sentence: why this form>"}]}

Grammar of an expression:
- numbers, + - * / ** and parentheses, unary minus;
- functions exp, log (natural), sqrt, Min, Max, Abs, tanh;
- the variable names exactly as given (case-sensitive);
- any other identifier is a constant fitted to the data (for example E, A, alpha, beta).
Nothing else: no "=", no left-hand side, no Python (no lambda, imports, attribute access or indexing). \
Numbers stay fixed; write a named constant wherever a value should be fitted.

What makes a good law:
- it extrapolates: constants are fitted on the smaller scales and the law is scored on the largest ones, \
so prefer forms that stay finite and keep a physically sensible trend (power laws, saturation towards an \
irreducible term, smooth interactions) over polynomials or oscillating terms that only fit the seen range;
- few constants: every extra constant must earn its place;
- it does not depend on the unit of a size (parameters, tokens, examples): a constant must absorb a change of \
unit, as in A/N**alpha or a + b*log(N) or (log(N) - c)**2, never log(N)**2, log(N)**k or 1/log(N) alone \
(such laws are rejected);
- it uses every variable along which the data show a trend: a law without one predicts no change along it \
(among laws that validate alike, those that keep every trend are chosen);
- its constants are fitted separately per group of the data and per target; the form is shared."""


def _round(value: Any) -> Any:
    """Make a value JSON-ready and short: floats to 6 significant digits, numpy scalars to Python ones."""
    if isinstance(value, Mapping):
        return {str(k): _round(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_round(v) for v in value]
    if isinstance(value, set | frozenset):
        return sorted(str(v) for v in value)
    if hasattr(value, "tolist") and callable(value.tolist):
        return _round(value.tolist())  # numpy scalars and arrays
    if isinstance(value, bool) or value is None or isinstance(value, int | str):
        return value
    if isinstance(value, float):
        return float(f"{value:.6g}") if math.isfinite(value) else str(value)
    return str(value)


def _shown(text: object) -> str:
    words = " ".join(str(text).split())
    return words if len(words) <= _SHOWN_CHARS else words[:_SHOWN_CHARS] + "..."


def _r2_sort_key(candidate: Mapping[str, Any]) -> tuple[float, int, str]:
    r2 = candidate.get("validation_r2")
    score = float(r2) if isinstance(r2, int | float) and math.isfinite(r2) else -math.inf
    n_params = candidate.get("n_params")
    return (
        -score,
        int(n_params) if isinstance(n_params, int) else 10**6,
        str(candidate.get("expression", "")),
    )


def _format_r2(value: Any) -> str:
    if isinstance(value, int | float) and math.isfinite(value):
        return f"{value:.4f}"
    return "failed"


def _best_lines(best: Sequence[Mapping[str, Any]]) -> list[str]:
    if not best:
        return ["None evaluated yet."]
    ranked = sorted(best, key=_r2_sort_key)[:MAX_LISTED_BEST]
    return [
        f"{i}. R2={_format_r2(c.get('validation_r2'))} constants={c.get('n_params', '?')}  "
        f"{_shown(c.get('expression', ''))}"
        for i, c in enumerate(ranked, start=1)
    ]


def _rejected_lines(rejected: Sequence[Mapping[str, Any]]) -> list[str]:
    if not rejected:
        return ["None."]
    recent = list(rejected)[-MAX_LISTED_REJECTED:]
    return [f"- {_shown(c.get('expression', ''))}  ->  {_shown(c.get('reason', ''))}" for c in recent]


def build_messages(
    *,
    task_description: str,
    variables: Sequence[str],
    targets: Sequence[str],
    max_params: int,
    data_profile: Mapping[str, Any],
    best: Sequence[Mapping[str, Any]],
    rejected: Sequence[Mapping[str, Any]],
    n_laws: int = 8,
) -> list[dict[str, str]]:
    """Build the chat messages asking for new candidate laws.

    Parameters
    ----------
    task_description : str
        What is measured and how it was collected (a task's ``description``).
    variables : sequence of str
        Feature names, the only names the law may use as variables.
    targets : sequence of str
        Target names; each law predicts one target value.
    max_params : int
        Most fitted constants a law may have.
    data_profile : mapping
        A summary of the data (row counts, ranges per column, groups, ...), rendered as sorted JSON.
    best : sequence of mapping
        Evaluated candidates with ``expression``, ``validation_r2``, ``n_params``; listed best first (the
        top ``MAX_LISTED_BEST``).
    rejected : sequence of mapping
        Candidates that failed, with ``expression`` and ``reason``, oldest first; the last
        ``MAX_LISTED_REJECTED`` are listed.
    n_laws : int, default 8
        How many new laws to ask for.

    Returns
    -------
    list of dict
        ``[{"role": "system", "content": ...}, {"role": "user", "content": ...}]``.

    """
    profile = json.dumps(_round(data_profile), sort_keys=True, indent=2)
    target_text = ", ".join(targets)
    plural = "s" if len(targets) > 1 else ""
    target_note = (
        "each law predicts one target and is fitted to each of them separately"
        if len(targets) > 1
        else "the law predicts it; write only the right-hand side"
    )
    user = "\n".join(
        [
            "Task:",
            task_description.strip(),
            "",
            f"Variables (use exactly these names): {', '.join(variables)}",
            f"Target{plural}: {target_text} ({target_note})",
            f"At most {max_params} fitted constants per law.",
            "",
            "Data profile:",
            profile,
            "",
            "Best laws so far (validation R2 on the held-out larger scales; 1 is perfect):",
            *_best_lines(best),
            "",
            "Rejected or failed laws (do not repeat these mistakes):",
            *_rejected_lines(rejected),
            "",
            f"Propose {n_laws} new laws, different from all of the above, with at most {max_params} "
            f"constants each, over the variables {', '.join(variables)}. "
            "Reply with the JSON object only.",
        ]
    )
    return [{"role": "system", "content": _SYSTEM}, {"role": "user", "content": user}]

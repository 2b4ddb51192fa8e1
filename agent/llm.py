"""The LLM client: one chat completion per call to any OpenAI-compatible endpoint, with a budget.

This is the only module that imports ``openai`` (lazily, on the first request that needs the network). It adds
what a discovery run needs on top of the ``openai`` client:

- structured output: the request asks for a JSON schema (``{"laws": [{"expression", "rationale"}]}``);
  an endpoint that rejects ``response_format`` gets ``json_object`` instead, then no format at all
  (remembered for the rest of the run);
- retries with exponential backoff on connection errors, timeouts, 429 and 5xx, then :class:`LLMUnavailable`;
- a cap on the reply size read from the socket, so a runaway reply cannot exhaust memory;
- usage accounting (calls, tokens, failures) against a budget, and a per-call ``usage_log`` for the run log;
- an optional :class:`~sld.agent.replay_cache.ReplayCache`, read before and written after each request, and an
  offline replay mode that never touches the network.

Examples
--------
Point it at any OpenAI-compatible server (``OPENAI_BASE_URL``, ``OPENAI_API_KEY``, ``SLD_LLM_MODEL``)::

    config = llm_config_from_env(max_calls=20)
    with LLMClient(config, cache=ReplayCache("runs/replies.sqlite")) as llm:
        reply = llm.complete(build_messages(...))

"""

from __future__ import annotations

import json
import math
import os
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal, NoReturn

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from .errors import LLMBudgetExhausted, LLMResponseError, LLMUnavailable
from .replay_cache import CachedReply, ReplayCache, prompt_key
from .replies import MAX_REPLY_CHARS

if TYPE_CHECKING:
    import openai

DEFAULT_MODEL = "gpt-4o-mini"
DEFAULT_BASE_URL = "https://api.openai.com/v1"
# Raw body cap: JSON escaping can double the content, plus the envelope.
MAX_BODY_BYTES = 4 * MAX_REPLY_CHARS + 64_000
# Backoff before retry k (0-based) is min(BASE * 2**k, MAX) seconds; Retry-After is honoured up to the max.
BACKOFF_BASE_S = 0.5
BACKOFF_MAX_S = 30.0

ResponseFormatKind = Literal["json_schema", "json_object", "none"]
_FORMAT_LADDER: tuple[ResponseFormatKind, ...] = ("json_schema", "json_object", "none")

LAWS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "laws": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "expression": {"type": "string"},
                    "rationale": {"type": "string"},
                },
                "required": ["expression", "rationale"],
                "additionalProperties": False,
            },
        }
    },
    "required": ["laws"],
    "additionalProperties": False,
}
"""JSON schema of a proposal reply: ``{"laws": [{"expression": str, "rationale": str}, ...]}``."""


class LLMConfig(BaseModel):
    """Endpoint, model, sampling and budget of the LLM proposer.

    Parameters
    ----------
    base_url : str or None, default None
        OpenAI-compatible API root (``.../v1``); None means OpenAI's.
    api_key : SecretStr or None, default None
        API key; shown as ``**********`` when the config is printed or dumped. A local server (``base_url``
        set) may need none.
    model : str, default "gpt-4o-mini"
        Model name sent with each request.
    max_calls : int, default 50
        Budget: completed calls (cached replies included, so a replay stops where the original run stopped).
    max_tokens : int, default 1_000_000
        Budget: prompt plus completion tokens over the run.
    timeout_s : float, default 120.0
        Per-request timeout (connect, each read, and the whole body).
    max_retries : int, default 4
        Retries after the first attempt on connection errors, timeouts, 429 and 5xx.
    temperature : float, default 0.7
        Sampling temperature.
    seed : int or None, default 0
        Sampling seed, for endpoints that honour it; None sends none.

    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    base_url: str | None = None
    api_key: SecretStr | None = None
    model: str = Field(DEFAULT_MODEL, min_length=1)
    max_calls: int = Field(50, ge=1)
    max_tokens: int = Field(1_000_000, ge=1)
    timeout_s: float = Field(120.0, gt=0)
    max_retries: int = Field(4, ge=0)
    temperature: float = Field(0.7, ge=0.0, le=2.0)
    seed: int | None = 0


def endpoint_configured(environ: Mapping[str, str] | None = None) -> bool:
    """Tell whether the environment names an LLM endpoint (``OPENAI_API_KEY`` or ``OPENAI_BASE_URL`` set).

    Parameters
    ----------
    environ : mapping, optional
        Environment to read; defaults to ``os.environ``.

    Returns
    -------
    bool
        True if either variable is set and non-empty.

    """
    env = os.environ if environ is None else environ
    return bool(env.get("OPENAI_API_KEY") or env.get("OPENAI_BASE_URL"))


def llm_config_from_env(
    model: str | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    **overrides: Any,
) -> LLMConfig:
    """Resolve an :class:`LLMConfig`: explicit arguments, then environment variables, then defaults.

    Parameters
    ----------
    model : str, optional
        Model name; falls back to ``SLD_LLM_MODEL``, then ``gpt-4o-mini``.
    environ : mapping, optional
        Environment to read (``OPENAI_BASE_URL``, ``OPENAI_API_KEY``, ``SLD_LLM_MODEL``); defaults to
        ``os.environ``.
    **overrides
        Other :class:`LLMConfig` fields (``max_calls=20``, ...). None values are ignored, so CLI options that
        were not given can be passed straight through.

    Returns
    -------
    LLMConfig
        The resolved, validated config.

    Examples
    --------
    >>> env = {"OPENAI_BASE_URL": "http://127.0.0.1:8000/v1", "SLD_LLM_MODEL": "qwen"}
    >>> config = llm_config_from_env(environ=env, max_calls=5, seed=None)
    >>> config.model, config.base_url, config.max_calls
    ('qwen', 'http://127.0.0.1:8000/v1', 5)

    """
    env = os.environ if environ is None else environ
    values: dict[str, Any] = {
        "base_url": env.get("OPENAI_BASE_URL") or None,
        "api_key": env.get("OPENAI_API_KEY") or None,
        "model": model or env.get("SLD_LLM_MODEL") or DEFAULT_MODEL,
    }
    values.update({name: value for name, value in overrides.items() if value is not None})
    return LLMConfig(**values)


@dataclass(frozen=True)
class LLMReply:
    """One completion.

    Parameters
    ----------
    content : str
        The message content (at most ``MAX_REPLY_CHARS`` characters).
    prompt_tokens, completion_tokens : int
        From the endpoint's ``usage``, or estimated as characters / 4 when it reports none.
    cached : bool
        True if the reply came from the replay cache.

    """

    content: str
    prompt_tokens: int
    completion_tokens: int
    cached: bool


@dataclass
class LLMUsage:
    """Running totals of a client.

    Parameters
    ----------
    calls : int
        Completed calls, cached ones included.
    cached_calls : int
        Calls answered by the replay cache.
    prompt_tokens, completion_tokens : int
        Token totals, cached calls included.
    failures : int
        Failed attempts: connection errors, timeouts, error statuses, unusable replies (format downgrades not
        included).

    """

    calls: int = 0
    cached_calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    failures: int = 0

    @property
    def total_tokens(self) -> int:
        """Prompt plus completion tokens."""
        return self.prompt_tokens + self.completion_tokens


class _RetryableError(Exception):
    """An attempt failed in a way worth retrying (network, timeout, 429, 5xx)."""

    def __init__(self, message: str, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class _FormatRejectedError(Exception):
    """The endpoint refused the requested ``response_format``."""


class _UnusableReplyError(Exception):
    """The endpoint answered 2xx with a reply that cannot be used; it still counts against the budget."""

    def __init__(self, message: str, received_chars: int) -> None:
        super().__init__(message)
        self.received_chars = received_chars


@dataclass(frozen=True)
class _Fresh:
    """A reply read from the network, before accounting."""

    content: str
    prompt_tokens: int
    completion_tokens: int
    estimated: bool


def estimate_tokens(text: str) -> int:
    """Estimate a token count as characters / 4 (rounded up), for endpoints that report no usage.

    Parameters
    ----------
    text : str
        The text sent or received.

    Returns
    -------
    int
        Estimated tokens.

    """
    return math.ceil(len(text) / 4)


def _messages_text(messages: list[dict[str, Any]]) -> str:
    return "".join(str(m.get("content", "")) for m in messages)


def _response_format(kind: ResponseFormatKind) -> dict[str, Any] | None:
    if kind == "json_schema":
        return {
            "type": "json_schema",
            "json_schema": {"name": "proposed_laws", "schema": LAWS_SCHEMA, "strict": True},
        }
    if kind == "json_object":
        return {"type": "json_object"}
    return None


class LLMClient:
    """Chat completions against an OpenAI-compatible endpoint, with retries, a budget and a replay cache.

    Not thread-safe: one client per discovery loop.

    Parameters
    ----------
    config : LLMConfig
        Endpoint, model, sampling and budget.
    client : openai.OpenAI, optional
        An existing client (tests pass one bound to a local server). Its own retries are disabled for these
        requests; the caller closes it. By default one is built from ``config`` on the first network request
        and closed by :meth:`close`.
    cache : ReplayCache, optional
        Read before each request and written after each fresh reply.
    offline_replay : bool, default False
        Answer only from ``cache``; a miss raises :class:`LLMUnavailable` and nothing is sent.
    sleep : callable, default time.sleep
        Called with the backoff in seconds between retries (tests pass a recorder).

    Attributes
    ----------
    usage_log : list of dict
        One entry per :meth:`complete` call: ``time`` (UTC ISO 8601), ``model``, ``prompt_tokens``,
        ``completion_tokens``, ``estimated``, ``cached``, ``latency_s``, ``attempts``, ``response_format``,
        ``error`` (None on success). Callers append it to the run log.

    """

    def __init__(
        self,
        config: LLMConfig,
        *,
        client: openai.OpenAI | None = None,
        cache: ReplayCache | None = None,
        offline_replay: bool = False,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if offline_replay and cache is None:
            raise ValueError("offline_replay=True needs a replay cache to answer from")
        self.config = config
        self.cache = cache
        self.offline_replay = offline_replay
        self.usage_log: list[dict[str, Any]] = []
        self._sleep = sleep
        self._injected = client
        self._client: openai.OpenAI | None = None
        self._owns_client = False
        self._usage = LLMUsage()
        self._format_level = 0
        self._seen: Counter[str] = Counter()

    # -- public -------------------------------------------------------------------------------------------

    @property
    def usage(self) -> LLMUsage:
        """A snapshot of the running totals."""
        return replace(self._usage)

    @property
    def response_format(self) -> ResponseFormatKind:
        """The structured-output mode requests currently use (downgraded when the endpoint refuses one)."""
        return _FORMAT_LADDER[self._format_level]

    @property
    def budget_exhausted(self) -> bool:
        """True once ``max_calls`` calls or ``max_tokens`` tokens are spent."""
        return (
            self._usage.calls >= self.config.max_calls or self._usage.total_tokens >= self.config.max_tokens
        )

    def complete(self, messages: list[dict[str, Any]]) -> LLMReply:
        """Send one chat completion request (or answer it from the replay cache).

        Parameters
        ----------
        messages : list of dict
            Chat messages (``{"role": ..., "content": ...}``), as from
            :func:`~sld.agent.prompts.build_messages`.

        Returns
        -------
        LLMReply
            The content and token counts.

        Raises
        ------
        LLMBudgetExhausted
            If the budget was already spent before this call.
        LLMUnavailable
            If the endpoint cannot be reached after the retries, refuses the credentials or model, or, in
            offline replay, the cache has no reply for this prompt.
        LLMResponseError
            If the endpoint answers with something unusable: a body over the size cap, not a chat completion,
            no content, or a request error (4xx) unrelated to ``response_format``.

        """
        if self.budget_exhausted:
            u = self._usage
            raise LLMBudgetExhausted(
                f"LLM budget exhausted: {u.calls}/{self.config.max_calls} calls, "
                f"{u.total_tokens}/{self.config.max_tokens} tokens; raise the budget to continue."
            )
        params = {"temperature": self.config.temperature, "seed": self.config.seed}
        key = prompt_key(messages, params)
        occurrence = self._seen[key]
        start = time.monotonic()

        if self.cache is not None:
            hit = self.cache.get(self.config.model, key, occurrence=occurrence)
            if hit is not None:
                self._seen[key] += 1
                reply = LLMReply(hit.content, hit.prompt_tokens, hit.completion_tokens, cached=True)
                self._record(reply, start, attempts=0, estimated=False)
                return reply
        if self.offline_replay:
            error = LLMUnavailable(
                "no cached reply for this prompt; run once with an endpoint or drop --offline-replay"
            )
            self._record_error(error, start, attempts=0)
            raise error

        attempts = [0]
        try:
            fresh = self._request(messages, attempts)
        except _UnusableReplyError as exc:
            # The endpoint did the work (and may bill it): count the call and estimated tokens, so a model
            # that keeps answering garbage still runs into the budget.
            unusable = LLMResponseError(str(exc))
            tokens = (estimate_tokens(_messages_text(messages)), math.ceil(exc.received_chars / 4))
            self._usage.calls += 1
            self._usage.prompt_tokens += tokens[0]
            self._usage.completion_tokens += tokens[1]
            self._record_error(unusable, start, attempts=attempts[0], tokens=tokens)
            raise unusable from exc
        except (LLMUnavailable, LLMResponseError) as exc:
            self._record_error(exc, start, attempts=attempts[0])
            raise
        self._seen[key] += 1
        reply = LLMReply(fresh.content, fresh.prompt_tokens, fresh.completion_tokens, cached=False)
        if self.cache is not None:
            self.cache.put(
                self.config.model,
                key,
                CachedReply(fresh.content, fresh.prompt_tokens, fresh.completion_tokens),
                occurrence=occurrence,
            )
        self._record(reply, start, attempts=attempts[0], estimated=fresh.estimated)
        return reply

    def close(self) -> None:
        """Close the ``openai`` client this object created (an injected one is left to its owner)."""
        if self._client is not None and self._owns_client:
            self._client.close()
        self._client = None
        self._owns_client = False

    def __enter__(self) -> LLMClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- accounting ---------------------------------------------------------------------------------------

    def _log_entry(self, start: float, attempts: int) -> dict[str, Any]:
        return {
            "time": datetime.now(UTC).isoformat(timespec="seconds"),
            "model": self.config.model,
            "prompt_tokens": 0,
            "completion_tokens": 0,
            "estimated": False,
            "cached": False,
            "latency_s": round(time.monotonic() - start, 4),
            "attempts": attempts,
            "response_format": self.response_format,
            "error": None,
        }

    def _record(self, reply: LLMReply, start: float, *, attempts: int, estimated: bool) -> None:
        self._usage.calls += 1
        self._usage.cached_calls += int(reply.cached)
        self._usage.prompt_tokens += reply.prompt_tokens
        self._usage.completion_tokens += reply.completion_tokens
        entry = self._log_entry(start, attempts)
        entry.update(
            prompt_tokens=reply.prompt_tokens,
            completion_tokens=reply.completion_tokens,
            estimated=estimated,
            cached=reply.cached,
        )
        self.usage_log.append(entry)

    def _record_error(
        self, error: Exception, start: float, *, attempts: int, tokens: tuple[int, int] = (0, 0)
    ) -> None:
        entry = self._log_entry(start, attempts)
        entry.update(
            prompt_tokens=tokens[0],
            completion_tokens=tokens[1],
            estimated=tokens != (0, 0),
            error=f"{type(error).__name__}: {error}",
        )
        self.usage_log.append(entry)

    # -- network ------------------------------------------------------------------------------------------

    def _openai(self) -> openai.OpenAI:
        """Return the ``openai`` client for requests, with its own retries off (this class retries)."""
        if self._client is not None:
            return self._client
        if self._injected is not None:
            # A copy that shares the injected client's connection pool; its owner closes that.
            self._client = self._injected.with_options(max_retries=0, timeout=self.config.timeout_s)
            return self._client
        import openai

        key = self.config.api_key.get_secret_value() if self.config.api_key else None
        if key is None:
            if self.config.base_url is None:
                raise LLMUnavailable(
                    "No API key for OpenAI: set OPENAI_API_KEY, or OPENAI_BASE_URL for another endpoint."
                )
            key = "unused"  # local OpenAI-compatible servers (vLLM, llama.cpp) accept any key
        self._client = openai.OpenAI(
            base_url=self.config.base_url or DEFAULT_BASE_URL,
            api_key=key,
            max_retries=0,
            timeout=self.config.timeout_s,
        )
        self._owns_client = True
        return self._client

    def _request(self, messages: list[dict[str, Any]], attempts: list[int]) -> _Fresh:
        """Send with retries and format fallback; ``attempts[0]`` counts the attempts made."""
        retries_left = self.config.max_retries
        while True:
            attempts[0] += 1
            try:
                return self._attempt(messages)
            except _FormatRejectedError:
                # Not a failure and not a retry: step down and keep the lower level for the rest of the run.
                # (Without a response_format a 400 is final; _raise_for_status makes it an LLMResponseError.)
                self._format_level += 1
            except _RetryableError as exc:
                self._usage.failures += 1
                if retries_left == 0:
                    raise LLMUnavailable(
                        f"LLM endpoint {self.config.base_url or DEFAULT_BASE_URL} unavailable after "
                        f"{attempts[0]} attempts: {exc}. Check the server, or rerun with --offline-replay "
                        "and a replay cache."
                    ) from exc
                retry = self.config.max_retries - retries_left
                delay = min(BACKOFF_BASE_S * 2**retry, BACKOFF_MAX_S)
                if exc.retry_after_s is not None:
                    delay = min(max(delay, exc.retry_after_s), BACKOFF_MAX_S)
                retries_left -= 1
                self._sleep(delay)
            except (_UnusableReplyError, LLMResponseError, LLMUnavailable):
                self._usage.failures += 1
                raise

    def _attempt(self, messages: list[dict[str, Any]]) -> _Fresh:
        """One HTTP request; classify every failure as retryable, a format refusal, or final."""
        import openai

        client = self._openai()
        kwargs: dict[str, Any] = {
            "model": self.config.model,
            "messages": messages,
            "temperature": self.config.temperature,
        }
        if self.config.seed is not None:
            kwargs["seed"] = self.config.seed
        response_format = _response_format(self.response_format)
        if response_format is not None:
            kwargs["response_format"] = response_format

        deadline = time.monotonic() + self.config.timeout_s
        try:
            with client.chat.completions.with_streaming_response.create(**kwargs) as response:
                body = self._read_capped(response, deadline)
        except openai.APIConnectionError as exc:  # includes APITimeoutError
            raise _RetryableError(f"{type(exc).__name__}: {exc}") from exc
        except openai.APIStatusError as exc:
            self._raise_for_status(exc)
        return self._parse_body(body, messages)

    @staticmethod
    def _read_capped(response: Any, deadline: float) -> bytes:
        """Read the body in chunks, stopping at ``MAX_BODY_BYTES`` or the deadline."""
        chunks: list[bytes] = []
        size = 0
        too_large = False
        try:
            for chunk in response.iter_bytes(65_536):
                size += len(chunk)
                if size > MAX_BODY_BYTES:
                    too_large = True
                    break
                if time.monotonic() > deadline:
                    raise _RetryableError("timed out while reading the reply body")
                chunks.append(chunk)
        except _RetryableError:
            raise
        except Exception as exc:  # the transport's read errors (connection reset, truncated body)
            raise _RetryableError(f"reading the reply failed: {type(exc).__name__}: {exc}") from exc
        if too_large:
            raise _UnusableReplyError(
                f"LLM reply body exceeds {MAX_BODY_BYTES} bytes; refused without reading the rest "
                "(the model is expected to return a short JSON list of laws).",
                size,
            )
        return b"".join(chunks)

    def _raise_for_status(self, exc: openai.APIStatusError) -> NoReturn:
        """Classify an error status: retryable, a format refusal, or final."""
        status = exc.status_code
        detail = f"HTTP {status}: {_error_message(exc)}"
        if status in (400, 422) and self.response_format != "none" and _mentions_response_format(exc):
            raise _FormatRejectedError(detail) from exc
        if status in (408, 409, 429) or status >= 500:
            raise _RetryableError(detail, retry_after_s=_retry_after_s(exc)) from exc
        if status in (401, 403):
            raise LLMUnavailable(
                f"LLM endpoint refused the credentials ({detail}); check OPENAI_API_KEY."
            ) from exc
        if status == 404:
            raise LLMUnavailable(
                f"LLM endpoint has no model {self.config.model!r} or no chat completions API ({detail}); "
                "check SLD_LLM_MODEL and OPENAI_BASE_URL (it should end in /v1)."
            ) from exc
        raise LLMResponseError(f"LLM endpoint rejected the request ({detail}).") from exc

    def _parse_body(self, body: bytes, messages: list[dict[str, Any]]) -> _Fresh:
        """Extract content and usage from a chat completion body."""
        try:
            data = json.loads(body)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise _UnusableReplyError(
                f"LLM endpoint returned a body that is not JSON: {body[:200]!r}", len(body)
            ) from exc
        try:
            message = data["choices"][0]["message"]
        except (KeyError, IndexError, TypeError) as exc:
            raise _UnusableReplyError(
                f"LLM endpoint returned JSON that is not a chat completion: {body[:200]!r}", len(body)
            ) from exc
        content = message.get("content") if isinstance(message, dict) else None
        if not isinstance(content, str) or not content:
            refusal = message.get("refusal") if isinstance(message, dict) else None
            raise _UnusableReplyError(
                "LLM reply has no text content"
                + (f" (refusal: {str(refusal)[:200]})" if refusal else "")
                + "; the proposer expects a JSON list of laws.",
                len(body),
            )
        if len(content) > MAX_REPLY_CHARS:
            raise _UnusableReplyError(
                f"LLM reply has {len(content)} characters, more than {MAX_REPLY_CHARS}; refused.", len(body)
            )
        usage = data.get("usage") if isinstance(data, dict) else None
        prompt = usage.get("prompt_tokens") if isinstance(usage, dict) else None
        completion = usage.get("completion_tokens") if isinstance(usage, dict) else None
        if isinstance(prompt, int) and isinstance(completion, int) and prompt >= 0 and completion >= 0:
            return _Fresh(content, prompt, completion, estimated=False)
        return _Fresh(
            content, estimate_tokens(_messages_text(messages)), estimate_tokens(content), estimated=True
        )


def _error_message(exc: openai.APIStatusError) -> str:
    body = exc.body
    if isinstance(body, dict):
        error = body.get("error", body)
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            return str(error["message"])[:500]
    return str(exc.message)[:500]


def _mentions_response_format(exc: openai.APIStatusError) -> bool:
    text = f"{exc.message} {exc.body!r}".lower()
    return any(
        word in text for word in ("response_format", "json_schema", "json_object", "structured output")
    )


def _retry_after_s(exc: openai.APIStatusError) -> float | None:
    value = exc.response.headers.get("retry-after")
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None  # an HTTP date; the exponential backoff is good enough
    return seconds if math.isfinite(seconds) and seconds >= 0 else None

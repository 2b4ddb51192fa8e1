"""Errors of the agent package: the LLM client, its replay cache and the discovery loop.

Third-party exceptions (``openai``, ``sqlite3``) are wrapped here at the package edge, so the CLI prints one
line for each and callers never import ``openai`` to catch them.
"""

from __future__ import annotations


class AgentError(Exception):
    """Base class of every error raised by ``sld.agent``."""


class LLMResponseError(AgentError):
    """The endpoint answered, but unusably: too large, not a chat completion, or the request was rejected."""


class LLMUnavailable(AgentError):  # noqa: N818 (the name the agent loop and the CLI use)
    """No reply can be had: endpoint unreachable after retries, credentials refused, or no cached reply."""


class LLMBudgetExhausted(LLMUnavailable):
    """The run's LLM budget (calls or tokens) is spent; no further request is sent."""


class ReplayCacheError(AgentError):
    """The replay cache file cannot be opened, read or written."""

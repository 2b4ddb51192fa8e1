"""Errors raised by ``sld.search``; the CLI prints any ``SearchError`` as a one-line message."""

from __future__ import annotations


class SearchError(Exception):
    """Base class of the errors raised by ``sld.search``."""


class ExpressionError(SearchError):
    """A law expression was rejected (unsafe, malformed, or not evaluable).

    Parameters
    ----------
    reason : str
        Why it was rejected, phrased so that a proposer (human or LLM) can fix it.
    text : str or None, default None
        The offending text, if the expression came from a string (shown truncated).
    """

    def __init__(self, reason: str, text: str | None = None) -> None:
        self.reason = reason
        self.text = text
        if text is None:
            super().__init__(reason)
        else:
            shown = text if len(text) <= 80 else text[:77] + "..."
            super().__init__(f"cannot use law {shown!r}: {reason}")


class ClusterUnavailable(SearchError):  # noqa: N818 (a state, like the architecture's BackendUnavailable)
    """``--executor ray`` could not reach a Ray cluster (Ray missing, or no cluster at the address)."""

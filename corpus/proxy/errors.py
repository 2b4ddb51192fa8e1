"""Errors of the proxy trainer; they derive from :class:`sld.corpus.errors.CorpusError`."""

from __future__ import annotations

from sld.corpus.errors import CorpusError


class ProxyError(CorpusError):
    """A proxy sweep or run that cannot go on: unknown preset, mismatched sweep folder, missing torch."""

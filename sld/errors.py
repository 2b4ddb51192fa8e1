"""The domain error bases of every package, so the CLI can print them as one-line messages."""

from __future__ import annotations

from sld.corpus.errors import CorpusError
from sld.search.errors import SearchError
from sld.tasks.errors import TaskError

DOMAIN_ERRORS: tuple[type[Exception], ...] = (CorpusError, SearchError, TaskError)

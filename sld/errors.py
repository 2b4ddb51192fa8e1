"""The domain error bases of every package, so the CLI can print them as one-line messages."""

from __future__ import annotations

from sld.agent.errors import AgentError
from sld.corpus.errors import CorpusError
from sld.report.errors import ReportError
from sld.search.errors import SearchError
from sld.tasks.errors import TaskError

DOMAIN_ERRORS: tuple[type[Exception], ...] = (AgentError, CorpusError, ReportError, SearchError, TaskError)

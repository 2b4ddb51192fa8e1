"""Errors of reports, comparisons and the benchmark gate (printed by the CLI as one-line messages)."""

from __future__ import annotations


class ReportError(Exception):
    """Base class: a run directory, result or baseline that cannot be read or compared."""


class RunDirectoryError(ReportError):
    """A run directory without the files ``sld discover --run-dir`` writes."""

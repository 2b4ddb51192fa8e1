"""Errors of the corpus package, and the did-you-mean helper their messages share.

Every message is one line that names the bad value and says how to fix it; the CLI prints it as
``error: <message>`` and exits with code 1.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class CorpusError(Exception):
    """Base class of every error raised by ``sld.corpus``."""


class SchemaError(CorpusError):
    """Data that does not fit the expected columns or values (missing column, NaN, non-positive...)."""


class CorpusNotFound(CorpusError):  # noqa: N818 (the name the architecture uses)
    """A file, folder or SLDBench task that is not where it was looked for."""


class UnknownTaskError(CorpusError):
    """A task name that is not one of the SLDBench tasks."""


class UnsupportedFormatError(CorpusError):
    """A data file whose suffix names no format that ``load_table`` reads."""


class HubError(CorpusError):
    """A download from the Hugging Face hub that failed, or was not allowed (offline mode)."""


def closest_name(name: str, choices: Iterable[str]) -> str | None:
    """Return the choice closest to ``name``, or ``None`` when none is close.

    Parameters
    ----------
    name : str
        The name that was not found.
    choices : iterable of str
        The valid names.

    Returns
    -------
    str or None
        A choice equal up to case, else the only choice that contains ``name``, else the closest by
        ``difflib.get_close_matches`` (cutoff 0.6).

    Examples
    --------
    >>> closest_name("lossx", ["N", "D", "loss"])
    'loss'
    >>> closest_name("vocab", ["vocab_scaling_law", "moe_scaling_law"])
    'vocab_scaling_law'

    """
    options = list(choices)
    folded = [option for option in options if option.casefold() == name.casefold()]
    if folded:
        return folded[0]
    # A prefix such as 'vocab' is far from 'vocab_scaling_law' by edit ratio, yet means it.
    containing = [option for option in options if name and name.casefold() in option.casefold()]
    if len(containing) == 1:
        return containing[0]
    matches = difflib.get_close_matches(name, options, n=1, cutoff=0.6)
    return matches[0] if matches else None

"""Errors of the tasks package: unknown tasks and bad task definitions."""

from __future__ import annotations


class TaskError(Exception):
    """Base class of every error raised by ``sld.tasks``."""


class TaskNotFound(TaskError):  # noqa: N818 -- the name STYLE.md gives
    """A task name that is not one of the known tasks."""


class TaskDefinitionError(TaskError):
    """A generic task built from CLI flags that cannot work (no features, budget below one...)."""

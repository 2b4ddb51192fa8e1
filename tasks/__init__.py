"""What to discover: the SLDBench tasks, generic user tasks, and the human-derived laws."""

from sld.tasks.errors import TaskDefinitionError, TaskError, TaskNotFound
from sld.tasks.registry import generic_task, get_task, list_tasks, parse_monotone
from sld.tasks.task import Task

__all__ = ["Task", "TaskDefinitionError", "TaskError", "TaskNotFound", "generic_task", "get_task", "list_tasks",
           "parse_monotone"]

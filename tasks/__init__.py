"""Tasks on the shared backbone. Importing this package registers every built-in task."""

from . import (
    classification,  # noqa: F401  (registers the task)
    detection,  # noqa: F401  (registers the task)
    dogs,  # noqa: F401  (registers the task)
    face_attributes,  # noqa: F401  (registers the task)
)
from .base import TASKS, Task, get_task, register_task

__all__ = ["TASKS", "Task", "get_task", "register_task"]

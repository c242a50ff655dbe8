"""Tasks on the shared backbone. Importing this package registers every built-in task."""
from .base import TASKS, Task, get_task, register_task
from . import classification  # noqa: F401  (registers the task)
from . import detection  # noqa: F401  (registers the task)
from . import dogs  # noqa: F401  (registers the task)
from . import face_attributes  # noqa: F401  (registers the task)

__all__ = ["TASKS", "Task", "get_task", "register_task"]

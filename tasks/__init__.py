"""Tasks on the shared backbone: the catalogue (light), the Task interface and one sub-package per task.

Importing this package imports no task code and no torch; :func:`get_task` loads a task on first use.
"""

from .registry import TASK_SPECS, TaskSpec, get_task, task_names, task_spec

__all__ = ["TASK_SPECS", "TaskSpec", "get_task", "task_names", "task_spec"]

# the task packages' own weights entries (light modules: data only, no torch)
from . import detection as _detection  # noqa: E402, F401
from . import face_attributes as _face_attributes  # noqa: E402, F401

"""Built-in registry entries (pure data; importing registers them)."""

from . import (
    detection,  # noqa: F401
    faces,  # noqa: F401
    mobilenet_v1,  # noqa: F401
)

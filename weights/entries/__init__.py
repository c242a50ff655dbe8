"""Built-in registry entries (pure data; importing registers them)."""
from . import mobilenet_v1  # noqa: F401
from . import detection  # noqa: F401
from . import faces  # noqa: F401

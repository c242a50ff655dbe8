"""Built-in registry entries (pure data; importing registers them).

One module per family. A task adding its own pretrained weights puts a module here that calls
``register_weights(WeightsEntry(..., task="detection", converter="tasks.detection.convert:fn"))``
(the converter is a dotted string, imported only when a file is converted) and imports it below,
so ``mnet weights list`` sees every entry without importing task code.
"""
from . import mobilenet_v1  # noqa: F401

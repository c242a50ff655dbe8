"""Built-in registry entries of the backbone (pure data; importing registers them). The task packages
register their own (``mnet.tasks.detection.pretrained``, ``mnet.tasks.face_attributes.imported`` and
``.pretrained``): entries whose converters are task code live with that code."""

from . import mobilenet_v1  # noqa: F401

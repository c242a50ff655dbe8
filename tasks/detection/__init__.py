"""SSD object detection on the shared MobileNetV1 backbone (registers the ``detection`` task)."""

from . import pretrained as _pretrained  # noqa: F401  (registers the imported SSD detectors)

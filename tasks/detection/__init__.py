"""SSD object detection on the shared MobileNetV1 backbone (registers the ``detection`` task)."""

from .model import SSD, SSDConfig, ssd_mobilenet_v1
from .task import DetectionTask

__all__ = ["SSD", "SSDConfig", "ssd_mobilenet_v1", "DetectionTask"]

"""SSD object detection on the shared MobileNetV1 backbone (registers the ``detection`` task)."""

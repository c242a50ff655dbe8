"""Fast inference: ONNX Runtime sessions, exports (self-contained ONNX, TorchScript), int8, and loading a
:class:`~mnet.tasks.inference.Predictor` for any weights on any runtime (``load``)."""

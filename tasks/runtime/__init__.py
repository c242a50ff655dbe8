"""Fast inference: ONNX / TorchScript export, one runtime interface (PyTorch | ONNX Runtime), int8."""

from .export import ExportMismatchError, ExportReport, export_onnx, export_torchscript, read_metadata, to_onnx_model
from .session import (
    RUNTIME_CHOICES,
    OnnxRuntime,
    Runtime,
    TorchRuntime,
    WithNetwork,
    available_runtimes,
    make_runtime,
    open_runtime,
    task_runtime,
)

__all__ = [
    "ExportMismatchError",
    "ExportReport",
    "export_onnx",
    "export_torchscript",
    "read_metadata",
    "to_onnx_model",
    "RUNTIME_CHOICES",
    "OnnxRuntime",
    "Runtime",
    "TorchRuntime",
    "available_runtimes",
    "make_runtime",
    "open_runtime",
    "WithNetwork",
    "task_runtime",
]

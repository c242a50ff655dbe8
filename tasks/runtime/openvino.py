"""OpenVINO (Intel's CPU runtime, optional extra ``openvino``) behind the same :class:`Runtime` interface.

It reads the suite's ONNX exports directly, fp32 and the int8 QDQ files of ``mnet export --int8`` alike
(its low-precision transformations turn the QuantizeLinear/DequantizeLinear pairs into int8 kernels).
Each input shape gets its own compiled model (static shapes compile to faster kernels than a dynamic
batch), made on first use and kept.

``precision="f32"`` (the default) keeps float layers in fp32, the arithmetic the export was checked
and its int8 accuracy recorded with. OpenVINO's own default on CPUs with bf16 instructions (AVX-512
BF16, AMX) is to run float layers in bfloat16: ``precision=None`` keeps that default — faster there,
but its results are not the ones the export measured.
"""

from __future__ import annotations

import importlib.util
import tempfile
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from torch import nn
from torch.utils import _pytree as pytree

from .export import OUTPUT_SPEC_KEY, read_metadata
from .session import Runtime

#: compiled models kept per runtime (one per input shape seen)
MAX_SHAPES = 4


def openvino_available() -> bool:
    return importlib.util.find_spec("openvino") is not None


@lru_cache(maxsize=1)
def _core() -> Any:
    import openvino as ov

    return ov.Core()


class OpenVinoRuntime(Runtime):
    """An OpenVINO CPU model from an ONNX file (or its bytes), latency-tuned, ``threads`` threads."""

    name = "openvino"

    def __init__(
        self,
        source: str | Path | bytes,
        *,
        threads: int | None = None,
        model: nn.Module | None = None,
        precision: str | None = "f32",
    ) -> None:
        if not openvino_available():
            raise ValueError("runtime 'openvino' is not installed (pip install 'mobilenet-suite[openvino]')")
        if isinstance(source, (str, Path)) and not Path(source).is_file():
            raise FileNotFoundError(f"{source}: no such ONNX file")
        label = "<onnx bytes>" if isinstance(source, bytes) else str(source)
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(source) if not isinstance(source, bytes) else Path(tmp) / "model.onnx"
            if isinstance(source, bytes):
                path.write_bytes(source)
            try:
                self.ov_model = _core().read_model(str(path))
            except Exception as e:  # OpenVINO raises its own exception types for unreadable files
                raise ValueError(f"{label}: OpenVINO cannot read it: {e}") from e
            meta = read_metadata(path)
        spec = pytree.treespec_loads(meta[OUTPUT_SPEC_KEY]) if OUTPUT_SPEC_KEY in meta else None
        super().__init__(threads=threads, model=model, spec=spec)
        self.metadata = meta
        self.precision = precision
        self._requests: dict[tuple[int, ...], Any] = {}

    def config(self) -> dict[str, Any]:
        """The compile options: latency hint, one stream, ``threads`` threads, the float precision."""
        cfg: dict[str, Any] = {"PERFORMANCE_HINT": "LATENCY", "NUM_STREAMS": 1}
        if self.threads is not None:
            cfg["INFERENCE_NUM_THREADS"] = self.threads
        if self.precision is not None:
            cfg["INFERENCE_PRECISION_HINT"] = self.precision
        return cfg

    def _request(self, shape: tuple[int, ...]) -> Any:
        req = self._requests.get(shape)
        if req is None:
            model = self.ov_model.clone()
            model.reshape({model.inputs[0].get_any_name(): list(shape)})
            compiled = _core().compile_model(model, "CPU", self.config())
            if len(self._requests) >= MAX_SHAPES:
                self._requests.pop(next(iter(self._requests)))
            req = self._requests[shape] = compiled.create_infer_request()
        return req

    def input_shape(self, batch: int = 1) -> tuple[int, ...]:
        """The model's input shape with ``batch`` for a dynamic batch (other dynamic sizes: an error)."""
        dims = self.ov_model.inputs[0].get_partial_shape()
        shape = [
            batch if i == 0 and d.is_dynamic else d.get_length() if d.is_static else -1 for i, d in enumerate(dims)
        ]
        if -1 in shape:
            raise ValueError(f"OpenVINO model input {dims} has dynamic sizes besides the batch")
        return tuple(shape)

    def compiled_precision(self) -> str:
        """The float precision OpenVINO actually runs with (after its own defaults): "f32", "bf16", ..."""
        hint = self._request(self.input_shape()).get_compiled_model().get_property("INFERENCE_PRECISION_HINT")
        return {"float32": "f32", "bfloat16": "bf16", "float16": "f16"}.get(hint.to_string(), hint.to_string())

    def run_flat(self, x: np.ndarray) -> list[np.ndarray]:
        req = self._request(tuple(x.shape))
        req.infer({0: x})
        return [np.array(req.get_output_tensor(i).data) for i in range(len(req.model_outputs))]

    def describe(self) -> str:
        return f"{self.name} ({self.threads or 'default'} threads, {self.precision or 'default precision'})"

"""ONNX Runtime sessions for the inference path, without torch: an exported file in, named outputs out.

``OrtSession(path)(x)`` → ``{output name: array}``, the session protocol of
:class:`~mnet.tasks.inference.Predictor`. The file's metadata (``mnet.*`` keys written by ``mnet export``)
says which task, output kind, input recipe and labels it carries; :func:`read_export_metadata` reads
them back, naming the file in every error.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

#: metadata keys ``mnet export`` writes, so an exported file predicts on its own
META_TASK = "mnet.task"
META_KIND = "mnet.output_kind"
META_PREPROCESS = "mnet.preprocess"
META_LABELS = "mnet.labels"
META_WEIGHTS = "mnet.weights"
META_MODEL_KWARGS = "mnet.model_kwargs"
#: the weights file an export was made from (sha256), so a cached export is never stale
META_SOURCE_SHA256 = "mnet.weights_sha256"


def session_options(threads: int | None = None, *, spin: bool = True) -> Any:
    """ONNX Runtime CPU options: all graph optimisations, sequential, ``threads`` intra-op threads;
    ``spin=False`` lets idle worker threads sleep (kinder to other work on a shared CPU)."""
    import onnxruntime as ort

    if threads is not None and threads < 1:
        raise ValueError(f"threads must be >= 1, got {threads}")
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.inter_op_num_threads = 1
    if threads is not None:
        so.intra_op_num_threads = threads
    if not spin:
        so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return so


class OrtSession:
    """An ONNX Runtime CPU session over an ONNX file (or its bytes) that returns named outputs."""

    name = "onnxruntime"

    def __init__(self, source: str | Path | bytes, *, threads: int | None = None, spin: bool = True) -> None:
        import onnxruntime as ort

        self.source = "<onnx bytes>" if isinstance(source, bytes) else str(source)
        if not isinstance(source, bytes) and not Path(source).is_file():
            raise FileNotFoundError(f"{source}: no such ONNX file")
        try:
            self.session = ort.InferenceSession(
                source if isinstance(source, bytes) else str(source),
                session_options(threads, spin=spin),
                providers=["CPUExecutionProvider"],
            )
        except Exception as e:  # ORT raises its own exception types for unreadable files
            raise ValueError(f"{self.source}: ONNX Runtime cannot load it: {e}") from e
        self.threads = threads
        self.input_name = self.session.get_inputs()[0].name
        self.input_shape = self.session.get_inputs()[0].shape
        self.output_names = [o.name for o in self.session.get_outputs()]
        self.metadata: dict[str, str] = dict(self.session.get_modelmeta().custom_metadata_map)

    def __call__(self, x: np.ndarray) -> dict[str, np.ndarray]:
        outs = self.session.run(None, {self.input_name: np.ascontiguousarray(x, dtype=np.float32)})
        return dict(zip(self.output_names, outs))

    def run_flat(self, x: np.ndarray) -> list[np.ndarray]:
        """The outputs in graph order (what an export check compares with PyTorch's)."""
        return list(self(x).values())

    def describe(self) -> str:
        return f"onnxruntime ({self.threads or 'default'} threads)"


@dataclass(frozen=True)
class ExportMetadata:
    """What an exported file says about itself (see the ``META_*`` keys)."""

    task: str
    kind: str
    preprocess: dict[str, Any]
    labels: list[str] | None
    weights: str | None
    model_kwargs: dict[str, Any]
    weights_sha256: str | None


def read_export_metadata(meta: Mapping[str, str], source: str) -> ExportMetadata:
    """Parse an exported file's ``mnet.*`` metadata; errors name ``source`` and the missing key."""
    missing = [k for k in (META_TASK, META_KIND, META_PREPROCESS) if k not in meta]
    if missing:
        raise ValueError(
            f"{source}: not a self-contained suite export (no {', '.join(missing)} in its metadata); "
            "export it with `mnet export`"
        )
    try:
        return ExportMetadata(
            task=meta[META_TASK],
            kind=meta[META_KIND],
            preprocess=json.loads(meta[META_PREPROCESS]),
            labels=json.loads(meta[META_LABELS]) if META_LABELS in meta else None,
            weights=meta.get(META_WEIGHTS),
            model_kwargs=json.loads(meta.get(META_MODEL_KWARGS, "{}")) or {},
            weights_sha256=meta.get(META_SOURCE_SHA256),
        )
    except json.JSONDecodeError as e:
        raise ValueError(f"{source}: its mnet metadata is not valid JSON: {e}") from e


def read_metadata(path: str | Path) -> dict[str, str]:
    """The ``metadata_props`` of an ONNX file (task, recipe, labels, int8 accuracy record, ...)."""
    import onnx

    proto = onnx.load(str(path), load_external_data=False)
    return {p.key: p.value for p in proto.metadata_props}


def onnxruntime_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("onnxruntime") is not None and importlib.util.find_spec("onnx") is not None


def openvino_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("openvino") is not None


def _graph_output_names(path: str | Path) -> list[str]:
    import onnx

    return [o.name for o in onnx.load(str(path), load_external_data=False).graph.output]


class OvSession:
    """An OpenVINO CPU model compiled from an exported ONNX file (latency hint, ``threads`` threads), with
    the same named-outputs call as :class:`OrtSession` (the session protocol of the Predictor)."""

    name = "openvino"

    def __init__(self, path: str | Path, *, threads: int | None = None) -> None:
        import openvino as ov

        config: dict[str, Any] = {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_PRECISION_HINT": "f32"}
        if threads:
            config["INFERENCE_NUM_THREADS"] = int(threads)
        self.source, self.threads = str(path), threads
        self.model = ov.Core().compile_model(str(path), "CPU", config)
        # the graph's own output names, in order (OpenVINO's "any name" of a tensor may be another alias)
        self.output_names = [
            next((n for n in graph if n in o.get_names()), o.get_any_name())
            for o, graph in zip(self.model.outputs, [_graph_output_names(path)] * len(self.model.outputs))
        ]
        self.request = self.model.create_infer_request()

    def __call__(self, x: np.ndarray) -> dict[str, np.ndarray]:
        out = self.request.infer({0: np.ascontiguousarray(x, dtype=np.float32)})
        return {name: np.asarray(out[o]) for name, o in zip(self.output_names, self.model.outputs)}

    def describe(self) -> str:
        return f"openvino ({self.threads or 'default'} threads)"

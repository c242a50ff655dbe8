"""Export a task model to ONNX (opset ≥ 17, dynamic batch) or TorchScript, checked against PyTorch.

The ONNX graph is made inference-ready at export time: BatchNorm is folded into the preceding conv
(the exporter's eval-mode peephole), constant sub-graphs are folded (ONNX Runtime's portable
"basic" optimisation level, standard ops only), and every zero ``Pad`` in front of a ``Conv`` — TF
"SAME" padding, which PyTorch expresses as ``F.pad`` because its convs only pad symmetrically — is
merged into the conv's own (possibly asymmetric) ``pads``. The result is one Conv + Clip per layer.
"""

from __future__ import annotations

import io
import json
import tempfile
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn
from torch.utils import _pytree as pytree

from .onnx import read_metadata  # noqa: F401  (re-exported: export and read back live together)

if TYPE_CHECKING:
    from .session import Runtime

#: lowest ONNX opset we emit (Pad with tensor inputs, LayerNorm-era ops; ORT ≥ 1.14 runs it)
MIN_OPSET = 17
#: metadata key holding the model output's pytree structure, so a runtime can rebuild tuples/dicts
OUTPUT_SPEC_KEY = "mnet.output_spec"
#: exported outputs must match PyTorch to this relative tolerance (max |Δ| / max |reference|)
DEFAULT_RTOL = 1e-3


@dataclass(frozen=True)
class ExportReport:
    """What an export wrote and how closely the exported model reproduced PyTorch."""

    path: str
    format: str
    n_check_inputs: int
    max_abs_diff: float
    max_rel_diff: float
    top1_agreement: float | None = None
    #: int8 exports: the accuracy change measured on held-out photos (``int8_accuracy.Int8Accuracy.summary``),
    #: or why none was recorded
    int8_accuracy: str | None = None

    def summary(self) -> str:
        s = (
            f"{self.format} written to {self.path}; checked on {self.n_check_inputs} input(s): "
            f"max |Δ| {self.max_abs_diff:.3g} (relative {self.max_rel_diff:.3g})"
        )
        if self.top1_agreement is not None:
            s += f", top-1 agreement {self.top1_agreement:.1%}"
        if self.int8_accuracy:
            s += f"\n{self.int8_accuracy}"
        return s


class ExportMismatchError(ValueError):
    """The exported model's outputs differ from PyTorch's beyond the tolerance."""


def flat_outputs(outputs: Any) -> tuple[list[np.ndarray], pytree.TreeSpec]:
    """Flatten a model output (tensor, tuple, dict, ...) into numpy arrays plus its structure."""
    leaves, spec = pytree.tree_flatten(outputs)
    return [
        leaf.detach().cpu().numpy() if isinstance(leaf, torch.Tensor) else np.asarray(leaf) for leaf in leaves
    ], spec


def _output_names(outputs: Any, spec: pytree.TreeSpec) -> list[str]:
    """A dict of tensors (an inference network's named outputs) keeps its keys; others are numbered."""
    if isinstance(outputs, dict) and all(isinstance(v, torch.Tensor) for v in outputs.values()):
        return [str(k) for k in outputs]
    if spec.num_leaves == 1:
        return ["output"]
    return [f"output_{i}" for i in range(spec.num_leaves)]


def fold_pads_into_convs(model: onnx.ModelProto) -> int:  # noqa: F821
    """Merge each constant-zero spatial ``Pad`` whose only consumer is a ``Conv`` into the conv's
    ``pads`` attribute; returns how many were merged. Pads must already be initializers."""
    import onnx
    from onnx import numpy_helper

    graph = model.graph
    inits = {t.name: t for t in graph.initializer}
    consumers: dict[str, list] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    graph_outputs = {o.name for o in graph.output}
    removed = []
    for node in graph.node:
        if node.op_type != "Pad" or node.output[0] in graph_outputs:
            continue
        mode = next((a.s.decode() for a in node.attribute if a.name == "mode"), "constant")
        users = consumers.get(node.output[0], [])
        if mode != "constant" or len(users) != 1 or users[0].op_type != "Conv" or node.input[1] not in inits:
            continue
        if len(node.input) > 2 and node.input[2]:
            value = inits.get(node.input[2])
            if value is None or np.any(numpy_helper.to_array(value) != 0):
                continue
        if len(node.input) > 3 and node.input[3]:  # explicit axes: leave it alone
            continue
        pads = numpy_helper.to_array(inits[node.input[1]]).astype(int).tolist()
        rank = len(pads) // 2
        begin, end = pads[:rank], pads[rank:]
        if rank < 3 or any(begin[:2]) or any(end[:2]) or min(pads) < 0:
            continue  # pads on batch/channel axes, or cropping: not a conv padding
        conv = users[0]
        attr = next((a for a in conv.attribute if a.name == "pads"), None)
        if any(a.name == "auto_pad" and a.s not in (b"", b"NOTSET") for a in conv.attribute):
            continue
        old = list(attr.ints) if attr is not None else [0] * (2 * (rank - 2))
        k = rank - 2
        new = [old[i] + begin[2 + i] for i in range(k)] + [old[k + i] + end[2 + i] for i in range(k)]
        if attr is None:
            conv.attribute.append(onnx.helper.make_attribute("pads", new))
        else:
            del attr.ints[:]
            attr.ints.extend(new)
        conv.input[0] = node.input[0]
        removed.append(node)
    for node in removed:
        graph.node.remove(node)
    used = {name for node in graph.node for name in node.input}
    for init in [t for t in graph.initializer if t.name not in used]:
        graph.initializer.remove(init)
    return len(removed)


def _ort_basic_optimise(model_bytes: bytes) -> onnx.ModelProto:  # noqa: F821
    """Constant folding, Conv+BN/Conv+Add fusion, dead-node removal: ONNX Runtime's "basic" level,
    which emits standard ONNX ops only, so the saved graph stays portable."""
    import onnx
    import onnxruntime as ort

    with tempfile.TemporaryDirectory() as tmp:
        out = str(Path(tmp) / "optimised.onnx")
        so = ort.SessionOptions()
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
        so.optimized_model_filepath = out
        so.intra_op_num_threads = 1
        ort.InferenceSession(model_bytes, so, providers=["CPUExecutionProvider"])
        return onnx.load(out)


def to_onnx_model(
    model: nn.Module,
    example: torch.Tensor,
    *,
    opset: int = MIN_OPSET,
    dynamic_batch: bool = True,
    metadata: dict[str, str] | None = None,
) -> onnx.ModelProto:  # noqa: F821
    """Trace ``model`` (in eval mode) on ``example`` into an optimised ONNX model held in memory."""
    import onnx

    if opset < MIN_OPSET:
        raise ValueError(f"opset must be >= {MIN_OPSET}, got {opset}")
    model = model.eval()
    with torch.inference_mode():
        out = model(example)
    _, spec = pytree.tree_flatten(out)
    names = _output_names(out, spec)
    axes = {n: {0: "batch"} for n in ["input", *names]} if dynamic_batch else None
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer warnings about shape-dependent Python (TF SAME pads)
        torch.onnx.export(
            model,
            (example,),
            buf,
            opset_version=opset,
            dynamo=False,
            input_names=["input"],
            output_names=names,
            dynamic_axes=axes,
            do_constant_folding=True,
            training=torch.onnx.TrainingMode.EVAL,
        )
    proto = _ort_basic_optimise(buf.getvalue())
    fold_pads_into_convs(proto)
    meta = {OUTPUT_SPEC_KEY: pytree.treespec_dumps(spec), **(metadata or {})}
    del proto.metadata_props[:]
    for key, value in meta.items():
        proto.metadata_props.add(key=key, value=str(value))
    onnx.checker.check_model(proto)
    return proto


def compare_outputs(reference: Sequence[np.ndarray], actual: Sequence[np.ndarray]) -> tuple[float, float, float | None]:
    """(max |Δ|, max |Δ| / max |reference|, top-1 agreement of the first output when it is (N, C) logits)."""
    if len(reference) != len(actual):
        raise ExportMismatchError(f"exported model has {len(actual)} outputs, PyTorch has {len(reference)}")
    abs_diff, rel_diff = 0.0, 0.0
    for ref, out in zip(reference, actual):
        if ref.shape != out.shape:
            raise ExportMismatchError(f"output shape {out.shape} differs from PyTorch's {ref.shape}")
        d = float(np.abs(ref.astype(np.float64) - out).max()) if ref.size else 0.0
        abs_diff = max(abs_diff, d)
        rel_diff = max(rel_diff, d / max(float(np.abs(ref).max()) if ref.size else 0.0, 1e-12))
    first_ref, first = reference[0], actual[0]
    agree = None
    if first_ref.ndim == 2 and first_ref.shape[1] > 1 and len(first_ref):
        agree = float((first_ref.argmax(1) == first.argmax(1)).mean())
    return abs_diff, rel_diff, agree


def export_onnx(
    model: nn.Module,
    path: str | Path,
    check_inputs: np.ndarray,
    *,
    opset: int = MIN_OPSET,
    rtol: float | None = DEFAULT_RTOL,
    metadata: dict[str, str] | None = None,
    dynamic_batch: bool = True,
) -> ExportReport:
    """Export ``model`` to an ONNX file with a dynamic batch axis and check it with ONNX Runtime.

    ``check_inputs`` is a preprocessed (N, 3, H, W) float32 batch of real images; H × W is fixed in
    the graph (TF SAME pads depend on it), the batch is not (unless ``dynamic_batch`` is False: a
    batch-1 graph, checked one image at a time). Raises :class:`ExportMismatchError` if the relative
    difference exceeds ``rtol`` (``None`` skips the tolerance, e.g. for int8).
    """
    from .session import OnnxRuntime

    x = _check_batch(check_inputs)
    proto = to_onnx_model(model, torch.from_numpy(x[:1]), opset=opset, metadata=metadata, dynamic_batch=dynamic_batch)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(proto.SerializeToString())
    return check_export(model, OnnxRuntime(path), x, path=path, fmt="onnx", rtol=rtol, batched=dynamic_batch)


def export_torchscript(
    model: nn.Module,
    path: str | Path,
    check_inputs: np.ndarray,
    *,
    rtol: float | None = DEFAULT_RTOL,
    dynamic_batch: bool = True,
) -> ExportReport:
    """Trace, freeze (folds BatchNorm into convs) and save a TorchScript module; check it on the inputs
    (one at a time only, for a batch-1 model: ``dynamic_batch=False``)."""
    from .session import TorchRuntime

    x = _check_batch(check_inputs)
    model = model.eval()
    with warnings.catch_warnings(), torch.inference_mode():
        warnings.simplefilter("ignore")
        scripted = torch.jit.freeze(torch.jit.trace(model, torch.from_numpy(x[:1]), strict=False))
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.jit.save(scripted, str(path))  # (deprecation warning: TorchScript still runs everywhere)
        loaded = torch.jit.load(str(path)).eval()
    return check_export(model, TorchRuntime(loaded), x, path=path, fmt="torchscript", rtol=rtol, batched=dynamic_batch)


def _per_image(run: Any, x: np.ndarray) -> list[np.ndarray]:
    """Each output of ``run`` (numpy batch → flat outputs) on one image at a time, concatenated."""
    return [np.concatenate(parts) for parts in zip(*(run(x[i : i + 1]) for i in range(len(x))))]


def check_export(
    model: nn.Module,
    session: Runtime,
    x: np.ndarray,
    *,
    path: Path,
    fmt: str,  # noqa: F821
    rtol: float | None,
    batched: bool = True,
) -> ExportReport:
    """Run PyTorch and the exported ``session`` on ``x`` one image at a time and (``batched``) in one batch."""
    model = model.eval()
    with torch.inference_mode():
        if batched:
            reference, _ = flat_outputs(model(torch.from_numpy(x)))
        else:  # a batch-1 model (e.g. detections after NMS: a different count per image)
            reference = _per_image(lambda xi: flat_outputs(model(torch.from_numpy(xi)))[0], x)
    actual = _per_image(session.run_flat, x)
    a, r, agree = compare_outputs(reference, actual)
    if batched:
        a2, r2, _ = compare_outputs(reference, session.run_flat(x))
        a, r = max(a, a2), max(r, r2)
    report = ExportReport(str(path), fmt, len(x), a, r, agree if batched else None)  # rows = images only if batched
    if rtol is not None and report.max_rel_diff > rtol:
        raise ExportMismatchError(
            f"{path}: exported {fmt} model differs from PyTorch: {report.summary()} > tolerance {rtol:g}"
        )
    return report


def _check_batch(x: np.ndarray) -> np.ndarray:
    x = np.ascontiguousarray(x, dtype=np.float32)
    if x.ndim != 4 or x.shape[1] != 3 or len(x) == 0:
        raise ValueError(f"check inputs must be a non-empty (N, 3, H, W) batch, got shape {x.shape}")
    return x


def write_metadata(path: str | Path, values: dict[str, str]) -> None:
    """Set (add or replace) ``metadata_props`` entries of an existing ONNX file, in place."""
    import onnx

    proto = onnx.load(str(path))
    kept = [(p.key, p.value) for p in proto.metadata_props if p.key not in values]
    del proto.metadata_props[:]
    for key, value in [*kept, *values.items()]:
        proto.metadata_props.add(key=key, value=value)
    onnx.save(proto, str(path))


def dumps_metadata(**values: Any) -> dict[str, str]:
    """Metadata values as strings (JSON for non-strings), for :func:`export_onnx`."""
    return {k: v if isinstance(v, str) else json.dumps(v) for k, v in values.items() if v is not None}

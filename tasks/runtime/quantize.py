"""Post-training static int8 quantization with ONNX Runtime (QDQ format, calibrated on real images).

Weights are int8, per output channel (a depthwise filter per channel has its own range: per-tensor
scales lose most of MobileNet's accuracy, Krishnamoorthi 2018 §3), activations uint8 (x86's u8 × s8
path); ranges come from running the fp32 model on real, preprocessed images.

Weights use 7 of their 8 bits (``reduce_range``) unless the CPU making the file has an int8 dot
product without saturation (VNNI, AMX): x86 CPUs without it (AVX2 only, e.g. the Zen 1 and Zen 3 these
VMs have exposed) multiply u8 × s8 pairs with ``vpmaddubsw``, whose 16-bit sums saturate with full-range
weights. Measured on MobileNetV1 1.0-224 on a Zen 1: top-1 agreement with fp32 fell to 65 % with full
range, 94 % with 7 bits. On a Zen 5 (AVX-512 VNNI), 7-bit weights cost accuracy for nothing: top-1 on
1,100 held-out ImageNet photos, fp32 → int8, was 67.09 → 65.55 % (7 bits) vs 67.45 % (8 bits) at 0.5-160,
75.00 → 73.55 vs 75.55 % at 0.75-192. The file records which it is (:data:`META_WEIGHT_BITS`); the
runtime choice does not run 8-bit files on CPUs without VNNI/AMX.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np

#: calibration methods ONNX Runtime offers, by the name used on the command line
CALIBRATION_METHODS = ("minmax", "percentile", "entropy")
#: metadata key: "7" (reduce_range, safe everywhere) or "8" (full range: needs VNNI/AMX on x86)
META_WEIGHT_BITS = "mnet.int8_weight_bits"


class _BatchReader:
    """ONNX Runtime ``CalibrationDataReader`` over an iterable of (N, 3, H, W) float32 batches."""

    def __init__(self, input_name: str, batches: Iterable[np.ndarray]) -> None:
        self.input_name = input_name
        self._it: Iterator[np.ndarray] = iter(batches)
        self.count = 0

    def get_next(self) -> dict[str, np.ndarray] | None:
        batch = next(self._it, None)
        if batch is None:
            return None
        self.count += len(batch)
        return {self.input_name: np.ascontiguousarray(batch, dtype=np.float32)}

    def __iter__(self):  # newer ORT versions iterate the reader
        while (item := self.get_next()) is not None:
            yield item


def quantize_onnx(
    fp32_model: str | Path | bytes,
    out_path: str | Path,
    calibration_batches: Iterable[np.ndarray],
    *,
    per_channel: bool = True,
    method: str = "minmax",
    reduce_range: bool | None = None,
) -> int:
    """Write an int8 QDQ model to ``out_path``; returns the number of calibration images used.

    ``fp32_model`` is an ONNX file or its bytes (as :func:`tasks.runtime.export.to_onnx_model`
    makes it: BatchNorm folded, pads merged). ``calibration_batches`` yields preprocessed real images.
    ``reduce_range`` None: 7-bit weights unless this CPU has VNNI/AMX (:func:`tasks.timing.has_int8_dot`).
    """
    import onnx
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quant_pre_process, quantize_static

    from mnet.tasks.timing import has_int8_dot

    methods = {
        "minmax": CalibrationMethod.MinMax,
        "percentile": CalibrationMethod.Percentile,
        "entropy": CalibrationMethod.Entropy,
    }
    if method not in methods:
        raise ValueError(f"unknown calibration method {method!r}; choose one of {', '.join(CALIBRATION_METHODS)}")
    if reduce_range is None:
        reduce_range = not has_int8_dot()
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "fp32.onnx"
        if isinstance(fp32_model, bytes):
            src.write_bytes(fp32_model)
        else:
            if not Path(fp32_model).is_file():
                raise FileNotFoundError(f"{fp32_model}: no such ONNX file")
            src.write_bytes(Path(fp32_model).read_bytes())
        prepped = Path(tmp) / "prepped.onnx"
        quant_pre_process(str(src), str(prepped), skip_symbolic_shape=True)
        model = onnx.load(str(prepped))
        reader = _BatchReader(model.graph.input[0].name, calibration_batches)
        out_path = Path(out_path)
        out_path.parent.mkdir(parents=True, exist_ok=True)
        quantize_static(
            str(prepped),
            str(out_path),
            reader,
            quant_format=QuantFormat.QDQ,
            per_channel=per_channel,
            reduce_range=reduce_range,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            calibrate_method=methods[method],
            # the convolutions, their activations (quantized after ReLU6: the range they feed on) and the
            # classifier; the decoding in the graph (softmax, box decoding, NMS) stays float
            op_types_to_quantize=["Conv", "Clip", "Relu", "GlobalAveragePool", "AveragePool", "Gemm", "MatMul"],
            extra_options={
                "ActivationSymmetric": False,
                "WeightSymmetric": True,
                "CalibPercentile": 99.999,
                "CalibTensorRangeSymmetric": False,
            },
        )
    if reader.count == 0:
        raise ValueError("no calibration images were given")
    # keep the exporter's metadata (output structure, task, resolution) on the int8 model
    src_meta = onnx.load(str(out_path))
    original = onnx.load_from_string(fp32_model) if isinstance(fp32_model, bytes) else onnx.load(str(fp32_model))
    del src_meta.metadata_props[:]
    for p in original.metadata_props:
        src_meta.metadata_props.add(key=p.key, value=p.value)
    src_meta.metadata_props.add(
        key="mnet.quantization",
        value=f"int8 QDQ static, {method}, {'per-channel' if per_channel else 'per-tensor'}, "
        f"{7 if reduce_range else 8}-bit weights, {reader.count} images",
    )
    src_meta.metadata_props.add(key=META_WEIGHT_BITS, value="7" if reduce_range else "8")
    onnx.save(src_meta, str(out_path))
    return reader.count

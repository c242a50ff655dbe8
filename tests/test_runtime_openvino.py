"""OpenVinoRuntime (optional extra ``openvino``): the same Runtime interface and results as ONNX Runtime."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from mnet.backbone import mobilenet_v1
from mnet.tasks.runtime.export import export_onnx, to_onnx_model
from mnet.tasks.runtime.quantize import quantize_onnx
from mnet.tasks.runtime.session import OnnxRuntime

pytest.importorskip("onnxruntime")
pytest.importorskip("openvino")

from mnet.tasks.runtime.openvino import OpenVinoRuntime  # noqa: E402


class TwoHeads(nn.Module):
    """Outputs a (tensor, tensor) tuple, like SSD's network (boxes, scores)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, stride=2, padding=1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        y = self.conv(x).relu()
        return y.mean((2, 3)), y.flatten(2).transpose(1, 2).softmax(-1)


def test_same_outputs_and_structure_as_onnxruntime(tmp_path):
    torch.manual_seed(0)
    x = np.random.default_rng(0).standard_normal((3, 3, 32, 32), dtype=np.float32)
    export_onnx(TwoHeads().eval(), tmp_path / "two.onnx", x)
    ov, ort = OpenVinoRuntime(tmp_path / "two.onnx", threads=1), OnnxRuntime(tmp_path / "two.onnx", threads=1)
    for batch in (1, 3, 1):  # a new shape compiles once; the first is reused
        a, b = ov.run(x[:batch]), ort.run(x[:batch])
        assert isinstance(a, tuple) and len(a) == 2
        for u, v in zip(a, b):
            assert u.shape == v.shape and np.allclose(u, v, atol=1e-4)
    assert len(ov._requests) == 2
    out = ov(torch.from_numpy(x))  # torch in → torch out, like the model
    assert isinstance(out[0], torch.Tensor) and out[0].shape == (3, 8)
    assert ov.describe() == "openvino (1 threads, f32)" and ov.compiled_precision() == "f32"


def test_reads_bytes_and_int8_qdq_files(tmp_path):
    torch.manual_seed(0)
    model = mobilenet_v1(alpha=0.25, resolution=64, num_classes=5).eval()
    fp32 = to_onnx_model(model, torch.zeros(1, 3, 64, 64)).SerializeToString()
    cal = [np.random.default_rng(i).standard_normal((4, 3, 64, 64), dtype=np.float32) for i in range(2)]
    quantize_onnx(fp32, tmp_path / "q.onnx", cal)
    x = cal[0]
    assert np.allclose(OpenVinoRuntime(fp32).run(x), OnnxRuntime(fp32).run(x), atol=1e-4)
    ov8, ort8 = OpenVinoRuntime(tmp_path / "q.onnx").run(x), OnnxRuntime(tmp_path / "q.onnx").run(x)
    assert ov8.shape == ort8.shape == (4, 5) and np.isfinite(ov8).all()
    # both run the same quantized graph: the same few int8 steps apart at most, far below the logits' spread
    assert np.abs(ov8 - ort8).max() < 0.25 * np.abs(ort8).max()


def test_errors_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.onnx"):
        OpenVinoRuntime(tmp_path / "nope.onnx")
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a model")
    with pytest.raises(ValueError, match="bad.onnx: OpenVINO cannot read it"):
        OpenVinoRuntime(bad)

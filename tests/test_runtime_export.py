"""ONNX / TorchScript export: graph shape (BN folded, pads merged, dynamic batch) and checked outputs."""

from __future__ import annotations

import collections

import numpy as np
import pytest
import torch
from torch import nn

from mnet.backbone import mobilenet_v1
from mnet.tasks.runtime.export import (
    MIN_OPSET,
    OUTPUT_SPEC_KEY,
    ExportMismatchError,
    export_onnx,
    export_torchscript,
    read_metadata,
    to_onnx_model,
)
from mnet.tasks.runtime.session import OnnxRuntime

onnx = pytest.importorskip("onnx")


def small(**kw) -> nn.Module:
    torch.manual_seed(0)
    model = mobilenet_v1(alpha=0.25, resolution=96, num_classes=10, **kw).eval()
    with torch.no_grad():  # non-trivial BatchNorm statistics, so folding them is actually tested
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
    return model


def batch(n: int = 3, res: int = 96) -> np.ndarray:
    return np.random.default_rng(0).standard_normal((n, 3, res, res), dtype=np.float32)


def op_counts(proto) -> collections.Counter:
    return collections.Counter(n.op_type for n in proto.graph.node)


def test_onnx_graph_is_folded_and_batch_dynamic(tmp_path):
    model = small()
    report = export_onnx(model, tmp_path / "m.onnx", batch())
    proto = onnx.load(str(tmp_path / "m.onnx"))
    ops = op_counts(proto)
    assert "BatchNormalization" not in ops and "Pad" not in ops, ops
    assert ops["Conv"] == 27 and ops["Clip"] == 27
    assert max(o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")) >= MIN_OPSET
    dim0 = proto.graph.input[0].type.tensor_type.shape.dim[0]
    assert dim0.dim_param and not dim0.dim_value
    assert report.max_rel_diff < 1e-4 and report.top1_agreement == 1.0
    # any batch size runs and matches PyTorch
    x = batch(5)
    with torch.no_grad():
        ref = model(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(OnnxRuntime(tmp_path / "m.onnx").run(x), ref, rtol=1e-4, atol=1e-4 * np.abs(ref).max())


def test_tf_same_pads_become_asymmetric_conv_pads():
    proto = to_onnx_model(small(), torch.zeros(1, 3, 96, 96))
    pads = [list(a.ints) for n in proto.graph.node if n.op_type == "Conv" for a in n.attribute if a.name == "pads"]
    assert [0, 0, 1, 1] in pads  # stride-2 3×3 on an even input: 0 before, 1 after (TF "SAME")
    assert [1, 1, 1, 1] in pads  # stride 1: symmetric
    sym = to_onnx_model(small(padding="symmetric"), torch.zeros(1, 3, 96, 96))
    assert "Pad" not in op_counts(sym)


def test_mismatch_is_reported(tmp_path):
    class Drifting(nn.Module):  # traces one way, runs another: the export check must notice
        def __init__(self):
            super().__init__()
            self.calls = 0

        def forward(self, x):
            self.calls += 1
            return x.mean((2, 3)) * (1.0 if self.calls <= 2 else 2.0)

    with pytest.raises(ExportMismatchError, match="differs from PyTorch"):
        export_onnx(Drifting(), tmp_path / "d.onnx", batch(2, 32))


def test_structured_outputs_round_trip(tmp_path):
    class TwoHeads(nn.Module):
        def __init__(self):
            super().__init__()
            self.body = small()

        def forward(self, x):
            f = self.body.forward_features(x)
            return {"boxes": f[:, :4].flatten(2), "scores": (self.body.forward_head(f),)}

    model = TwoHeads().eval()
    export_onnx(model, tmp_path / "two.onnx", batch(2))
    assert OUTPUT_SPEC_KEY in read_metadata(tmp_path / "two.onnx")
    out = OnnxRuntime(tmp_path / "two.onnx")(torch.from_numpy(batch(2)))
    assert set(out) == {"boxes", "scores"} and isinstance(out["scores"], tuple)
    assert isinstance(out["boxes"], torch.Tensor) and out["scores"][0].shape == (2, 10)


def test_torchscript_export(tmp_path):
    report = export_torchscript(small(), tmp_path / "m.pt", batch(2))
    assert report.max_rel_diff < 1e-4
    loaded = torch.jit.load(str(tmp_path / "m.pt"))
    assert loaded(torch.from_numpy(batch(4))).shape == (4, 10)


def test_bad_inputs(tmp_path):
    with pytest.raises(ValueError, match="opset"):
        to_onnx_model(small(), torch.zeros(1, 3, 96, 96), opset=13)
    with pytest.raises(ValueError, match=r"\(N, 3, H, W\)"):
        export_onnx(small(), tmp_path / "x.onnx", np.zeros((3, 96, 96), np.float32))

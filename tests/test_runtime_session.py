"""The Runtime interface: same results and structure in PyTorch and ONNX Runtime; choice and errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mnet.backbone import mobilenet_v1
from mnet.tasks import task_names
from mnet.tasks.runtime.compare import compare
from mnet.tasks.runtime.export import to_onnx_model
from mnet.tasks.runtime.session import OnnxRuntime, TorchRuntime, available_runtimes, make_runtime, open_runtime

pytest.importorskip("onnxruntime")


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return mobilenet_v1(alpha=0.25, resolution=64, num_classes=7).eval()


def test_auto_prefers_onnxruntime_and_matches_torch(model):
    assert available_runtimes()[0] == "onnxruntime"
    ort_rt = make_runtime(model, "auto", resolution=64, threads=1)
    torch_rt = make_runtime(model, "torch", resolution=64, threads=1)
    assert isinstance(ort_rt, OnnxRuntime) and isinstance(torch_rt, TorchRuntime)
    x = np.random.default_rng(0).standard_normal((2, 3, 64, 64), dtype=np.float32)
    ref = torch_rt.run(x)
    assert isinstance(ref, np.ndarray)
    np.testing.assert_allclose(ort_rt.run(x), ref, rtol=1e-4, atol=1e-4 * np.abs(ref).max())
    out = ort_rt(torch.from_numpy(x))  # drop-in for model(x): tensors in, tensors out
    assert isinstance(out, torch.Tensor) and out.shape == (2, 7)
    assert ort_rt.num_classes == 7  # unknown attributes come from the wrapped PyTorch model
    assert ort_rt.eval() is ort_rt


def test_channels_last_runtime_matches(model):
    x = np.random.default_rng(1).standard_normal((1, 3, 64, 64), dtype=np.float32)
    a = TorchRuntime(model).run(x)
    b = TorchRuntime(mobilenet_v1(alpha=0.25, resolution=64, num_classes=7).eval(), channels_last=True)
    b.model.load_state_dict(model.state_dict())
    np.testing.assert_allclose(b.run(x), a, rtol=1e-4, atol=1e-5)


def test_errors(model, tmp_path):
    with pytest.raises(ValueError, match="unknown runtime 'tensorrt'"):
        make_runtime(model, "tensorrt", resolution=64)
    with pytest.raises(ValueError, match="threads"):
        TorchRuntime(model, threads=0)
    with pytest.raises(FileNotFoundError, match="nope.onnx"):
        open_runtime(tmp_path / "nope.onnx")
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a model")
    with pytest.raises(ValueError, match="bad.onnx"):
        open_runtime(bad)
    (tmp_path / "m.xyz").write_bytes(b"")
    with pytest.raises(ValueError, match="not an .onnx file"):
        open_runtime(tmp_path / "m.xyz")
    with pytest.raises(AttributeError, match="no attribute"):
        _ = OnnxRuntime(to_onnx_model(model, torch.zeros(1, 3, 64, 64)).SerializeToString()).num_classes


def test_compare_runs_every_task_in_onnxruntime():
    rows = compare(None, (0.25,), (128,), warmup=1, runs=2, threads=1, progress=False, runtime="onnxruntime")
    assert [r.task for r in rows] == task_names()
    assert all(r.latency_ms_p50 > 0 for r in rows)
    # every task's inference network (network + decoding, NMS included) runs in ONNX Runtime
    assert {r.task: r.runtime for r in rows} == dict.fromkeys(task_names(), "onnxruntime")


def test_unexportable_model_error_names_it():
    class Unexportable(torch.nn.Module):  # an op ONNX has no symbol for
        def forward(self, x):
            return torch.linalg.svd(x.flatten(1) @ x.flatten(1).T).S

    with pytest.raises(ValueError, match="Unexportable cannot run in onnxruntime"):
        make_runtime(Unexportable(), "onnxruntime", resolution=8)
    with pytest.warns(UserWarning, match="runtime onnxruntime unavailable"):
        assert isinstance(make_runtime(Unexportable(), "auto", resolution=8), TorchRuntime)

"""mnet predict / export / eval on real images: the same answers from every runtime and exported file."""

from __future__ import annotations

import json

import numpy as np
import pytest

from mnet.apps.cli import main
from mnet.tasks import get_task
from mnet.tasks.runtime import OnnxRuntime
from mnet.tasks.runtime.predict import build_predictor, expand_images

pytest.importorskip("onnxruntime")
WEIGHTS = "mobilenet_v1_1.0_224.tfslim_in1k"


def test_default_postprocess_is_softmax_top_k():
    task = get_task("classification")
    logits = np.array([[0.0, 3.0, 1.0, 2.0], [5.0, 0.0, 0.0, 0.0]], np.float32)
    out = task.postprocess(logits, labels=["a", "b", "c", "d"], top_k=3)
    assert [t["label"] for t in out[0]["top_k"]] == ["b", "d", "c"]
    assert out[1]["top_k"][0]["index"] == 0
    probs = [t["prob"] for t in out[0]["top_k"]]
    assert probs == sorted(probs, reverse=True)
    np.testing.assert_allclose(probs[0], np.exp(3) / np.exp([0, 3, 1, 2]).sum(), rtol=1e-6)
    with pytest.raises(ValueError, match="3 labels for 4 classes"):
        task.postprocess(logits, labels=["a", "b", "c"])
    with pytest.raises(ValueError, match="expected \\(N, C\\) logits"):
        task.postprocess(np.zeros((1, 4, 2)))


def test_expand_images_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.jpg"):
        expand_images([tmp_path / "missing.jpg"])
    with pytest.raises(ValueError, match="no image files"):
        expand_images([tmp_path])


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """The real 1.0-224 weights exported to ONNX, checked on the shared sample photos."""
    from conftest import shared_path

    samples = shared_path("data", "samples")
    out = tmp_path_factory.mktemp("export") / "mnv1.onnx"
    assert (
        main(["export", "--weights", WEIGHTS, "--format", "onnx", "--out", str(out), "--check-images", str(samples)])
        == 0
    )
    return out


def test_predict_same_answer_in_torch_onnxruntime_and_exported_file(exported, shared, capsys):
    photo = str(shared("data", "samples", "coffee.png"))
    tops = []
    for extra in (
        ["--weights", WEIGHTS, "--runtime", "torch"],
        ["--weights", WEIGHTS, "--runtime", "onnxruntime"],
        ["--weights", str(exported)],
    ):
        assert main(["predict", "classification", photo, "--format", "json", *extra]) == 0
        (result,) = json.loads(capsys.readouterr().out)
        assert len(result["top_k"]) == 5
        tops.append(result["top_k"][0])
    assert {t["label"] for t in tops} == {"espresso"}
    np.testing.assert_allclose([t["prob"] for t in tops], tops[0]["prob"], atol=1e-3)


def test_predict_errors(exported, tmp_path, capsys):
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"not a jpeg")
    assert main(["predict", "classification", str(bad), "--weights", str(exported)]) == 2
    assert "bad.jpg" in capsys.readouterr().err
    assert main(["predict", "classification", str(bad), "--weights", str(exported), "--runtime", "torch"]) == 2
    assert "runs in onnxruntime, not torch" in capsys.readouterr().err


def test_exported_metadata_drives_eval(exported, shared):
    rt = build_predictor(None, str(exported)).runtime
    assert isinstance(rt, OnnxRuntime) and rt.metadata["mnet.task"] == "classification"
    result = get_task("classification").evaluate(
        rt,
        shared("data", "imagenet"),
        limit=16,
        progress=False,
        batch_size=8,
        preprocess=build_predictor(None, str(exported)).preprocess,
    )
    assert result["n"] == 16 and result["top1"] >= 50.0  # the real weights, not a random model


def test_numpy_preprocess_is_the_weights_recipe(shared):
    """The torch-free path (``Task.preprocess`` → ``Preprocess.to_array``) gives the recipe's own values."""
    from mnet.tasks.base import get_task
    from mnet.tasks.data.images import load_rgb
    from mnet.weights import Preprocess, get_entry

    recipes = [
        get_entry(WEIGHTS).preprocess,
        Preprocess(
            96,
            mean=(10.0, 20.0, 30.0),
            std=(2.0, 3.0, 4.0),
            color_order="BGR",
            crop_fraction=0.5,
            interpolation="tf_legacy_bilinear",
        ),
        Preprocess(96, color_order="BGR"),
    ]
    for spec in recipes:
        for name in ("grace_hopper.jpg", "chelsea.png", "t1.jpg", "coffee.png"):
            img = load_rgb(shared("data", "samples", name))
            x = get_task("classification").preprocess(img, spec)
            assert x.dtype == np.float32 and x.shape == (3, spec.resolution, spec.resolution) and x.flags.c_contiguous
            np.testing.assert_array_equal(x, spec(img).numpy())
            if spec.interpolation == "tf_legacy_bilinear":
                pixels = np.asarray(spec.crop(img), np.float64)
                want = (_tf1_bilinear_reference(pixels, spec.resolution) - spec.mean) / spec.std
                order = [2, 1, 0] if spec.color_order == "BGR" else [0, 1, 2]
                np.testing.assert_allclose(x, want.transpose(2, 0, 1)[order], atol=1e-4)


def _tf1_bilinear_reference(pixels: np.ndarray, size: int) -> np.ndarray:
    """TF1 resize_bilinear(align_corners=False), written out point by point (float64, 2-D gathers)."""
    h, w = pixels.shape[:2]
    ys, xs = np.arange(size) * (h / size), np.arange(size) * (w / size)
    y0, x0 = np.floor(ys).astype(int), np.floor(xs).astype(int)
    y1, x1 = np.minimum(y0 + 1, h - 1), np.minimum(x0 + 1, w - 1)
    fy, fx = (ys - y0)[:, None, None], (xs - x0)[None, :, None]
    p = lambda yy, xx: pixels[yy[:, None], xx[None, :]]
    return p(y0, x0) * (1 - fy) * (1 - fx) + p(y0, x1) * (1 - fy) * fx + p(y1, x0) * fy * (1 - fx) + p(y1, x1) * fy * fx

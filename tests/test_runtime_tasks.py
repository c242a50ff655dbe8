"""Every task on one mechanism: ``Task.network`` runs in ONNX Runtime, ``Task.with_network`` behaves like
the PyTorch model, exported files predict on their own (tasks/runtime, tasks/detection/network.py)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from mnet.apps.cli import main
from mnet.tasks import TASKS, get_task
from mnet.tasks.runtime import OnnxRuntime, make_runtime, task_runtime
from mnet.tasks.runtime.export import flat_outputs, read_metadata

pytest.importorskip("onnxruntime")
SSD_WEIGHTS = "ssd_mobilenet_v1_0.75_300.tflite_coco_quant"


@pytest.mark.parametrize("name", sorted(TASKS))
def test_every_task_network_exports_and_matches_pytorch(name):
    """Invariant over the registry: the network of each task's model traces to ONNX, ONNX Runtime
    reproduces its outputs, and the task model built on it answers like the PyTorch model."""
    task = get_task(name)
    torch.manual_seed(0)
    model = task.build_model(alpha=0.25, resolution=64).eval()
    net = task.network(model)
    x = torch.randn(2, 3, 64, 64)
    with torch.inference_mode():
        ref, _ = flat_outputs(net(x))
    rt = make_runtime(net, "onnxruntime", resolution=64, threads=1)
    assert isinstance(rt, OnnxRuntime)
    out = rt.run_flat(x.numpy())
    assert len(out) == len(ref)
    for r, o in zip(ref, out):
        np.testing.assert_allclose(o, r, rtol=1e-4, atol=1e-4 * max(np.abs(r).max(), 1e-6))
    wrapped = task.with_network(model, rt)
    with torch.inference_mode():
        a, b = flat_outputs(task.inference_fn(model)(x))[0], flat_outputs(task.inference_fn(wrapped)(x))[0]
    assert [t.shape for t in a] == [t.shape for t in b]
    for r, o in zip(a, b):
        np.testing.assert_allclose(o, r, rtol=1e-4, atol=1e-4 * max(np.abs(r).max(), 1e-6))


@pytest.fixture(scope="module")
def ssd():
    """The TFLite SSD 0.75-300, converted from ../shared into the weights cache (later tests name it)."""
    from conftest import shared_path

    from mnet.weights import build_pretrained

    model, _ = build_pretrained(SSD_WEIGHTS, source=shared_path("weights", "tf_od_api"))
    return model


def coco_images(shared, n: int = 2) -> list:
    from mnet.tasks.runtime.predict import expand_images

    return expand_images([shared("data", "coco", "val2017")], limit=n)


def assert_same_detections(a: dict, b: dict) -> None:
    assert len(a["boxes"]) == len(b["boxes"]) > 0
    assert torch.equal(a["labels"], b["labels"])
    np.testing.assert_allclose(b["boxes"].numpy(), a["boxes"].numpy(), atol=0.05)  # pixels
    np.testing.assert_allclose(b["scores"].numpy(), a["scores"].numpy(), atol=1e-4)


def test_detection_in_onnxruntime_gives_pytorch_detections(ssd, shared):
    from mnet.tasks.data.images import load_rgb
    from mnet.tasks.detection.predict import detect

    images = [load_rgb(p) for p in coco_images(shared)]
    ort = task_runtime(get_task("detection"), ssd, "onnxruntime", resolution=300, threads=1)
    assert ort.name == "onnxruntime"
    for a, b in zip(detect(ssd, images), detect(ort, images)):  # detect() runs unchanged on the runtime
        assert_same_detections(a, b)


def test_exported_ssd_with_and_without_nms_predict_like_pytorch(ssd, shared, tmp_path, capsys):
    """``mnet export`` of the raw network and of the graph with NMS inside, each checked at export time,
    then predicting on its own (config from the file's metadata) like the PyTorch model."""
    from mnet.tasks.data.images import load_rgb
    from mnet.tasks.detection.predict import detect
    from mnet.tasks.runtime.predict import build_predictor, load_for_inference

    photos = coco_images(shared, 2)
    check = ["--check-images", *map(str, photos)]
    raw, nms = tmp_path / "ssd.onnx", tmp_path / "ssd_nms.onnx"
    assert main(["export", "--weights", SSD_WEIGHTS, "--out", str(raw), *check]) == 0
    assert main(["export", "--weights", SSD_WEIGHTS, "--out", str(nms), "--with-postprocess", *check]) == 0
    printed = capsys.readouterr().out
    assert printed.count("checked on 2 input(s)") == 2, printed
    import onnx

    ops = {n.op_type for n in onnx.load(str(nms)).graph.node}
    assert "NonMaxSuppression" in ops and "NonMaxSuppression" not in {n.op_type for n in onnx.load(str(raw)).graph.node}
    image = load_rgb(photos[0])
    (ref,) = detect(ssd, [image])
    for path in (raw, nms):
        m = load_for_inference(str(path))
        assert m.task == "detection" and m.model.nms_in_graph == (path == nms)
        assert_same_detections(ref, detect(m.model, [image])[0])
        (res,) = build_predictor(None, str(path)).predict_files([photos[0]])
        dets = res["detections"]
        assert [d["index"] for d in dets] == ref["labels"].tolist()
        assert all(isinstance(d["label"], str) and not d["label"].isdigit() for d in dets)  # names from metadata
        # predict's own resize (not the eval transform) moves boxes by a pixel or so at most
        np.testing.assert_allclose([d["box"] for d in dets], ref["boxes"].numpy(), atol=3.0)
    # a file without its model build (older exports) or with a wrong one: refused, naming the file
    proto = onnx.load(str(raw))
    for value, message in ((None, "needs its model config"), ('{"alpha": 0.75, "bogus": 1}', "unknown SSD option")):
        kept = [(p.key, p.value) for p in proto.metadata_props if p.key != "mnet.model_kwargs"]
        del proto.metadata_props[:]
        for k, v in kept + ([("mnet.model_kwargs", value)] if value else []):
            proto.metadata_props.add(key=k, value=v)
        bad = tmp_path / "bad.onnx"
        onnx.save(proto, str(bad))
        with pytest.raises(ValueError, match=f"bad.onnx: .*{message}"):
            load_for_inference(str(bad))
    # the file for another task: refused, naming the file and both tasks
    for cmd in (
        ["eval", "classification", "--weights", str(raw), "--data", str(shared("data", "samples"))],
        ["predict", "face_attributes", str(photos[0]), "--weights", str(raw)],
    ):
        assert main(cmd) == 2
        err = capsys.readouterr().err
        assert "ssd.onnx" in err and "exported for task 'detection', not" in err, err


def test_detection_export_and_postprocess_errors(ssd, shared, tmp_path, capsys):
    task = get_task("detection")
    with pytest.raises(ValueError, match="not an SSD network: 1 outputs"):
        task.postprocess([np.zeros((1, 10, 4), np.float32)], config=ssd.config.postprocess, image_sizes=[(8, 8)])
    with pytest.raises(ValueError, match="needs the model's NMS settings"):
        task.postprocess([np.zeros((1, 10, 4), np.float32), np.zeros((1, 10, 3), np.float32)], image_sizes=[(8, 8)])
    with pytest.raises(ValueError, match="no postprocessing to put inside the graph"):
        get_task("classification").export_network(torch.nn.Identity(), with_postprocess=True)
    code = main(["export", "--weights", SSD_WEIGHTS, "--out", str(tmp_path / "x.onnx"), "--int8", "--with-postprocess"])
    assert code == 2 and "without --with-postprocess" in capsys.readouterr().err


def test_face_attributes_postprocess_is_per_attribute_sigmoid():
    task = get_task("face_attributes")
    logits = np.array([[2.0, 2.0, -1.0]], np.float32)  # a softmax would give 0.49 / 0.49 / 0.02
    (res,) = task.postprocess(logits, labels=["Smiling", "Young", "Bald"], **task.postprocess_options(None))
    probs = {a["label"]: a["prob"] for a in res["attributes"]}
    np.testing.assert_allclose([probs["Smiling"], probs["Young"], probs["Bald"]], 1 / (1 + np.exp([-2.0, -2.0, 1.0])))
    assert [a["present"] for a in res["attributes"]] == [True, True, False]
    with pytest.raises(ValueError, match="2 attribute names for 3 outputs"):
        task.postprocess(logits, labels=["a", "b"])
    age_gender = task.build_model(alpha=0.25, resolution=64, head="age_gender")
    (ag,) = task.postprocess(np.zeros((1, 101), np.float32), **task.postprocess_options(age_gender))
    assert ag["age"] == pytest.approx(49.5) and ag["gender_score"] == pytest.approx(0.5)


def test_eval_face_attributes_in_onnxruntime_matches_torch(shared, tmp_path, capsys):
    """``mnet eval face_attributes --runtime onnxruntime`` on real CelebA photos: PyTorch's metrics."""
    from mnet.tasks.face_attributes import CELEBA_ATTRIBUTES
    from mnet.weights.store import save_weights

    torch.manual_seed(0)
    model = get_task("face_attributes").build_model(alpha=0.25, resolution=64)
    path = save_weights(
        tmp_path / "fa.safetensors",
        model.state_dict(),
        {
            "task": "face_attributes",
            "arch": "mobilenet_v1",
            "labels": list(CELEBA_ATTRIBUTES),
            "model_kwargs": {"alpha": 0.25, "resolution": 64},
            "preprocess": {"resolution": 64, "mean": [127.5] * 3, "std": [127.5] * 3, "crop_fraction": 1.0},
        },
    )
    reports = {}
    for runtime in ("torch", "onnxruntime"):
        assert (
            main(
                [
                    "eval",
                    "face_attributes",
                    "--weights",
                    str(path),
                    "--data",
                    str(shared("data", "celeba")),
                    "--limit",
                    "16",
                    "--runtime",
                    runtime,
                    "--format",
                    "json",
                ]
            )
            == 0
        )
        reports[runtime] = json.loads(capsys.readouterr().out)
    t, o = reports["torch"], reports["onnxruntime"]
    assert t["runtime"].startswith("torch") and o["runtime"].startswith("onnxruntime") and t["n"] == o["n"] == 16
    assert o["mean_ap"] == pytest.approx(t["mean_ap"], abs=1e-6) and o["mean_accuracy"] == pytest.approx(
        t["mean_accuracy"]
    )


def test_detection_int8_export_keeps_coco_ap(ssd, shared, tmp_path, capsys):
    """``mnet export --int8`` for SSD, calibrated on COCO train2017: AP on a val2017 slice near fp32's
    (``ssd`` converts the weights into the cache first)."""
    coco = shared("data", "coco")
    out = tmp_path / "ssd_int8.onnx"
    assert (
        main(
            [
                "export",
                "--weights",
                SSD_WEIGHTS,
                "--int8",
                "--out",
                str(out),
                "--calibration-count",
                "32",
                "--calibration-images",
                str(coco / "train2017"),
                "--accuracy-count",
                "32",
                "--check-images",
                *map(str, coco_images(shared)),
            ]
        )
        == 0
    )
    printed = capsys.readouterr().out
    assert "onnx int8 written" in printed and "int8 ΔAP" in printed and "on 32 COCO val2017 photos" in printed
    record = json.loads(read_metadata(out)["mnet.int8_accuracy"])  # what the runtime choice reads
    assert (
        record["metric"] == "AP"
        and record["n"] == 32
        and record["delta"] == pytest.approx(record["int8"] - record["fp32"], abs=0.01)
    )
    aps = {}
    for w in (SSD_WEIGHTS, str(out)):
        assert (
            main(["eval", "detection", "--weights", w, "--data", str(coco), "--limit", "32", "--format", "json"]) == 0
        )
        aps[w] = json.loads(capsys.readouterr().out)["AP"]
    assert aps[str(out)] > aps[SSD_WEIGHTS] - 0.03, aps

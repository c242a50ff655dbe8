"""The one inference path: every task's network + decoding runs the same in PyTorch, ONNX Runtime and an
exported file, on real photos; ``mnet predict`` uses pretrained defaults; boxes are in the photo's pixels."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from mnet.apps.cli import main
from mnet.tasks import get_task, task_names
from mnet.tasks.decode import NonFiniteOutputError, decode
from mnet.tasks.inference import Predictor, TorchSession
from mnet.tasks.runtime.load import load_face_pipeline, load_predictor, model_session
from mnet.weights import Preprocess

pytest.importorskip("onnxruntime")

#: every kind of model the tasks build: (task, build keywords)
MODELS = [
    ("classification", {}),
    ("dogs", {}),
    ("detection", {}),
    ("face_attributes", {"head": "attributes"}),
    ("face_attributes", {"head": "age_gender"}),
    ("face_attributes", {"head": "retinaface"}),
]


def iou(a, b) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def assert_same_results(a, b, *, prob_tol: float = 1e-4, iou_min: float = 0.99) -> None:
    """Two results of the same photo agree: same classes in order with close probabilities, or boxes
    and faces matched one to one with IoU ≥ ``iou_min``."""
    assert a.size == b.size and a.kind == b.kind
    if a.classes is not None:
        assert [c.label for c in a.classes[:1]] == [c.label for c in b.classes[:1]]
        for x, y in zip(a.classes, b.classes):
            if x.label == y.label:
                assert abs(x.score - y.score) <= prob_tol
    items_a, items_b = a.boxes or a.faces or [], b.boxes or b.faces or []
    assert len(items_a) == len(items_b)
    for x, y in zip(items_a, items_b):
        assert iou(x.box, y.box) >= iou_min and abs(x.score - y.score) <= 1e-3


def test_registered_tasks_are_the_catalogue():
    assert task_names() == ["classification", "dogs", "detection", "face_attributes"]
    for name in task_names():
        assert get_task(name).name == name
    with pytest.raises(ValueError, match="did you mean 'detection'"):
        get_task("detecton")


@pytest.mark.parametrize("task_name, kwargs", MODELS, ids=[f"{t}-{k.get('head', '')}" for t, k in MODELS])
def test_every_model_decodes_the_same_in_torch_and_onnxruntime(task_name, kwargs):
    """Invariant over every kind of model: the inference network (network + decoding) exports to ONNX,
    and ONNX Runtime's outputs decode to the same results as PyTorch's."""
    import torch

    task = get_task(task_name)
    torch.manual_seed(0)
    res = 128
    model = task.build_model(alpha=0.25, resolution=res, **kwargs).eval()
    with torch.no_grad():  # break the ties of a fresh init (equal scores would make NMS order arbitrary)
        for param in model.parameters():
            param.add_(0.05 * torch.randn_like(param))
    kind = task.output_kind(model)
    photos = [Image.fromarray(np.random.default_rng(i).integers(0, 255, (96, 140, 3), dtype=np.uint8)) for i in (1, 2)]
    answers = []
    for runtime in ("torch", "onnxruntime"):
        session = model_session(task, model, runtime, resolution=res, threads=1)
        outputs = session(Preprocess(res).to_array(photos[0])[None])
        assert set(outputs) >= set(("probs",) if kind in ("classes", "attributes") else outputs)
        p = Predictor(task_name, kind, session, Preprocess(res), None, "random", score_threshold=0.0)
        answers.append([p.decoded(Preprocess(res).to_array(im)[None], [p.frame(*im.size)]) for im in photos])
    for a, b in zip(*answers):
        assert len(a) == len(b)
        if kind in ("classes", "attributes"):
            assert [x.index for x in a[0]] == [x.index for x in b[0]]
            np.testing.assert_allclose([x.score for x in a[0]], [x.score for x in b[0]], atol=1e-5)
        elif kind == "age_gender":
            assert a[0][1] == b[0][1] and abs(a[0][0] - b[0][0]) < 1e-3
        else:
            assert len(a[0]) == len(b[0])
            for x, y in zip(a[0], b[0]):
                assert iou(x.box, y.box) > 0.999


def test_non_finite_outputs_are_an_error():
    with pytest.raises(NonFiniteOutputError, match="my.safetensors.*NaN"):
        decode("classes", {"probs": np.full((1, 3), np.nan, np.float32)}, model="my.safetensors", labels=None)
    with pytest.raises(ValueError, match="lack"):
        decode("boxes", {"boxes": np.zeros((0, 4))}, model="x", frames=[])


# -- pretrained, on real photos -------------------------------------------------------------------------
REAL = {
    "classification": ("samples", "grace_hopper.jpg"),
    "dogs": ("samples", "chelsea.png"),
    "detection": ("coco", "val2017", "000000000139.jpg"),
}


@pytest.fixture(scope="module")
def photos():
    from conftest import shared_path

    return {t: Image.open(shared_path("data", *parts)).convert("RGB") for t, parts in REAL.items()}


@pytest.mark.parametrize("task", list(REAL))
def test_pytorch_onnxruntime_and_exported_file_agree_on_real_photos(task, photos, shared, tmp_path):
    shared("weights")
    photo = photos[task]
    torch_p = load_predictor(task, runtime="torch", notify=None)
    ort_p = load_predictor(task, runtime="onnxruntime", check_photos=[photo], notify=None)
    assert ort_p.session.name == "onnxruntime" and torch_p.session.name == "torch"
    out = tmp_path / f"{task}.onnx"
    assert main(["export", task, "--out", str(out), "--check-images", str(shared("data", *REAL[task]))]) == 0
    file_p = load_predictor(weights=str(out), notify=None)
    assert file_p.task == task and file_p.labels == torch_p.labels
    ref = torch_p.predict(photo)
    assert ref.classes or ref.boxes
    for other in (ort_p, file_p):
        assert_same_results(ref, other.predict(photo))


def test_face_pipeline_same_in_torch_and_onnxruntime(shared):
    shared("weights")
    img = Image.open(shared("data", "samples", "t1.jpg")).convert("RGB")
    a = load_face_pipeline(runtime="torch", attributes=None, notify=None).predict(img)
    b = load_face_pipeline(runtime="onnxruntime", attributes=None, check_photos=[img], notify=None).predict(img)
    assert len(a.faces) == 6
    assert_same_results(a, b, iou_min=0.99)
    for x, y in zip(a.faces, b.faces):
        assert x.gender == y.gender and abs(x.age - y.age) < 0.1


def test_predict_uses_pretrained_defaults(shared, capsys):
    shared("weights")
    assert main(["predict", "classification", str(shared("data", "samples", "grace_hopper.jpg"))]) == 0
    out, err = capsys.readouterr()
    assert "military uniform" in out and "mobilenet_v1_1.0_224.tfslim_in1k" in err
    assert (
        main(["predict", "detection", str(shared("data", "coco", "val2017", "000000000139.jpg")), "--format", "json"])
        == 0
    )
    (r,) = json.loads(capsys.readouterr().out)
    names = {b["label"] for b in r["boxes"]}
    assert names & {"chair", "tv", "person", "dining table"} and not any(n.isdigit() for n in names)


def test_boxes_are_in_the_photos_pixels(photos, tmp_path):
    """The same photo at twice its size gives the same boxes, twice as large."""
    small = photos["detection"]
    big = small.resize((small.width * 2, small.height * 2), Image.BICUBIC)
    p = load_predictor("detection", notify=None)
    a, b = p.predict(small), p.predict(big)
    assert b.size == big.size and a.boxes
    matched = [max(iou([2 * v for v in x.box], y.box) for y in b.boxes) for x in a.boxes[:5]]
    assert min(matched) > 0.9


def test_a_large_jpeg_decoded_at_reduced_scale_gives_boxes_in_its_full_pixels(photos, tmp_path):
    """JPEGs much larger than the network input decode at 1/2, 1/4 or 1/8 scale (PIL draft): the boxes
    still come out in the file's own pixels."""
    small = photos["detection"]
    big_path = tmp_path / "big.jpg"
    small.resize((small.width * 4, small.height * 4), Image.BICUBIC).save(big_path, quality=95)
    p = load_predictor("detection", notify=None)
    a, b = p.predict(small), p.predict_file(big_path)
    assert b.size == (small.width * 4, small.height * 4)
    matched = [max(iou([4 * v for v in x.box], y.box) for y in b.boxes) for x in a.boxes[:5]]
    assert min(matched) > 0.8


def test_random_weights_only_when_asked(shared, capsys, tmp_path):
    photo = str(shared("data", "samples", "grace_hopper.jpg"))
    assert main(["predict", "classification", photo, "--random-weights", "--format", "json"]) == 0
    out, err = capsys.readouterr()
    assert "RANDOM weights" in err and json.loads(out)[0]["model"] == "random weights (untrained)"


def test_predict_errors_name_the_problem(shared, tmp_path, capsys):
    photo = str(shared("data", "samples", "grace_hopper.jpg"))
    assert main(["predict", "clasification", photo]) == 2
    assert "unknown task 'clasification'" in capsys.readouterr().err
    ts = tmp_path / "model.pt"
    ts.write_bytes(b"PK\x03\x04 not really")
    assert main(["predict", photo, "--weights", str(ts)]) == 2
    assert "not loaded" in capsys.readouterr().err
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"\xff\xd8 truncated")
    assert main(["predict", "classification", photo, str(bad), "--format", "json"]) == 1
    captured = capsys.readouterr()
    assert len(json.loads(captured.out)) == 1 and "bad.jpg" in captured.err and "1 of 2" in captured.err
    with pytest.raises(SystemExit) as e:
        main(["predict", "classification", photo, "--top-k", "-3"])
    assert e.value.code == 2 and "must be in [1, 1000], got -3" in capsys.readouterr().err


def test_weights_of_another_task_are_refused(shared, capsys):
    shared("weights")
    with pytest.raises(ValueError, match="for task 'classification', not 'detection'"):
        load_predictor("detection", "mobilenet_v1_1.0_224.tfslim_in1k", notify=None)
    with pytest.raises(ValueError, match="expected attributes weights"):
        load_face_pipeline(attributes="faceres_mobilenet_v1_1.0_224.age_gender", notify=None)


def test_torch_session_runs_the_inference_network():
    task = get_task("classification")
    model = task.build_model(alpha=0.25, resolution=64)
    out = TorchSession(task.inference_network(model))(np.zeros((2, 3, 64, 64), np.float32))
    assert set(out) == {"probs", "finite"} and out["probs"].shape == (2, 1000) and out["finite"].all()
    np.testing.assert_allclose(out["probs"].sum(1), 1.0, rtol=1e-5)


def test_offline_from_an_empty_cache_with_only_the_folder_of_originals(
    weights_sandbox, shared, tmp_path, capsys, monkeypatch
):
    """A new machine without internet: nothing cached, only ``$MNET_WEIGHTS_DIR`` naming the original files.
    Every command and the demo's every task convert what they need from there, export, and answer."""
    from mnet.apps.demo.models import WeightsChooser
    from mnet.apps.demo.pipeline import DemoPipeline

    monkeypatch.setenv("MNET_WEIGHTS_DIR", str(shared("weights")))
    assert WeightsChooser().tasks == ["classification", "dogs", "detection", "face_attributes"]  # nothing cached yet
    photos = {
        "classification": shared("data", "samples", "grace_hopper.jpg"),
        "dogs": shared("data", "samples", "chelsea.png"),
        "detection": shared("data", "coco", "val2017", "000000000139.jpg"),
        "face_attributes": shared("data", "samples", "face.jpg"),
    }
    for task, photo in photos.items():
        assert main(["predict", task, str(photo), "--format", "json"]) == 0, task
        (r,) = json.loads(capsys.readouterr().out)
        assert r.get("classes") or r.get("boxes") or r.get("faces"), task
    assert r["faces"] and all("age" in f and f["attributes"] for f in r["faces"])
    assert main(["faces", str(photos["face_attributes"]), "--detector", "retinaface"]) == 0
    assert (
        main(["export", "detection", "--out", str(tmp_path / "ssd.onnx"), "--check-images", str(photos["detection"])])
        == 0
    )
    capsys.readouterr()
    chooser = WeightsChooser()
    assert chooser.tasks == list(photos)
    demo = DemoPipeline(chooser)
    frame = np.asarray(Image.open(photos["detection"]).convert("RGB"))
    results = demo.results(frame, list(photos), "1.0-224")
    assert [r.task for r in results] == list(photos) and results[2].boxes
    assert not list(weights_sandbox.root.glob("web/*"))  # nothing was downloaded


def test_export_never_overwrites_its_input_or_an_existing_file(shared, tmp_path, capsys):
    from mnet.tasks.pretrained import build_pretrained
    from mnet.weights.store import save_weights

    shared("weights")  # (the originals: skip without them)
    model, w = build_pretrained("mobilenet_v1_0.5_160.tflite_in1k_quant")
    weights = save_weights(tmp_path / "w.safetensors", model.state_dict(), dict(w.meta))
    before = weights.read_bytes()
    photo = str(shared("data", "samples", "grace_hopper.jpg"))
    assert main(["export", "--weights", str(weights), "--out", str(weights), "--check-images", photo]) == 2
    assert "overwrite the input weights" in capsys.readouterr().err and weights.read_bytes() == before
    out = tmp_path / "w.onnx"
    out.write_bytes(b"someone's file")
    assert main(["export", "--weights", str(weights), "--out", str(out), "--check-images", photo]) == 2
    assert "--overwrite" in capsys.readouterr().err and out.read_bytes() == b"someone's file"
    assert main(["export", "--weights", str(weights), "--out", str(out), "--check-images", photo, "--overwrite"]) == 0
    assert load_predictor(weights=str(out), notify=None).labels == w.labels
    with pytest.raises(SystemExit):
        main(["eval", "classification", "--data", str(tmp_path), "--limit", "0"])
    assert "must be >= 1, got 0" in capsys.readouterr().err


def test_predict_timing_says_which_runtime_ran_and_why(shared, capsys):
    """``--runtime auto`` runs the per-machine choice (ONNX Runtime or OpenVINO, fp32 or a cached int8
    export with a good accuracy record) and ``--timing`` says which ran and why."""
    photo = str(shared("data", "samples", "grace_hopper.jpg"))
    assert main(["predict", "classification", photo, "--timing"]) == 0
    err = capsys.readouterr().err
    assert "overhead_over_model" in err and "why this runtime: " in err
    assert ("onnxruntime fp32" in err) or ("openvino" in err)


def test_int8_export_into_the_cache_joins_the_runtime_choice(shared, capsys):
    """``mnet export --int8 --cache`` puts an int8 file with its accuracy record beside the cached export;
    ``mnet predict`` (runtime auto) then times it against fp32 and says which ran and why."""
    from mnet.tasks.runtime.load import cached_export, int8_sibling

    name = "mobilenet_v1_0.5_160.tflite_in1k_quant"
    code = main(
        ["export", "classification", "--weights", name, "--int8", "--cache", "--calibration-count", "16",
         "--accuracy-count", "100", "--check-images", str(shared("data", "samples", "grace_hopper.jpg"))]
    )  # fmt: skip
    assert code == 0 and "int8 Δtop-1" in capsys.readouterr().out
    int8 = int8_sibling(cached_export("classification", name, notify=None))
    assert int8.is_file()
    p = load_predictor("classification", name, notify=None)
    assert "int8" in p.runtime_reason  # timed as a candidate (or named as left out, with the reason)
    assert p.predict(Image.open(shared("data", "samples", "grace_hopper.jpg"))).classes

"""Imported face models: RetinaFace priors/decoding against biubug6's reference loops, the converters, and
the faces-in-the-wild pipeline on the sample photos (every face found, each with an age and a gender)."""

from __future__ import annotations

import json
import math
from itertools import product

import numpy as np
import pytest
import torch

from mnet.tasks.face_attributes.retinaface import (
    MIN_SIZES,
    STEPS,
    VARIANCES,
    RetinaFace,
    decode_boxes,
    decode_landmarks,
    priors,
)


def reference_priors(h: int, w: int, min_sizes=MIN_SIZES, steps=STEPS) -> list[list[float]]:
    """biubug6 layers/functions/prior_box.py, PriorBox.forward, verbatim in logic."""
    anchors = []
    for k, f in enumerate([[math.ceil(h / s), math.ceil(w / s)] for s in steps]):
        for i, j in product(range(f[0]), range(f[1])):
            for min_size in min_sizes[k]:
                s_kx, s_ky = min_size / w, min_size / h
                cx, cy = (j + 0.5) * steps[k] / w, (i + 0.5) * steps[k] / h
                anchors += [[cx, cy, s_kx, s_ky]]
    return anchors


@pytest.mark.parametrize("hw", [(640, 640), (355, 512), (97, 130)])
def test_priors_match_reference(hw):
    ours = priors(*hw)
    ref = torch.tensor(reference_priors(*hw), dtype=torch.float32)
    assert ours.shape == ref.shape
    torch.testing.assert_close(ours, ref)


def test_prior_counts_and_first_values():
    p = priors(640, 640)
    assert len(p) == (80 * 80 + 40 * 40 + 20 * 20) * 2 == 16800
    torch.testing.assert_close(p[0], torch.tensor([4 / 640, 4 / 640, 10 / 640, 10 / 640]))
    torch.testing.assert_close(p[1], torch.tensor([4 / 640, 4 / 640, 20 / 640, 20 / 640]))
    torch.testing.assert_close(p[-1], torch.tensor([624 / 640, 624 / 640, 256 / 640, 256 / 640]))


def test_decoding_matches_reference_formulas():
    pri = torch.tensor([[0.5, 0.5, 0.1, 0.2], [0.25, 0.75, 0.4, 0.4]])
    loc = torch.tensor([[0.0, 0.0, 0.0, 0.0], [1.0, -2.0, math.log(2) / 0.2, 0.0]])
    boxes = decode_boxes(loc, pri)
    # zero offsets → the prior itself; otherwise centre += loc·0.1·size, size ·= exp(loc·0.2)
    torch.testing.assert_close(boxes[0], torch.tensor([0.45, 0.4, 0.55, 0.6]))
    cx, cy, bw, bh = 0.25 + 0.1 * 0.4, 0.75 - 0.2 * 0.4, 0.8, 0.4
    torch.testing.assert_close(boxes[1], torch.tensor([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2]))
    lm = decode_landmarks(torch.arange(10, dtype=torch.float32).repeat(2, 1), pri)
    assert lm.shape == (2, 5, 2)
    torch.testing.assert_close(lm[0, 2], torch.tensor([0.5 + 4 * VARIANCES[0] * 0.1, 0.5 + 5 * VARIANCES[0] * 0.2]))


def test_retinaface_shapes_any_alpha():
    model = RetinaFace(alpha=0.25, resolution=128).eval()
    loc, logits, lm = model(torch.zeros(1, 3, 96, 128))
    n = len(priors(96, 128))
    assert loc.shape == (1, n, 4) and logits.shape == (1, n, 2) and lm.shape == (1, n, 10)


def _ensure(name: str, source) -> None:
    from mnet.weights import cached_path, fetch_and_convert

    if not cached_path(name).exists():
        fetch_and_convert(name, source=source)


@pytest.fixture
def face_models(shared):
    faces = shared("weights", "faces")
    for name in (
        "faceres_mobilenet_v1_1.0_224.age_gender",
        "retinaface_mobilenet_v1_0.25_640.biubug6_widerface",
        "ssd_mobilenet_v1_1.0_512.faceapi_faces",
    ):
        _ensure(name, faces)
    _ensure("mobilenet_v1_1.0_224.tfslim_in1k", shared("weights", "tfslim"))  # the default attribute entry's base
    return faces


def test_retinaface_conversion_keeps_every_tensor(face_models):
    from mnet.weights import load_weights

    src = torch.load(face_models / "retinaface_mobilenet0.25_Final.pth", map_location="cpu", weights_only=True)
    ours = load_weights("retinaface_mobilenet_v1_0.25_640.biubug6_widerface").state_dict
    src = {k: v for k, v in src.items() if not k.endswith("num_batches_tracked")}
    assert len(ours) == len(src)
    torch.testing.assert_close(ours["body.layers.13.pw.conv.weight"], src["body.stage3.1.3.weight"])
    torch.testing.assert_close(ours["body.layers.0.bn.running_var"], src["body.stage1.0.1.running_var"])
    torch.testing.assert_close(ours["LandmarkHead.2.conv1x1.bias"], src["LandmarkHead.2.conv1x1.bias"])


def test_faceres_conversion(face_models):
    from mnet.tasks.pretrained import build_pretrained
    from mnet.weights.formats.tfjs import read_tfjs

    model, w = build_pretrained("faceres_mobilenet_v1_1.0_224.age_gender")
    tfjs = read_tfjs(face_models / "faceres-deep.json").weights
    torch.testing.assert_close(model.head.age.weight, torch.from_numpy(tfjs["age_pred/kernel"].T))
    assert w.preprocess.color_order == "BGR" and w.preprocess.std == (1.0, 1.0, 1.0)
    # the folded-BN depthwise layer: conv, then ·mul + sub (checked on one channel against numpy)
    x = torch.randn(1, 64, 8, 8)
    dw = model.layers[2].dw
    y = dw.bn(dw.conv(torch.nn.functional.pad(x, (0, 1, 0, 1))))
    k = tfjs["conv_dw_2/depthwise_kernel"][:, :, 5, 0]
    xp = np.pad(x[0, 5].numpy(), ((0, 1), (0, 1)))
    ref = sum(k[i, j] * xp[i : i + 8 : 2, j : j + 8 : 2] for i in range(3) for j in range(3))
    ref = ref * tfjs["conv_dw_2_bn/batchnorm_1/mul"][5] + tfjs["conv_dw_2_bn/batchnorm_1/sub"][5]
    np.testing.assert_allclose(y[0, 5].detach().numpy(), ref, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("image, men, women", [("face.jpg", 3, 1), ("t1.jpg", 3, 3)])
@pytest.mark.parametrize("runtime", ["torch", "onnxruntime"])
def test_pipeline_finds_every_face_with_age_and_gender(face_models, shared, image, men, women, runtime):
    from mnet.tasks.runtime.load import load_face_pipeline

    faces = load_face_pipeline(runtime=runtime, notify=None).predict_file(shared("data", "samples", image)).faces
    assert len(faces) == men + women
    assert sum(f.gender == "male" for f in faces) == men
    assert all(5 < f.age < 80 and f.gender_score > 0.5 and len(f.attributes) == 5 for f in faces)
    assert all(f.box[2] > f.box[0] and f.box[3] > f.box[1] for f in faces)


def test_retinaface_agrees_with_the_ssd_on_t1(face_models, shared):
    from mnet.tasks.runtime.load import load_predictor

    img = load_rgb_shared(shared, "t1.jpg")
    ssd = load_predictor(None, "ssd_mobilenet_v1_1.0_512.faceapi_faces", notify=None).predict(img).boxes
    retina = load_predictor(None, "retinaface_mobilenet_v1_0.25_640.biubug6_widerface", notify=None).predict(img).boxes
    assert len(retina) == len(ssd) == 6
    for r in retina:
        assert max(iou(r.box, s.box) for s in ssd) > 0.5
        # landmarks (eyes, nose, mouth corners) lie on the face: near its box, eyes above the nose above the mouth
        (lx, ly), (rx, ry), (nx, ny), (mlx, mly), (mrx, mry) = r.keypoints
        x1, y1, x2, y2 = r.box
        gx, gy = 0.25 * (x2 - x1), 0.25 * (y2 - y1)
        assert all(x1 - gx <= x <= x2 + gx and y1 - gy <= y <= y2 + gy for x, y in r.keypoints)
        assert (ly + ry) / 2 < ny < (mly + mry) / 2 and lx < rx and mlx < mrx


def load_rgb_shared(shared, name: str):
    from mnet.tasks.data.images import load_rgb

    return load_rgb(shared("data", "samples", name))


def iou(a, b) -> float:
    ix, iy = max(0.0, min(a[2], b[2]) - max(a[0], b[0])), max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - ix * iy
    return ix * iy / union


def test_image_without_faces(face_models, tmp_path, capsys):
    from PIL import Image

    from mnet.apps.cli import main

    Image.new("RGB", (320, 240), (90, 140, 200)).save(tmp_path / "sky.png")
    assert main(["faces", str(tmp_path / "sky.png"), "--format", "json"]) == 0
    (res,) = json.loads(capsys.readouterr().out)
    assert res["faces"] == [] and res["size"] == [320, 240]
    (tmp_path / "nothing.txt").write_text("not an image")
    assert main(["faces", str(tmp_path / "nothing.txt")]) == 1
    assert "nothing.txt" in capsys.readouterr().err


def test_pipeline_with_your_own_attribute_weights(face_models, shared, tmp_path, capsys):
    """Attribute weights written by `mnet train` (any attribute names) plug into `mnet faces`."""
    from mnet.apps.cli import main
    from mnet.tasks import get_task
    from mnet.weights import save_weights

    names = ["Male", "Smiling", "Young"]
    model = get_task("face_attributes").build_model(alpha=0.25, resolution=64, num_attributes=3)
    meta = {
        "task": "face_attributes",
        "arch": "mobilenet_v1",
        "labels": names,
        "model_kwargs": {"alpha": 0.25, "resolution": 64, "num_attributes": 3},
        "preprocess": {"resolution": 64, "mean": [127.5] * 3, "std": [127.5] * 3},
    }
    path = save_weights(tmp_path / "attrs.safetensors", model.state_dict(), meta)
    photo = str(shared("data", "samples", "face.jpg"))
    assert main(["faces", photo, "--attributes", str(path), "--top-k", "2", "--format", "json"]) == 0
    (res,) = json.loads(capsys.readouterr().out)
    assert len(res["faces"]) == 4
    for f in res["faces"]:
        assert {"age", "gender", "gender_score"} <= set(f)
        assert len(f["attributes"]) == 2 and {a["label"] for a in f["attributes"]} <= set(names)
        assert f["attributes"][0]["score"] >= f["attributes"][1]["score"]
    # ImageNet classes are not face attributes
    assert main(["faces", photo, "--attributes", "mobilenet_v1_1.0_224.tfslim_in1k"]) == 2
    assert "expected attributes weights" in capsys.readouterr().err

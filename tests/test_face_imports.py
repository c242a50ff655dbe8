"""Imported face models: RetinaFace priors/decoding against biubug6's reference loops, the converters, and
the faces-in-the-wild pipeline on the sample photos (every face found, each with an age and a gender)."""

from __future__ import annotations

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
def test_pipeline_finds_every_face_with_age_and_gender(face_models, shared, image, men, women):
    from mnet.tasks.data.images import load_rgb
    from mnet.tasks.face_attributes.pipeline import FacePipeline

    faces = FacePipeline()(load_rgb(shared("data", "samples", image)))
    assert len(faces) == men + women
    assert sum(f.gender == "male" for f in faces) == men
    assert all(5 < f.age < 80 and f.gender_score > 0.5 for f in faces)
    boxes = torch.tensor([f.box for f in faces])
    assert (boxes[:, 2] > boxes[:, 0]).all() and (boxes[:, 3] > boxes[:, 1]).all()


def test_retinaface_agrees_with_the_ssd_on_t1(face_models, shared):
    from torchvision.ops import box_iou

    from mnet.tasks.data.images import load_rgb
    from mnet.tasks.detection.faces import detect_faces
    from mnet.tasks.face_attributes.retinaface import detect_faces_retina

    img = load_rgb(shared("data", "samples", "t1.jpg"))
    ssd, _ = detect_faces(img)
    r = detect_faces_retina(np.asarray(img))
    assert len(r.boxes) == len(ssd) == 6
    assert (box_iou(r.boxes, ssd).max(dim=1).values > 0.5).all()
    # landmarks (eyes, nose, mouth corners) lie on the face: near its box, eyes above the nose above the mouth
    lm, b = r.landmarks, r.boxes
    grow = 0.25 * (b[:, 2:] - b[:, :2])
    assert ((lm >= (b[:, None, :2] - grow[:, None])) & (lm <= (b[:, None, 2:] + grow[:, None]))).all()
    eyes_y, nose_y, mouth_y = lm[:, :2, 1].mean(1), lm[:, 2, 1], lm[:, 3:, 1].mean(1)
    assert ((eyes_y < nose_y) & (nose_y < mouth_y)).all()
    assert (lm[:, 0, 0] < lm[:, 1, 0]).all() and (lm[:, 3, 0] < lm[:, 4, 0]).all()


def test_image_without_faces(face_models, tmp_path):
    from PIL import Image

    from mnet.tasks import get_task

    Image.new("RGB", (320, 240), (90, 140, 200)).save(tmp_path / "sky.png")
    (res,) = get_task("face_attributes").predict_files([tmp_path / "sky.png"])
    assert res["faces"] == [] and res["size"] == [320, 240]
    with pytest.raises(ValueError, match="nothing.txt"):
        (tmp_path / "nothing.txt").write_text("not an image")
        get_task("face_attributes").predict_files([tmp_path / "nothing.txt"])


@pytest.mark.slow
def test_pipeline_attributes_and_demo_runner(face_models, shared, tmp_path):
    from mnet.apps.demo.runners import RUNNERS
    from mnet.tasks import get_task
    from mnet.tasks.data.images import load_rgb
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
    runner = RUNNERS["face_attributes"]("faceres_mobilenet_v1_1.0_224.age_gender", attributes=str(path), top_k=2)
    pred = runner(np.asarray(load_rgb(shared("data", "samples", "face.jpg"))), threshold=0.5)
    assert len(pred.detections) == 4
    for d in pred.detections:
        assert d.label.name == "face" and {"age", "gender", "gender_score"} <= set(d.properties)
        assert len(d.attributes) == 2 and {a.name for a in d.attributes} <= set(names)
        assert d.attributes[0].score >= d.attributes[1].score

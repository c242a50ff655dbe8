"""Golden tests of the imported official detectors: the TFLite COCO SSD against TFLite's own outputs,
and the face-api.js face detector on real photos."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from mnet.tasks.detection.convert import convert_tfjs_faceapi_ssd, convert_tflite_ssd
from mnet.tasks.detection.task import DetectionTask
from mnet.tasks.pretrained import model_predictor
from mnet.weights import get_entry


def _model(entry_name: str, converted):
    entry = get_entry(entry_name)
    model = DetectionTask().build_model(**entry.model_kwargs)
    missing, unexpected = model.load_state_dict(
        {k: torch.from_numpy(v) for k, v in converted.state_dict.items()}, strict=False
    )
    assert not unexpected and all(k.endswith("num_batches_tracked") for k in missing)
    return model.eval()


@pytest.fixture(scope="module")
def coco_ssd():
    from conftest import shared_path

    path = shared_path("weights", "tf_od_api", "ssd_mobilenet_v1_coco_quant.tflite")
    return _model("ssd_mobilenet_v1_0.75_300.tflite_coco_quant", convert_tflite_ssd(path))


def test_tflite_file_anchors_and_options(shared):
    meta = convert_tflite_ssd(shared("weights", "tf_od_api", "ssd_mobilenet_v1_coco_quant.tflite")).meta
    assert meta["num_anchors"] == 1917 and meta["anchors_max_abs_diff"] < 0.0033
    opts = meta["tflite_postprocess"]
    assert opts["max_detections"] == 10 and opts["num_classes"] == 90
    assert opts["nms_iou_threshold"] == pytest.approx(0.6)


def test_raw_outputs_match_tflite(coco_ssd, shared):
    """Our float model on the dequantized weights vs TFLite's uint8 outputs on 8 val2017 photos."""
    z = np.load(shared("golden", "tflite_ssd_mobilenet_v1_coco_quant.npz"))
    x = (torch.from_numpy(z["input_uint8"]).permute(0, 3, 1, 2).float() - 128) / 128
    with torch.no_grad():
        codes, logits, _ = coco_ssd.forward_raw(x)
    bs, bz = z["box_encodings_scale_zp"]
    cs, cz = z["class_scores_scale_zp"]
    box_steps = np.abs(codes.numpy()[..., [1, 0, 3, 2]] - (z["raw_box_encodings_uint8"] - bz) * bs) / bs
    score_steps = np.abs(torch.sigmoid(logits).numpy() - (z["raw_class_scores_uint8"] - cz) * cs) / cs
    # uint8 activations vs float: a few quantization steps, far less than one step on most values
    assert np.median(box_steps) < 0.5 and np.percentile(box_steps, 99) < 4
    assert np.median(score_steps) < 0.5 and np.percentile(score_steps, 99.9) < 3


def test_detections_match_tflite(coco_ssd, shared):
    """Confident TFLite detections (score ≥ 0.3) are among ours: same class, IoU ≥ 0.8, close score.
    (uint8 vs float rounding can flip which of two near-tied anchors survives NMS: allow a few.)"""
    from torchvision.ops import box_iou

    z = np.load(shared("golden", "tflite_ssd_mobilenet_v1_coco_quant.npz"))
    x = (torch.from_numpy(z["input_uint8"]).permute(0, 3, 1, 2).float() - 128) / 128
    dets = coco_ssd(x, image_sizes=[(1, 1)] * len(x))  # boxes normalised, as TFLite's (the raw SSD's own NMS)
    checked, found = 0, 0
    for i, d in enumerate(dets):
        assert len(d["boxes"]) == 10
        ref_boxes = torch.from_numpy(z["boxes"][i][:, [1, 0, 3, 2]])
        iou = box_iou(ref_boxes, d["boxes"])
        for k in np.flatnonzero(z["scores"][i] >= 0.3):
            same = (d["labels"] == int(z["classes"][i][k]) + 1) & (iou[k] >= 0.8)  # TFLite class c ↔ label c + 1
            checked += 1
            found += bool(same.any()) and (d["scores"][same] - float(z["scores"][i][k])).abs().min().item() < 0.05
    assert checked >= 20 and found >= 0.85 * checked, (found, checked)


def test_faceapi_detector_finds_faces(shared):
    converted = convert_tfjs_faceapi_ssd(shared("weights", "faces"))
    assert converted.meta["num_anchors"] == 5118 and converted.meta["anchors_max_abs_diff"] < 1e-5
    model = _model("ssd_mobilenet_v1_1.0_512.faceapi_faces", converted)
    entry = get_entry("ssd_mobilenet_v1_1.0_512.faceapi_faces")
    predictor = model_predictor("detection", model, entry.preprocess, labels=entry.label_list())
    for name, count in (("face.jpg", 4), ("t1.jpg", 6), ("grace_hopper.jpg", 1)):
        image = Image.open(shared("data", "samples", name)).convert("RGB")
        faces = predictor.predict(image).boxes
        assert len(faces) == count, name
        assert all(f.label == "face" and f.score >= 0.5 for f in faces)
        assert all(f.box[2] <= image.width and f.box[3] <= image.height and f.box[2] - f.box[0] > 10 for f in faces)

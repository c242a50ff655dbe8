"""COCO-format data: official layout, label mapping, bad annotations, augmentation, COCOeval."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from mnet.tasks.detection.data import CocoDetection, load_coco
from mnet.tasks.detection.metrics import coco_eval
from mnet.tasks.detection.transforms import EvalTransform, TrainTransform


def _dataset(tmp_path, annotations, images=None, categories=None, write_images=True):
    images = images or [
        {"id": 1, "file_name": "a.jpg", "width": 64, "height": 48},
        {"id": 2, "file_name": "b.jpg", "width": 64, "height": 48},
    ]
    categories = categories or [{"id": 7, "name": "cat"}, {"id": 3, "name": "dog"}]
    (tmp_path / "annotations").mkdir()
    (tmp_path / "train").mkdir()
    if write_images:
        for im in images:
            Image.new("RGB", (im["width"], im["height"]), (120, 60, 30)).save(tmp_path / "train" / im["file_name"])
    doc = {"images": images, "annotations": annotations, "categories": categories}
    (tmp_path / "annotations" / "instances_train.json").write_text(json.dumps(doc))
    return tmp_path


def _ann(aid, bbox, cat=7, image_id=1, crowd=0):
    return {"id": aid, "image_id": image_id, "category_id": cat, "bbox": bbox, "iscrowd": crowd, "area": 1.0}


def test_custom_categories_clipping_crowd_and_empty_images(tmp_path):
    root = _dataset(
        tmp_path,
        [
            _ann(1, [10, 10, 20, 20], cat=3),
            _ann(2, [-5, 30, 20, 30], cat=7),  # partly outside: clipped
            _ann(3, [70, 10, 5, 5]),  # wholly outside: dropped
            _ann(4, [10, 10, 0, 5]),  # zero width: dropped
            _ann(5, [0, 0, 30, 30], crowd=1),  # crowd: ignored
        ],
    )
    with pytest.warns(UserWarning, match=r"dropped 2 annotation\(s\) .*annotation id 3 .*, 4 "):
        ds = CocoDetection(root, "train")
    assert ds.category_ids == [3, 7] and ds.class_names == ["dog", "cat"] and len(ds) == 2
    assert ds.stats["clipped"] == 1 and ds.stats["invalid_dropped"] == 2 and ds.stats["crowd_ignored"] == 1
    assert ds.stats["empty_images"] == 1
    image, target = ds[0]
    assert image.shape == (48, 64, 3)
    assert target["labels"].tolist() == [1, 2]
    assert torch.allclose(target["boxes"], torch.tensor([[10.0, 10.0, 30.0, 30.0], [0.0, 30.0, 15.0, 48.0]]))
    _, empty = ds[1]
    assert empty["boxes"].shape == (0, 4)


@pytest.mark.parametrize(
    "bad, message",
    [
        (_ann(42, [1, 2, 3, 4], cat=99), "annotation id 42: unknown category_id 99"),
        (_ann(43, [1, float("nan"), 3, 4]), "annotation id 43: bbox has non-finite"),
        (_ann(44, [1, 2, 3]), "annotation id 44: bbox must be"),
        (_ann(45, [1, "x", 3, 4]), "annotation id 45: bbox has non-numeric"),
    ],
)
def test_bad_annotations_name_the_annotation(tmp_path, bad, message):
    root = _dataset(tmp_path, [_ann(1, [1, 1, 5, 5]), bad])
    with pytest.raises(ValueError, match=message):
        CocoDetection(root, "train")


def test_missing_images_are_named_or_skipped(tmp_path):
    root = _dataset(tmp_path, [_ann(1, [1, 1, 5, 5])])
    (root / "train" / "b.jpg").unlink()
    with pytest.raises(FileNotFoundError, match=r"b\.jpg \(image id 2\)"):
        CocoDetection(root, "train")
    with pytest.warns(UserWarning, match=r"skipping 1 image\(s\) .*b\.jpg \(image id 2\)"):
        ds = CocoDetection(root, "train", skip_missing=True)
    assert len(ds) == 1 and ds.stats["missing_images_skipped"] == 1
    with pytest.raises(FileNotFoundError, match="val2017"):
        CocoDetection(root, "val2017")


def test_transforms_keep_boxes_valid():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (240, 320, 3), dtype=np.uint8)
    boxes = np.array([[10, 20, 200, 220], [150, 30, 310, 120]], dtype=np.float32)
    labels = np.array([1, 2])
    x, b, l = EvalTransform(300)(image, boxes, labels)
    assert x.shape == (3, 300, 300) and -1.0 <= x.min() and x.max() <= 1.0
    assert np.allclose(b[0], [10 * 300 / 320, 20 * 300 / 240, 200 * 300 / 320, 220 * 300 / 240])
    tf = TrainTransform(128)
    for _ in range(10):
        x, b, l = tf(image, boxes, labels)
        assert x.shape == (3, 128, 128) and len(b) == len(l)
        assert (b[:, 2] > b[:, 0]).all() and (b[:, 3] > b[:, 1]).all() and (b >= 0).all() and (b <= 128).all()
        assert set(l.tolist()) <= {1, 2}


def test_real_coco_val2017(shared):
    root = shared("data", "coco")
    ds = CocoDetection(root, "val2017")
    assert len(ds) == 206 and ds.num_classes == 80
    assert ds.category_ids[0] == 1 and ds.category_ids[-1] == 90  # COCO's 90-id space, 80 used
    assert ds.stats["crowd_ignored"] == 21
    image, target = ds[0]
    assert image.ndim == 3 and target["boxes"].shape[1] == 4 and target["labels"].min() >= 1


def test_coco_eval_scores_ground_truth_as_perfect(shared):
    gt = load_coco(shared("data", "coco", "annotations", "instances_val2017.json"))
    ids = sorted(gt.getImgIds())[:20]
    results = [
        {"image_id": a["image_id"], "category_id": a["category_id"], "bbox": a["bbox"], "score": 1.0}
        for a in gt.loadAnns(gt.getAnnIds(imgIds=ids))
        if not a["iscrowd"]
    ]
    out = coco_eval(gt, results, ids)
    assert out["n"] == 20 and out["AP"] == pytest.approx(1.0, abs=1e-6)
    assert coco_eval(gt, [], ids)["AP"] == 0.0

"""SSD parts: anchors (golden: the official file's 1,917), box coder, matcher, loss, post-processing, model."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mnet.tasks.detection.anchors import AnchorConfig, generate_anchors
from mnet.tasks.detection.box_coder import BoxCoder, cxcywh_to_xyxy
from mnet.tasks.detection.convert import feature_shapes
from mnet.tasks.detection.loss import LossConfig, hard_negative_mask, ssd_loss
from mnet.tasks.detection.matcher import BACKGROUND, IGNORE, assign, match
from mnet.tasks.detection.model import ssd_mobilenet_v1
from mnet.tasks.detection.postprocess import PostprocessConfig, postprocess
from mnet.tasks.detection.task import DetectionTask

GOLDEN = ("golden", "tflite_ssd_mobilenet_v1_coco_quant.npz")


# -- anchors -------------------------------------------------------------------------------------------
def test_anchor_counts_tf_config():
    cfg = AnchorConfig()
    assert cfg.num_anchors_per_location() == [3, 6, 6, 6, 6, 6]
    assert feature_shapes(300) == [(19, 19), (10, 10), (5, 5), (3, 3), (2, 2), (1, 1)]
    assert len(generate_anchors(cfg, feature_shapes(300), (300, 300))) == 1917
    # face-api's 512×512 detector: 32²·3 + (16² + 8² + 4² + 2² + 1)·6
    assert len(generate_anchors(cfg, feature_shapes(512), (512, 512))) == 5118


def test_model_feature_maps_give_the_anchor_grid():
    model = ssd_mobilenet_v1(alpha=0.25, num_classes=3).eval()
    for size in (300, 129):
        feats = model.features(torch.zeros(1, 3, size, size))
        assert [tuple(f.shape[-2:]) for f in feats] == feature_shapes(size)


def test_anchors_equal_the_official_files(shared):
    z = np.load(shared(*GOLDEN))
    step = float(z["anchors_scale_zp"][0])
    ours = generate_anchors(AnchorConfig(), feature_shapes(300), (300, 300)).numpy()
    theirs = z["anchors_dequant_yxhw"][:, [1, 0, 3, 2]]  # (y, x, h, w) → (cx, cy, w, h)
    assert ours.shape == theirs.shape == (1917, 4)
    assert np.abs(ours - theirs).max() <= step / 2 + 1e-6  # equal up to the file's uint8 rounding


def test_anchors_non_square_are_square_in_pixels():
    a = generate_anchors(AnchorConfig(), [(19, 25), (10, 13), (5, 7), (3, 4), (2, 2), (1, 1)], (300, 400))
    # the aspect-1 anchor of the first map (scale 0.1 of the short side) is 30×30 pixels
    w_px, h_px = a[0, 2] * 400, a[0, 3] * 300
    assert torch.isclose(w_px, h_px) and torch.isclose(h_px, torch.tensor(30.0))


def test_anchor_config_rejects_bad_values():
    with pytest.raises(ValueError, match="aspect_ratios"):
        AnchorConfig(aspect_ratios=(1.0, -2.0))
    with pytest.raises(ValueError, match="6 layers"):
        generate_anchors(AnchorConfig(), [(19, 19)], (300, 300))


# -- box coder -----------------------------------------------------------------------------------------
def test_box_coder_round_trip():
    g = torch.Generator().manual_seed(0)
    anchors = torch.cat([torch.rand(500, 2, generator=g), torch.rand(500, 2, generator=g) * 0.5 + 0.05], 1)
    xy = torch.rand(500, 2, generator=g) * 0.6
    boxes = torch.cat([xy, xy + torch.rand(500, 2, generator=g) * 0.4 + 0.01], 1)
    coder = BoxCoder()
    codes = coder.encode(boxes, anchors)
    assert torch.allclose(coder.decode(codes, anchors), boxes, atol=1e-5)
    # an anchor's own box encodes to zero; scales 10, 10, 5, 5
    assert torch.allclose(coder.encode(cxcywh_to_xyxy(anchors), anchors), torch.zeros_like(anchors), atol=1e-5)
    shifted = cxcywh_to_xyxy(anchors + torch.tensor([0.0, 0.0, 0.0, 0.0]))
    shifted[:, [0, 2]] += anchors[:, 2:3] * 0.1
    assert torch.allclose(coder.encode(shifted, anchors)[:, 0], torch.ones(500), atol=1e-4)


def test_box_coder_decodes_the_tflite_detections(shared):
    """The official post-process's boxes are our decode of its raw codes against its anchors."""
    z = np.load(shared(*GOLDEN))
    scale, zp = z["box_encodings_scale_zp"]
    raw = (z["raw_box_encodings_uint8"].astype(np.float64) - zp) * scale  # (ty, tx, th, tw)
    anchors = torch.from_numpy(z["anchors_dequant_yxhw"][:, [1, 0, 3, 2]].astype(np.float64))
    decoded = BoxCoder().decode(torch.from_numpy(raw[..., [1, 0, 3, 2]]), anchors).numpy()  # xyxy
    for i in range(len(raw)):
        final = z["boxes"][i][:, [1, 0, 3, 2]]  # (ymin, xmin, ymax, xmax) → xyxy
        dist = np.abs(decoded[i][None] - final[:, None]).max(-1).min(-1)  # each final box to its nearest
        assert dist.max() < 1e-4


# -- matcher -------------------------------------------------------------------------------------------
def test_match_thresholds_and_forced_match():
    iou = torch.tensor([[0.7, 0.45, 0.2, 0.0], [0.1, 0.3, 0.35, 0.0]])  # gt 1's best IoU (0.35) is below the threshold
    m = match(iou, threshold=0.5, unmatched_threshold=0.4)
    assert m.tolist() == [0, IGNORE, 1, BACKGROUND]
    assert match(torch.zeros(0, 3)).tolist() == [BACKGROUND] * 3
    with pytest.raises(ValueError):
        match(iou, threshold=0.3, unmatched_threshold=0.5)


def test_assign_labels_boxes():
    anchors = torch.tensor([[0.25, 0.25, 0.5, 0.5], [0.75, 0.75, 0.5, 0.5], [0.5, 0.5, 0.2, 0.2]])
    gt = torch.tensor([[0.0, 0.0, 0.5, 0.5]])
    labels, boxes, _ = assign(gt, torch.tensor([7]), anchors)
    assert labels.tolist() == [7, 0, 0]
    assert torch.equal(boxes[0], gt[0])


# -- loss ----------------------------------------------------------------------------------------------
def test_hard_negative_mining_keeps_three_negatives_per_positive():
    labels = torch.zeros(2, 100, dtype=torch.long)
    labels[0, :2] = 5
    labels[1, 10] = 1
    labels[1, 11] = -1  # ignored: never a negative
    loss = torch.rand(2, 100)
    loss[1, 11] = 100.0
    keep = hard_negative_mask(loss, labels, ratio=3.0, min_negatives=0)
    assert keep[0].sum() == 2 + 6 and keep[1].sum() == 1 + 3 and not keep[1, 11]
    negs = loss[0, 2:]
    assert torch.equal(keep[0, 2:], negs >= negs.topk(6).values.min())


@pytest.mark.parametrize("kind", ["softmax", "sigmoid", "focal"])
def test_ssd_loss_trains(kind):
    torch.manual_seed(0)
    model = ssd_mobilenet_v1(alpha=0.25, resolution=96, num_classes=3, loss=LossConfig(classification=kind)).train()
    x = torch.randn(2, 3, 96, 96)
    targets = [
        {"boxes": torch.tensor([[10.0, 20.0, 60.0, 90.0]]), "labels": torch.tensor([2])},
        {"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.long)},
    ]  # an empty image
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    losses = []
    for _ in range(5):
        out = model(x, targets)
        assert set(out) == {"loss", "loss_box", "loss_cls"} and torch.isfinite(out["loss"])
        opt.zero_grad()
        out["loss"].backward()
        opt.step()
        losses.append(out["loss"].item())
    assert losses[-1] < losses[0]


def test_ssd_loss_box_term_is_zero_for_perfect_codes():
    codes = torch.zeros(1, 4, 4)
    logits = torch.zeros(1, 4, 3)
    labels = torch.tensor([[1, 0, 0, 2]])
    out = ssd_loss(codes, logits, torch.zeros(1, 4, 4), labels, LossConfig())
    assert out["loss_box"] == 0 and out["loss_cls"] > 0


# -- post-processing -----------------------------------------------------------------------------------
def _two_overlapping_boxes():
    anchors = torch.tensor([[0.3, 0.3, 0.2, 0.2], [0.31, 0.3, 0.2, 0.2], [0.8, 0.8, 0.1, 0.1]])
    codes = torch.zeros(1, 3, 4)
    logits = torch.full((1, 3, 3), -10.0)
    logits[0, 0, 1] = 3.0  # class 1 on anchor 0
    logits[0, 1, 2] = 2.0  # class 2 on anchor 1 (overlaps anchor 0)
    logits[0, 2, 1] = 1.0
    return codes, logits, anchors


def test_per_class_nms_keeps_overlapping_boxes_of_different_classes():
    codes, logits, anchors = _two_overlapping_boxes()
    det = postprocess(
        codes, logits, anchors, BoxCoder(), PostprocessConfig(score_fn="sigmoid", score_threshold=0.5), [(100, 200)]
    )[0]
    assert det["labels"].tolist() == [1, 2, 1]
    assert torch.allclose(det["boxes"][0], torch.tensor([40.0, 20.0, 80.0, 40.0]))  # pixels of a 200×100 image
    assert (det["scores"][:-1] >= det["scores"][1:]).all()


def test_fast_nms_is_class_agnostic_and_capped():
    codes, logits, anchors = _two_overlapping_boxes()
    cfg = PostprocessConfig(score_fn="sigmoid", nms="fast", score_threshold=0.5, max_detections=10)
    det = postprocess(codes, logits, anchors, BoxCoder(), cfg, [(1, 1)])[0]
    assert det["labels"].tolist() == [1, 1]
    cfg = PostprocessConfig(score_fn="sigmoid", nms="fast", score_threshold=0.5, max_detections=1)
    assert len(postprocess(codes, logits, anchors, BoxCoder(), cfg, [(1, 1)])[0]["boxes"]) == 1
    with pytest.raises(ValueError, match="nms"):
        PostprocessConfig(nms="soft")


# -- model & task --------------------------------------------------------------------------------------
def test_model_modes_and_errors():
    model = ssd_mobilenet_v1(alpha=0.25, resolution=160, num_classes=5).eval()
    dets = model(torch.rand(2, 3, 160, 160), image_sizes=[(480, 640), (100, 100)])
    assert len(dets) == 2 and set(dets[0]) == {"boxes", "scores", "labels"}
    assert (dets[0]["boxes"][:, 2] <= 640).all() and (dets[0]["labels"] >= 1).all() and (dets[0]["labels"] <= 5).all()
    model.train()
    out = model(torch.rand(2, 3, 160, 160))  # no targets: raw outputs for the engine's loss_fn
    assert out.codes.shape == (2, len(out.anchors), 4) and out.logits.shape[-1] == 6 and out.image_size == (160, 160)
    with pytest.raises(ValueError, match="targets"):
        model.criterion(out, [{"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.long)}])
    model.eval()
    with pytest.raises(ValueError, match="rank 4"):
        model(torch.rand(3, 160, 160))


def test_freeze_bn_keeps_statistics():
    model = ssd_mobilenet_v1(alpha=0.25, resolution=96, num_classes=2, freeze_bn=True).train()
    bn = model.extras[0][0].bn
    assert model.training and not bn.training
    before = bn.running_mean.clone()
    model(torch.randn(2, 3, 96, 96))
    assert torch.equal(bn.running_mean, before)


def test_cost_matches_table_13():
    """Table 13: SSD300 with MobileNet, 1.2 B Mult-Adds and 6.8 M params (α = 1, COCO's 90 + 1 classes)."""
    task = DetectionTask()
    cost = task.cost(task.build_model(alpha=1.0, resolution=300), 300)
    assert abs(cost.mult_adds / 1e9 - 1.2) < 0.05
    assert abs(cost.params / 1e6 - 6.8) < 0.05
    with pytest.raises(ValueError, match="unknown SSD option"):
        task.build_model(alpha=1.0, resolution=300, nonsense=1)


def test_anchor_order_of_2017_configs():
    """face-api.js's 2017 TF OD API export puts the interpolated box right after the ratio-1 box."""
    specs = AnchorConfig(interpolated_after_unit_ratio=True).box_specs()[1]
    assert [a for _, a in specs] == [1.0, 1.0, 2.0, 0.5, 3.0, 0.3333]
    assert specs[1][0] == pytest.approx((0.35 * 0.5) ** 0.5)
    assert [a for _, a in AnchorConfig().box_specs()[1]][-1] == 1.0

"""Face attributes: CelebA reader (and its bad input), per-attribute metrics, models, cost, loss, training parts."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from mnet.tasks import get_task
from mnet.tasks.face_attributes.celeba import CELEBA_ATTRIBUTES, CelebA, read_attributes, read_bboxes, select_attributes
from mnet.tasks.face_attributes.metrics import average_precision, multilabel_metrics
from mnet.tasks.face_attributes.task import MultiLabelLoss, pos_weights
from mnet.tasks.face_attributes.transforms import face_eval_transform
from mnet.tasks.pretrained import model_predictor
from mnet.weights import Preprocess


def write_celeba(root: Path, n: int = 6, *, names=CELEBA_ATTRIBUTES, header_count: int | None = None) -> Path:
    from PIL import Image

    (root / "img_align_celeba").mkdir(parents=True)
    rng = np.random.default_rng(0)
    rows = []
    for i in range(n):
        name = f"{i + 1:06d}.jpg"
        Image.fromarray(rng.integers(0, 255, (218, 178, 3), dtype=np.uint8)).save(root / "img_align_celeba" / name)
        rows.append(name + " " + " ".join(str(v) for v in rng.choice([-1, 1], len(names))))
    (root / "list_attr_celeba.txt").write_text(
        f"{header_count if header_count is not None else n}\n" + " ".join(names) + "\n" + "\n".join(rows) + "\n"
    )
    (root / "list_eval_partition.txt").write_text("\n".join(f"{i + 1:06d}.jpg {i % 3}" for i in range(n)) + "\n")
    return root


# -- data ----------------------------------------------------------------------------------------------
def test_real_celeba_layout_and_subset(shared):
    root = shared("data", "celeba")
    table = read_attributes(root / "list_attr_celeba.txt")
    assert table.names == CELEBA_ATTRIBUTES and table.values.shape == (558, 40)
    sizes = {s: len(CelebA(root, s, face_eval_transform(64))) for s in ("train", "val", "test")}
    assert sizes == {"train": 400, "val": 79, "test": 79}
    ds = CelebA(root, "test", face_eval_transform(64), attributes=["Smiling", "Male"])
    x, y = ds[0]
    assert x.shape == (3, 64, 64) and y.shape == (2,) and set(y.tolist()) <= {0.0, 1.0}
    male = table.values[[table.files.index(f) for f in ds.files], CELEBA_ATTRIBUTES.index("Male")] > 0
    assert torch.equal(ds.targets[:, 1].bool(), torch.from_numpy(male))


def test_bad_attribute_files(tmp_path):
    root = write_celeba(tmp_path / "a")
    text = (root / "list_attr_celeba.txt").read_text().splitlines()
    bad = root / "list_attr_celeba.txt"
    bad.write_text("\n".join(text[:2] + [text[2] + " 1"] + text[3:]))  # one extra column
    with pytest.raises(ValueError, match=r"line 3 has 41 values, line 2 names 40"):
        read_attributes(bad)
    bad.write_text("\n".join(["7"] + text[1:]))  # wrong count
    with pytest.raises(ValueError, match="line 1 says 7 images, the file has 6 rows"):
        read_attributes(bad)
    bad.write_text("\n".join([text[0], text[2]] + text[2:]))  # header replaced by a data row
    with pytest.raises(ValueError, match="line 2 must be the attribute names|values"):
        read_attributes(bad)
    bad.write_text("\n".join(text[:2] + [text[2].replace(" 1", " 2", 1)] + text[3:]))
    with pytest.raises(ValueError, match="must be -1 or 1"):
        read_attributes(bad)
    with pytest.raises(FileNotFoundError, match="list_attr_celeba.txt"):
        read_attributes(tmp_path / "nowhere" / "list_attr_celeba.txt")


def test_unknown_attribute_names_and_splits(tmp_path):
    root = write_celeba(tmp_path / "a")
    with pytest.raises(ValueError, match="unknown CelebA attribute 'Smilling'; did you mean Smiling"):
        CelebA(root, "train", face_eval_transform(32), attributes=["Smilling"])
    with pytest.raises(ValueError, match="split must be one of"):
        CelebA(root, "dev", face_eval_transform(32))
    assert select_attributes(CELEBA_ATTRIBUTES, ["Young", "Bald"]) == [39, 4]


def test_in_the_wild_crops(tmp_path):
    from PIL import Image

    root = write_celeba(tmp_path / "a", n=3)
    (root / "img_celeba").mkdir()
    for i in range(3):
        Image.new("RGB", (400, 300), (i * 50, 0, 0)).save(root / "img_celeba" / f"{i + 1:06d}.jpg")
    (root / "list_bbox_celeba.txt").write_text(
        "3\nimage_id x_1 y_1 width height\n" + "".join(f"{i + 1:06d}.jpg 100 50 80 100\n" for i in range(3))
    )
    assert read_bboxes(root / "list_bbox_celeba.txt")["000001.jpg"] == (100, 50, 80, 100)
    ds = CelebA(root, "train", face_eval_transform(32), in_the_wild=True, margin=0.0)
    assert ds.load_image(0).size == (100, 100)  # square around the 80×100 box
    (root / "list_bbox_celeba.txt").write_text("3\nimage x y w h\n")
    with pytest.raises(ValueError, match="line 2 must be 'image_id x_1 y_1 width height'"):
        CelebA(root, "train", face_eval_transform(32), in_the_wild=True)


# -- metrics ---------------------------------------------------------------------------------------------
def test_average_precision_definition():
    # ranks: pos, neg, pos, neg → precision at the positives 1 and 2/3
    assert average_precision(np.array([0.9, 0.8, 0.7, 0.1]), np.array([1, 0, 1, 0])) == pytest.approx((1 + 2 / 3) / 2)
    # a constant score is one threshold: AP = prevalence (the baseline)
    assert average_precision(np.full(8, 0.3), np.array([1, 0, 0, 1, 0, 0, 0, 0])) == pytest.approx(0.25)
    assert np.isnan(average_precision(np.array([0.2, 0.4]), np.array([0, 0])))
    # matches the brute-force mean of precision@k over positives when there are no ties
    rng = np.random.default_rng(1)
    s, y = rng.random(50), rng.integers(0, 2, 50)
    order = np.argsort(-s)
    hits = np.cumsum(y[order])
    brute = np.mean([hits[k] / (k + 1) for k in range(50) if y[order][k]])
    assert average_precision(s, y) == pytest.approx(brute)


def test_multilabel_metrics():
    labels = np.array([[1, 0], [1, 1], [0, 0], [0, 1]])
    probs = np.array([[0.9, 0.2], [0.6, 0.4], [0.3, 0.1], [0.2, 0.7]])
    m = multilabel_metrics(probs, labels, ["a", "b"])
    assert m["per_attribute"]["a"] == {"ap": 1.0, "accuracy": 1.0, "balanced_accuracy": 1.0, "positive_rate": 0.5}
    assert m["per_attribute"]["b"]["accuracy"] == 0.75 and m["per_attribute"]["b"]["balanced_accuracy"] == 0.75
    assert m["n"] == 4 and m["prevalence_mean_ap"] == 0.5 and m["mean_ap"] == pytest.approx((1 + 1) / 2)
    with pytest.raises(ValueError, match="do not agree"):
        multilabel_metrics(probs, labels, ["a"])
    none = multilabel_metrics(probs, np.c_[labels[:, :1], np.zeros(4)], ["a", "b"])  # "b" has no positives
    assert none["per_attribute"]["b"]["ap"] is None and none["mean_ap"] == 1.0
    assert none["attributes_without_positives"] == ["b"]


# -- model, cost, loss ------------------------------------------------------------------------------
def count_backbone(model) -> int:
    return sum(p.numel() for n, p in model.named_parameters() if n.startswith("layers.") and ".bn." not in n)


def test_models_and_table12_cost():
    task = get_task("face_attributes")
    m = task.build_model(alpha=1.0, resolution=224)
    cost = task.cost(m, 224)
    assert abs(cost.params / 1e6 - 3.2) < 0.06  # Table 12: 3.2 M (backbone + 40-way layer)
    assert cost.params - count_backbone(m) == 1024 * 40  # (the paper counts weights, not biases)
    assert m(torch.zeros(2, 3, 128, 128)).shape == (2, 40)
    small = task.build_model(alpha=0.25, resolution=128)
    assert round(task.cost(small, 128).params / 1e6, 1) == 0.2  # Table 12: 0.2 M
    ag = task.build_model(alpha=1.0, resolution=224, head="age_gender")
    assert ag(torch.zeros(1, 3, 96, 96)).shape == (1, 101)
    with pytest.raises(ValueError, match="unknown face model"):
        task.build_model(alpha=1.0, resolution=224, head="mood")


def test_loss_labels_teacher_and_pos_weight():
    logits = torch.tensor([[2.0, -1.0], [0.5, 0.0]])
    y = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    soft = torch.sigmoid(logits)
    bce = torch.nn.functional.binary_cross_entropy_with_logits
    assert MultiLabelLoss()(logits, y) == pytest.approx(float(bce(logits, y)))
    both = torch.stack([y, soft], dim=1)
    assert MultiLabelLoss(label_weight=0.0)(logits, both) == pytest.approx(float(bce(logits, soft)))
    assert MultiLabelLoss(label_weight=0.5)(logits, both) == pytest.approx(
        float(0.5 * bce(logits, soft) + 0.5 * bce(logits, y))
    )
    w = pos_weights(torch.tensor([[1.0, 0.0], [0.0, 0.0], [0.0, 1.0], [0.0, 1.0]]), "auto", ["a", "b"])
    assert w.tolist() == pytest.approx([3.0, 1.0])  # negatives / positives
    with pytest.raises(ValueError, match="pos_weight"):
        pos_weights(y, [1.0], ["a", "b"])


def test_train_parts_and_evaluate_on_fake_celeba(tmp_path):
    root = write_celeba(tmp_path / "c", n=9)
    task = get_task("face_attributes")
    cfg = {
        "model": {"alpha": 0.25, "resolution": 64, "weights": None},
        "data": {"root": str(root), "batch_size": 4},
        "loss": {"pos_weight": "auto"},
    }
    parts = task.train_parts(cfg)
    x, y = parts.train_set[0]
    assert x.shape == (3, 64, 64) and y.shape == (40,)
    loss = parts.loss_fn(parts.model(x[None]), y[None])
    assert torch.isfinite(loss)
    r = parts.evaluate(parts.model)
    assert r["n"] == 3 and 0.0 <= r["mean_ap"] <= 1.0 and "per_attribute" not in r
    shutil.rmtree(root / "img_align_celeba")
    with pytest.raises(FileNotFoundError, match="img_align_celeba"):
        task.evaluate(model_predictor(task, parts.model, Preprocess(64)), root, split="val")


@pytest.mark.slow
def test_engine_finetune_then_distill(tmp_path):
    """Through the engine: a tiny run on labels, then a student trained on its exported outputs."""
    from mnet.tasks.engine import load_config, train

    root = write_celeba(tmp_path / "c", n=12)
    task = get_task("face_attributes")
    base = [
        f"data.root={root}",
        "data.batch_size=4",
        "model.alpha=0.25",
        "model.resolution=64",
        "train.epochs=1",
        "train.progress=false",
        "data.attributes=[Male,Smiling,Young]",
    ]
    cfg = load_config(None, base + [f"output.dir={tmp_path / 'teacher'}"])
    cfg["task"] = "face_attributes"
    summary = train(task, cfg)
    teacher = tmp_path / "teacher" / "last.safetensors"
    assert teacher.is_file() and "mean_ap" in summary["last"]
    cfg = load_config(
        None, base + [f"output.dir={tmp_path / 'student'}", f"loss.teacher={teacher}", "loss.label_weight=0.5"]
    )
    cfg["task"] = "face_attributes"
    parts = task.train_parts(cfg)
    x, t = parts.train_set[0]
    assert t.shape == (2, 3) and set(t[0].tolist()) <= {0.0, 1.0} and ((t[1] > 0) & (t[1] < 1)).all()
    assert train(task, cfg)["epochs"] == 1

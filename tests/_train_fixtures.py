"""Tiny training runs for engine tests: synthetic datasets per task, small weights files, and a registered
test task (``tiny``) whose config sections are declared like a real task's."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from _dogs_fixture import make_fake_dogs
from PIL import Image
from torch import nn
from torch.utils.data import TensorDataset

from mnet.backbone import mobilenet_v1
from mnet.tasks.engine import TrainParts
from mnet.tasks.schema import ALPHA, Int, Key, Num, Section


# -- datasets in each task's official layout ------------------------------------------------------------
def imagefolder(root: Path, classes=("cat", "dog"), n: int = 4, size: int = 40) -> Path:
    rng = np.random.default_rng(0)
    for split in ("train", "val"):
        for c_i, c in enumerate(classes):
            (root / split / c).mkdir(parents=True)
            for j in range(n):
                arr = np.clip(rng.normal(60 + 80 * c_i, 25, (size, size, 3)), 0, 255).astype(np.uint8)
                Image.fromarray(arr).save(root / split / c / f"{j}.png")
    return root


def coco(root: Path, n: int = 4) -> Path:
    (root / "annotations").mkdir(parents=True)
    (root / "train").mkdir()
    images, anns = [], []
    for i in range(1, n + 1):
        Image.new("RGB", (80, 64), (40 * i, 90, 160)).save(root / "train" / f"{i}.jpg")
        images.append({"id": i, "file_name": f"{i}.jpg", "width": 80, "height": 64})
        anns.append(
            {"id": i, "image_id": i, "category_id": 5 + i % 2, "bbox": [8, 8, 40, 30], "iscrowd": 0, "area": 1200}
        )
    doc = {"images": images, "annotations": anns, "categories": [{"id": 5, "name": "a"}, {"id": 6, "name": "b"}]}
    (root / "annotations" / "instances_train.json").write_text(json.dumps(doc))
    return root


def celeba(root: Path, n: int = 12) -> Path:
    from test_face_attributes import write_celeba

    return write_celeba(root, n=n)


COMMON = ["train.epochs=1", "train.progress=false", "train.threads=1"]

#: per trainable task: (config file, dataset builder, overrides for a run of a few seconds)
TASK_RUNS = {
    "classification": (
        "tasks/classification/configs/finetune_imagefolder.yaml",
        imagefolder,
        ["model.weights=null", "model.resolution=64", "data.batch_size=4", "data.val_split=null"],
    ),
    "dogs": (
        "tasks/dogs/configs/smoke.yaml",
        lambda root: make_fake_dogs(root, n_breeds=2, per_breed={"train": 4, "test": 1}),
        ["data.val_split=null", "train.accum_steps=1", "train.checkpoint_every_steps=null"],
    ),
    "detection": (
        "tasks/detection/configs/custom_dataset.yaml",
        coco,
        ["data.val_split=null", "data.batch_size=2", "model.resolution=96", "model.backbone_weights=null"],
    ),
    "face_attributes": (
        "tasks/face_attributes/configs/finetune.yaml",
        celeba,
        ["model.weights=null", "model.resolution=64", "data.batch_size=4", "data.val_split=null"],
    ),
}


def task_run_args(task: str, tmp: Path, *extra: str) -> list[str]:
    """``mnet train`` arguments for a tiny run of ``task`` on synthetic data under ``tmp``."""
    config, build, overrides = TASK_RUNS[task]
    data = tmp / "data"
    if not data.exists():
        build(data)
    return ["train", task, "--config", config, f"data.root={data}", *COMMON, *overrides, *extra]


def classifier_weights(path: Path, *, alpha: float = 0.25, resolution: int = 64) -> Path:
    """A suite weights file of a 1000-way MobileNetV1 classifier (random weights) at ``alpha``."""
    from mnet.weights import Preprocess, save_weights

    torch.manual_seed(0)
    kwargs = {"alpha": alpha, "resolution": resolution, "num_classes": 1000}
    model = mobilenet_v1(**kwargs)
    meta = {"task": "classification", "arch": "mobilenet_v1", "model_kwargs": kwargs}
    meta["preprocess"] = Preprocess(resolution).to_dict()
    save_weights(path, model.state_dict(), meta)
    return path


def detector_weights(path: Path, *, alpha: float = 0.25, resolution: int = 96) -> Path:
    """A suite weights file of a 2-class SSD (random weights) at ``alpha``."""
    from mnet.tasks import get_task
    from mnet.tasks.detection.task import config_dict
    from mnet.weights import save_weights

    torch.manual_seed(0)
    model = get_task("detection").build_model(alpha=alpha, resolution=resolution, num_classes=2, category_ids=[5, 6])
    meta = {
        "task": "detection",
        "arch": "ssd_mobilenet_v1",
        "model_kwargs": config_dict(model.config),
        "preprocess": {"resolution": resolution, "mean": [127.5] * 3, "std": [127.5] * 3},
        "labels": ["a", "b"],
    }
    save_weights(path, model.state_dict(), meta)
    return path


# -- a test task with declared sections -------------------------------------------------------------
class Interrupted(RuntimeError):
    """Stands for a crash or kill in the middle of a run."""


class TinyTask:
    """3 classes of random 32×32 images; ``model``/``data`` keys declared like a real task's.

    ``interrupt_at``: raise :class:`Interrupted` on that loss call (a crash mid-run)."""

    name = "tiny"
    config_schema = {
        "model": Section({"alpha": ALPHA, "resolution": Key(Int(32), 32)}),
        "data": Section({"n": Key(Int(1), 12, doc="training samples"), "noise": Key(Num(0), 1.0)}),
    }

    def __init__(self, interrupt_at: int | None = None) -> None:
        self.interrupt_at, self.calls = interrupt_at, 0

    def loss(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        if self.calls == self.interrupt_at:
            raise Interrupted(f"interrupted at loss call {self.calls}")
        return nn.functional.cross_entropy(out, y)

    def train_parts(self, cfg) -> TrainParts:
        m, d = cfg["model"], cfg["data"]
        g = torch.Generator().manual_seed(0)
        n = int(d["n"])
        x = torch.randn(n, 3, 32, 32, generator=g) * float(d["noise"])
        y = torch.randint(0, 3, (n,), generator=g)
        model = mobilenet_v1(alpha=float(m["alpha"] or 0.25), resolution=int(m["resolution"]), num_classes=3)

        def evaluate(model: nn.Module) -> dict:
            with torch.no_grad():
                return {"acc": float((model.eval()(x).argmax(1) == y).float().mean())}

        return TrainParts(
            model=model,
            train_set=TensorDataset(x, y),
            loss_fn=self.loss,
            evaluate=evaluate,
            metric="acc",
            backbone=model.layers,
            export_metadata={"arch": "mobilenet_v1", "model_kwargs": {"alpha": 0.25, "num_classes": 3}},
        )


#: ``mnet train tiny`` arguments for a 2-epoch run: 12 samples, batch 4 → 3 steps per epoch
TINY_ARGS = [
    "data.batch_size=4",
    "train.epochs=2",
    "train.progress=false",
    "train.threads=1",
    "train.log_every=1",
    "train.checkpoint_every_steps=1",
    "optim.lr=0.05",
]


def metrics(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]

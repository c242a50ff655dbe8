"""Backbone freezing, BatchNorm-statistics freezing, unfreezing after N epochs, EMA export (in-process)."""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.data import TensorDataset

from mnet.backbone import mobilenet_v1
from mnet.tasks.engine import TrainParts, load_config, train
from mnet.tasks.engine.checkpoint import load_checkpoint


class TinyTask:
    name = "tiny"

    def __init__(self) -> None:
        self.snapshots: list[dict[str, torch.Tensor]] = []

    def train_parts(self, cfg) -> TrainParts:
        g = torch.Generator().manual_seed(0)
        x, y = torch.randn(8, 3, 32, 32, generator=g), torch.randint(0, 3, (8,), generator=g)
        model = mobilenet_v1(alpha=0.25, resolution=32, num_classes=3, bn_momentum=None)
        with torch.no_grad():  # calibrate BatchNorm statistics, as pretrained weights would have them
            model.train()(x)
        self.initial = {k: v.clone() for k, v in model.state_dict().items()}

        def evaluate(m: nn.Module) -> dict:  # records the weights at each epoch end
            self.snapshots.append({k: v.clone() for k, v in m.state_dict().items()})
            return {"score": float(len(self.snapshots))}

        return TrainParts(
            model=model,
            train_set=TensorDataset(x, y),
            loss_fn=nn.functional.cross_entropy,
            evaluate=evaluate,
            metric="score",
            backbone=model.layers,
        )


def run(tmp_path, *overrides: str) -> TinyTask:
    task = TinyTask()
    cfg = load_config(
        None,
        [
            "task=tiny",
            "data.batch_size=4",
            "train.epochs=2",
            "train.progress=false",
            "train.threads=1",
            f"output.dir={tmp_path}",
            "optim.lr=0.05",
            *overrides,
        ],
    )
    train(task, cfg)
    return task


def test_frozen_backbone_then_unfrozen_after_one_epoch(tmp_path):
    t = run(tmp_path, "train.freeze_backbone=true", "train.unfreeze_after=1")
    conv, bn_mean, fc = "layers.5.pw.conv.weight", "layers.5.pw.bn.running_mean", "head.fc.weight"
    e1, e2 = t.snapshots
    assert torch.equal(e1[conv], t.initial[conv]) and torch.equal(e1[bn_mean], t.initial[bn_mean])  # frozen, stats too
    assert not torch.equal(e1[fc], t.initial[fc])  # the head trained
    assert not torch.equal(e2[conv], e1[conv]) and not torch.equal(e2[bn_mean], e1[bn_mean])  # unfrozen in epoch 2


def test_freeze_bn_keeps_statistics_but_trains_weights(tmp_path):
    t = run(tmp_path, "train.freeze_bn=true", "train.epochs=1")
    final = t.snapshots[-1]
    assert torch.equal(final["layers.3.dw.bn.running_var"], t.initial["layers.3.dw.bn.running_var"])
    assert not torch.equal(final["layers.3.dw.conv.weight"], t.initial["layers.3.dw.conv.weight"])


def test_ema_is_evaluated_and_exported(tmp_path):
    from mnet.weights import load_weights

    t = run(tmp_path, "train.ema.decay=0.5", "train.epochs=1")
    state = load_checkpoint(tmp_path / "last.pt")
    ema = state["ema"]["module"]
    assert torch.equal(t.snapshots[-1]["head.fc.weight"], ema["head.fc.weight"])  # evaluation used the EMA
    assert not torch.equal(ema["head.fc.weight"], state["model"]["head.fc.weight"])
    exported = load_weights(tmp_path / "best.safetensors")
    assert torch.equal(exported.state_dict["head.fc.weight"], ema["head.fc.weight"])
    assert exported.meta["task"] == "tiny" and exported.meta["metrics"]["score"] == 1.0

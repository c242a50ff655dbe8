"""A NaN/inf loss stops training with a clear message and leaves the last good checkpoint untouched."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

from mnet.backbone import mobilenet_v1
from mnet.tasks.engine import NonFiniteLossError, TrainParts, load_config, train
from mnet.tasks.engine.checkpoint import load_checkpoint


class PoisonedTask:
    """Synthetic 3-class task whose loss turns NaN (or inf) on the ``bad_call``-th batch."""

    name = "poisoned"

    def __init__(self, bad_call: int, value: float) -> None:
        self.bad_call, self.value, self.calls = bad_call, value, 0

    def loss(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        loss = nn.functional.cross_entropy(out, y)
        return loss * self.value if self.calls == self.bad_call else loss

    def train_parts(self, cfg) -> TrainParts:
        g = torch.Generator().manual_seed(0)
        x, y = torch.randn(12, 3, 32, 32, generator=g), torch.randint(0, 3, (12,), generator=g)
        model = mobilenet_v1(alpha=0.25, resolution=32, num_classes=3)
        return TrainParts(model=model, train_set=TensorDataset(x, y), loss_fn=self.loss, backbone=model.layers)


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_non_finite_loss_stops_and_keeps_last_good_checkpoint(tmp_path, value):
    cfg = load_config(
        None,
        [
            "task=poisoned",
            "data.batch_size=4",
            "train.epochs=3",
            "train.progress=false",
            f"output.dir={tmp_path}",
            "optim.lr=0.01",
            "train.threads=1",
        ],
    )
    task = PoisonedTask(bad_call=5, value=value)  # 3 batches per epoch: batch 5 is in epoch 2
    with pytest.raises(
        NonFiniteLossError, match=r"loss is (nan|inf) at epoch 2.*last good checkpoint .*last\.pt \(step 3.*is intact"
    ):
        train(task, cfg)
    state = load_checkpoint(tmp_path / "last.pt")
    assert state["epoch"] == 1 and state["global_step"] == 3  # end of epoch 1, nothing after
    assert all(torch.isfinite(v).all() for v in state["model"].values() if v.is_floating_point())
    # the last good run can be resumed once the cause is fixed
    task.bad_call = -1
    summary = train(task, cfg, resume=True)
    assert summary["epochs"] == 3 and summary["global_step"] == 9


def test_train_command_reports_non_finite_loss(tmp_path, capsys):
    from _dogs_fixture import make_fake_dogs

    from mnet.apps.cli import main

    data = make_fake_dogs(tmp_path / "dogs", n_breeds=2, per_breed={"train": 4, "test": 1})
    rc = main(
        [
            "train",
            "dogs",
            "--config",
            "tasks/dogs/configs/smoke.yaml",
            f"data.root={data}",
            f"output.dir={tmp_path / 'run'}",
            "optim.name=sgd",
            "optim.lr=1e38",
            "train.epochs=1",
            "train.accum_steps=1",
        ]
    )
    err = capsys.readouterr().err
    assert rc == 1 and "mnet train: error: loss is" in err and "Lower optim.lr" in err

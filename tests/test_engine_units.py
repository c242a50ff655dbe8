"""Engine pieces: config overrides, parameter groups, schedules, AMP modes, checkpoints, EMA, sampler."""

from __future__ import annotations

import math

import pytest
import torch

from mnet.backbone import mobilenet_v1
from mnet.tasks.engine.checkpoint import load_checkpoint, rng_state, save_checkpoint, set_rng_state
from mnet.tasks.engine.config import ConfigError, load_config
from mnet.tasks.engine.data import ResumableSampler, SeededDataset
from mnet.tasks.engine.ema import ModelEMA
from mnet.tasks.engine.optim import WarmupSchedule, build_optimizer, param_groups
from mnet.tasks.engine.trainer import amp_dtype


def test_config_file_overrides_and_unknown_keys(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("task: dogs\noptim: {lr: 0.5}\nmodel: {alpha: 0.5}\ndata: {root: here}\n")
    cfg = load_config(f, ["optim.lr=0.01", "train.amp=bf16", "augment.scale=[0.5, 1.0]", "model.weights=null"])
    assert cfg["optim"]["lr"] == 0.01 and cfg["optim"]["name"] == "sgd"  # file, override, default
    assert cfg["train"]["amp"] == "bf16" and cfg["augment"]["scale"] == [0.5, 1.0] and cfg["model"]["weights"] is None
    assert cfg["model"]["head_init"] == "zero_shot" and cfg["data"]["val_split"] == "test"  # the task's defaults
    with pytest.raises(ConfigError, match="optim.lrr"):
        load_config(f, ["optim.lrr=1"])
    with pytest.raises(ConfigError, match="key=value"):
        load_config(f, ["optim.lr"])
    with pytest.raises(FileNotFoundError, match="nope.yaml"):
        load_config(tmp_path / "nope.yaml")


def test_param_groups_no_decay_on_depthwise_and_bn_backbone_lr():
    m = mobilenet_v1(alpha=0.25, resolution=64, num_classes=5)
    groups = {g["name"]: g for g in param_groups(m, lr=0.1, weight_decay=1e-4, backbone=m.layers, backbone_lr_mult=0.1)}
    ids = lambda name: {id(p) for p in groups[name]["params"]}
    dw = m.layers[3].dw.conv.weight
    pw = m.layers[3].pw.conv.weight
    bn = m.layers[3].pw.bn.weight
    assert id(dw) in ids("backbone_no_decay") and id(bn) in ids("backbone_no_decay")
    assert id(pw) in ids("backbone_decay") and id(m.layers[0].conv.weight) in ids("backbone_decay")
    assert id(m.head.fc.weight) in ids("head_decay") and id(m.head.fc.bias) in ids("head_decay")
    assert groups["backbone_decay"]["lr"] == pytest.approx(0.01) and groups["head_decay"]["lr"] == 0.1
    assert groups["backbone_no_decay"]["weight_decay"] == 0.0 and groups["head_decay"]["weight_decay"] == 1e-4
    assert sum(len(g["params"]) for g in groups.values()) == len(list(m.parameters()))
    with_bias = {g["name"] for g in param_groups(m, lr=0.1, weight_decay=1e-4, no_decay=["bias"])}
    assert with_bias == {"head_decay", "head_no_decay"}
    with pytest.raises(ValueError, match="depthwse"):
        param_groups(m, lr=0.1, weight_decay=0.0, no_decay=["depthwse"])


@pytest.mark.parametrize("name", ["sgd", "rmsprop", "adamw"])
def test_optimizers_build_and_step(name):
    m = mobilenet_v1(alpha=0.25, resolution=32, num_classes=3)
    cfg = load_config(None, [f"optim.name={name}"])["optim"]
    opt = build_optimizer(m, cfg, m.layers)
    before = m.head.fc.weight.detach().clone()
    m(torch.randn(2, 3, 32, 32)).sum().backward()
    opt.step()
    assert not torch.equal(before, m.head.fc.weight)


def test_schedule_warmup_cosine_step():
    s = WarmupSchedule("cosine", total_steps=110, steps_per_epoch=10, warmup_epochs=1, warmup_start_factor=0.1)
    assert s(0) == pytest.approx(0.1) and s(5) == pytest.approx(0.55) and s(10) == pytest.approx(1.0)
    assert s(60) == pytest.approx(0.5) and s(110) == pytest.approx(0.0, abs=1e-12)
    st = WarmupSchedule("step", total_steps=100, steps_per_epoch=10, step_epochs=3, gamma=0.1)
    assert [st(t) for t in (0, 29, 30, 60)] == pytest.approx([1, 1, 0.1, 0.01])
    with pytest.raises(ValueError, match="linear"):
        WarmupSchedule("linear", total_steps=1, steps_per_epoch=1)


def test_amp_modes():
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert amp_dtype("off", cpu) is None and amp_dtype("bf16", cpu) is torch.bfloat16
    assert amp_dtype("auto", cpu) is torch.bfloat16 and amp_dtype("auto", cuda) is torch.float16
    with pytest.raises(ValueError, match="bf16 on CPU"):
        amp_dtype("fp16", cpu)


def test_atomic_checkpoint_and_rng_roundtrip(tmp_path):
    path = tmp_path / "last.pt"
    save_checkpoint({"x": torch.arange(3), "rng": rng_state()}, path)
    a = torch.rand(4)
    state = load_checkpoint(path)  # weights_only=True
    set_rng_state(state["rng"])
    # restoring the saved RNG state replays the same draws
    torch.manual_seed(0)
    save_checkpoint({"rng": rng_state()}, path)
    first = torch.rand(4)
    set_rng_state(load_checkpoint(path)["rng"])
    assert torch.equal(first, torch.rand(4)) and a.shape == (4,)
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]  # no temporary file left behind
    with pytest.raises(FileNotFoundError, match="missing.pt"):
        load_checkpoint(tmp_path / "missing.pt")


def test_ema_tracks_weights():
    m = torch.nn.Linear(2, 1)
    ema = ModelEMA(m, 0.5, warmup=False)
    with torch.no_grad():
        m.weight.add_(2.0)
    w0 = ema.module.weight.clone()
    ema.update(m)
    assert torch.allclose(ema.module.weight, 0.5 * w0 + 0.5 * m.weight)


def test_sampler_is_deterministic_per_epoch_and_skips():
    data = list(range(20))
    s = ResumableSampler(data, seed=3)
    s.set_epoch(1)
    full = list(s)
    s.set_epoch(1, skip=8)
    assert list(s) == full[8:] and len(s) == 12
    s.set_epoch(2)
    assert list(s) != full and sorted(s) == data
    two = [ResumableSampler(data, num_replicas=2, rank=r, seed=3) for r in (0, 1)]
    for t in two:
        t.set_epoch(0)
    assert sorted(list(two[0]) + list(two[1])) == data


def test_seeded_dataset_augmentation_depends_on_epoch_and_index_only():
    class Noise(torch.utils.data.Dataset):
        def __len__(self):
            return 4

        def __getitem__(self, i):
            return torch.rand(3)

    d = SeededDataset(Noise(), seed=1)
    a = d[2]
    torch.rand(100)  # global RNG use in between must not matter
    assert torch.equal(a, d[2]) and not torch.equal(a, d[1])
    d.set_epoch(1)
    assert not torch.equal(a, d[2])
    assert not math.isnan(float(a.sum()))

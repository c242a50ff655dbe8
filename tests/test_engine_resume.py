"""Crash recovery and distributed training through the real command line (`mnet train dogs`)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import torch
from _dogs_fixture import make_fake_dogs

REPO = Path(__file__).resolve().parents[1]
SMOKE = REPO / "tasks" / "dogs" / "configs" / "smoke.yaml"


def mnet_train(*args: str, torchrun: int = 0, check: bool = True) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    launcher = (
        [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={torchrun}"]
        if torchrun
        else [sys.executable]
    )
    cmd = [*launcher, "-m", "mnet.apps.cli", "train", "dogs", "--config", str(SMOKE), *args]
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} exited {proc.returncode}:\n{proc.stderr[-3000:]}")
    return proc


def final_weights(run: Path) -> dict[str, torch.Tensor]:
    state = torch.load(run / "last.pt", weights_only=True)
    return {**state["model"], **{f"ema.{k}": v for k, v in state["ema"]["module"].items()}}


def test_killed_mid_epoch_then_resumed_matches_uninterrupted(tmp_path):
    data = make_fake_dogs(tmp_path / "dogs", n_breeds=3, per_breed={"train": 8, "test": 2})
    common = [f"data.root={data}", "data.val_split=null"]  # 24 images, batch 4, accum 2: 3 steps per epoch
    mnet_train(*common, f"output.dir={tmp_path / 'full'}")
    killed = mnet_train(*common, f"output.dir={tmp_path / 'cut'}", "debug.kill_at_step=4", check=False)
    assert killed.returncode != 0, "the run should have been killed at step 4"
    state = torch.load(tmp_path / "cut" / "last.pt", weights_only=True)
    assert (state["epoch"], state["batch_in_epoch"], state["global_step"]) == (1, 2, 4)  # mid-epoch 2
    resumed = mnet_train(*common, f"output.dir={tmp_path / 'cut'}", "--resume")
    assert "resumed from" in resumed.stderr
    a, b = final_weights(tmp_path / "full"), final_weights(tmp_path / "cut")
    assert a.keys() == b.keys()
    for k in a:
        assert torch.allclose(a[k].float(), b[k].float(), atol=1e-6, rtol=0), k
    # the run really trained: weights moved away from a fresh start
    assert json.loads(resumed.stdout)["global_step"] == 6
    # the log of the killed-and-resumed run holds every step once, as the uninterrupted run's does
    records = [
        [(r["type"], r["step"]) for r in map(json.loads, (tmp_path / name / "metrics.jsonl").read_text().splitlines())]
        for name in ("full", "cut")
    ]
    assert records[0] == records[1] and len(set(records[1])) == len(records[1])


def test_ddp_gloo_two_processes(tmp_path):
    data = make_fake_dogs(tmp_path / "dogs", n_breeds=2, per_breed={"train": 8, "test": 2})
    run = tmp_path / "ddp"
    proc = mnet_train(
        f"data.root={data}", f"output.dir={run}", "train.epochs=1", "train.checkpoint_every_steps=null", torchrun=2
    )
    # 16 images over 2 ranks → 8 each, batch 4 → 2 batches, accum 2 → 1 optimizer step
    summary = json.loads(proc.stdout[proc.stdout.index("{") :])
    assert summary["global_step"] == 1 and summary["rank"] == 0
    lines = [json.loads(l) for l in (run / "metrics.jsonl").read_text().splitlines()]
    assert [l["type"] for l in lines].count("epoch") == 1  # rank 0 logs alone
    assert lines[-1]["n"] == 4 and "top1" in lines[-1]
    state = torch.load(run / "last.pt", weights_only=True)
    assert state["global_step"] == 1 and (run / "best.safetensors").is_file()

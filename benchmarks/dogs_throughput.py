"""Training throughput (images/s) of a dogs run config, with and without AMP and channels_last.

Times the engine's own training step (forward, loss, backward, optimizer step with the config's
parameter groups) on random input batches of the config's size and resolution, so data loading is
excluded; bf16 autocast on CPU, fp16 (with GradScaler) and bf16 on CUDA.

    PYTHONPATH=. python benchmarks/dogs_throughput.py [--config tasks/dogs/configs/finetune_1.0_128.yaml]
        [--device cpu|cuda] [--threads 2] [--steps 5] [--warmup 2] [--amp off bf16] [--layouts nchw channels_last]
        [--out benchmarks/results/dogs_throughput.md]
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import platform
import statistics
import time
from pathlib import Path

import torch
from torch import nn

from mnet.tasks import get_task
from mnet.tasks.engine import load_config
from mnet.tasks.engine.optim import build_optimizer
from mnet.tasks.engine.trainer import amp_dtype


def step_throughput(
    model: nn.Module, cfg: dict, device: torch.device, amp: str, channels_last: bool, steps: int, warmup: int
) -> float:
    """Median images/s of full training steps."""
    bs, res = int(cfg["data"]["batch_size"]), int(cfg["model"]["resolution"])
    model = model.to(device).train()
    x = torch.randn(bs, 3, res, res, device=device)
    y = torch.randint(0, model.num_classes, (bs,), device=device)
    if channels_last:
        model, x = model.to(memory_format=torch.channels_last), x.contiguous(memory_format=torch.channels_last)
    opt = build_optimizer(model, cfg["optim"], model.layers)
    dtype = amp_dtype(amp, device)
    scaler = torch.amp.GradScaler(device.type, enabled=dtype is torch.float16)
    loss_fn = nn.CrossEntropyLoss()
    times = []
    for i in range(warmup + steps):
        if device.type == "cuda":
            torch.cuda.synchronize()
        t = time.perf_counter()
        with torch.autocast(device.type, dtype=dtype) if dtype else contextlib.nullcontext():
            loss = loss_fn(model(x), y)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
        opt.zero_grad(set_to_none=True)
        if device.type == "cuda":
            torch.cuda.synchronize()
        if i >= warmup:
            times.append(time.perf_counter() - t)
    return bs / statistics.median(times)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default="tasks/dogs/configs/finetune_1.0_128.yaml")
    p.add_argument("overrides", nargs="*", metavar="key=value")
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--amp", nargs="+", help="AMP modes to time (default: off bf16 on CPU, off fp16 bf16 on CUDA)")
    p.add_argument("--layouts", nargs="+", choices=("nchw", "channels_last"), default=["nchw", "channels_last"])
    p.add_argument("--out", default="benchmarks/results/dogs_throughput.md")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    cfg = load_config(args.config, args.overrides)
    device = torch.device(args.device)
    task = get_task("dogs")
    alpha = float(cfg["model"]["alpha"] or _alpha_of(cfg["model"]["weights"]))
    res = int(cfg["model"]["resolution"])
    amps = args.amp or (["off", "bf16"] if device.type == "cpu" else ["off", "fp16", "bf16"])
    where = (
        torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else f"{platform.processor() or platform.machine()}, {args.threads} threads"
    )
    lines = [
        f"Dogs training throughput for `{args.config}` (α {alpha}, ρ {res}, batch {cfg['data']['batch_size']}, "
        f"optimizer {cfg['optim']['name']}): median of {args.steps} full training steps after {args.warmup} "
        f"warm-up, random inputs (no data loading); {where}; torch {torch.__version__}.",
        "",
        "| AMP | channels_last | images/s |",
        "|---|---|---|",
    ]
    for amp, cl in itertools.product(amps, [layout == "channels_last" for layout in args.layouts]):
        torch.manual_seed(0)
        model = task.build_model(alpha=alpha, resolution=res)
        ips = step_throughput(model, cfg, device, amp, cl, args.steps, args.warmup)
        lines.append(f"| {amp} | {'yes' if cl else 'no'} | {ips:.1f} |")
        print(lines[-1], flush=True)
    text = "\n".join(lines) + "\n"
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(text)
    print(f"written to {args.out}")


def _alpha_of(weights: str | None) -> float:
    """α of a registry entry name (``mobilenet_v1_0.5_160...`` → 0.5) without loading it."""
    if not weights:
        return 1.0
    from mnet.weights import get_entry

    return float(get_entry(weights).alpha)


if __name__ == "__main__":
    main()

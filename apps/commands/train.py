"""``mnet train TASK --config FILE [key=value ...] [--resume [CKPT]]``: fine-tune through the engine.

Runs unchanged under ``torchrun --nproc_per_node N -m mnet.apps.cli train ...`` (DDP; rank 0 logs and saves).
"""

from __future__ import annotations

import argparse
import json
import sys


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train",
        help="train / fine-tune a task (YAML config + key=value overrides)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("task", help="registered task name (e.g. dogs, classification)")
    p.add_argument("--config", metavar="FILE", help="YAML run config (e.g. tasks/dogs/configs/finetune_1.0_128.yaml)")
    p.add_argument(
        "overrides", nargs="*", metavar="key=value", help="config overrides, e.g. optim.lr=0.01 train.epochs=3"
    )
    p.add_argument(
        "--resume",
        nargs="?",
        const=True,
        default=False,
        metavar="CKPT",
        help="continue from CKPT, or from <output.dir>/last.pt when no path is given",
    )
    p.set_defaults(func=run, extra_dest="overrides")


def run(args: argparse.Namespace) -> int:
    from mnet.tasks import get_task
    from mnet.tasks.engine import NonFiniteLossError, load_config, train

    task = get_task(args.task)
    cfg = load_config(args.config, args.overrides)
    if cfg["task"] not in (None, task.name):
        raise ValueError(f"config {args.config} is for task {cfg['task']!r}, not {task.name!r}")
    cfg["task"] = task.name
    try:
        summary = train(task, cfg, resume=args.resume)
    except NonFiniteLossError as e:
        print(f"mnet train: error: {e}", file=sys.stderr)
        return 1
    if summary["rank"] == 0:
        print(json.dumps(summary, indent=2))
    return 0

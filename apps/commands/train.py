"""``mnet train TASK --config FILE [key=value ...] [--resume | --resume-from CKPT] [--overwrite]``.

Fine-tunes through the engine. An output folder that already holds a run is never written to unless
``--resume`` (continue it; the config must match the one it trained with) or ``--overwrite`` (replace it)
says so. Runs unchanged under ``torchrun --nproc_per_node N -m mnet.apps.cli train ...`` (DDP; rank 0
logs and saves).
"""

from __future__ import annotations

import argparse
import json
import sys

from mnet.apps.options import add_source


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
    how = p.add_mutually_exclusive_group()
    how.add_argument(
        "--resume", action="store_true", help="continue the run in output.dir from its last.pt (same config)"
    )
    how.add_argument(
        "--resume-from",
        metavar="CKPT",
        help="continue from the checkpoint CKPT, writing into output.dir",
    )
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="replace the run output.dir holds (its checkpoint, weights, metrics and config)",
    )
    add_source(p)
    p.set_defaults(func=run, extra_dest="overrides")


def run(args: argparse.Namespace) -> int:
    from mnet.tasks import get_task
    from mnet.tasks.engine import TrainingStopped, load_config, train

    for item in args.overrides:
        if "=" not in item and item.endswith(".pt"):
            raise ValueError(
                f"{item!r} is not a key=value override; continue from a checkpoint with --resume-from {item}"
            )
    task = get_task(args.task)
    cfg = load_config(args.config, args.overrides, task=task)
    resume = args.resume_from or args.resume
    try:
        summary = train(task, cfg, resume=resume, overwrite=args.overwrite)
    except TrainingStopped as e:
        print(f"mnet train: error: {e}", file=sys.stderr)
        return 1
    if summary["rank"] == 0:
        print(json.dumps(summary, indent=2))
    return 0

"""``mnet compare``: params, Mult-Adds and CPU latency for each task at each α × ρ."""

from __future__ import annotations

import argparse
import sys

from mnet.apps.options import add_runtime, add_source, int_range
from mnet.backbone import ALPHAS, RESOLUTIONS


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "compare", help="compare backbone sizes per task (params, Mult-Adds, latency, metric)", description=__doc__
    )
    p.add_argument("--tasks", nargs="+", metavar="TASK", help="tasks to include (default: all registered)")
    p.add_argument(
        "--alphas",
        nargs="+",
        type=float,
        default=list(ALPHAS),
        metavar="A",
        help="width multipliers (default: %(default)s)",
    )
    p.add_argument(
        "--resolutions",
        nargs="+",
        type=int,
        default=list(RESOLUTIONS),
        metavar="R",
        help="input resolutions (default: %(default)s)",
    )
    p.add_argument("--format", choices=("table", "json", "csv"), default="table")
    p.add_argument("--plot", metavar="FILE.png", help="also draw latency against Mult-Adds to this file")
    add_runtime(p)
    p.add_argument("--warmup", type=int_range(0, 10_000), default=5, help="untimed runs first (default: %(default)s)")
    p.add_argument("--runs", type=int_range(1, 100_000), default=30, help="timed runs per model (default: %(default)s)")
    p.add_argument(
        "--data",
        nargs="+",
        default=[],
        metavar="TASK=DIR",
        help="also measure each task's metric on this dataset, with the registry's pretrained "
        "weights at each α × ρ that are at hand (e.g. classification=../shared/data/imagenet)",
    )
    add_source(p)
    p.add_argument("--eval-limit", type=int_range(1), metavar="N", help="evaluate on the first N samples only")
    p.add_argument("--no-latency", action="store_true", help="count params and Mult-Adds only")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def parse_data(items: list[str]) -> dict[str, str]:
    from mnet.apps.cli import UserError
    from mnet.tasks import get_task

    data = {}
    for item in items:
        task, sep, path = item.partition("=")
        if not sep or not path:
            raise UserError(f"--data takes TASK=DIR, got {item!r}")
        get_task(task)
        data[task] = path
    return data


def run(args: argparse.Namespace) -> int:
    from mnet.tasks.runtime import compare as cmp

    rows = cmp.compare(
        args.tasks,
        args.alphas,
        args.resolutions,
        warmup=args.warmup,
        runs=args.runs,
        threads=args.threads,
        measure=not args.no_latency,
        runtime=args.runtime,
        progress=not args.quiet,
        data=parse_data(args.data),
        eval_limit=args.eval_limit,
    )
    print(cmp.FORMATTERS[args.format](rows))
    if args.plot:
        cmp.plot(rows, args.plot)
        print(f"plot written to {args.plot}", file=sys.stderr)
    return 0

"""Cold-start wall time of the ``mnet`` command: ``mnet --help``, and ``mnet predict`` on one photo with the
model already cached (the export in the cache: ONNX Runtime only, no torch import).

Each command runs in a fresh process, ``--runs`` times, after one untimed run that fills the cache;
reports the median and the slowest, and whether the process imported torch.

    python -m benchmarks.cli_startup --photo ../shared/data/samples/grace_hopper.jpg
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from benchmarks.peaks import cpu_description

RESULTS = Path(__file__).resolve().parent / "results" / "cli_startup.md"
#: prints whether torch was imported after the command ran (the command's own process, via -c)
PROBE = (
    "import atexit, sys; atexit.register(lambda: sys.stderr.write('torch imported: %s\\n' % ('torch' in sys.modules)));"
    " from mnet.apps.cli import main; sys.exit(main(sys.argv[1:]))"
)


def timed(args: list[str], env: dict[str, str]) -> tuple[float, bool]:
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", PROBE, *args], env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if out.returncode != 0 or "torch imported:" not in out.stderr:
        raise RuntimeError(f"mnet {' '.join(args)} failed:\n{out.stderr}")
    return wall, "torch imported: True" in out.stderr


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--photo", required=True, help="the photo `mnet predict` runs on")
    p.add_argument("--task", default="classification")
    p.add_argument("--runs", type=int, default=10)
    p.add_argument("--out", type=Path, default=RESULTS)
    args = p.parse_args(argv)
    env = dict(os.environ)
    commands = {
        "mnet --help": ["--help"],
        f"mnet predict {args.task} PHOTO (cached model)": ["predict", args.task, str(args.photo)],
    }
    timed(commands[f"mnet predict {args.task} PHOTO (cached model)"], env)  # fills the cache (convert + export)
    rows = []
    for label, cmd in commands.items():
        runs = [timed(cmd, env) for _ in range(args.runs)]
        walls = [w for w, _ in runs]
        rows.append((label, float(np.median(walls)), max(walls), any(t for _, t in runs)))
        print(f"{label}: median {rows[-1][1]:.3f} s, slowest {rows[-1][2]:.3f} s, torch imported: {rows[-1][3]}")
    cpu, flags = cpu_description()
    lines = [
        "# `mnet` cold start (wall time of a fresh process)",
        "",
        f"CPU: {cpu}; flags: {' '.join(flags)}; {os.cpu_count()} cores; {args.runs} runs each",
        "",
        "| command | median (s) | slowest (s) | torch imported |",
        "|---|---|---|---|",
        *[f"| `{label}` | {med:.3f} | {worst:.3f} | {'yes' if torch else 'no'} |" for label, med, worst, torch in rows],
        "",
        "Made by `python -m benchmarks.cli_startup --photo " + str(args.photo) + "`.",
        "",
    ]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines))
    print(f"written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

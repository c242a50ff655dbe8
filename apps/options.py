"""Options shared by the ``mnet`` commands: one spelling and one range check each, at parse time.

Light on purpose (argparse only): ``mnet --help`` and argument errors never import torch.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable

#: inference runtimes (``mnet.tasks.runtime.load.RUNTIME_CHOICES``; a test keeps the two equal)
RUNTIMES: tuple[str, ...] = ("auto", "torch", "onnxruntime")
#: environment variable naming folders of original weight files, searched before any download
WEIGHTS_DIR_ENV = "MNET_WEIGHTS_DIR"
#: the largest input resolution accepted (``mnet.backbone.config.MAX_RESOLUTION``; a test keeps the two equal)
MAX_RESOLUTION = 1024


def int_range(lo: int, hi: int | None = None) -> Callable[[str], int]:
    """An argparse type: an integer in [lo, hi] (hi None: no upper bound); the error names the range."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < lo or (hi is not None and value > hi):
            raise argparse.ArgumentTypeError(f"must be {_range(lo, hi)}, got {value}")
        return value

    parse.__name__ = "integer"
    return parse


def float_range(lo: float, hi: float) -> Callable[[str], float]:
    """An argparse type: a finite number in [lo, hi]."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        if not lo <= value <= hi:  # also refuses nan
            raise argparse.ArgumentTypeError(f"must be in [{lo:g}, {hi:g}], got {text}")
        return value

    parse.__name__ = "number"
    return parse


def _range(lo: int, hi: int | None) -> str:
    return f">= {lo}" if hi is None else f"in [{lo}, {hi}]"


def add_source(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--source",
        metavar="DIR",
        help=f"folder (or file) of original weight files, searched before any download "
        f"(default: ${WEIGHTS_DIR_ENV}, e.g. ../shared/weights)",
    )


def apply_source(args: argparse.Namespace) -> None:
    """Put ``--source`` first among the folders every weights lookup searches (before
    ``$MNET_WEIGHTS_DIR`` and the user config; see ``mnet.weights.locations``)."""
    source = getattr(args, "source", None)
    if source:
        from mnet.weights.locations import add_originals_dir

        if not os.path.exists(source):
            raise FileNotFoundError(f"--source {source}: no such file or folder")
        add_originals_dir(source)


def add_runtime(p: argparse.ArgumentParser, *, threads: bool = True) -> None:
    p.add_argument(
        "--runtime", choices=RUNTIMES, default="auto", help="inference runtime (default: auto = ONNX Runtime)"
    )
    if threads:
        p.add_argument("--threads", type=int_range(1, 256), help="CPU threads (default: the runtime's)")


def add_weights(p: argparse.ArgumentParser, *, what: str = "weights") -> None:
    p.add_argument(
        "--weights",
        metavar="W",
        help=f"{what}: a registry entry (`mnet weights list`), a suite .safetensors file (e.g. written by "
        "`mnet train`) or an exported .onnx file (default: the task's pretrained weights)",
    )

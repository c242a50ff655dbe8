"""``mnet --help``, argument errors and ``mnet predict`` with a cached model never import torch (fast CLI).
Timings belong to ``benchmarks/cli_startup.py``; this checks what makes them fast."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from benchmarks.cli_startup import PROBE


def run_mnet(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", PROBE, *args], env=dict(os.environ), capture_output=True, text=True)


@pytest.mark.parametrize(
    "args, code",
    [(("--help",), 0), (("predict", "--help"), 0), (("predict", "classification", "x.jpg", "--top-k", "-3"), 2)],
)
def test_help_and_argument_errors_do_not_import_torch(args, code):
    out = run_mnet(*args)
    assert out.returncode == code and "torch imported: False" in out.stderr, out.stderr


def test_predict_with_a_cached_model_does_not_import_torch(shared):
    from mnet.tasks.runtime.load import load_predictor

    photo = str(shared("data", "samples", "grace_hopper.jpg"))
    load_predictor("classification", notify=None)  # converts and exports into this session's cache
    out = run_mnet("predict", "classification", photo)
    assert out.returncode == 0 and "military uniform" in out.stdout
    assert "torch imported: False" in out.stderr, out.stderr

"""benchmarks/runtime_peers.py: the quick path runs end to end, and a cell that cannot be made says why.

The benchmark itself is not a test; these check that it produces its report (tiny settings, ~10 s).
"""

from __future__ import annotations

import re

import pytest
import torch
from torch import nn

pytest.importorskip("onnxruntime")
pytest.importorskip("matplotlib")

from benchmarks import runtime_peers  # noqa: E402
from benchmarks.peers_report import RUNTIMES  # noqa: E402


def test_quick_path_writes_report_and_plot(tmp_path):
    out, png = tmp_path / "peers.md", tmp_path / "peers.png"
    runtime_peers.main(
        [
            "--quick",
            "--alphas",
            "0.25",
            "--resolutions",
            "128",
            "--peers",
            "--batches",
            "1",
            "--runs",
            "1",
            "--warmup",
            "1",
            "--peak-gemm",
            "128",
            "--peak-conv",
            "1",
            "32",
            "8",
            "--peak-runs",
            "1",
            "--out",
            str(out),
            "--plot",
            str(png),
        ]
    )
    md = out.read_text()
    assert "QUICK SMOKE RUN" in md and "None: every cell was produced." in md
    rows = [line for line in md.splitlines() if line.startswith("| mobilenet_v1_0.25_128 | 128 |")]
    assert [r.split(" | ")[3] for r in rows] == ["eager", "channels_last", "ORT fp32", "ORT int8"]
    for row in rows:  # runs, p50, p95 are numbers and p95 >= p50
        runs, p50, p95 = (float(v) for v in row.split(" | ")[5:8])
        assert runs == 1 and 0 < p50 <= p95
    peaks = re.findall(r"^\| (torch\.mm|ORT) .* \| (fp32|int8) \| ([\d.]+) \|$", md, flags=re.M)
    assert len(peaks) == 5 and all(float(g) > 0 for *_, g in peaks)
    assert "28/28 convs/GEMMs int8" in md  # 27 convs + the classifier, all fused to int8 kernels
    assert png.stat().st_size > 10_000


class NoOnnx(nn.Module):
    """Runs in PyTorch; ONNX has no SVD, so export fails."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.linalg.svdvals(self.conv(x))


def test_cell_that_cannot_be_made_says_why(tmp_path):
    args = runtime_peers.parse_args(["--quick", "--batches", "2", "--runs", "2", "--warmup", "1"])
    spec = runtime_peers.ModelSpec("no_onnx", NoOnnx, 8)
    with runtime_peers.tqdm(disable=True) as bar:
        cells, notes = runtime_peers.bench_model(spec, args, tmp_path, bar)
    by_rt = {c.runtime: c for c in cells}
    assert list(by_rt) == list(RUNTIMES) and all(c.batch == 2 for c in cells)
    assert by_rt["eager"].ok and by_rt["channels_last"].ok and len(by_rt["eager"].times_ms) == 2
    for rt in ("ort_fp32", "ort_int8"):
        assert not by_rt[rt].ok and by_rt[rt].error.startswith("ONNX export failed:")
    assert "int8 graph" not in notes

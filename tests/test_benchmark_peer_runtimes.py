"""benchmarks/peer_runtimes.py: the quick path runs end to end (each runtime in its own worker process),
cells that cannot be made say why, and the onnxruntime-web package is only used when its hash matches.

The benchmark itself is not a test; these check that it produces its report (tiny settings, seconds).
"""

from __future__ import annotations

import argparse
import io
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("onnxruntime")
pytest.importorskip("matplotlib")

from benchmarks import peer_runtimes, web_runtime  # noqa: E402
from benchmarks.peer_runtimes import MODELS, PEERS, Prepared, na_reason  # noqa: E402


def test_quick_path_writes_report_and_plot(tmp_path):
    out, png = tmp_path / "peers.md", tmp_path / "peers.png"
    peer_runtimes.main(
        [
            "--quick",
            "--runtimes",
            "ort_fp32",
            "ort_int8",
            "ov_int8_auto",
            "litert",
            "--batches",
            "1",
            "8",
            "--out",
            str(out),
            "--plot",
            str(png),
        ]
    )
    md = out.read_text()
    assert "QUICK SMOKE RUN" in md and "- CPU: " in md and "flags: " in md
    rows = [line for line in md.splitlines() if line.startswith("| MobileNetV1 0.25-128 | ")]
    batch1 = rows[0].split(" | ")
    # our default path: random weights carry no int8 accuracy record, so the choice runs fp32
    assert batch1[1].startswith(("onnxruntime fp32: ", "openvino fp32: ")), md
    p50, p95 = (float(v.strip("* ")) for v in batch1[2].split(" / "))  # ORT fp32 cell: "p50 / p95"
    assert 0 < p50 <= p95, md
    assert "int8 not a candidate: mnv1_0.25_128.int8.onnx records no accuracy change" in md
    assert "## Batch 8: p50 / p95 (ms, the whole batch)" in md and "## Our default path vs the fastest entry" in md
    litert_b8 = rows[1].split(" | ")[-1]  # LiteRT has no batch-8 cell: the official file has batch 1
    assert litert_b8.startswith("n/a [")
    assert "fixed batch of 1" in md or "ai_edge_litert not installed" in md or "not at hand" in md
    assert png.stat().st_size > 10_000
    # the run's measurements are kept beside the report, and the report can be re-written from them alone
    again = tmp_path / "again.md"
    peer_runtimes.main(["--from-json", str(out.with_suffix(".json")), "--out", str(again), "--plot", ""])
    assert again.read_text() == md, (md, again.read_text())


def _prepared(tmp_path: Path, **files: str) -> Prepared:
    return Prepared(MODELS["mnv1_0.25_128"], dict(files), str(tmp_path / "x.npz"), "pretrained")


def test_cells_that_cannot_be_made_say_why(tmp_path, monkeypatch):
    args = argparse.Namespace(web_unavailable="")
    p = _prepared(tmp_path, fp32="a.onnx", int8="b.onnx")
    p.missing["tflite"] = "no official uint8 .tflite for x"
    monkeypatch.setattr(peer_runtimes, "installed", lambda module: module != "openvino")
    assert (
        na_reason(PEERS["ov_int8"], p, 1, args, None) == "openvino not installed (pip install 'mobilenet-suite[bench]')"
    )
    assert na_reason(PEERS["ort_int8"], p, 8, args, None) is None
    assert na_reason(PEERS["litert"], p, 1, args, None) == "no official uint8 .tflite for x"
    assert "not served by the browser live view" in na_reason(PEERS["web_fp32_2t"], p, 1, args, None)
    web_model = Prepared(MODELS["mnv1_0.5_160"], {"fp32": "a.onnx", "tflite": "t.tflite"}, "x.npz", "pretrained")
    assert na_reason(PEERS["litert"], web_model, 8, args, None) == "the official .tflite file has a fixed batch of 1"
    args.web_unavailable = "no Chromium at /nowhere"
    assert na_reason(PEERS["web_fp32_1t"], web_model, 1, args, None) == "no Chromium at /nowhere"
    assert na_reason(PEERS["web_int8_1t"], web_model, 1, argparse.Namespace(web_unavailable=""), None) == "no int8 file"
    monkeypatch.setattr(peer_runtimes, "installed", lambda module: True)
    assert "default precision on this CPU is f32" in na_reason(PEERS["ov_fp32_auto"], p, 1, args, "f32")


def _tarball(path: Path, files: dict[str, bytes]) -> None:
    with tarfile.open(path, "w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(f"package/dist/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def test_web_package_is_used_only_with_the_pinned_integrity(tmp_path, monkeypatch):
    cache = tmp_path / "npm"
    with pytest.raises(web_runtime.WebUnavailable, match="is not in .*--fetch-web"):
        web_runtime.fetch_package(cache, download=False)  # nothing fetched, no download allowed: no network
    cache.mkdir()
    tgz = cache / f"onnxruntime-web-{web_runtime.ORT_WEB_VERSION}.tgz"
    files = {name: name.encode() * 10 for name in web_runtime.DIST_FILES}
    _tarball(tgz, files)
    with pytest.raises(web_runtime.WebUnavailable, match="is not the pinned"):
        web_runtime.fetch_package(cache, download=False)
    assert not tgz.exists()  # a tarball that fails the check is deleted, never unpacked
    _tarball(tgz, files)
    from mnet.apps.demo import web_runtime as app_web  # the one check, shared with the app

    monkeypatch.setattr(app_web, "ORT_WEB_INTEGRITY", app_web.integrity(tgz.read_bytes()))
    dist = web_runtime.fetch_package(cache, download=False)
    assert {f.name: f.read_bytes() for f in dist.iterdir()} == files


def test_onnxruntime_web_runs_in_chromium(tmp_path):
    """A tiny model in headless Chromium, one WASM thread (needs Chromium and the fetched package)."""
    pytest.importorskip("playwright")
    if not Path(web_runtime.CHROMIUM).is_file():
        pytest.skip(f"no Chromium at {web_runtime.CHROMIUM}")
    from mnet.tasks.runtime.export import export_onnx
    from mnet.weights.sources import cache_dir

    try:
        dist = web_runtime.fetch_package(cache_dir() / "npm", download=False)
    except web_runtime.WebUnavailable as e:
        pytest.skip(str(e))
    x = np.random.default_rng(0).standard_normal((2, 3, 16, 16), dtype=np.float32)
    export_onnx(torch.nn.Conv2d(3, 4, 3).eval(), tmp_path / "m.onnx", x)
    np.savez(tmp_path / "in.npz", float=x)
    model = {"name": "tiny", "files": {"fp32": str(tmp_path / "m.onnx")}, "inputs": str(tmp_path / "in.npz")}
    result = web_runtime.run_in_browser(
        dist, [{**model, "batches": [1, 2]}], threads=1, precision="fp32", budget_s=0.05, min_runs=2, max_runs=5
    )
    assert result["info"]["crossOriginIsolated"] == "true"
    cells = {c["batch"]: c for c in result["cells"]}
    assert set(cells) == {1, 2} and all(2 <= len(c["times_ms"]) <= 5 and min(c["times_ms"]) > 0 for c in cells.values())

"""The per-machine runtime choice (tasks/runtime/choice.py): which candidates, which pick, the cache.

Timings are faked (a ``timer`` that returns fixed milliseconds per candidate), so each branch is
forced; one test times for real on a tiny model to show the real path runs.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
from torch import nn

from mnet.tasks.runtime import choice
from mnet.tasks.runtime.export import export_onnx, read_metadata, write_metadata
from mnet.tasks.runtime.int8_accuracy import META_INT8_ACCURACY, META_INT8_DELTA, Int8Accuracy
from mnet.tasks.runtime.quantize import META_WEIGHT_BITS
from mnet.tasks.runtime.session import OnnxRuntime

pytest.importorskip("onnxruntime")


class Tiny(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.fc = nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.conv(x).relu().mean((2, 3)))


def record(delta: float, *, fp32: float = 70.0) -> dict[str, str]:
    return Int8Accuracy("top-1", fp32, fp32 + delta, 1000, "imagenet/val photos not used for calibration").to_metadata()


@pytest.fixture
def files(tmp_path):
    """(fp32 file, a stand-in "int8" file of the same weights: the choice reads its metadata, not its ops)."""
    torch.manual_seed(0)
    fp32 = tmp_path / "m.onnx"
    export_onnx(Tiny().eval(), fp32, np.random.default_rng(0).standard_normal((2, 3, 16, 16), dtype=np.float32))
    write_metadata(fp32, {"mnet.weights": "tiny"})
    int8 = tmp_path / "m_int8.onnx"
    shutil.copy(fp32, int8)
    write_metadata(int8, {**record(-0.4), META_WEIGHT_BITS: "7"})
    return fp32, int8


class FakeTimer:
    """ms per candidate label; remembers what it was asked to time."""

    def __init__(self, ms: dict[str, float]) -> None:
        self.ms, self.calls = ms, []

    def __call__(self, cand: choice.Candidate, threads: int | None) -> list[float]:
        self.calls.append(cand.label)
        return [self.ms[cand.label]] * 5


@pytest.fixture
def with_openvino(monkeypatch):
    """An "openvino" engine that is always installed (it opens files in ONNX Runtime: only the choice is tested)."""
    monkeypatch.setitem(
        choice.ENGINES, "openvino", choice.Engine(lambda: True, lambda p, t: OnnxRuntime(p, threads=t), lambda: "fake")
    )


ALL = {"onnxruntime fp32": 7.6, "onnxruntime int8": 5.1, "openvino fp32": 8.0, "openvino int8": 5.4}


@pytest.mark.parametrize(
    "fastest",
    ["onnxruntime fp32", "onnxruntime int8", "openvino int8", "openvino fp32"],
)
def test_fake_timing_picks_each_branch(files, tmp_path, with_openvino, fastest):
    ms = {**ALL, fastest: 1.0}
    timer = FakeTimer(ms)
    c = choice.choose_runtime(*files, threads=2, cache_file=tmp_path / "c.json", timer=timer)
    assert c.candidate.label == fastest and not c.cached
    assert sorted(set(timer.calls)) == sorted(ALL) and len(timer.calls) == 8  # 4 candidates × 2 rounds
    assert c.description == f"{fastest} (2 threads)"
    assert c.reason.startswith(f"{fastest}: 1.00 ms vs ") and "int8 Δtop-1 −0.40 pt within 1.5" in c.reason
    x = np.zeros((1, 3, 16, 16), np.float32)
    assert c.runtime.run(x).shape == (1, 3)  # a working runtime of the picked file
    assert c.candidate.path == files[1 if fastest.endswith("int8") else 0]


def test_without_int8_file_or_openvino(files, tmp_path, monkeypatch):
    monkeypatch.setitem(choice.ENGINES, "openvino", choice.Engine(lambda: False, lambda p, t: None, lambda: "absent"))
    timer = FakeTimer(ALL)
    c = choice.choose_runtime(files[0], threads=1, cache_file=tmp_path / "c.json", timer=timer)
    assert set(timer.calls) == {"onnxruntime fp32"} and c.candidate.label == "onnxruntime fp32"
    assert "(the only candidate)" in c.reason and "openvino not installed" in c.reason


def test_export_without_accuracy_record_never_picks_int8(files, tmp_path, with_openvino):
    import onnx

    fp32, int8 = files
    proto = onnx.load(str(int8))  # drop the record, keep the rest
    kept = [(p.key, p.value) for p in proto.metadata_props if p.key not in (META_INT8_ACCURACY, META_INT8_DELTA)]
    del proto.metadata_props[:]
    for k, v in kept:
        proto.metadata_props.add(key=k, value=v)
    onnx.save(proto, str(int8))
    timer = FakeTimer({**ALL, "onnxruntime int8": 0.1, "openvino int8": 0.1})
    c = choice.choose_runtime(fp32, int8, threads=2, cache_file=tmp_path / "c.json", timer=timer)
    assert c.candidate.precision == "fp32" and not any("int8" in label for label in timer.calls)
    assert "int8 not a candidate: m_int8.onnx records no accuracy change" in c.reason


@pytest.mark.parametrize("delta, allowed", [(-1.5, True), (-1.51, False), (-4.0, False), (+0.8, True)])
def test_int8_only_within_the_accuracy_budget(files, tmp_path, with_openvino, delta, allowed):
    fp32, int8 = files
    write_metadata(int8, record(delta))
    timer = FakeTimer({**ALL, "onnxruntime int8": 0.1})
    c = choice.choose_runtime(fp32, int8, threads=2, cache_file=tmp_path / "c.json", timer=timer)
    assert (c.candidate.label == "onnxruntime int8") is allowed
    if not allowed:
        assert "loses more than 1.5" in c.reason and "onnxruntime int8" not in timer.calls


def test_int8_of_other_weights_or_unsaturated_bits_is_refused(files, tmp_path, monkeypatch):
    fp32, int8 = files
    fast_int8 = {**ALL, "onnxruntime int8": 0.1}
    write_metadata(int8, {"mnet.weights": "other"})
    c = choice.choose_runtime(
        fp32, int8, engines=["onnxruntime"], cache_file=tmp_path / "a.json", timer=FakeTimer(fast_int8)
    )
    assert c.candidate.precision == "fp32" and "exported from other weights (other)" in c.reason
    write_metadata(int8, {"mnet.weights": "tiny", META_WEIGHT_BITS: "8"})
    monkeypatch.setattr(choice, "has_int8_dot", lambda: False)  # an AVX2-only CPU
    c = choice.choose_runtime(
        fp32, int8, engines=["onnxruntime"], cache_file=tmp_path / "b.json", timer=FakeTimer(fast_int8)
    )
    assert c.candidate.precision == "fp32" and "8-bit weights saturate" in c.reason
    monkeypatch.setattr(choice, "has_int8_dot", lambda: True)  # VNNI
    c = choice.choose_runtime(
        fp32, int8, engines=["onnxruntime"], cache_file=tmp_path / "c.json", timer=FakeTimer(fast_int8)
    )
    assert c.candidate.precision == "int8"
    write_metadata(int8, {META_INT8_ACCURACY: "{not json"})
    c = choice.choose_runtime(
        fp32, int8, engines=["onnxruntime"], cache_file=tmp_path / "d.json", timer=FakeTimer(fast_int8)
    )
    assert c.candidate.precision == "fp32" and "unreadable mnet.int8_accuracy record" in c.reason


def test_cache_is_reused_and_keyed_by_cpu_and_file_hash(files, tmp_path, monkeypatch, with_openvino):
    fp32, int8 = files
    cache = tmp_path / "choice.json"
    first = FakeTimer({**ALL, "openvino int8": 1.0})
    c1 = choice.choose_runtime(fp32, int8, threads=2, cache_file=cache, timer=first)
    entry = next(iter(json.loads(cache.read_text()).values()))
    assert entry["pick"] == "openvino int8" and entry["timings_ms"]["openvino int8"] == 1.0
    # same CPU, same files: no timing, same pick, says it is cached
    again = FakeTimer({**ALL, "onnxruntime fp32": 0.1})
    c2 = choice.choose_runtime(fp32, int8, threads=2, cache_file=cache, timer=again)
    assert again.calls == [] and c2.cached and c2.candidate.label == c1.candidate.label and "cached" in c2.reason
    # another thread count is another question
    choice.choose_runtime(fp32, int8, threads=1, cache_file=cache, timer=again)
    assert again.calls
    # another CPU (model or flags): timed again, and both answers kept
    other_cpu = FakeTimer({**ALL, "onnxruntime int8": 0.5})
    monkeypatch.setattr(choice, "cpu_fingerprint", lambda: "another-cpu")
    c3 = choice.choose_runtime(fp32, int8, threads=2, cache_file=cache, timer=other_cpu)
    assert other_cpu.calls and c3.candidate.label == "onnxruntime int8" and len(json.loads(cache.read_text())) == 3
    # a changed file (new sha256) on that CPU: timed again
    write_metadata(fp32, {"mnet.note": "re-exported"})
    changed = FakeTimer(ALL)
    choice.choose_runtime(fp32, int8, threads=2, cache_file=cache, timer=changed)
    assert changed.calls
    # refresh=True times even with an answer cached
    refreshed = FakeTimer(ALL)
    choice.choose_runtime(fp32, int8, threads=2, cache_file=cache, timer=refreshed, refresh=True)
    assert refreshed.calls


def test_damaged_cache_is_timed_again(files, tmp_path):
    cache = tmp_path / "choice.json"
    cache.write_text("{ not json")
    timer = FakeTimer(ALL)
    c = choice.choose_runtime(*files, engines=["onnxruntime"], cache_file=cache, timer=timer)
    assert timer.calls and c.candidate.label == "onnxruntime int8" and json.loads(cache.read_text())


def test_default_cache_lives_in_the_weights_cache(files, tmp_path, monkeypatch):
    monkeypatch.setenv("MNET_CACHE", str(tmp_path / "cache"))
    choice.choose_runtime(files[0], engines=["onnxruntime"], timer=FakeTimer(ALL))
    assert (tmp_path / "cache" / choice.CACHE_NAME).is_file()


def test_real_timing_on_a_tiny_model(files, tmp_path):
    c = choice.choose_runtime(*files, threads=1, engines=["onnxruntime"], cache_file=tmp_path / "c.json")
    assert set(c.timings_ms) == {"onnxruntime fp32", "onnxruntime int8"} and all(v > 0 for v in c.timings_ms.values())
    assert c.candidate.label in c.timings_ms and c.reason.startswith(c.candidate.label)
    assert c.runtime.run(np.zeros((2, 3, 16, 16), np.float32)).shape == (2, 3)


def test_missing_file_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.onnx"):
        choice.choose_runtime(tmp_path / "nope.onnx")


def test_int8_record_round_trips_through_metadata(tmp_path):
    r = Int8Accuracy("AP", 18.5, 18.1, 206, "COCO val2017 photos")
    assert r.delta == -0.4 and r.change == "int8 ΔAP −0.40 pt" and r.within() and not r.within(0.3)
    assert Int8Accuracy.from_metadata(r.to_metadata()) == r
    assert r.to_metadata()[META_INT8_DELTA] == "-0.40"
    assert Int8Accuracy.from_metadata({}) is None
    with pytest.raises(ValueError, match="unreadable"):
        Int8Accuracy.from_metadata({META_INT8_ACCURACY: json.dumps({"metric": "AP"})})


def test_export_int8_records_top1_change_on_held_out_photos(shared, tmp_path):
    """``mnet export --int8`` on real weights: the record is written, measured on photos not used for
    calibration (the calibration photos are listed; none of them is measured)."""
    from mnet.tasks.runtime.deploy import export_weights
    from mnet.weights import fetch_and_convert

    name = "mobilenet_v1_0.25_128.tflite_in1k_quant"
    fetch_and_convert(name, source=shared("weights", "tflite"), progress=False)
    imagenet = shared("data", "imagenet")
    out = tmp_path / "q.onnx"
    report = export_weights(
        name,
        "onnx",
        out,
        int8=True,
        calibration_images=[imagenet / "val"],
        calibration_count=16,
        accuracy_count=48,
        progress=False,
    )
    rec = Int8Accuracy.from_metadata(read_metadata(out))
    assert rec is not None and rec.metric == "top-1" and rec.n == 48 and "not used for calibration" in rec.data
    assert 0 < rec.fp32 <= 100 and 0 < rec.int8 <= 100 and report.int8_accuracy == rec.summary()
    assert read_metadata(out)[META_WEIGHT_BITS] in ("7", "8")

"""The per-machine runtime choice: time the candidates for this model on this CPU once, run the fastest.

Which runtime and precision is fastest changes from CPU to CPU (ONNX Runtime's int8 was 1.07× its fp32
on a Zen 1, 1.2–1.6× on a Zen 3; OpenVINO and ONNX Runtime trade the lead by a few per cent), so
:func:`choose_runtime` measures instead of guessing. Candidates, for an fp32 ONNX file and optionally its
int8 twin (``mnet export --int8``):

- ONNX Runtime fp32 and int8, and OpenVINO fp32 and int8 when the ``openvino`` extra is installed
  (:class:`~tasks.runtime.openvino.OpenVinoRuntime`, float layers in fp32);
- int8 only when the int8 file records its accuracy change on held-out photos
  (:mod:`tasks.runtime.int8_accuracy`) and loses at most 1.5 points, was made from the same weights as
  the fp32 file, and, if it has full-range 8-bit weights, only on CPUs with VNNI/AMX (AVX2's int8 kernels
  saturate with them; :mod:`tasks.runtime.quantize`).

Timing: each candidate alone — its runtime built, warmed up, timed, and destroyed before the next one is
built, so no other runtime's worker threads are alive, let alone spinning, while it runs (ONNX Runtime's
idle threads spin and steal the cores from whatever runs next: timed interleaved in one process, ONNX
Runtime and OpenVINO swapped places). Two rounds in opposite orders even out a drift in machine load;
each candidate is judged by the 10th percentile of its runs over both rounds (:func:`measure` says why).

The answer is cached in ``<weights cache>/runtime_choice.json`` keyed by the CPU (model and every flag:
:func:`tasks.timing.cpu_fingerprint`), the thread count, the runtime versions and the files' sha256, so
the timing runs once per machine and model.
"""

from __future__ import annotations

import gc
import hashlib
import json
import os
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from mnet.tasks.timing import cpu_description, cpu_fingerprint, has_int8_dot

from .int8_accuracy import MAX_DROP_PT, Int8Accuracy
from .onnx import onnxruntime_available, openvino_available, read_metadata
from .quantize import META_WEIGHT_BITS

if TYPE_CHECKING:
    from .session import Runtime


def _open_ort(path: Path, threads: int | None) -> Runtime:
    from .session import OnnxRuntime

    return OnnxRuntime(path, threads=threads)


def _open_ov(path: Path, threads: int | None) -> Runtime:
    from .openvino import OpenVinoRuntime

    return OpenVinoRuntime(path, threads=threads)


#: file name of the cache, in the weights cache folder (``mnet.weights.sources.cache_dir()``)
CACHE_NAME = "runtime_choice.json"
#: the metadata key naming the weights a file was exported from (same as predict.META_WEIGHTS)
_META_WEIGHTS = "mnet.weights"


@dataclass(frozen=True)
class Engine:
    """A runtime the choice can time: whether it is installed, and how to open a file in it."""

    available: Callable[[], bool]
    open: Callable[[Path, int | None], Runtime]
    version: Callable[[], str]


def _ort_version() -> str:
    import onnxruntime

    return onnxruntime.__version__


def _ov_version() -> str:
    import openvino

    return openvino.get_version()


#: engine name → how to use it, in the order candidates are listed
ENGINES: dict[str, Engine] = {
    "onnxruntime": Engine(onnxruntime_available, _open_ort, _ort_version),
    "openvino": Engine(openvino_available, _open_ov, _ov_version),
}


@dataclass(frozen=True)
class Candidate:
    engine: str
    precision: str  # "fp32" | "int8"
    path: Path

    @property
    def label(self) -> str:
        return f"{self.engine} {self.precision}"

    def open(self, threads: int | None) -> Runtime:
        return ENGINES[self.engine].open(self.path, threads)


@dataclass
class Choice:
    """The runtime to use, what it is, and why (the timings behind it)."""

    runtime: Runtime | None  # None when the caller opens the file itself (``open_runtime=False``)
    candidate: Candidate
    description: str  # e.g. "openvino int8 (2 threads)"
    reason: str  # e.g. "openvino int8: 0.37 ms vs onnxruntime int8 0.50 ms, ...; int8 Δtop-1 −0.40 pt ≤ 1.5"
    timings_ms: dict[str, float] = field(default_factory=dict)
    cached: bool = False


def int8_eligibility(fp32_path: Path, int8_path: Path, *, max_drop: float = MAX_DROP_PT) -> tuple[bool, str]:
    """(whether the int8 file may run, the reason in words)."""
    meta = read_metadata(int8_path)
    if meta.get(_META_WEIGHTS) and read_metadata(fp32_path).get(_META_WEIGHTS) not in (None, meta[_META_WEIGHTS]):
        return False, f"int8 not a candidate: {int8_path.name} was exported from other weights ({meta[_META_WEIGHTS]})"
    try:
        record = Int8Accuracy.from_metadata(meta)
    except ValueError as e:
        return False, f"int8 not a candidate: {int8_path.name}: {e}"
    if record is None:
        return False, (
            f"int8 not a candidate: {int8_path.name} records no accuracy change (make it with `mnet export --int8`)"
        )
    if not record.within(max_drop):
        return False, f"int8 not a candidate: {record.change} loses more than {max_drop:g}"
    if meta.get(META_WEIGHT_BITS) == "8" and not has_int8_dot():
        return False, "int8 not a candidate: its 8-bit weights saturate in int8 kernels without VNNI/AMX on this CPU"
    return True, f"{record.change} within {max_drop:g}"


def candidates(
    fp32_path: Path, int8_path: Path | None, *, engines: Sequence[str] | None = None, max_drop: float = MAX_DROP_PT
) -> tuple[list[Candidate], list[str]]:
    """The candidates to time, and notes on what was left out and why."""
    notes: list[str] = []
    names = [e for e in (engines or ENGINES) if e in ENGINES]
    installed = [e for e in names if ENGINES[e].available()]
    notes += [f"{e} not installed" for e in names if e not in installed]
    if not installed:
        raise ValueError(f"no runtime to run {fp32_path} in: install onnxruntime (or openvino)")
    precisions = [("fp32", fp32_path)]
    if int8_path is not None:
        ok, why = int8_eligibility(fp32_path, int8_path, max_drop=max_drop)
        notes.append(why)
        if ok:
            precisions.append(("int8", int8_path))
    return [Candidate(e, p, path) for e in installed for p, path in precisions], notes


def _input_shape(path: Path) -> tuple[int, ...]:
    import onnx

    dims = onnx.load(str(path), load_external_data=False).graph.input[0].type.tensor_type.shape.dim
    return tuple(d.dim_value if d.dim_value > 0 else 1 for d in dims)


def timing_input(shape: tuple[int, ...]) -> np.ndarray:
    """A smooth synthetic image batch in the models' [-1, 1] input range (not noise: no model sees noise,
    and values far outside the range send detection heads into saturated scores)."""
    n, c, h, w = shape
    yy, xx = np.meshgrid(
        np.linspace(-1, 1, h, dtype=np.float32), np.linspace(-1, 1, w, dtype=np.float32), indexing="ij"
    )
    planes = [np.sin(3 * xx + k) * np.cos(2 * yy - k) for k in range(c)]
    return np.ascontiguousarray(np.broadcast_to(np.stack(planes), (n, c, h, w)), dtype=np.float32)


def time_candidate(
    candidate: Candidate, threads: int | None, *, budget_s: float = 0.3, min_runs: int = 10, max_runs: int = 300
) -> list[float]:
    """Open ``candidate`` alone, warm it up, time batch-1 runs (ms) for about ``budget_s`` seconds (between
    ``min_runs`` and ``max_runs`` runs), and close it again."""
    x = timing_input(_input_shape(candidate.path))
    rt = candidate.open(threads)
    try:
        t_end = time.perf_counter() + budget_s / 3
        while time.perf_counter() < t_end:  # warm-up: first runs allocate, compile and fill caches
            rt.run_flat(x)
        times: list[float] = []
        t_end = time.perf_counter() + budget_s
        while len(times) < min_runs or (len(times) < max_runs and time.perf_counter() < t_end):
            t0 = time.perf_counter()
            rt.run_flat(x)
            times.append((time.perf_counter() - t0) * 1e3)
        return times
    finally:
        del rt
        gc.collect()  # the session and its worker threads go before the next candidate starts


Timer = Callable[[Candidate, "int | None"], Sequence[float]]


#: the percentile of a candidate's run times it is judged by (see :func:`measure`)
SCORE_PERCENTILE = 10


def measure(
    cands: Sequence[Candidate], threads: int | None, *, timer: Timer | None = None, rounds: int = 2, pause: float = 0.05
) -> dict[str, float]:
    """ms per candidate label: the 10th percentile of its runs over ``rounds`` rounds, alternating the order.

    Not the median: the answer is kept for good, and load from other processes slows a runtime whose
    threads sleep between runs (OpenVINO's) far more than one whose threads spin (ONNX Runtime's). On 2
    shared cores at load 8, OpenVINO int8 at 1.0-224 timed 2.73 ms at its 25th percentile against ONNX
    Runtime int8's 2.45, and the choice took ONNX Runtime; at load 3, 1.10 vs 1.24 ms (medians 1.11 vs
    1.26). A low percentile is what each runtime does when it has the cores, the machine the answer is for."""
    timer = timer or (lambda c, t: time_candidate(c, t))
    times: dict[str, list[float]] = {c.label: [] for c in cands}
    for r in range(rounds):
        for c in cands if r % 2 == 0 else list(reversed(cands)):
            time.sleep(pause)  # whatever ran before (torch's or a runtime's threads) goes idle
            times[c.label] += list(timer(c, threads))
    return {k: float(np.percentile(v, SCORE_PERCENTILE)) for k, v in times.items()}


def _sha256(path: Path) -> str:
    from mnet.weights.sources import sha256_file

    return sha256_file(path)


def cache_key(cands: Sequence[Candidate], threads: int | None) -> str:
    """What the answer depends on: the CPU, the thread count, the runtime versions, the files' contents."""
    engines = sorted({c.engine for c in cands})
    parts = {
        "cpu": cpu_fingerprint(),
        "threads": threads,
        "versions": {e: ENGINES[e].version() for e in engines},
        "candidates": sorted((c.label, _sha256(c.path)) for c in cands),
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


def default_cache_file() -> Path:
    from mnet.weights.sources import cache_dir

    return cache_dir() / CACHE_NAME


def _load(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):  # absent or damaged: time again
        return {}


def _save(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".runtime_choice.", suffix=".json")
    with os.fdopen(fd, "w") as f:
        json.dump(data, f, indent=1, sort_keys=True)
    os.replace(tmp, path)


def _fmt_ms(ms: float) -> str:
    return f"{ms:.2f} ms" if ms < 10 else f"{ms:.1f} ms"


def _reason(pick: str, timings: dict[str, float], notes: list[str], threads: int | None) -> str:
    others = ", ".join(f"{k} {_fmt_ms(v)}" for k, v in sorted(timings.items(), key=lambda kv: kv[1]) if k != pick)
    cpu = cpu_description()[0]
    text = f"{pick}: {_fmt_ms(timings[pick])}" + (f" vs {others}" if others else " (the only candidate)")
    text += f" (batch 1, {threads or 'default'} threads, p{SCORE_PERCENTILE} of each, on this {cpu})"
    return "; ".join([text, *notes])


def choose_runtime(
    fp32_path: str | Path,
    int8_path: str | Path | None = None,
    *,
    threads: int | None = None,
    engines: Sequence[str] | None = None,
    cache_file: str | Path | None = None,
    refresh: bool = False,
    timer: Timer | None = None,
    max_drop: float = MAX_DROP_PT,
    open_runtime: bool = True,
) -> Choice:
    """The fastest eligible runtime for this model on this machine (timed on first use, then cached).

    ``fp32_path`` / ``int8_path``: ONNX exports of one model (``mnet export`` and ``mnet export --int8``).
    ``engines`` limits the runtimes ("onnxruntime", "openvino"; default all installed); ``refresh``
    times again even when the cache has an answer; ``timer(candidate, threads) -> ms per run`` replaces
    the real timing (tests); ``open_runtime=False`` leaves opening the picked file to the caller (the
    predictor opens it with its light sessions: a cached answer then costs no heavy import)."""
    fp32 = Path(fp32_path)
    int8 = Path(int8_path) if int8_path is not None else None
    for p in (fp32, int8):
        if p is not None and not p.is_file():
            raise FileNotFoundError(f"{p}: no such ONNX file")
    cands, notes = candidates(fp32, int8, engines=engines, max_drop=max_drop)
    cache_path = Path(cache_file) if cache_file else default_cache_file()
    key = cache_key(cands, threads)
    cache = _load(cache_path)
    hit = cache.get(key)
    by_label = {c.label: c for c in cands}
    if hit and not refresh and hit.get("pick") in by_label:
        timings = {k: float(v) for k, v in hit["timings_ms"].items()}
        reason = _reason(hit["pick"], timings, notes, threads) + f"; timed {hit.get('when', 'earlier')}, cached"
        pick, cached = by_label[hit["pick"]], True
    else:
        timings = measure(cands, threads, timer=timer)
        pick, cached = by_label[min(timings, key=timings.get)], False
        reason = _reason(pick.label, timings, notes, threads)
        cache[key] = {
            "pick": pick.label,
            "timings_ms": timings,
            "cpu": cpu_description()[0],
            "files": {c.label: str(c.path) for c in cands},
            "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        }
        try:
            _save(cache_path, cache)
        except OSError:  # a read-only cache folder: the choice still stands, it is just timed again next time
            pass
    runtime = pick.open(threads) if open_runtime else None
    return Choice(runtime, pick, f"{pick.label} ({threads or 'default'} threads)", reason, timings, cached)

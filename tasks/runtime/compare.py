"""``mnet compare``: params, Mult-Adds and latency of every task at every α × ρ."""

from __future__ import annotations

import csv
import io
import itertools
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

import torch
from tqdm import tqdm

from mnet.backbone import ALPHAS, RESOLUTIONS
from mnet.backbone.config import validate_alpha, validate_resolution

from ..registry import get_task, task_names
from ..timing import measure_latency


@dataclass
class CompareRow:
    task: str
    alpha: float
    resolution: int
    params: int
    mult_adds: int
    latency_ms_p50: float | None
    latency_ms_p95: float | None
    threads: int
    runtime: str = "torch"
    metric_name: str | None = None
    metric: float | None = None
    #: what the latency was timed with, when it is more than the network on random weights (detection: NMS)
    timing: str = ""


#: the pretrained COCO SSD whose post-process (TFLite's: sigmoid scores, class-agnostic NMS, IoU 0.6,
#: 10 detections, score threshold 1e-8) detection rows are timed with when no weights match the row
REFERENCE_SSD = "ssd_mobilenet_v1_0.75_300.tflite_coco_quant"


def _detection_timing_model(task: Any, alpha: float, resolution: int) -> tuple[Any, str]:
    """The model a detection row is timed with, and how that was done, in words.

    NMS time depends on how many candidate boxes pass the score threshold, and random weights with the
    default post-process (softmax, threshold 0.01, per-class NMS over up to 5,000 candidates) made NMS
    30–50 ms of every row. So: the registry's pretrained weights where they match the row and are at hand;
    otherwise random weights with the pretrained SSD's own post-process, where every anchor is a
    candidate (the pretrained weights score all 1,917 anchors above its 1e-8 threshold too) and NMS keeps
    10: a fixed candidate count, the one the pretrained model really gives."""
    entry = pretrained_entry(task, alpha, resolution)
    if entry is not None:
        return task.load_pretrained(entry.name).model, f"pretrained weights ({entry.name}) and their NMS"
    from mnet.weights import get_entry

    post = get_entry(REFERENCE_SSD).model_kwargs["postprocess"]
    model = task.build_model(alpha=alpha, resolution=resolution).eval()
    model.config = replace(model.config, postprocess=replace(model.config.postprocess, **post))
    return model, (
        f"random weights and {REFERENCE_SSD}'s NMS ({post['nms']}, {post['max_detections']} detections, score "
        f"threshold {post['score_threshold']:g}) over every anchor: the candidate count its pretrained weights give"
    )


def _random_model(task: Any, alpha: float, resolution: int) -> tuple[Any, str]:
    return task.build_model(alpha=alpha, resolution=resolution).eval(), ""


#: task name → (model to time, note) for a row; tasks not listed are timed on random weights
TIMING_MODELS: dict[str, Callable[[Any, float, int], tuple[Any, str]]] = {
    "detection": _detection_timing_model,
}


def compare(
    tasks: Sequence[str] | None = None,
    alphas: Sequence[float] = ALPHAS,
    resolutions: Sequence[int] = RESOLUTIONS,
    *,
    warmup: int = 5,
    runs: int = 30,
    threads: int | None = None,
    measure: bool = True,
    progress: bool = True,
    runtime: str = "auto",
    data: Mapping[str, str] | None = None,
    eval_limit: int | None = None,
) -> list[CompareRow]:
    """One row per (task, α, ρ); latency at batch 1 on the CPU (skipped when ``measure`` is False).

    ``runtime`` ("torch", "onnxruntime", or "auto" = ONNX Runtime) runs the task's inference network
    (network + decoding, as ``mnet predict`` runs it) for the latency."""
    import numpy as np

    from .load import model_session

    names = list(tasks) if tasks else task_names()
    task_objs = [get_task(n) for n in names]
    for a in alphas:
        validate_alpha(a)
    for r in resolutions:
        validate_resolution(r)
    threads = threads or torch.get_num_threads()
    rows: list[CompareRow] = []
    grid = list(itertools.product(task_objs, alphas, resolutions))
    for task, alpha, res in tqdm(grid, desc="compare", unit="model", disable=not progress):
        model = task.build_model(alpha=alpha, resolution=res).eval()
        cost = task.cost(model, res)
        p50 = p95 = None
        used, timing = runtime, ""
        if measure:
            model, timing = TIMING_MODELS.get(task.name, _random_model)(task, alpha, res)
            try:
                session = model_session(task, model, runtime, resolution=res, threads=threads)
            except ValueError as e:
                raise ValueError(f"task {task.name!r} at {alpha:g}-{res}: {e}") from e
            used = session.name
            x = np.random.default_rng(0).standard_normal((1, 3, res, res)).astype(np.float32)
            lat = measure_latency(session, x, warmup=warmup, runs=runs, threads=threads)
            p50, p95 = round(lat.p50_ms, 3), round(lat.p95_ms, 3)
        row = CompareRow(task.name, alpha, res, cost.params, cost.mult_adds, p50, p95, threads, used, timing=timing)
        if data and task.name in data:
            row.metric_name, row.metric = measure_metric(task, alpha, res, data[task.name], limit=eval_limit)
        rows.append(row)
    return rows


def pretrained_entry(task: Any, alpha: float, resolution: int):
    """A registry entry with exactly this α × ρ that the task can load and that is usable without a
    download (cached, or its original file in a folder of originals), or None."""
    from mnet.weights import list_entries
    from mnet.weights.loader import is_available

    for wtask in task.weights_tasks:
        for entry in list_entries(wtask):
            if entry.alpha == alpha and entry.resolution == resolution and is_available(entry):
                return entry
    return None


def measure_metric(
    task: Any, alpha: float, resolution: int, data: str, *, limit: int | None = None
) -> tuple[str | None, float | None]:
    """The task's primary metric for the pretrained weights at this α × ρ on ``data`` ((None, None)
    when the registry has no such weights at hand)."""
    entry = pretrained_entry(task, alpha, resolution)
    if entry is None or not task.primary_metric:
        return None, None
    from .load import load_predictor

    predictor = load_predictor(task.name, entry.name, notify=None)
    extra = {"limit": limit} if limit else {}
    result = task.evaluate(predictor, data, progress=False, **extra)
    return f"{task.primary_metric} ({entry.name.rsplit('.', 1)[1]})", float(result[task.primary_metric])


def _fmt(v: float | None, spec: str) -> str:
    return "-" if v is None else format(v, spec)


def format_table(rows: Sequence[CompareRow]) -> str:
    header = [
        "task",
        "alpha",
        "res",
        "params (M)",
        "Mult-Adds (M)",
        "p50 (ms)",
        "p95 (ms)",
        "threads",
        "runtime",
        "metric",
    ]
    body = [
        [
            r.task,
            f"{r.alpha:g}",
            str(r.resolution),
            f"{r.params / 1e6:.2f}",
            f"{r.mult_adds / 1e6:.0f}",
            _fmt(r.latency_ms_p50, ".2f"),
            _fmt(r.latency_ms_p95, ".2f"),
            str(r.threads),
            r.runtime,
            "-" if r.metric is None else f"{r.metric_name} {r.metric:.2f}",
        ]
        for r in rows
    ]
    widths = [max(len(h), *(len(b[i]) for b in body)) if body else len(h) for i, h in enumerate(header)]
    line = lambda cells: "  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths)))
    notes = _timing_notes(rows)
    return "\n".join([line(header), line(["-" * w for w in widths]), *map(line, body), *notes])


def _timing_notes(rows: Sequence[CompareRow]) -> list[str]:
    """One footnote per task and way its latency was timed (e.g. detection's NMS), and the CPU."""
    from ..timing import cpu_line

    seen = dict.fromkeys((r.task, r.timing) for r in rows if r.timing)
    measured = any(r.latency_ms_p50 is not None for r in rows)
    return (
        ([""] if seen or measured else [])
        + [f"{task}: latency timed with {how}" for task, how in seen]
        + ([f"CPU: {cpu_line()}"] if measured else [])
    )


def format_json(rows: Iterable[CompareRow]) -> str:
    return json.dumps([asdict(r) for r in rows], indent=2)


def format_csv(rows: Iterable[CompareRow]) -> str:
    rows = list(rows)
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(CompareRow.__dataclass_fields__))
    writer.writeheader()
    writer.writerows(asdict(r) for r in rows)
    return buf.getvalue()


FORMATTERS = {"table": format_table, "json": format_json, "csv": format_csv}


def plot(rows: Sequence[CompareRow], path: str) -> None:
    """Latency against Mult-Adds (log x) per task; a second panel of metric against Mult-Adds when known."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import LogLocator, ScalarFormatter

    with_metric = [r for r in rows if r.metric is not None]
    fig, axes = plt.subplots(1, 2 if with_metric else 1, figsize=(13 if with_metric else 7, 5), squeeze=False)
    ax = axes[0][0]
    for task in dict.fromkeys(r.task for r in rows):
        pts = [r for r in rows if r.task == task and r.latency_ms_p50 is not None]
        ax.scatter([r.mult_adds / 1e6 for r in pts], [r.latency_ms_p50 for r in pts], label=task)
        for r in pts:
            ax.annotate(
                f"{r.alpha:g}-{r.resolution}",
                (r.mult_adds / 1e6, r.latency_ms_p50),
                fontsize=7,
                xytext=(3, 3),
                textcoords="offset points",
            )
    threads = rows[0].threads if rows else 0
    ax.set(
        xscale="log",
        yscale="log",
        xlabel="Mult-Adds (millions, log scale)",
        ylabel="latency p50 (ms, batch 1, log scale)",
        title=f"MobileNetV1 α × ρ: latency vs Mult-Adds ({threads} CPU threads)",
    )
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    if with_metric:
        ax2 = axes[0][1]
        for task in dict.fromkeys(r.task for r in with_metric):
            pts = [r for r in with_metric if r.task == task]
            ax2.scatter(
                [r.mult_adds / 1e6 for r in pts], [r.metric for r in pts], label=f"{task} ({pts[0].metric_name})"
            )
        ax2.set(xscale="log", xlabel="Mult-Adds (millions, log scale)", ylabel="metric", title="metric vs Mult-Adds")
        ax2.grid(True, which="both", alpha=0.3)
        ax2.legend()
    ax.yaxis.set_major_formatter(ScalarFormatter())
    for a in axes[0]:  # plain numbers on the log axis
        a.xaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
        a.xaxis.set_major_formatter(ScalarFormatter())
        a.xaxis.set_minor_formatter(plt.NullFormatter())
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)

"""Any weights → a :class:`~mnet.tasks.inference.Predictor` on the runtime asked for.

``load_predictor("classification")`` takes the task's default weights; a registry name or a suite
``.safetensors`` file is converted on first use (fetched, verified, cached), its inference network
(``Task.inference_network``: the network *and* the task's decoding) exported once to a self-contained
ONNX file in the cache, checked against PyTorch on real photos, and run in ONNX Runtime. Later calls
find that export by the weights file's sha256 and never import torch. An exported ``.onnx`` runs as it
is; ``runtime="torch"`` runs the same network in PyTorch.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sys
import threading
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

from mnet.weights import Preprocess, get_entry
from mnet.weights.loader import cached_path
from mnet.weights.locations import cache_subdir
from mnet.weights.sources import sha256_file

from ..face_attributes.pipeline import AGE_GENDER_WEIGHTS, ATTRIBUTE_WEIGHTS, FACE_DETECTORS, FacePipeline
from ..inference import Predictor
from ..registry import task_spec
from .onnx import OrtSession, read_export_metadata

if TYPE_CHECKING:
    from ..pretrained import Pretrained

#: tasks whose photos go through the faces-in-the-wild pipeline (:func:`load_face_pipeline`: detect, then
#: describe each face with the age/gender and attribute networks)
FACE_TASKS: tuple[str, ...] = ("face_attributes",)
#: runtime names accepted on the command line; "auto" means the fastest available
RUNTIME_CHOICES: tuple[str, ...] = ("auto", "torch", "onnxruntime")
#: bump when inference networks or export metadata change, so older cached exports are rebuilt
EXPORT_VERSION = 2
#: file suffixes of TorchScript files, which the suite refuses to load (they run code when loaded)
TORCHSCRIPT_SUFFIXES = (".pt", ".ts", ".torchscript", ".pth")

Notify = Callable[[str], None]
#: serialises first-use work — exports and the runtime choice's timings — (a page, the demo and a request
#: may ask for the same model at once); re-entrant: an export is followed by its choice
_EXPORT_LOCK = threading.RLock()


def _say(msg: str) -> None:
    print(f"mnet: {msg}", file=sys.stderr)


def export_cache_dir() -> Path:
    return cache_subdir("exports")


def _weights_file(weights: str) -> Path | None:
    """The suite ``.safetensors`` file ``weights`` names, if it is there now (registry entries: their
    converted file in the cache)."""
    p = Path(weights)
    if p.suffix == ".safetensors":
        if not p.is_file():
            raise FileNotFoundError(f"{p}: no such weights file")
        return p
    cached = cached_path(get_entry(weights))
    return cached if cached.is_file() else None


def weights_task(weights: str) -> str:
    """The task a weights name / file is for, read without building anything."""
    p = Path(weights)
    if p.suffix == ".onnx":
        from .onnx import read_metadata

        return read_export_metadata(read_metadata(p), str(p)).task
    if p.suffix == ".safetensors":
        from mnet.weights.store import read_meta

        return read_meta(p)["task"]
    return get_entry(weights).task


def _recipe(weights: str, file: Path) -> dict[str, Any]:
    """The input recipe the export will record: the registry's for an entry, else the file's own."""
    if Path(weights).suffix == ".safetensors":
        from mnet.weights.store import read_meta

        return dict(read_meta(file).get("preprocess") or {})
    return get_entry(weights).preprocess.to_dict()


def cached_export_path(task: str, weights: str, file: Path, resolution: int | None = None) -> Path:
    """Where the export of ``weights`` (read from ``file``) for ``task`` is cached: keyed by the file's
    sha256, the input recipe, the resolution and :data:`EXPORT_VERSION`, so it is never stale."""
    key = json.dumps([sha256_file(file), _recipe(weights, file), resolution, EXPORT_VERSION], sort_keys=True)
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(weights).stem if weights.endswith(".safetensors") else weights)
    return export_cache_dir() / f"{task}--{stem}--{digest}.onnx"


def int8_sibling(fp32: Path) -> Path:
    """Where an int8 export of a cached fp32 export lives (``mnet export --int8 --cache`` writes it)."""
    return fp32.with_name(fp32.stem + ".int8.onnx")


def chosen_session(fp32: Path, *, threads: int | None = None, notify: Notify | None = None) -> Any:
    """The fastest session for this export on this machine (:mod:`mnet.tasks.runtime.choice`): ONNX Runtime
    or OpenVINO (when installed), fp32 or its int8 sibling (when it records an accuracy change within
    1.5 pt); timed on first use, then cached by CPU and file hashes. The session's ``reason`` says why."""
    from .choice import choose_runtime
    from .onnx import OvSession, openvino_available

    int8 = int8_sibling(fp32)
    int8 = int8 if int8.is_file() else None
    if int8 is None and not openvino_available():
        session = OrtSession(fp32, threads=threads)
        session.reason = "onnxruntime fp32: the only candidate (no openvino installed, no int8 export cached)"
        return session
    with _EXPORT_LOCK:  # first-use timings alone on the CPU, one writer of the choice's cache
        choice = choose_runtime(fp32, int8, threads=threads, open_runtime=False)
    if not choice.cached and notify:
        notify(f"timed the runtimes for this model on this CPU: {choice.reason}")
    path = choice.candidate.path
    session = (
        OvSession(path, threads=threads) if choice.candidate.engine == "openvino" else OrtSession(path, threads=threads)
    )
    session.reason = choice.reason
    return session


def onnx_predictor(
    path: str | Path, *, task: str | None = None, threads: int | None = None, session: Any = None
) -> Predictor:
    """A predictor for an exported ``.onnx`` file: task, recipe and labels from its metadata (``session``:
    the file opened another way, e.g. by the runtime choice)."""
    from .onnx import read_metadata

    session = session or OrtSession(path, threads=threads)
    metadata = session.metadata if hasattr(session, "metadata") else read_metadata(path)
    m = read_export_metadata(metadata, str(path))
    if task is not None and task != m.task:
        raise ValueError(f"{path}: exported for task {m.task!r}, not {task!r}")
    name = m.weights or str(path)
    return Predictor(m.task, m.kind, session, Preprocess.from_dict(m.preprocess), m.labels, name, meta=m.model_kwargs)


def synthetic_photos(n: int = 2, size: int = 320) -> list[Image.Image]:
    """Smooth, deterministic colour images: export checks where no real photo is at hand."""
    rng = np.random.default_rng(0)
    out = []
    for _ in range(n):
        coarse = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
        out.append(Image.fromarray(coarse).resize((size, size), Image.BICUBIC))
    return out


def export_pretrained(
    p: Pretrained, out: str | Path, check_photos: Sequence[Image.Image], *, sha256: str | None = None
) -> Any:
    """Write ``p``'s inference network (network + decoding) as a self-contained ONNX file whose metadata
    holds the task, output kind, input recipe and labels; check it against PyTorch on ``check_photos``.
    Written atomically: a failed check leaves nothing behind. Returns the export report."""
    from ..registry import get_task
    from .export import dumps_metadata, export_onnx
    from .onnx import (
        META_KIND,
        META_LABELS,
        META_MODEL_KWARGS,
        META_PREPROCESS,
        META_SOURCE_SHA256,
        META_TASK,
        META_WEIGHTS,
    )

    task = get_task(p.task)
    net = task.inference_network(p.model)
    meta = dumps_metadata(
        **{
            META_TASK: p.task,
            META_KIND: task.output_kind(p.model),
            META_PREPROCESS: p.preprocess.to_dict(),
            META_LABELS: p.labels,
            META_WEIGHTS: p.name,
            META_MODEL_KWARGS: p.model_kwargs,
            META_SOURCE_SHA256: sha256,
        }
    )
    x = np.stack([p.preprocess.to_array(im) for im in check_photos])
    out = Path(out)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    try:
        report = export_onnx(net, tmp, x, metadata=meta, dynamic_batch=getattr(net, "dynamic_batch", True))
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    return replace(report, path=str(out))


def load_pretrained(task: str, weights: str, *, resolution: int | None = None) -> Pretrained:
    """``task.load_pretrained(weights)`` (torch), at ``resolution`` when given (the paper's ρ knob)."""
    from ..registry import get_task

    p = get_task(task).load_pretrained(weights)
    if resolution is not None:
        from mnet.backbone.config import validate_resolution

        validate_resolution(resolution)
        p.preprocess = replace(p.preprocess, resolution=int(resolution))
    return p


def load_predictor(
    task: str | None = None,
    weights: str | None = None,
    *,
    runtime: str = "auto",
    threads: int | None = None,
    resolution: int | None = None,
    random_weights: bool = False,
    check_photos: Sequence[Image.Image] | None = None,
    notify: Notify | None = _say,
) -> Predictor:
    """The predictor for ``weights`` (default: the task's default entry) on ``runtime``.

    ``random_weights=True`` (and only then) builds an untrained model, for speed checks.
    ``check_photos``: real photos to check a new export on (default: synthetic images)."""
    if runtime not in RUNTIME_CHOICES:
        raise ValueError(f"unknown runtime {runtime!r}; choose one of {', '.join(RUNTIME_CHOICES)}")
    if random_weights:
        if weights:
            raise ValueError("give either weights or random weights, not both")
        if not task:
            raise ValueError("random weights need a task")
        return _random_predictor(task, threads=threads, notify=notify)
    if weights is None:
        if not task:
            raise ValueError("give a task, weights, or both")
        weights = task_spec(task).default_weights
        if notify:
            notify(f"{task}: using the default weights {weights}")
    weights = str(weights)
    suffix = Path(weights).suffix.lower()
    if suffix in TORCHSCRIPT_SUFFIXES:
        raise ValueError(
            f"{weights}: TorchScript/pickle files are not loaded (loading them runs code from the file); "
            "use the .safetensors weights or an .onnx export"
        )
    if suffix == ".onnx":
        if runtime == "torch":
            raise ValueError(f"{weights}: an exported .onnx file runs in onnxruntime, not torch")
        return onnx_predictor(weights, task=task, threads=threads)
    own_task = weights_task(weights)
    task = task or own_task
    if own_task != task and not (task == "dogs" and own_task == "classification"):
        raise ValueError(f"{weights}: these weights are for task {own_task!r}, not {task!r}")
    if runtime == "torch":
        from ..pretrained import torch_predictor

        return torch_predictor(load_pretrained(task, weights, resolution=resolution), threads=threads)
    path = cached_export(task, weights, resolution=resolution, check_photos=check_photos, notify=notify)
    return _cached_predictor(path, runtime, threads, notify)


def cached_export(
    task: str,
    weights: str,
    *,
    resolution: int | None = None,
    check_photos: Sequence[Image.Image] | None = None,
    notify: Notify | None = _say,
) -> Path:
    """The cached self-contained export of ``weights`` for ``task``, made on first use (convert, export,
    check against PyTorch on ``check_photos`` or synthetic images); later calls import no torch."""
    file = _weights_file(weights)
    if file is not None:
        cached = cached_export_path(task, weights, file, resolution)
        if cached.is_file():
            return cached
    with _EXPORT_LOCK:  # one export at a time in this process (torch.onnx.export is not thread-safe)
        file = file or _weights_file(weights)
        cached = cached_export_path(task, weights, file, resolution) if file is not None else None
        if cached is not None and cached.is_file():  # another thread exported it meanwhile
            return cached
        if notify:
            notify(f"{weights}: preparing it for {task} (convert once, export to ONNX, check against PyTorch)")
        p = load_pretrained(task, weights, resolution=resolution)
        out = cached_export_path(task, weights, p.path, resolution)
        report = export_pretrained(p, out, check_photos or synthetic_photos(), sha256=sha256_file(p.path))
    if notify:
        notify(f"cached {out.name} ({report.summary().split('; ', 1)[1]})")
    return out


def _cached_predictor(path: Path, runtime: str, threads: int | None, notify: Notify | None) -> Predictor:
    """A cached export on ``runtime``: ONNX Runtime as asked, or with "auto" the per-machine choice."""
    if runtime == "auto":
        return onnx_predictor(path, threads=threads, session=chosen_session(path, threads=threads, notify=notify))
    return onnx_predictor(path, threads=threads)


def model_session(task: Any, model: Any, runtime: str = "auto", *, resolution: int, threads: int | None = None) -> Any:
    """A session for an in-memory model's inference network (``task.inference_network``) on ``runtime``:
    PyTorch, or ONNX Runtime on an in-memory export (what ``mnet compare`` times)."""
    from ..inference import TorchSession

    if runtime not in RUNTIME_CHOICES:
        raise ValueError(f"unknown runtime {runtime!r}; choose one of {', '.join(RUNTIME_CHOICES)}")
    net = task.inference_network(model.eval())
    if runtime == "torch":
        return TorchSession(net, threads=threads)
    import torch

    from .export import to_onnx_model

    proto = to_onnx_model(
        net, torch.zeros(1, 3, resolution, resolution), dynamic_batch=getattr(net, "dynamic_batch", True)
    )
    return OrtSession(proto.SerializeToString(), threads=threads)


def _random_predictor(task: str, *, threads: int | None, notify: Notify | None) -> Predictor:
    from ..pretrained import model_predictor
    from ..registry import get_task

    if notify:
        notify(f"{task}: RANDOM weights (untrained, α 1.0 at 224): results are meaningless")
    t = get_task(task)
    model = t.build_model(alpha=1.0, resolution=224)
    return model_predictor(t, model, Preprocess(224), name="random weights (untrained)", threads=threads)


def load_face_pipeline(
    *,
    detector: str = "ssd",
    age_gender: str | None = AGE_GENDER_WEIGHTS,
    attributes: str | None = ATTRIBUTE_WEIGHTS,
    runtime: str = "auto",
    threads: int | None = None,
    top_k: int = 5,
    margin: float = 0.1,
    check_photos: Sequence[Image.Image] | None = None,
    notify: Notify | None = _say,
) -> FacePipeline:
    """Faces in the wild on ``runtime``: the ``detector`` (``ssd`` or ``retinaface``), the age/gender
    and the attribute networks (None leaves one out); weights of the wrong kind are refused."""
    if detector not in FACE_DETECTORS:
        raise ValueError(f"unknown face detector {detector!r}; known: {', '.join(FACE_DETECTORS)}")

    def load(w: str) -> Predictor:
        return load_predictor(None, w, runtime=runtime, threads=threads, check_photos=check_photos, notify=notify)

    return FacePipeline(
        load(FACE_DETECTORS[detector]),
        load(age_gender) if age_gender else None,
        load(attributes) if attributes else None,
        margin=margin,
        top_k=top_k,
    )

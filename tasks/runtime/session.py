"""One interface over the inference runtimes: PyTorch eager and ONNX Runtime.

A :class:`Runtime` runs a model on a preprocessed (N, 3, H, W) float32 batch. ``run(x)`` takes and
returns numpy (the fast path ``mnet predict`` and the demo use: no torch on the way); calling it
with a torch tensor returns torch tensors shaped like the PyTorch model's own output (tensor, tuple
or dict), so code written against an ``nn.Module`` — ``Task.inference_fn``, ``Task.evaluate`` — runs
unchanged on any runtime. Attributes the runtime lacks are looked up on the wrapped PyTorch model
(anchors, class counts, ...).

``make_runtime(model, "auto")`` picks the fastest available runtime: ONNX Runtime when it is
installed and the model exports, else PyTorch (ONNX Runtime runs MobileNets ~3× faster than eager
PyTorch on CPU; see docs/deploy.md).
"""

from __future__ import annotations

import importlib.util
import warnings
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils import _pytree as pytree

from .export import OUTPUT_SPEC_KEY, flat_outputs, to_onnx_model
from .onnx import session_options

#: runtime names accepted on the command line; "auto" means the fastest available
RUNTIME_CHOICES: tuple[str, ...] = ("auto", "torch", "onnxruntime")


class Runtime(ABC):
    """A model ready to run on the CPU with a fixed number of threads."""

    #: registry key (``--runtime NAME``)
    name: str = ""

    def __init__(
        self, *, threads: int | None = None, model: nn.Module | None = None, spec: pytree.TreeSpec | None = None
    ) -> None:
        if threads is not None and threads < 1:
            raise ValueError(f"threads must be >= 1, got {threads}")
        self.threads = threads
        self.model = model
        self.spec = spec

    @abstractmethod
    def run_flat(self, x: np.ndarray) -> list[np.ndarray]:
        """All outputs, flattened, for one float32 (N, 3, H, W) batch."""

    def run(self, x: np.ndarray) -> Any:
        """Outputs as numpy arrays in the model's own structure (a single array for one output)."""
        flat = self.run_flat(np.ascontiguousarray(x, dtype=np.float32))
        if self.spec is not None:
            return pytree.tree_unflatten(flat, self.spec)
        return flat[0] if len(flat) == 1 else flat

    def __call__(self, x: torch.Tensor | np.ndarray) -> Any:
        """Drop-in for ``model(x)``: torch in → torch out (same structure), numpy in → numpy out."""
        if not isinstance(x, torch.Tensor):
            return self.run(x)
        out = self.run(x.detach().cpu().numpy())
        return pytree.tree_map(lambda a: torch.from_numpy(a) if isinstance(a, np.ndarray) else a, out)

    def __getattr__(self, item: str) -> Any:
        model = self.__dict__.get("model")
        if model is None or item.startswith("__"):
            raise AttributeError(f"{type(self).__name__} has no attribute {item!r}")
        return getattr(model, item)

    def eval(self) -> Runtime:  # so code that calls model.eval() keeps working
        return self

    def describe(self) -> str:
        return f"{self.name} ({self.threads or 'default'} threads)"


class TorchRuntime(Runtime):
    """PyTorch eager (optionally channels_last) under ``torch.inference_mode``."""

    name = "torch"

    def __init__(self, model: nn.Module, *, threads: int | None = None, channels_last: bool = False) -> None:
        model = model.eval()
        if channels_last:
            model = model.to(memory_format=torch.channels_last)
        super().__init__(threads=threads, model=model)
        self.channels_last = channels_last

    def run_flat(self, x: np.ndarray) -> list[np.ndarray]:
        if self.threads is not None and torch.get_num_threads() != self.threads:
            torch.set_num_threads(self.threads)
        t = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
        if self.channels_last:
            t = t.contiguous(memory_format=torch.channels_last)
        with torch.inference_mode():
            out = self.model(t)
        flat, self.spec = flat_outputs(out)
        return flat

    def __call__(self, x: torch.Tensor | np.ndarray) -> Any:
        if not isinstance(x, torch.Tensor):
            return self.run(x)
        if self.threads is not None and torch.get_num_threads() != self.threads:
            torch.set_num_threads(self.threads)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.inference_mode():
            return self.model(x)


class OnnxRuntime(Runtime):
    """An ONNX Runtime CPU session (all graph optimisations, ``threads`` intra-op threads)."""

    name = "onnxruntime"

    def __init__(
        self,
        source: str | Path | bytes,
        *,
        threads: int | None = None,
        model: nn.Module | None = None,
        spin: bool = True,
    ) -> None:
        import onnxruntime as ort

        so = session_options(threads, spin=spin)
        if isinstance(source, (str, Path)) and not Path(source).is_file():
            raise FileNotFoundError(f"{source}: no such ONNX file")
        try:
            self.session = ort.InferenceSession(
                source if isinstance(source, bytes) else str(source), so, providers=["CPUExecutionProvider"]
            )
        except Exception as e:  # ORT raises its own exception types for unreadable files
            raise ValueError(
                f"{source if not isinstance(source, bytes) else '<onnx bytes>'}: ONNX Runtime cannot load it: {e}"
            ) from e
        meta = self.session.get_modelmeta().custom_metadata_map
        spec = pytree.treespec_loads(meta[OUTPUT_SPEC_KEY]) if OUTPUT_SPEC_KEY in meta else None
        super().__init__(threads=threads, model=model, spec=spec)
        self.metadata = dict(meta)
        self.input_name = self.session.get_inputs()[0].name
        self.input_shape = self.session.get_inputs()[0].shape

    @classmethod
    def from_model(cls, model: nn.Module, resolution: int, *, threads: int | None = None, **kw) -> OnnxRuntime:
        """Export ``model`` in memory at ``resolution`` × ``resolution`` and open a session on it."""
        proto = to_onnx_model(model, torch.zeros(1, 3, resolution, resolution))
        return cls(proto.SerializeToString(), threads=threads, model=model, **kw)

    def run_flat(self, x: np.ndarray) -> list[np.ndarray]:
        return self.session.run(None, {self.input_name: x})


@contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Torch ops inside the block use ``n`` intra-op threads (restored after).

    For small tensor work right after an ONNX Runtime call (SSD's NMS on the session's outputs): ORT's
    worker threads keep spinning for a while after a run, and torch's own thread pool competing with
    them on a 2-core machine made a 1 ms selection take 3–15 ms; one thread is as fast on such sizes."""
    old = torch.get_num_threads()
    if old != n:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        if old != n:
            torch.set_num_threads(old)


def onnxruntime_available() -> bool:
    return importlib.util.find_spec("onnxruntime") is not None and importlib.util.find_spec("onnx") is not None


def available_runtimes() -> list[str]:
    """Installed runtimes, fastest first."""
    return (["onnxruntime"] if onnxruntime_available() else []) + ["torch"]


#: name → builder(model, resolution, threads) for in-memory models
BUILDERS: dict[str, Callable[..., Runtime]] = {
    "torch": lambda model, resolution, threads: TorchRuntime(model, threads=threads),
    "onnxruntime": lambda model, resolution, threads: OnnxRuntime.from_model(model, resolution, threads=threads),
}


def make_runtime(model: nn.Module, kind: str = "auto", *, resolution: int, threads: int | None = None) -> Runtime:
    """Wrap a PyTorch model in the runtime ``kind`` ("auto": the fastest that works for this model)."""
    if kind not in RUNTIME_CHOICES:
        raise ValueError(f"unknown runtime {kind!r}; choose one of {', '.join(RUNTIME_CHOICES)}")
    if kind != "auto":
        if kind == "onnxruntime" and not onnxruntime_available():
            raise ValueError("runtime 'onnxruntime' is not installed (pip install onnx onnxruntime)")
        try:
            return BUILDERS[kind](model, resolution, threads)
        except (ValueError, FileNotFoundError):
            raise
        except Exception as e:  # tracing/export failures: say which model and why, as a user error
            raise ValueError(f"{type(model).__name__} cannot run in {kind}: {type(e).__name__}: {e}") from e
    for name in available_runtimes():
        try:
            return BUILDERS[name](model, resolution, threads)
        except Exception as e:  # a model ONNX cannot express still runs in PyTorch
            if name == "torch":
                raise
            warnings.warn(
                f"runtime {name} unavailable for this model ({type(e).__name__}: {e}); using the next one", stacklevel=2
            )
    raise AssertionError("unreachable: torch is always available")


def open_runtime(path: str | Path, *, threads: int | None = None) -> Runtime:
    """A runtime for an exported ``.onnx`` file. TorchScript files are never loaded: loading one runs
    code from the file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such model file")
    if path.suffix == ".onnx":
        return OnnxRuntime(path, threads=threads)
    raise ValueError(f"{path}: not an .onnx file (TorchScript and pickle files are not loaded: they run code)")

"""onnxruntime-web for the page's "this device" engine: fetched once from the npm registry, checked, cached.

The npm package ``onnxruntime-web`` (MIT) is downloaded at a pinned version from the npm registry into
``<cache>/web`` (``mnet.weights.locations.cache_subdir("web")``); its tarball must match the pinned sha512
integrity (the registry's ``dist.integrity``) before any file of it is used. Only the files the page's
CPU path needs (WASM SIMD, threaded when the page is cross-origin isolated) are unpacked; the app serves
them itself, so nothing is loaded from a CDN when the demo runs (a phone on a LAN without internet works).
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
import shutil
import sys
import tarfile
import urllib.request
from pathlib import Path

from mnet.weights.locations import cache_subdir

ORT_WEB_VERSION = "1.30.0"
#: ``npm view onnxruntime-web@1.30.0 dist.integrity``
ORT_WEB_INTEGRITY = "sha512-q0y+JrrtukXSzsBWEMccVfqX25LRmosXHF+CaRJmg8pZClzcV7svNc4rKY3jL02Vb7QmRMDs1SigqR4CXAfKYQ=="
ORT_WEB_URL = f"https://registry.npmjs.org/onnxruntime-web/-/onnxruntime-web-{ORT_WEB_VERSION}.tgz"
#: what the page's WASM path loads (``ort.env.wasm.wasmPaths`` points at the folder holding the last two)
ORT_WEB_FILES = ("ort.wasm.min.js", "ort-wasm-simd-threaded.mjs", "ort-wasm-simd-threaded.wasm")


def integrity(data: bytes) -> str:
    """npm's ``dist.integrity`` of a tarball: ``"sha512-"`` + base64 of its SHA-512."""
    return "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()


def ort_web_dir() -> Path:
    """Where the unpacked files live (they may not be there yet)."""
    return cache_subdir("web") / f"onnxruntime-web-{ORT_WEB_VERSION}"


def ort_web_tarball() -> Path:
    """Where the downloaded package tarball is kept (checked again whenever it is unpacked)."""
    return cache_subdir("web") / f"onnxruntime-web-{ORT_WEB_VERSION}.tgz"


def install_tarball(data: bytes, source: str = "the npm tarball", out: Path | None = None) -> Path:
    """Check ``data`` (the package tarball) against the pinned integrity and unpack the page's files into
    ``out`` (default: the cache's folder)."""
    got = integrity(data)
    if got != ORT_WEB_INTEGRITY:
        raise ValueError(
            f"{source}: integrity {got} is not the pinned {ORT_WEB_INTEGRITY} of onnxruntime-web {ORT_WEB_VERSION}"
        )
    out = out or ort_web_dir()
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        for name in ORT_WEB_FILES:
            member = tar.getmember(f"package/dist/{name}")
            f = tar.extractfile(member)
            if f is None:
                raise ValueError(f"{source}: package/dist/{name} is not a file")
            (tmp / name).write_bytes(f.read())
    shutil.rmtree(out, ignore_errors=True)
    os.replace(tmp, out)
    return out


def ensure_ort_web(*, download: bool = True, tarball: str | Path | None = None) -> Path:
    """The folder with onnxruntime-web's page files: the cached copy, else unpacked from ``tarball`` (a local
    ``onnxruntime-web-<version>.tgz``; default: the cached tarball), else downloaded once from the npm registry (``download=True``).

    FileNotFoundError when it is not cached and may not be downloaded; ValueError on an integrity mismatch."""
    out = ort_web_dir()
    if all((out / n).is_file() for n in ORT_WEB_FILES):
        return out
    tarball = Path(tarball) if tarball is not None else ort_web_tarball()
    if tarball.is_file():
        return install_tarball(tarball.read_bytes(), str(tarball))
    if not download:
        raise FileNotFoundError(
            f"{out}: onnxruntime-web {ORT_WEB_VERSION} is not cached (the demo fetches it once from the npm registry)"
        )
    print(f"mnet demo: fetching onnxruntime-web {ORT_WEB_VERSION} from the npm registry (once) ...", file=sys.stderr)
    with urllib.request.urlopen(ORT_WEB_URL, timeout=120) as r:  # noqa: S310 - a fixed https URL
        data = r.read()
    out = install_tarball(data, ORT_WEB_URL)  # checked before it is kept
    keep = ort_web_tarball()
    tmp = keep.with_name(f".{keep.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, keep)
    return out

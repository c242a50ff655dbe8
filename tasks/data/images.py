"""Decode any image file to 8-bit RGB within a memory bound, or fail with an error that names the file.

Every image the suite reads from a user (datasets, ``mnet predict``, ``mnet faces``, the app's uploads)
is decoded here. The bounds hold *before* the pixels are decoded: the header gives width, height and
mode, from which :func:`decode_bytes` estimates the peak memory of the decode and the RGB conversion;
beyond :data:`MAX_DECODE_BYTES` (~500 MB) or :data:`MAX_PIXELS` the file is refused with its name, its
size and the limit. JPEGs can decode at a reduced scale (1/2, 1/4, 1/8: PIL's ``draft``), which is
where a large photo meant for a small model input should be shrunk; other formats decode at full size
and are shrunk before their colour conversion when the caller asks for ``max_side``.
"""

from __future__ import annotations

import math
import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

#: the most pixels a file may declare in its header, whatever scale it is decoded at
MAX_PIXELS = 100_000_000
#: the most bytes one :func:`load_rgb` may hold at once: the decoder's pixels plus the RGB result
MAX_DECODE_BYTES = 500_000_000
#: key of ``Image.info`` that records the file's own (width, height) when it was decoded smaller
ORIGINAL_SIZE = "mnet.original_size"
#: rows of a high-bit-depth image converted at a time (bounds the float temporaries)
_STRIP_PIXELS = 4_000_000
#: bytes per pixel of PIL's in-memory storage (multi-band modes use 4 bytes, RGB included)
_PIXEL_BYTES = {"1": 1, "L": 1, "P": 1, "I;16": 2, "I;16B": 2, "I;16L": 2, "I;16N": 2, "I": 4, "F": 4}
_HIGH_DEPTH = ("I;16", "I;16B", "I;16L", "I;16N", "I", "F")

# PIL refuses (DecompressionBombError) at twice its MAX_IMAGE_PIXELS: set it so that PIL refuses exactly
# what this module refuses, also where a library opens an image itself
Image.MAX_IMAGE_PIXELS = MAX_PIXELS // 2


class ImageDecodeError(ValueError):
    """The file is not a readable image (missing, truncated, corrupt, not an image, too large)."""


@dataclass(frozen=True)
class ImageHeader:
    """What a file's header says, read without decoding its pixels."""

    path: Path
    format: str | None
    mode: str
    size: tuple[int, int]  # (width, height)
    file_bytes: int


def decode_bytes(size: tuple[int, int], mode: str, out_size: tuple[int, int] | None = None) -> int:
    """Estimated peak bytes of decoding a ``mode`` image of ``size`` (w, h) and converting it to an RGB image of
    ``out_size`` (default ``size``; smaller when shrunk before the conversion, as :func:`load_rgb` does)."""
    w, h = size
    ow, oh = out_size or size
    px = _PIXEL_BYTES.get(mode, 4)
    total = w * h * px
    shrunk = (ow, oh) != (w, h)
    if mode in ("1", "P"):  # nearest-neighbour only before conversion: converted at full size, then shrunk
        return total + (w * h * 4 if mode != "RGB" else 0) + (ow * oh * 4 if shrunk else 0)
    if shrunk:
        total += ow * oh * px
    if mode != "RGB":
        total += ow * oh * (4 + (1 if mode in _HIGH_DEPTH else 0))  # RGB result (+ the 8-bit plane)
    return total


def _size_text(size: tuple[int, int], mode: str) -> str:
    return f"{size[0]}×{size[1]} {mode}"


def _strips(img: Image.Image):
    """(top row, numpy array) over horizontal strips of ``img``: high-bit-depth data a bounded slice at a time."""
    w, h = img.size
    rows = max(1, _STRIP_PIXELS // max(w, 1))
    for top in range(0, h, rows):
        yield top, np.asarray(img.crop((0, top, w, min(top + rows, h))))


def _high_depth_to_l(img: Image.Image) -> Image.Image:
    """16/32-bit integer or float grayscale → 8-bit, its finite range stretched to 0..255, strip by strip."""
    lo, hi = math.inf, -math.inf
    for _, a in _strips(img):
        a = a[np.isfinite(a)] if a.dtype.kind == "f" else a
        if a.size:
            lo, hi = min(lo, float(a.min())), max(hi, float(a.max()))
    if not math.isfinite(lo):
        lo = hi = 0.0
    scale = 255.0 / (hi - lo) if hi > lo else 0.0
    w, h = img.size
    out = np.empty((h, w), np.uint8)
    for top, a in _strips(img):
        v = (a.astype(np.float64) - lo) * scale
        out[top : top + a.shape[0]] = np.nan_to_num(v, nan=0.0, posinf=255.0, neginf=0.0).round().clip(0, 255)
    return Image.fromarray(out, mode="L")


def to_rgb(img: Image.Image, source: str = "<image>") -> Image.Image:
    """Convert any PIL mode to 8-bit RGB: grayscale, palette, CMYK, RGBA (composited on black,
    as decoders that drop alpha do), 16-bit and 32-bit integer or float grayscale (rescaled)."""
    if img.mode == "RGB":
        return img
    if img.mode in _HIGH_DEPTH:
        return _high_depth_to_l(img).convert("RGB")
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        return img.convert("RGBA").convert("RGB")
    try:
        return img.convert("RGB")
    except (ValueError, OSError) as e:
        raise ImageDecodeError(f"{source}: cannot convert image mode {img.mode!r} to RGB: {e}") from e


def _too_many_pixels(path: Path, error: Exception) -> ImageDecodeError:
    """PIL's bomb check fired while reading the header: say so with the numbers."""
    found = re.search(r"\((\d+) pixels\)", str(error))
    pixels = f"{int(found.group(1)):,} pixels" if found else "too many pixels"
    return ImageDecodeError(f"{path}: image has {pixels}, above the {MAX_PIXELS:,}-pixel limit")


def _open(path: Path) -> Image.Image:
    """``Image.open`` (header only) with PIL's errors turned into messages that name the file."""
    if not path.is_file():
        raise ImageDecodeError(f"{path}: no such image file")
    try:
        with warnings.catch_warnings():  # our own limits apply below, with a message naming the file
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            return Image.open(path)
    except UnidentifiedImageError as e:
        raise ImageDecodeError(f"{path}: not a recognised image file") from e
    except Image.DecompressionBombError as e:
        raise _too_many_pixels(path, e) from e
    except (OSError, SyntaxError, ValueError) as e:
        raise ImageDecodeError(f"{path}: corrupt or truncated image ({e})") from e


def read_header(path: str | Path) -> ImageHeader:
    """Format, mode and (width, height) from the file's header; no pixels are decoded."""
    path = Path(path)
    with _open(path) as img:
        return ImageHeader(path, img.format, img.mode, img.size, path.stat().st_size)


def _fit(size: tuple[int, int], max_side: int | None) -> tuple[int, int]:
    w, h = size
    if max_side is None or max(w, h) <= max_side:
        return w, h
    s = max_side / max(w, h)
    return max(1, round(w * s)), max(1, round(h * s))


def load_rgb(
    path: str | Path,
    *,
    draft: tuple[int, int] | None = None,
    max_side: int | None = None,
    max_bytes: int = MAX_DECODE_BYTES,
) -> Image.Image:
    """Open ``path`` fully (so truncation is caught here, not later) and return an RGB image.

    ``draft=(w, h)`` lets a JPEG decode at a reduced scale (1/2, 1/4, 1/8) that is still at least
    w × h: much faster for inference on large photos that are resized down anyway. ``max_side`` returns
    an image whose longest side is at most that (JPEGs decode at a reduced scale, other formats are
    shrunk before their colour conversion). Either way ``img.info[ORIGINAL_SIZE]`` is the file's own
    (width, height). Refused with an :class:`ImageDecodeError` naming the file, its size and the limit:
    a header above :data:`MAX_PIXELS` pixels, or a decode estimated above ``max_bytes``."""
    path = Path(path)
    img = _open(path)
    try:
        with img:
            w, h = original = img.size
            if w * h > MAX_PIXELS:
                raise ImageDecodeError(
                    f"{path}: image is {w}×{h} = {w * h:,} pixels, above the {MAX_PIXELS:,}-pixel limit"
                )
            if img.format == "JPEG" and (draft is not None or max_side is not None):
                want = _fit(original, max_side) if max_side is not None else (1, 1)
                if draft is not None:
                    want = (max(want[0], draft[0]), max(want[1], draft[1]))
                img.draft("RGB", want)
            out_size = _fit(img.size, max_side)
            need = decode_bytes(img.size, img.mode, out_size)
            if need > max_bytes:
                raise ImageDecodeError(
                    f"{path}: a {_size_text(original, img.mode)} image ({path.stat().st_size:,} bytes) needs "
                    f"~{need / 1e6:,.0f} MB to decode, above the {max_bytes / 1e6:,.0f} MB limit"
                )
            img.load()
            if out_size != img.size and img.mode not in ("1", "P"):
                img = img.resize(out_size, Image.Resampling.BOX)
            rgb = to_rgb(img, str(path))
            if out_size != rgb.size:
                rgb = rgb.resize(out_size, Image.Resampling.BOX)
            rgb.info[ORIGINAL_SIZE] = original
            return rgb
    except (OSError, SyntaxError) as e:
        raise ImageDecodeError(f"{path}: corrupt or truncated image ({e})") from e
    except Image.DecompressionBombError as e:
        raise _too_many_pixels(path, e) from e

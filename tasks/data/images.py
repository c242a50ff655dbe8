"""Decode any image file to 8-bit RGB, or fail with an error that names the file."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

#: refuse decompression bombs beyond this many pixels (PIL warns at ~89 M)
MAX_PIXELS = 100_000_000


class ImageDecodeError(ValueError):
    """The file is not a readable image (missing, truncated, corrupt, not an image, too large)."""


def to_rgb(img: Image.Image, source: str = "<image>") -> Image.Image:
    """Convert any PIL mode to 8-bit RGB: grayscale, palette, CMYK, RGBA (composited on black,
    as decoders that drop alpha do), 16-bit and 32-bit integer or float grayscale (rescaled)."""
    if img.mode == "RGB":
        return img
    if img.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        arr = np.asarray(img, dtype=np.float64)
        lo, hi = float(arr.min()), float(arr.max())
        scale = 255.0 / (hi - lo) if hi > lo else 0.0
        arr = ((arr - lo) * scale).round().clip(0, 255).astype(np.uint8)
        return Image.fromarray(arr, mode="L").convert("RGB")
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        return img.convert("RGBA").convert("RGB")
    try:
        return img.convert("RGB")
    except (ValueError, OSError) as e:
        raise ImageDecodeError(f"{source}: cannot convert image mode {img.mode!r} to RGB: {e}") from e


def load_rgb(path: str | Path, *, draft: tuple[int, int] | None = None) -> Image.Image:
    """Open ``path`` fully (so truncation is caught here, not later) and return an RGB image.

    ``draft=(w, h)`` lets a JPEG decode at a reduced scale (1/2, 1/4, 1/8) that is still at least
    w × h: much faster for inference on large photos that are resized down anyway."""
    path = Path(path)
    if not path.is_file():
        raise ImageDecodeError(f"{path}: no such image file")
    try:
        with warnings.catch_warnings():  # we apply our own pixel limit below
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img = Image.open(path)
        with img:
            w, h = img.size
            if w * h > MAX_PIXELS:
                raise ImageDecodeError(f"{path}: image is {w}×{h} = {w * h:,} pixels, above the {MAX_PIXELS:,} limit")
            if draft is not None and img.format == "JPEG":
                img.draft("RGB", draft)
            img.load()
            return to_rgb(img, str(path))
    except UnidentifiedImageError as e:
        raise ImageDecodeError(f"{path}: not a recognised image file") from e
    except (OSError, SyntaxError, Image.DecompressionBombError) as e:
        raise ImageDecodeError(f"{path}: corrupt or truncated image ({e})") from e

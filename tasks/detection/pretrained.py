"""Official SSD-MobileNetV1 detectors (TF Object Detection API layout), imported into tasks.detection's SSD."""

from __future__ import annotations

from mnet.weights.entry import TF_INCEPTION, TFLITE_UINT8, Preprocess, Source, WeightsEntry
from mnet.weights.registry import register_weights

TFLITE_ZIP = (
    "https://storage.googleapis.com/download.tensorflow.org/models/tflite/"
    "coco_ssd_mobilenet_v1_1.0_quant_2018_06_29.zip"
)
#: sha256 of the zip's ``detect.tflite``: the copy in this workplace's shared/weights (re-published by an
#: Android app repository); public pins of the same file agree (MediaPipe's ``http_file`` for
#: ``coco_ssd_mobilenet_v1_1.0_quant_2018_06_29``), the zip itself was not reachable from here
TFLITE_SHA256 = "e4b118e5e4531945de2e659742c7c590f7536f8d0ed26d135abcfe83b4779d13"
FACEAPI_NPM = "https://registry.npmjs.org/@vladmandic/face-api/-/face-api-1.7.15.tgz"
#: sha256 of the package's ``model/ssd_mobilenetv1_model-weights_manifest.json`` and its shard (shared/weights
#: copies; public pins of face-api@1.7.15's files agree)
FACEAPI_MANIFEST_SHA256 = "888f744dffbc84f5f060d1f8427d9742341943a2dfaaf9205d10029b7e7a2955"
FACEAPI_SHARD_SHA256 = "2835640602d53718aa6ae9a42896327eaa21beefed056c218d32ca7d79e1e2f8"

register_weights(
    WeightsEntry(
        name="ssd_mobilenet_v1_0.75_300.tflite_coco_quant",
        task="detection",
        arch="ssd_mobilenet_v1",
        model_kwargs={
            "alpha": 0.75,
            "resolution": 300,
            "num_classes": 90,
            "category_ids": list(range(1, 91)),
            "mean": 128.0 / 255,
            "std": 128.0 / 255,  # uint8 input, scale 1/128, zero point 128
            # trained with sigmoid focal loss (alpha 0.75, gamma 2; no hard-negative mining) and the box loss
            # divided by the code size, as TF's *_quantized_300x300_coco14_sync configs: the file's background
            # column is ~0 on every anchor, and only this objective keeps its AP when fine-tuning
            "loss": {"classification": "focal", "focal_alpha": 0.75, "focal_gamma": 2.0, "box_weight": 0.25},
            "freeze_bn": True,  # BatchNorm is folded into the conv biases: no statistics to re-estimate
            # the file's TFLite_Detection_PostProcess options: class-agnostic NMS, IoU 0.6, 10 detections
            "postprocess": {
                "score_fn": "sigmoid",
                "nms": "fast",
                "score_threshold": 1e-8,
                "iou_threshold": 0.6,
                "max_detections": 10,
            },
        },
        preprocess=Preprocess(300, **TFLITE_UINT8),
        converter="mnet.tasks.detection.convert:convert_tflite_ssd",
        labels="mnet.tasks.detection.labels:coco90",
        sources=(
            Source(
                "url",
                TFLITE_ZIP,
                member="detect.tflite",
                file_sha256=TFLITE_SHA256,
                note="TF Lite hosted model (TF OD API ssd_mobilenet_v1_quantized_coco, depth multiplier 0.75); "
                "the zip's sha256 is not pinned, its detect.tflite's is",
            ),
        ),
        filenames=("detect.tflite", "ssd_mobilenet_v1_coco_quant.tflite"),
        published={"coco_map": 18.0},
        published_ref="TF Lite hosted models table (COCO mAP, 300×300 uint8)",
        license="Apache-2.0",
        description="TF OD API SSD MobileNetV1 (0.75 depth), COCO 90 ids, uint8 TFLite, dequantized",
    )
)

register_weights(
    WeightsEntry(
        name="ssd_mobilenet_v1_1.0_512.faceapi_faces",
        task="detection",
        arch="ssd_mobilenet_v1",
        model_kwargs={
            "alpha": 1.0,
            "resolution": 512,
            "num_classes": 2,
            "anchors": {"interpolated_after_unit_ratio": True},
            "loss": {"classification": "sigmoid"},
            "freeze_bn": True,
            # face-api.js defaults: min confidence 0.5, IoU 0.5, 100 results
            "postprocess": {
                "score_fn": "sigmoid",
                "nms": "per_class",
                "score_threshold": 0.5,
                "iou_threshold": 0.5,
                "max_detections": 100,
            },
        },
        preprocess=Preprocess(512, **TF_INCEPTION, pad="square"),  # face-api.js pads to a square
        converter="mnet.tasks.detection.convert:convert_tfjs_faceapi_ssd",
        labels="mnet.tasks.detection.labels:faces",
        # the npm package: its manifest is the original, the .bin shard it names lies beside it
        sources=(
            Source(
                "url",
                FACEAPI_NPM,
                member="package/model/ssd_mobilenetv1_model-weights_manifest.json",
                file_sha256=FACEAPI_MANIFEST_SHA256,
                note="npm @vladmandic/face-api@1.7.15 (MIT); the .tgz's sha256 is not pinned, its files' are",
            ),
        ),
        filenames=("ssd_mobilenetv1_model-weights_manifest.json",),
        companions={"ssd_mobilenetv1_model.bin": FACEAPI_SHARD_SHA256},
        license="MIT",
        description="face-api.js SSD MobileNetV1 face detector (WIDER FACE), TF.js uint8, dequantized",
    )
)

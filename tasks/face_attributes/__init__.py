"""Face attributes on CelebA, age/gender and face detection imports, faces in the wild (paper Sec. 4.4)."""

from . import pretrained as _pretrained  # noqa: F401  (registers face_attributes_mobilenet_v1_1.0_224.celeba400)
from .celeba import CELEBA_ATTRIBUTES, CelebA, read_attributes, read_bboxes, read_partition, select_attributes
from .metrics import average_precision, multilabel_metrics
from .model import FACE_MODELS, decode_age_gender
from .retinaface import FaceDetectionTask, detect_faces_retina
from .task import FaceAttributesTask

__all__ = [
    "CELEBA_ATTRIBUTES",
    "CelebA",
    "read_attributes",
    "read_bboxes",
    "read_partition",
    "select_attributes",
    "average_precision",
    "multilabel_metrics",
    "FACE_MODELS",
    "decode_age_gender",
    "FaceAttributesTask",
    "FaceDetectionTask",
    "detect_faces_retina",
]

"""Face attributes on CelebA, age/gender and face detection imports, faces in the wild (paper Sec. 4.4)."""

from . import imported as _imported  # noqa: F401  (registers the imported face models)
from . import pretrained as _pretrained  # noqa: F401  (registers face_attributes_mobilenet_v1_1.0_224.celeba400)

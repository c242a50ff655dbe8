"""``mnet faces IMAGE...``: faces in the wild: per face its box, age, gender and top CelebA attributes.

The same path as ``mnet predict face_attributes``, with the choice of each of its three networks: the
face detector (face-api SSD, or RetinaFace with ``--detector retinaface``), the faceres-deep age/gender
model and the suite's CelebA attribute model.
"""

from __future__ import annotations

import argparse

from mnet.apps.options import add_runtime, add_source, float_range, int_range


def register(sub: argparse._SubParsersAction) -> None:
    from .predict import add_face_options

    p = sub.add_parser("faces", help="find faces and give each an age, a gender and attributes", description=__doc__)
    p.add_argument("images", nargs="+", metavar="IMAGE")
    add_face_options(p)
    p.add_argument("--attributes", metavar="W", help="face-attribute weights (default: the suite's CelebA model)")
    p.add_argument("--top-k", type=int_range(1, 40), default=5, help="attributes shown per face")
    p.add_argument("--score", type=float_range(0.0, 1.0), default=0.0, help="hide faces scoring below this")
    p.add_argument("--format", choices=("text", "json"), default="text")
    p.add_argument("--timing", action="store_true", help="print per-stage median times to stderr")
    add_runtime(p)
    add_source(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from mnet.tasks.face_attributes.pipeline import AGE_GENDER_WEIGHTS, ATTRIBUTE_WEIGHTS
    from mnet.tasks.inference import expand_images
    from mnet.tasks.runtime.load import load_face_pipeline

    from .predict import check_photos, predict_paths

    files = expand_images(args.images)
    pipeline = load_face_pipeline(
        check_photos=check_photos(files),
        detector=args.detector,
        age_gender=args.age_gender or AGE_GENDER_WEIGHTS,
        attributes=None if args.no_attributes else (args.attributes or ATTRIBUTE_WEIGHTS),
        runtime=args.runtime,
        threads=args.threads,
        top_k=args.top_k,
    )
    return predict_paths(pipeline, files, args=args)

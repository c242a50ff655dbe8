"""``mnet faces IMAGE...``: faces in the wild: per face its box, age, gender and top attributes.

Detects faces (face-api SSD, or RetinaFace with ``--detector retinaface``), crops each one and runs
the faceres-deep age/gender model and, with ``--attributes W``, CelebA attribute weights.
"""

from __future__ import annotations

import argparse
import json


def register(sub: argparse._SubParsersAction) -> None:
    from mnet.tasks.face_attributes.pipeline import AGE_GENDER_WEIGHTS, FACE_DETECTORS

    p = sub.add_parser("faces", help="find faces and give each an age, a gender and attributes", description=__doc__)
    p.add_argument("images", nargs="+", metavar="IMAGE")
    p.add_argument("--detector", choices=sorted(FACE_DETECTORS), default="ssd")
    p.add_argument(
        "--age-gender", default=AGE_GENDER_WEIGHTS, metavar="W", help="age/gender weights (default: %(default)s)"
    )
    p.add_argument("--attributes", metavar="W", help="face-attribute weights (.safetensors or entry)")
    p.add_argument("--top-k", type=int, default=5, help="attributes shown per face")
    p.add_argument("--score", type=float, help="detector score threshold (default: the detector's)")
    p.add_argument("--format", choices=("text", "json"), default="text")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from mnet.tasks import get_task

    results = get_task("face_attributes").predict_files(
        args.images,
        detector=args.detector,
        age_gender=args.age_gender,
        attributes=args.attributes,
        top_k=args.top_k,
        score_threshold=args.score,
    )
    if args.format == "json":
        print(json.dumps(results, indent=2))
        return 0
    for r in results:
        print(f"{r['image']}: {len(r['faces'])} face(s)" + ("" if r["faces"] else " — no face found"))
        for f in r["faces"]:
            attrs = ", ".join(f"{a['name']} {a['prob']:.2f}" for a in f["attributes"])
            print(
                f"  box {[round(v) for v in f['box']]}  score {f['score']:.2f}  age {f['age']:.0f}  "
                f"{f['gender']} ({f['gender_score']:.2f})" + (f"  {attrs}" if attrs else "")
            )
    return 0

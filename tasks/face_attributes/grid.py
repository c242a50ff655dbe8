"""The Table 12 analogue on CelebA: attribute layers fitted on frozen ImageNet backbones at each α × ρ,
then distillation α 1.0 → smaller students. Writes one JSON with every number and saves each model.

    python -m mnet.tasks.face_attributes.grid --data ../shared/data/celeba --source ../shared/weights \\
        --out runs/face_attributes_grid
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from tqdm import tqdm

from mnet.weights import save_weights

from .probe import train_probe

#: (α, ρ) → ImageNet weights whose backbone initialises the face model (the float 1.0 release and the
#: quantization-aware-trained smaller ones; the backbone weights do not depend on ρ)
BACKBONES = {
    1.0: "mobilenet_v1_1.0_224.tfslim_in1k",
    0.75: "mobilenet_v1_0.75_192.tflite_in1k_quant",
    0.5: "mobilenet_v1_0.5_160.tflite_in1k_quant",
    0.25: "mobilenet_v1_0.25_128.tflite_in1k_quant",
}
GRID = [(1.0, 224), (0.5, 224), (0.25, 224), (1.0, 128), (0.5, 128), (0.25, 128)]


def save(result: dict, path: Path, alpha: float, resolution: int, extra: dict) -> None:
    meta = {
        "task": "face_attributes",
        "arch": "mobilenet_v1",
        "labels": result["attributes"],
        "model_kwargs": {"alpha": alpha, "resolution": resolution, "num_attributes": len(result["attributes"])},
        "preprocess": {"resolution": resolution, "mean": [127.5] * 3, "std": [127.5] * 3, "crop_fraction": 1.0},
        "metrics": {k: v for k, v in result["test"].items() if k != "per_attribute"},
        **extra,
    }
    save_weights(path, result["model"].state_dict(), meta)


def summary(result: dict) -> dict:
    t = result["test"]
    return {
        "test_mean_ap": t["mean_ap"],
        "prevalence_mean_ap": t["prevalence_mean_ap"],
        "test_mean_accuracy": t["mean_accuracy"],
        "majority_mean_accuracy": t["majority_mean_accuracy"],
        "test_mean_balanced_accuracy": t["mean_balanced_accuracy"],
        "val_mean_ap": result["val_mean_ap"],
        "l2": result["l2"],
        "n_test": t["n"],
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True)
    p.add_argument("--source", help="folder holding the original ImageNet weights files")
    p.add_argument("--out", required=True)
    p.add_argument("--cells", nargs="*", default=[f"{a}_{r}" for a, r in GRID], help="α_ρ cells, e.g. 1.0_224")
    p.add_argument("--students", nargs="*", default=["0.25_128"], help="distillation students (teacher 1.0_224)")
    args = p.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    report: dict = {"grid": {}, "distillation": {}}
    models = {}
    for cell in tqdm(args.cells, desc="grid"):
        a, r = float(cell.split("_")[0]), int(cell.split("_")[1])
        t0 = time.time()
        res = train_probe(args.data, alpha=a, resolution=r, weights=BACKBONES[a], source=args.source)
        save(res, out / f"face_attributes_{cell}.safetensors", a, r, {"init": BACKBONES[a], "l2": res["l2"]})
        report["grid"][cell] = {**summary(res), "seconds": round(time.time() - t0, 1)}
        models[cell] = res
        tqdm.write(f"{cell}: {json.dumps(report['grid'][cell])}")
        (out / "report.json").write_text(json.dumps(report, indent=2))
    if args.students and "1.0_224" in models:
        soft = models["1.0_224"]["train_soft"]
        for cell in args.students:
            a, r = float(cell.split("_")[0]), int(cell.split("_")[1])
            for name, lw in (("teacher_only", 0.0), ("teacher_and_labels", 0.5)):
                res = train_probe(
                    args.data,
                    alpha=a,
                    resolution=r,
                    weights=BACKBONES[a],
                    source=args.source,
                    soft=soft,
                    label_weight=lw,
                )
                save(
                    res,
                    out / f"face_attributes_{cell}_distilled_{name}.safetensors",
                    a,
                    r,
                    {"init": BACKBONES[a], "teacher": "face_attributes_1.0_224", "label_weight": lw},
                )
                report["distillation"][f"{cell}_{name}"] = {**summary(res), "label_weight": lw}
                tqdm.write(f"{cell} {name}: {json.dumps(report['distillation'][f'{cell}_{name}'])}")
                (out / "report.json").write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Train the attribute layer of a face-attribute registry entry that has a base (``pretrained.py``), from a
committed config; write the layer (the entry's package file) and a results JSON (the model card's numbers).

    python -m mnet.tasks.face_attributes.train_head --config tasks/face_attributes/recipes/celeba400.yaml \\
        --source ../shared/weights

The entry gives the base backbone, α, ρ and the attribute names; the config the data, the L2 candidates
and where to write. The layer is fitted on frozen backbone features (``probe.train_probe``: each training
image and its mirror, full-batch L-BFGS, L2 picked by val mean AP), then the test split is evaluated once.
A re-run on another machine may differ in the last float bits: the command then says the file no longer
matches the sha256 pinned in the entry, and which digest to pin.
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import json
import platform
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from .probe import L2_GRID

#: a config's sections and their keys (``None``: a plain value); every key is declared
SECTIONS: dict[str, tuple[str, ...] | None] = {
    "entry": None,
    "data": ("root",),
    "fit": ("l2_grid",),
    "output": ("head", "results"),
}
REQUIRED = ("entry", "data.root", "output.head", "output.results")


@dataclass(frozen=True)
class HeadRecipe:
    """A ``configs/*.yaml`` of this command (unknown keys are refused, naming the nearest known one)."""

    entry: str
    data_root: str
    head_out: str
    results_out: str
    l2_grid: tuple[float, ...] = L2_GRID

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any], where: str = "config") -> HeadRecipe:
        _refuse_unknown(raw, list(SECTIONS), where)
        flat: dict[str, Any] = {}
        for key, fields in SECTIONS.items():
            if fields is None:
                flat[key] = raw.get(key)
                continue
            section = raw.get(key) or {}
            if not isinstance(section, Mapping):
                raise ValueError(f"{where}: {key} must be a mapping with keys {', '.join(fields)}")
            _refuse_unknown(section, list(fields), where, prefix=f"{key}.")
            flat.update({f"{key}.{f}": section.get(f) for f in fields})
        missing = [k for k in REQUIRED if flat[k] in (None, "")]
        if missing:
            raise ValueError(f"{where}: {missing[0]} is required")
        grid = flat["fit.l2_grid"] or L2_GRID
        ok = isinstance(grid, (list, tuple)) and all(isinstance(v, (int, float)) and v >= 0 for v in grid)
        if not ok:  # (YAML reads 1e-4 as a string: write 1.0e-4)
            raise ValueError(f"{where}: fit.l2_grid must be a list of non-negative numbers, got {grid!r}")
        return cls(
            entry=str(flat["entry"]),
            data_root=str(flat["data.root"]),
            head_out=str(flat["output.head"]),
            results_out=str(flat["output.results"]),
            l2_grid=tuple(float(v) for v in grid),
        )

    @classmethod
    def from_yaml(cls, path: str | Path) -> HeadRecipe:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no such config file")
        raw = yaml.safe_load(path.read_text()) or {}
        if not isinstance(raw, Mapping):
            raise ValueError(f"{path}: a config is a mapping of sections, got {type(raw).__name__}")
        return cls.from_dict(raw, str(path))


def _refuse_unknown(raw: Mapping[str, Any], known: list[str], where: str, prefix: str = "") -> None:
    for key in raw:
        if key not in known:
            close = difflib.get_close_matches(str(key), known, n=1)
            hint = f"; did you mean {prefix}{close[0]}?" if close else f"; known: {', '.join(known)}"
            raise ValueError(f"{where}: unknown key {prefix}{key}{hint}")


def _summary(metrics: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in metrics.items() if k != "per_attribute"}


def train_head(recipe: HeadRecipe, *, source: str | None = None, command: str = "") -> dict[str, Any]:
    """Fit the entry's layer as ``recipe`` says; write it and the results JSON; return the results."""
    import torch

    from mnet.weights import get_entry, load_weights, save_weights, sha256_file

    from .probe import train_probe

    entry = get_entry(recipe.entry)
    if entry.base is None or entry.task != "face_attributes":
        raise ValueError(f"{entry.name}: not a face-attribute entry built on a base entry")
    names = entry.label_list()
    t0 = time.time()
    res = train_probe(
        recipe.data_root,
        alpha=float(entry.alpha),
        resolution=int(entry.resolution),
        weights=entry.base,
        source=source,
        attributes=names,
        l2_grid=recipe.l2_grid,
    )
    seconds = round(time.time() - t0, 1)
    fc = res["model"].head.fc
    training = {
        "command": command,
        "config": dataclasses.asdict(recipe),
        "data": f"CelebA train split of {recipe.data_root} ({res['n_train_views']} views: each image and its mirror)",
        "l2": res["l2"],
        "val_mean_ap": res["val_mean_ap"],
        "test_mean_ap": res["test"]["mean_ap"],
    }
    head_path = save_weights(
        recipe.head_out,
        {"head.fc.weight": fc.weight.detach().clone(), "head.fc.bias": fc.bias.detach().clone()},
        {
            "task": "face_attributes",
            "entry": entry.name,
            "labels": list(names),
            "base": entry.base,
            "base_original_sha256": load_weights(entry.base).meta.get("original_sha256"),
            "training": training,
        },
    )
    digest = sha256_file(head_path)
    results = {
        "entry": entry.name,
        "base": entry.base,
        **training,
        "head_file": head_path.name,
        "head_sha256": digest,
        "val_mean_ap_by_l2": res["val_mean_ap_by_l2"],
        "val": _summary(res["val"]),
        "test": res["test"],
        "seconds": seconds,
        "environment": {"python": platform.python_version(), "torch": torch.__version__, "cpu": platform.machine()},
    }
    out = Path(recipe.results_out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    return results


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", required=True, help="a configs/*.yaml of this command")
    p.add_argument("--source", help="folder (or file) holding the base entry's original weights")
    args = p.parse_args(argv)
    try:
        recipe = HeadRecipe.from_yaml(args.config)
        command = " ".join(["python -m mnet.tasks.face_attributes.train_head", *(argv or sys.argv[1:])])
        r = train_head(recipe, source=args.source, command=command)
    except (ValueError, FileNotFoundError) as e:
        print(f"train_head: error: {e}", file=sys.stderr)
        return 2
    from mnet.weights import get_entry

    pinned = {s.file_sha256 for s in get_entry(r["entry"]).sources}
    print(
        f"{r['entry']}: l2 {r['l2']}, val mean AP {r['val_mean_ap']:.4f}, test mean AP {r['test_mean_ap']:.4f} "
        f"(prevalence baseline {r['test']['prevalence_mean_ap']:.4f}, n {r['test']['n']}); {r['seconds']} s"
    )
    print(f"wrote {recipe.head_out} (sha256 {r['head_sha256']}) and {recipe.results_out}")
    if r["head_sha256"] not in pinned:
        print(f"note: the entry pins another sha256 for its layer; to release this one, pin {r['head_sha256']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

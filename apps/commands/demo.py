"""``mnet demo``: the Gradio app (camera, upload, JSON endpoint). Binds to 127.0.0.1 unless told.

Phones open the camera only in a secure context: use ``--host 0.0.0.0 --https`` (a self-signed
certificate is created unless ``--cert/--key`` are given; accept the browser's warning once).
``--model PATH`` adds your own trained models (a run folder, a weights file or an exported .onnx).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from mnet.apps.options import add_runtime, add_source, int_range

#: the task whose weights are fetched on first use when nothing is at hand
FIRST_USE_TASK = "classification"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "demo",
        help="run the Gradio app on a camera or uploads",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default %(default)s; 0.0.0.0 for the LAN)")
    p.add_argument("--port", type=int_range(1, 65535), default=int(os.environ.get("GRADIO_SERVER_PORT", 7860)))
    p.add_argument("--https", action="store_true", help="serve HTTPS (self-signed unless --cert/--key): phones need it")
    p.add_argument("--cert", help="TLS certificate (PEM) for --https")
    p.add_argument("--key", help="TLS private key (PEM) for --https")
    p.add_argument("--share", action="store_true", help="create a public gradio.live link (needs internet)")
    p.add_argument("--tasks", nargs="+", help="tasks selected at start (default: detection if available)")
    p.add_argument("--size", help="backbone size selected at start, e.g. 1.0-224")
    p.add_argument("--samples", help="folder of example photos for the upload tab")
    p.add_argument(
        "--model",
        nargs="+",
        default=[],
        metavar="PATH",
        help="your own models: a training run folder, a .safetensors weights file or an exported .onnx "
        "(each is added to the task picker with its own task, α-ρ and labels)",
    )
    p.add_argument(
        "--engine",
        choices=("auto", "device", "server"),
        default="auto",
        help="where the live view runs the models at first: in the page (device), on the server, or auto "
        "(the page for single-network tasks; the user can switch)",
    )
    p.add_argument(
        "--no-isolation",
        action="store_true",
        help="do not send the COOP/COEP headers (the page then runs its model on one thread)",
    )
    add_runtime(p)
    add_source(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from mnet.apps.cli import UserError
    from mnet.apps.demo.app import build_app, default_tasks_for, serve
    from mnet.apps.demo.models import WeightsChooser, own_model
    from mnet.apps.demo.pipeline import DemoPipeline
    from mnet.apps.demo.tls import self_signed_certificate
    from mnet.apps.demo.web_runtime import ensure_ort_web
    from mnet.tasks.registry import task_spec

    if (args.cert or args.key) and not (args.cert and args.key and args.https):
        raise UserError("--cert and --key go together, with --https")
    try:
        own = [own_model(m) for m in args.model]
    except (FileNotFoundError, ValueError, KeyError) as e:
        raise UserError(str(e)) from None
    chooser = WeightsChooser()
    if not chooser.tasks and not own:  # nothing at hand: the first use fetches the default classifier
        from mnet.weights import fetch_and_convert

        name = task_spec(FIRST_USE_TASK).default_weights
        print(f"mnet demo: fetching the default weights {name} (first use) ...", file=sys.stderr)
        fetch_and_convert(name)
        chooser = WeightsChooser()
    for m in own:
        chooser.add(m)
    try:
        ensure_ort_web()  # once, from the npm registry, integrity-checked; then served by the app
    except (OSError, ValueError) as e:
        print(f"mnet demo: onnxruntime-web unavailable ({e}); the live view runs on the server", file=sys.stderr)
    tasks = chooser.tasks
    chosen = args.tasks or ([m.choice for m in own[:1]] or default_tasks_for(tasks))
    unknown = [t for t in chosen if t not in tasks]
    if unknown:
        raise UserError(f"task(s) {', '.join(unknown)} not available; available: {', '.join(tasks)}")
    sizes = chooser.sizes() or ["1.0-224"]
    size = args.size or ("1.0-224" if "1.0-224" in sizes else sizes[0])
    samples = args.samples or next((str(p) for p in (Path("../shared/data/samples"),) if p.is_dir()), None)
    pipeline = DemoPipeline(chooser, runtime=args.runtime, threads=args.threads)
    print(f"mnet demo: loading {', '.join(chosen)} at {size} ...", file=sys.stderr)
    pipeline.preload(chosen, size)
    blocks = build_app(
        pipeline,
        tasks=tasks,
        sizes=sizes,
        default_tasks=chosen,
        default_size=size,
        samples=samples,
        default_engine=args.engine,
    )
    ssl = {}
    if args.https:
        cert, key = (
            (args.cert, args.key) if args.cert else self_signed_certificate(Path.home() / ".cache" / "mnet" / "tls")
        )
        ssl = dict(ssl_certfile=str(cert), ssl_keyfile=str(key))
    scheme = "https" if args.https else "http"
    print(f"mnet demo on {scheme}://{args.host}:{args.port} (tasks: {', '.join(tasks)})", file=sys.stderr)
    if args.host == "127.0.0.1" and not args.share:
        print("phones: run with --host 0.0.0.0 --https (camera needs a secure context) or --share", file=sys.stderr)
    if args.share:
        print("mnet demo: --share is not available with the live view; use --host 0.0.0.0 --https", file=sys.stderr)
    served = serve(
        blocks, pipeline, host=args.host, port=args.port, isolate=not args.no_isolation, samples=samples, ssl=ssl
    )
    try:
        served.wait()
    except KeyboardInterrupt:
        served.close()
    return 0

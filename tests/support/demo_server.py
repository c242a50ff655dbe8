"""The demo app as its own process, for tests that watch its memory: ``python demo_server.py PORT WEIGHTS_DIR
TASK SIZE``. Prints ``READY`` once it serves; runs until killed."""

from __future__ import annotations

import sys


def main(port: int, weights_dir: str, task: str, size: str) -> None:
    from mnet.apps.demo.app import build_app, serve
    from mnet.apps.demo.models import WeightsChooser
    from mnet.apps.demo.pipeline import DemoPipeline
    from mnet.weights.locations import add_originals_dir

    add_originals_dir(weights_dir)
    chooser = WeightsChooser()
    pipeline = DemoPipeline(chooser, runtime="torch", threads=1)
    pipeline.preload([task], size)
    app = build_app(pipeline, tasks=[task], sizes=[size], default_tasks=[task], default_size=size)
    served = serve(app, pipeline, port=port)
    print("READY", flush=True)
    served.wait()


if __name__ == "__main__":
    main(int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4])

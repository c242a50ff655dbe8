"""onnxruntime-web (WASM SIMD, 1 or 2 threads) in headless Chromium: a worker of ``benchmarks.peer_runtimes``.

    python -m benchmarks.web_runtime JOB.json      # prints {"cells": [...], "info": {...}} like peer_worker

The npm package ``onnxruntime-web`` comes from the npm registry through ``npm pack`` at a pinned version
into a cache folder, and its tarball must match the pinned sha512 integrity (the registry's
``dist.integrity``) before any file of it is used. Only the three files the CPU path needs are unpacked:
``ort.wasm.min.js``, ``ort-wasm-simd-threaded.mjs`` and ``ort-wasm-simd-threaded.wasm``.

The page is served from 127.0.0.1 with ``Cross-Origin-Opener-Policy: same-origin`` and
``Cross-Origin-Embedder-Policy: require-corp``: without cross-origin isolation ONNX Runtime Web runs one
thread whatever it is told. Chromium (``/usr/bin/chromium``, never a downloaded browser) is driven by
Playwright; the timing loop runs inside the page (``performance.now()`` around ``await session.run``).
"""

from __future__ import annotations

import http.server
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from functools import partial
from pathlib import Path

import numpy as np

from mnet.apps.demo.web_runtime import ORT_WEB_FILES as DIST_FILES
from mnet.apps.demo.web_runtime import ORT_WEB_VERSION, install_tarball

CHROMIUM = os.environ.get("MNET_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


class WebUnavailable(RuntimeError):
    """onnxruntime-web cannot run here (no package, no npm, no Chromium); the message says what is missing."""


def fetch_package(cache: Path, *, download: bool = True) -> Path:
    """The folder with the pinned onnxruntime-web's CPU files: unpacked from the checked tarball in
    ``cache``, which ``npm pack`` fetches first when ``download`` and it is not there yet."""
    dist = cache / f"onnxruntime-web-{ORT_WEB_VERSION}"
    if all((dist / f).is_file() for f in DIST_FILES):
        return dist
    tgz = cache / f"onnxruntime-web-{ORT_WEB_VERSION}.tgz"
    if not tgz.is_file():
        npm = shutil.which("npm")
        if not download or npm is None:
            why = "npm is not installed" if npm is None else "not fetched (run the benchmark with --fetch-web)"
            raise WebUnavailable(f"onnxruntime-web {ORT_WEB_VERSION} is not in {cache}: {why}")
        cache.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [npm, "pack", f"onnxruntime-web@{ORT_WEB_VERSION}", "--pack-destination", str(cache), "--silent"],
            check=True,
            timeout=900,
            stdout=subprocess.DEVNULL,
        )
    try:  # the app's own check and unpacking: the same pinned integrity, the same files
        return install_tarball(tgz.read_bytes(), str(tgz), out=dist)
    except ValueError as e:
        tgz.unlink()
        raise WebUnavailable(f"{e}; deleted") from None


class _Handler(http.server.SimpleHTTPRequestHandler):
    extensions_map = {
        **http.server.SimpleHTTPRequestHandler.extensions_map,
        ".mjs": "text/javascript",
        ".js": "text/javascript",
        ".wasm": "application/wasm",
    }

    def end_headers(self) -> None:
        self.send_header("Cross-Origin-Opener-Policy", "same-origin")
        self.send_header("Cross-Origin-Embedder-Policy", "require-corp")
        self.send_header("Cross-Origin-Resource-Policy", "same-origin")
        self.send_header("Cache-Control", "no-store")
        super().end_headers()

    def log_message(self, *args: object) -> None:  # quiet
        pass


def serve(root: Path) -> tuple[http.server.ThreadingHTTPServer, str]:
    """A cross-origin-isolating static server for ``root`` on 127.0.0.1 (a daemon thread); (server, base URL)."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(_Handler, directory=str(root)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>ort-web bench</title>
<script src="/ort/ort.wasm.min.js"></script></head><body>onnxruntime-web benchmark</body></html>"""

#: runs in the page: every model × batch, timed with performance.now() around ``await session.run``
TIMING_JS = """
async ({threads, jobs, budget, minRuns, maxRuns}) => {
  ort.env.wasm.numThreads = threads;
  ort.env.wasm.wasmPaths = location.origin + '/ort/';
  const cells = [];
  for (const job of jobs) {
    let session;
    try {
      session = await ort.InferenceSession.create(job.model, {executionProviders: ['wasm'], graphOptimizationLevel: 'all'});
    } catch (e) {
      for (const b of job.batches) cells.push({model: job.name, batch: b, error: 'session: ' + String(e).slice(0, 300)});
      continue;
    }
    const data = new Float32Array(await (await fetch(job.input)).arrayBuffer());
    const [c, h, w] = job.chw;
    for (const b of job.batches) {
      try {
        const feeds = {[session.inputNames[0]]: new ort.Tensor('float32', data.subarray(0, b * c * h * w), [b, c, h, w])};
        const fixed = job.runs[String(b)], lo = fixed || minRuns, hi = fixed || maxRuns;
        let n = 0, tEnd = performance.now() + budget * 1000 / 3;
        while (n < 2 || performance.now() < tEnd) { await session.run(feeds); n++; }
        const times = [];
        tEnd = performance.now() + budget * 1000;
        while (times.length < lo || (times.length < hi && performance.now() < tEnd)) {
          const t0 = performance.now();
          await session.run(feeds);
          times.push(performance.now() - t0);
        }
        cells.push({model: job.name, batch: b, times_ms: times});
      } catch (e) {
        cells.push({model: job.name, batch: b, error: 'run: ' + String(e).slice(0, 300)});
      }
    }
    await session.release();
  }
  return {cells, info: {crossOriginIsolated: String(self.crossOriginIsolated), threads: String(ort.env.wasm.numThreads),
                        browser: navigator.userAgent.match(/(HeadlessChrome|Chrome)\\/[\\d.]+/)?.[0] ?? navigator.userAgent}};
}
"""


def run_in_browser(
    dist: Path,
    models: list[dict],
    *,
    threads: int,
    precision: str,
    budget_s: float,
    min_runs: int,
    max_runs: int,
    chromium: str = CHROMIUM,
) -> dict:
    """Time ``models`` (peer_worker's job entries) in one Chromium page with ``threads`` WASM threads."""
    if not Path(chromium).is_file():
        raise WebUnavailable(f"no Chromium at {chromium}")
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "ort").symlink_to(dist.resolve(), target_is_directory=True)
        (root / "index.html").write_text(PAGE)
        jobs = []
        for m in models:
            (root / f"{m['name']}.onnx").symlink_to(Path(m["files"][precision]).resolve())
            x = np.load(m["inputs"])["float"]
            (root / f"{m['name']}.bin").write_bytes(np.ascontiguousarray(x, dtype="<f4").tobytes())
            jobs.append(
                {
                    "name": m["name"],
                    "model": f"/{m['name']}.onnx",
                    "input": f"/{m['name']}.bin",
                    "chw": list(x.shape[1:]),
                    "batches": m["batches"],
                    "runs": m.get("runs", {}),
                }
            )
        server, url = serve(root)
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=chromium, headless=True, args=CHROMIUM_ARGS)
                try:
                    page = browser.new_page()
                    page.goto(f"{url}/index.html", wait_until="load")
                    arg = {
                        "threads": threads,
                        "jobs": jobs,
                        "budget": budget_s,
                        "minRuns": min_runs,
                        "maxRuns": max_runs,
                    }
                    result = page.evaluate(TIMING_JS, arg)
                    result["info"]["chromium"] = browser.version
                finally:
                    browser.close()
        finally:
            server.shutdown()
    return result


def main(job_path: str) -> None:
    job = json.loads(Path(job_path).read_text())
    try:
        dist = fetch_package(Path(job["web"]["cache"]), download=False)
        result = run_in_browser(
            dist,
            job["models"],
            threads=job["web"]["threads"],
            precision=job["web"]["precision"],
            budget_s=job["budget_s"],
            min_runs=job["min_runs"],
            max_runs=job["max_runs"],
        )
    except Exception as e:  # noqa: BLE001 - every cell says why
        why = f"{type(e).__name__}: {e}"[:300]
        result = {
            "cells": [{"model": m["name"], "batch": b, "error": why} for m in job["models"] for b in m["batches"]]
        }
    print(json.dumps(result))


if __name__ == "__main__":
    main(sys.argv[1])

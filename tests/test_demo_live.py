"""The live view in headless Chromium: the camera (a fake one fed from a real street video at 30 fps) plays
in the page, results are drawn over it, on "this device" (onnxruntime-web) or the "server" engine.

Needs ../shared (weights, video), Chromium, the `playwright` package, and onnxruntime-web in the user's cache
(``mnet demo`` fetches it once; tests never touch the network: they skip without it). Measured rates are
printed; only the issue's floors are asserted.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("gradio")

from conftest import shared_path  # noqa: E402
from support.fake_camera import video_to_y4m  # noqa: E402
from test_demo import CHROMIUM, CHROMIUM_FLAGS, free_port, screenshot  # noqa: E402

from mnet.apps.demo.app import build_app, default_tasks_for, serve  # noqa: E402
from mnet.apps.demo.models import WeightsChooser  # noqa: E402
from mnet.apps.demo.pipeline import DemoPipeline  # noqa: E402
from mnet.apps.demo.web_runtime import ORT_WEB_VERSION, ensure_ort_web  # noqa: E402

#: the user's own cache (the tests' cache is a fresh folder): onnxruntime-web is copied from there
USER_WEB_CACHE = Path(os.environ.get("MNET_ORT_WEB_CACHE", Path.home() / ".cache" / "mnet" / "web"))


@pytest.fixture(scope="module")
def ort_web():
    tgz = USER_WEB_CACHE / f"onnxruntime-web-{ORT_WEB_VERSION}.tgz"
    if not tgz.is_file():
        pytest.skip(f"onnxruntime-web not cached at {tgz} (run `mnet demo` once with internet)")
    return ensure_ort_web(download=False, tarball=tgz)  # integrity checked while unpacking


def start_demo(tasks=None, size="1.0-224", **kw):
    shared_path("weights")
    chooser = WeightsChooser()
    if not chooser.tasks:
        pytest.skip("no task has weights available under ../shared/weights")
    pipeline = DemoPipeline(chooser, threads=1)
    tasks = tasks or chooser.tasks
    blocks = build_app(
        pipeline, tasks=tasks, sizes=chooser.sizes(), default_tasks=default_tasks_for(tasks), default_size=size
    )
    port = free_port()
    served = serve(blocks, pipeline, port=port, **kw)
    return served, f"http://127.0.0.1:{port}/", chooser.tasks


@pytest.fixture(scope="module")
def demo(ort_web):
    served, url, tasks = start_demo()
    try:
        yield {"url": url, "tasks": tasks}
    finally:
        served.close()


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    if not Path(CHROMIUM).exists():
        pytest.skip(f"Chromium not found at {CHROMIUM} (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api")
    camera = video_to_y4m(
        shared_path("data", "video", "vtest.avi"), tmp_path_factory.mktemp("camera") / "vtest30.y4m", frames=90, fps=30
    )
    with sync_api.sync_playwright() as pw:
        b = pw.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=CHROMIUM_FLAGS + [f"--use-file-for-fake-video-capture={camera}"],
        )
        yield b
        b.close()


def open_live(browser, url, tasks, all_tasks, *, size=None, engine="auto", query=""):
    from test_demo import select_tasks

    page = browser.new_page(viewport={"width": 1280, "height": 1000})
    page.goto(url + query, wait_until="domcontentloaded")
    page.wait_for_function("window.mnetLive !== undefined", timeout=60_000)
    select_tasks(page, list(tasks), all_tasks)
    if size:
        page.locator("#size-picker input").click()
        page.get_by_role("option", name=size, exact=True).click()
    page.locator("#live-view select.mnet-engine").select_option(engine)
    page.locator("#live-view button.mnet-start").click()
    return page


def stats(page) -> dict:
    return page.evaluate("window.mnetLive.stats()")


def wait_results(page, n: int, timeout_s: float = 120) -> dict:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout_s:
        s = stats(page)
        if s["resultCount"] >= n:
            return s
        time.sleep(0.25)
    raise AssertionError(f"fewer than {n} results in {timeout_s:.0f} s: {stats(page)}")


def measure(page, seconds: float = 8.0) -> dict:
    """Painted video frames (requestVideoFrameCallback) and results per second over ``seconds``, in the page."""
    a = stats(page)
    t0 = time.monotonic()
    time.sleep(seconds)
    b = stats(page)
    dt = time.monotonic() - t0
    return {
        "video_fps": (b["paintedFrames"] - a["paintedFrames"]) / dt,
        "results_per_s": (b["resultCount"] - a["resultCount"]) / dt,
        "infer_ms": b["inferMs"],
        "threads": b["threads"],
        "engines": b["engines"],
        "error": b["error"],
        "load": os.getloadavg()[0],
    }


def report(name: str, m: dict) -> None:
    print(f"\n{name}: {json.dumps(m)}")
    path = os.environ.get("MNET_DEMO_FPS_FILE")
    if path:
        with open(path, "a") as f:
            f.write(json.dumps({"case": name, **m}) + "\n")


@pytest.mark.slow  # rates depend on the CPU: measured on the machine at hand (`pytest -m slow`), not in CI
@pytest.mark.parametrize(
    "task,size,engine,floor",
    [
        ("detection", None, "device", 12),
        ("detection", None, "server", 15),
        ("classification", "0.5-160", "device", 25),
    ],
    ids=["detection-device", "detection-server", "classification-0.5-160-device"],
)
def test_live_rates(browser, demo, task, size, engine, floor):
    """The video plays at ≥ 25 FPS while results are drawn; results/s meet the issue's floors."""
    if task not in demo["tasks"]:
        pytest.skip(f"no weights for {task}")
    page = open_live(browser, demo["url"], [task], demo["tasks"], size=size, engine=engine)
    try:
        wait_results(page, 5)
        time.sleep(2)
        m = measure(page)
        report(f"{task}-{size or 'default'}-{engine}", m)
        assert not m["error"], m["error"]
        assert m["engines"][task]["engine"] == engine
        assert "cross-origin isolated" in m["threads"] and "not" not in m["threads"]
        screenshot(page, f"live_{task}_{engine}")
        assert m["video_fps"] >= 25, m
        assert m["results_per_s"] >= floor, m
    finally:
        page.close()


def test_without_isolation_one_thread(browser, demo):
    """Without COOP/COEP the page still runs the model on the device, on one thread, and says so."""
    task = "classification" if "classification" in demo["tasks"] else demo["tasks"][0]
    page = open_live(browser, demo["url"], [task], demo["tasks"], engine="device", query="?isolate=0")
    try:
        s = wait_results(page, 3)
        assert not s["isolated"] and s["threads"] == "1 thread (page not cross-origin isolated)"
        assert s["latest"][task]["classes" if task != "detection" else "boxes"] is not None
        assert "1 thread (page not cross-origin isolated)" in page.locator("#live-view .mnet-status").inner_text()
    finally:
        page.close()


def _iou(a, b) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def test_device_agrees_with_python(browser, demo, tmp_path):
    """One still frame through the page's engine and through Python's ONNX Runtime (the same export): same
    top-1 with probabilities within 1e-3; detection boxes matched at IoU ≥ 0.9. The frame is sized so that
    the recipe's crop is exactly the input resolution (no resampler difference between canvas and PIL)."""
    from mnet.tasks.runtime.load import load_predictor

    chooser = WeightsChooser()
    photo = Image.open(shared_path("data", "coco", "val2017", "000000005001.jpg")).convert("RGB")
    page = open_live(browser, demo["url"], [], demo["tasks"], engine="device")
    try:
        for task, size in (("classification", "0.5-160"), ("detection", "1.0-224")):
            if task not in demo["tasks"]:
                continue
            p = load_predictor(task, chooser(task, size), runtime="onnxruntime", notify=None)
            pre = p.preprocess
            side = next(
                s
                for s in range(pre.resolution, 2 * pre.resolution + 2)
                if s - 2 * int((s - s * pre.crop_fraction) / 2) == pre.resolution
            )
            still = photo.resize((side, side), Image.Resampling.BILINEAR)
            path = tmp_path / f"{task}.png"
            still.save(path)
            data = "data:image/png;base64," + __import__("base64").b64encode(path.read_bytes()).decode()
            got = page.evaluate(
                "([u, t, s]) => window.mnetLive.inferImage(u, [t], s, 0.5, 'device')", [data, task, size]
            )[task]
            want = p.predict(np.asarray(still), score_threshold=0.5)
            if task == "detection":
                mine = [(b["label"], b["box"]) for b in got["boxes"]]
                theirs = [(b.label, b.box) for b in want.boxes]
                print(f"\n{task}: page {len(mine)} boxes, python {len(theirs)}")
                assert theirs, "no detection to compare"
                for label, box in theirs:
                    assert max((_iou(box, m) for n, m in mine if n == label), default=0) >= 0.9, (label, box, mine)
            else:
                top = got["classes"]
                print(f"\n{task}: page top-1 {top[0]}, python {want.classes[0]}")
                assert top[0]["label"] == want.classes[0].label
                for a, b in zip(top, want.classes):
                    assert a["label"] == b.label and abs(a["score"] - b.score) <= 1e-3
    finally:
        page.close()


def test_server_engine_sends_small_frames_and_gets_json(demo):
    """The server route takes a frame at the model's input size and answers Result JSON in its pixels."""
    import io
    import urllib.request

    if "detection" not in demo["tasks"]:
        pytest.skip("no detection weights")
    info = json.loads(urllib.request.urlopen(demo["url"] + "mnet-live/model?task=detection&size=1.0-224").read())
    assert info["device"] and info["send_side"] == info["preprocess"]["resolution"]
    img = Image.open(shared_path("data", "samples", "astronaut.png")).convert("RGB").resize((300, 300))
    buf = io.BytesIO()
    img.save(buf, format="JPEG")
    req = urllib.request.Request(
        demo["url"] + "mnet-live/infer?tasks=detection&size=1.0-224&threshold=0.5", data=buf.getvalue(), method="POST"
    )
    body = json.loads(urllib.request.urlopen(req).read())
    (r,) = body["results"]
    assert r["size"] == [300, 300] and any(b["label"] == "person" for b in r["boxes"])
    assert all(0 <= v <= 300 for b in r["boxes"] for v in b["box"])
    bad = urllib.request.Request(demo["url"] + "mnet-live/infer?tasks=detection&size=1.0-224", data=b"x", method="POST")
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(bad)
    assert e.value.code == 400 and "not a readable image" in e.value.read().decode()


#: (synset, the class name the test gives it): names no ImageNet label has, so seeing them proves the model
OWN_CLASSES = (("n01440764", "own_tench"), ("n01443537", "own_goldfish"), ("n01484850", "own_shark"))


def test_own_finetuned_model_on_device(browser, ort_web, tmp_path):
    """Fine-tune a small classifier one short epoch on a 3-class ImageFolder from ../shared/data/imagenet, run
    `mnet demo --model RUN`'s setup, and see the model's own class names drawn by the on-device engine."""
    from test_demo import select_tasks

    from mnet.apps.cli import main
    from mnet.apps.demo.models import own_model

    val = shared_path("data", "imagenet", "val")
    data = tmp_path / "data"
    for synset, name in OWN_CLASSES:
        files = sorted((val / synset).iterdir())[:2]
        if not files:
            pytest.skip(f"no images of {synset} under {val}")
        for split in ("train", "val"):
            (data / split / name).mkdir(parents=True)
            for f in files:
                shutil.copy(f, data / split / name / f.name)
    run = tmp_path / "run"
    rc = main(
        [
            "train",
            "classification",
            "--config",
            "tasks/classification/configs/finetune_imagefolder.yaml",
            f"data.root={data}",
            f"output.dir={run}",
            "model.weights=mobilenet_v1_0.25_128.tflite_in1k_quant",
            "model.alpha=0.25",
            "model.resolution=128",
            "data.batch_size=4",
            "train.epochs=1",
            "train.threads=1",
            "train.progress=false",
        ]
    )
    assert rc == 0 and (run / "best.safetensors").is_file()
    model = own_model(run)
    assert (model.task, model.alpha, model.resolution, model.labels) == ("classification", 0.25, 128, 3)

    shared_path("weights")
    chooser = WeightsChooser()
    choice = chooser.add(model)
    pipeline = DemoPipeline(chooser, threads=1)
    blocks = build_app(
        pipeline,
        tasks=chooser.tasks,
        sizes=chooser.sizes() or ["1.0-224"],
        default_tasks=[choice],
        default_size=(chooser.sizes() or ["1.0-224"])[0],
    )
    port = free_port()
    served = serve(blocks, pipeline, port=port)
    page = browser.new_page(viewport={"width": 1280, "height": 1000})
    try:
        page.goto(f"http://127.0.0.1:{port}/", wait_until="domcontentloaded")
        page.wait_for_function("window.mnetLive !== undefined", timeout=60_000)
        select_tasks(page, [choice], chooser.tasks)
        page.locator("#live-view select.mnet-engine").select_option("device")
        page.locator("#live-view button.mnet-start").click()
        s = wait_results(page, 3)
        assert s["engines"][choice]["engine"] == "device", s
        names = {c["label"] for c in s["latest"][choice]["classes"]}
        assert names == {n for _, n in OWN_CLASSES}, names
        # drawn on the canvas: the page's own drawing of the panel uses these names (checked by the text it drew)
        drawn = page.evaluate(
            "() => { const c = document.querySelector('#live-view canvas.mnet-overlay');"
            " return c.width > 0 && c.getContext('2d').getImageData(0, 0, 200, 100).data.some((v, i) => i % 4 == 3 && v > 0); }"
        )
        assert drawn, "nothing drawn over the video"
        screenshot(page, "live_own_model_device")
    finally:
        page.close()
        served.close()


@pytest.mark.slow  # 30 s of four pages
def test_four_pages_on_this_device_leave_the_server_idle(browser, demo):
    """With the model running in the pages, the server only serves files: four pages for 30 s cost the
    server process (this process: the app runs in its threads) under 10 % of a core."""
    if "classification" not in demo["tasks"]:
        pytest.skip("no classification weights")
    pages = [
        open_live(browser, demo["url"], ["classification"], demo["tasks"], size="0.5-160", engine="device")
        for _ in range(4)
    ]
    try:
        for page in pages:
            wait_results(page, 3)  # the model is downloaded and running in every page
        before = [stats(p)["resultCount"] for p in pages]
        cpu0, t0 = time.process_time(), time.monotonic()
        time.sleep(30)
        cpu = (time.process_time() - cpu0) / (time.monotonic() - t0)
        after = [stats(p)["resultCount"] for p in pages]
        print(
            f"\n4 pages on this device, 30 s: server {cpu:.1%} of a core; results per page {[a - b for a, b in zip(after, before)]}"
        )
        assert all(a > b for a, b in zip(after, before)), "a page stopped producing results"
        assert cpu < 0.10
    finally:
        for page in pages:
            page.close()


def test_server_engine_answers_faces(demo):
    """face_attributes runs on the server engine (three networks): each face with age, gender, attributes."""
    import io
    import urllib.request

    if "face_attributes" not in demo["tasks"]:
        pytest.skip("no face weights")
    info = json.loads(urllib.request.urlopen(demo["url"] + "mnet-live/model?task=face_attributes&size=1.0-224").read())
    assert not info["device"]  # three networks: the server engine by default
    img = Image.open(shared_path("data", "samples", "face.jpg")).convert("RGB")
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=95)
    req = urllib.request.Request(
        demo["url"] + "mnet-live/infer?tasks=face_attributes&size=1.0-224&threshold=0.5",
        data=buf.getvalue(),
        method="POST",
    )
    (r,) = json.loads(urllib.request.urlopen(req).read())["results"]
    assert r["size"] == list(img.size) and len(r["faces"]) == 4
    assert all("age" in f and f["attributes"] for f in r["faces"])

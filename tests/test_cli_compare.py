"""`mnet compare` end to end: JSON/CSV/table output, the plot, and one-line errors."""

from __future__ import annotations

import csv
import io
import json

import pytest

from mnet.apps.cli import main

TABLE = {  # Tables 6 and 7: (α, ρ) → (Mult-Adds M, params M)
    (1.0, 224): (569, 4.2),
    (0.75, 224): (325, 2.6),
    (0.5, 224): (149, 1.3),
    (0.25, 224): (41, 0.5),
    (1.0, 192): (418, 4.2),
    (1.0, 160): (290, 4.2),
    (1.0, 128): (186, 4.2),
}


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_compare_json_has_sixteen_classification_rows(capsys):
    code, out, _ = run(
        capsys,
        "compare",
        "--tasks",
        "classification",
        "--format",
        "json",
        "--runs",
        "1",
        "--warmup",
        "0",
        "--runtime",
        "torch",
    )  # 16 ONNX exports would dominate the test's time; see test_runtime_session
    assert code == 0
    rows = json.loads(out)
    assert len(rows) == 16
    keys = {"task", "alpha", "resolution", "params", "mult_adds", "latency_ms_p50", "latency_ms_p95"}
    assert all(keys <= r.keys() for r in rows)
    for r in rows:
        ref = TABLE.get((r["alpha"], r["resolution"]))
        if ref:
            assert abs(r["mult_adds"] / 1e6 - ref[0]) < 1
            assert round(r["params"] / 1e6, 1) == ref[1]
        assert 0 < r["latency_ms_p50"] <= r["latency_ms_p95"]


def test_compare_csv_and_table(capsys):
    code, out, _ = run(
        capsys,
        "compare",
        "--tasks",
        "classification",
        "--alphas",
        "0.25",
        "--resolutions",
        "128",
        "--format",
        "csv",
        "--no-latency",
    )
    assert code == 0
    (row,) = list(csv.DictReader(io.StringIO(out)))
    assert row["task"] == "classification" and int(row["params"]) == 463_600
    code, out, _ = run(
        capsys, "compare", "--tasks", "classification", "--alphas", "0.5", "--resolutions", "160", "--no-latency"
    )
    assert "classification" in out and "77" in out.splitlines()[2]


def test_compare_plot(tmp_path, capsys):
    path = tmp_path / "out.png"
    code, _, _ = run(
        capsys,
        "compare",
        "--tasks",
        "classification",
        "--alphas",
        "1.0",
        "0.25",
        "--resolutions",
        "128",
        "--runs",
        "2",
        "--warmup",
        "0",
        "--plot",
        str(path),
    )
    assert code == 0
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 10_000


@pytest.mark.parametrize(
    "argv,needle",
    [
        (["--alphas", "0"], "alpha"),
        (["--alphas", "2"], "alpha"),
        (["--resolutions", "16"], "resolution"),
        (["--tasks", "nope"], "unknown task 'nope'"),
    ],
)
def test_compare_bad_input_is_one_line(capsys, argv, needle):
    code, out, err = run(capsys, "compare", "--no-latency", *argv)
    assert code == 2
    assert needle in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_compare_measures_the_metric_with_weights_and_data(capsys, shared):
    """With --data and the weights at hand, the row carries the task's metric from a real evaluation."""
    weights, data = shared("weights"), shared("data", "imagenet")
    code, out, _ = run(
        capsys,
        "compare",
        "--tasks",
        "classification",
        "--alphas",
        "0.25",
        "0.5",
        "--resolutions",
        "128",
        "--no-latency",
        "--format",
        "json",
        "--data",
        f"classification={data}",
        "--source",
        str(weights),
        "--eval-limit",
        "40",
        "--quiet",
    )
    assert code == 0
    rows = {r["alpha"]: r for r in json.loads(out)}
    assert rows[0.25]["metric_name"] == "top1 (tflite_in1k_quant)" and 20 < rows[0.25]["metric"] <= 100
    assert rows[0.5]["metric"] is None  # no 0.5-128 weights at hand


def test_compare_bad_data_argument(capsys):
    code, _, err = run(capsys, "compare", "--no-latency", "--data", "classification")
    assert code == 2 and "TASK=DIR" in err


def test_detection_rows_say_how_their_nms_was_timed():
    """Random weights with the default post-process put 30–50 ms of NMS into every detection row; rows are
    timed with the pretrained SSD's NMS over every anchor instead, and say so (JSON field, table footnote)."""
    from mnet.tasks.runtime.compare import REFERENCE_SSD, compare, format_table

    (row,) = compare(["detection"], [0.25], [128], warmup=0, runs=1, threads=1, progress=False)
    assert row.timing.startswith(f"random weights and {REFERENCE_SSD}'s NMS (fast, 10 detections")
    assert "every anchor" in row.timing and row.latency_ms_p50 > 0
    table = format_table([row])
    assert f"detection: latency timed with {row.timing}" in table and "\nCPU: " in table


def test_detection_row_with_pretrained_weights_at_hand(shared):
    from mnet.tasks.runtime.compare import REFERENCE_SSD, compare

    shared("weights", "tf_od_api")  # the session's folder of originals holds it
    (row,) = compare(["detection"], [0.75], [300], warmup=0, runs=1, threads=1, progress=False)
    assert row.timing == f"pretrained weights ({REFERENCE_SSD}) and their NMS" and row.latency_ms_p50 > 0

"""The report of ``benchmarks.peer_runtimes``: markdown tables (batch 1 and 8, default path vs the fastest
entry, every cell with its per-pass medians, the n/a reasons) and a bar plot."""

from __future__ import annotations

import argparse
import importlib.metadata
import platform
import textwrap
from pathlib import Path

import numpy as np

from benchmarks.peer_runtimes import CHOICE_TO_PEER, PEERS, Cell, Prepared
from benchmarks.peers_report import title_lines
from mnet.tasks.timing import cpu_line

#: ours counts as level with the fastest entry within this
TOLERANCE = 0.03


def _version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def _ms(x: float) -> str:
    return f"{x:.2f}" if x < 100 else f"{x:.0f}"


def default_peer(p: Prepared) -> str | None:
    return CHOICE_TO_PEER.get(p.choice)


def fastest(cells: dict[tuple[str, str, int], Cell], model: str, batch: int, peers: list[str]) -> Cell | None:
    ok = [cells[(model, k, batch)] for k in peers if (model, k, batch) in cells and cells[(model, k, batch)].ok]
    return min(ok, key=lambda c: c.p50) if ok else None


def explain(p: Prepared, best: Cell, ours: Cell, info: dict[str, str]) -> str:
    """Why our default path is not the fastest entry (when it is more than 3 % behind)."""
    why = []
    if PEERS[best.peer].file == "int8" and "int8 not a candidate" in p.choice_reason:
        why.append(
            "int8 is not a candidate for this file: "
            + p.choice_reason.split("int8 not a candidate: ", 1)[1].split(";")[0]
        )
    if best.peer.endswith("_auto"):
        why.append(
            f"OpenVINO's default precision on this CPU is {info.get('openvino default precision')}: float layers in "
            "bfloat16, not the f32 arithmetic the files were checked and their int8 accuracy recorded with; the "
            "choice only takes arithmetic whose accuracy is known"
        )
    elif best.peer == "litert":
        why.append(
            "LiteRT runs Google's quantization-aware-trained uint8 file (per-tensor scales) with XNNPACK's int8 "
            "kernels; the suite exports ONNX, so the choice has no LiteRT candidate"
        )
    elif best.peer in CHOICE_TO_PEER.values() and not why:
        label = next(k for k, v in CHOICE_TO_PEER.items() if v == best.peer)
        mine, theirs = p.choice_ms.get(p.choice), p.choice_ms.get(label)
        timed = f" ({_ms(mine)} vs {_ms(theirs)} ms, p10)" if mine is not None and theirs is not None else ""
        why.append(
            f"the choice timed {p.choice} ahead of {label}{timed} before the passes, at load average "
            f"{p.choice_load:.1f}; the passes put {label} first: load from other jobs changes the order (it slows "
            "OpenVINO, whose threads sleep between runs, more than ONNX Runtime)"
        )
    return "; ".join(why) or f"{PEERS[best.peer].label} is fastest here"


def _na_table(
    prepared: list[Prepared], cells: dict[tuple[str, str, int], Cell], peers: list[str], batch: int, notes: list[str]
) -> list[str]:
    head = "| model | our default path | " + " | ".join(PEERS[k].label for k in peers) + " |"
    lines = [head, "|---|---|" + "---|" * len(peers)]
    for p in prepared:
        row = []
        for k in peers:
            c = cells.get((p.model.name, k, batch))
            if c is None:
                row.append("–")
            elif c.ok:
                best = fastest(cells, p.model.name, batch, peers)
                text = f"{_ms(c.p50)} / {_ms(c.p95)}"
                row.append(f"**{text}**" if best is c else text)
            else:
                reason = c.error or "no runs"
                if reason not in notes:
                    notes.append(reason)
                row.append(f"n/a [{notes.index(reason) + 1}]")
        d = default_peer(p)
        ours = cells.get((p.model.name, d, batch)) if d else None
        ours_text = f"{p.choice}: {_ms(ours.p50)} / {_ms(ours.p95)}" if ours and ours.ok else (p.choice or "–")
        lines.append(f"| {p.model.label} | {ours_text} | " + " | ".join(row) + " |")
    return lines


def _gap_table(
    prepared: list[Prepared], cells: dict[tuple[str, str, int], Cell], peers: list[str], batches: list[int], info: dict
) -> list[str]:
    lines = [
        "| model | batch | our default path (the choice) | p50 (ms) | fastest entry | p50 (ms) | ours vs fastest | "
        "within 3 %? | why not |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for p in prepared:
        d = default_peer(p)
        for b in batches:
            ours = cells.get((p.model.name, d, b)) if d else None
            best = fastest(cells, p.model.name, b, peers)
            if not (ours and ours.ok and best):
                lines.append(f"| {p.model.label} | {b} | {p.choice or '–'} | – | – | – | – | – | no timing |")
                continue
            gap = ours.p50 / best.p50 - 1
            ok = gap <= TOLERANCE
            why = "" if ok else explain(p, best, ours, info)
            lines.append(
                f"| {p.model.label} | {b} | {p.choice} | {_ms(ours.p50)} | {PEERS[best.peer].label} | "
                f"{_ms(best.p50)} | {gap:+.1%} | {'yes' if ok else '**no**'} | {why} |"
            )
    return lines


def _all_cells(prepared: list[Prepared], cells: list[Cell]) -> list[str]:
    lines = [
        "| model | runtime | batch | runs | p50 (ms) | p95 (ms) | images/s | per-pass medians (ms) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    labels = {p.model.name: p.model.label for p in prepared}
    for c in cells:
        if not c.ok:
            continue
        passes = ", ".join(_ms(x) for x in c.pass_medians)
        lines.append(
            f"| {labels[c.model]} | {PEERS[c.peer].label} | {c.batch} | {len(c.times)} | {_ms(c.p50)} | "
            f"{_ms(c.p95)} | {c.batch * 1e3 / c.p50:.0f} | {passes} |"
        )
    return lines


def markdown(
    prepared: list[Prepared],
    cells: list[Cell],
    info: dict[str, str],
    args: argparse.Namespace,
    *,
    wall_s: float,
    load: tuple[float, float],
    when: str,
) -> str:
    by_key = {(c.model, c.peer, c.batch): c for c in cells}
    peers = list(args.runtimes)
    lines = title_lines(
        "# Our default path vs the runtimes a user would pick instead (CPU)",
        args,
        "one small model with random weights, a few runs per cell",
    )
    web_info = {k.split(": ", 1)[1]: v for k, v in info.items() if k.startswith("web_")}
    lines += [
        f"- CPU: {cpu_line()}, {platform.machine()}; {args.threads} threads.",
        f"- {when}; wall time {wall_s / 60:.1f} min; load average "
        f"(1 min) {load[0]:.1f} at the start, {load[1]:.1f} at the end (2 cores: above ~2 other jobs were running); "
        f"`{args.command}`.",
        f"- torch {_version('torch')}, onnxruntime {_version('onnxruntime')}, openvino {_version('openvino')} "
        f"(default CPU precision here: {info.get('openvino default precision', '–')}), ai-edge-litert "
        f"{_version('ai-edge-litert')}, onnxruntime-web 1.30.0 in {web_info.get('chromium', 'Chromium')} via "
        f"playwright {_version('playwright')} (page cross-origin isolated: {web_info.get('crossOriginIsolated', '–')}).",
        f"- Each runtime in its own process; {args.passes} pass(es), the order of the runtimes reversed every other "
        f"pass. Per cell: warm-up, then timed runs for ~{args.budget:g} s in the first pass ({args.min_runs}–"
        f"{args.max_runs} runs) and as many runs in each later pass; p50 / p95 pool all passes. Latency of one call on a batch (batch 8: the whole batch), inputs "
        "preprocessed (real photos where the shared data is at hand); LiteRT takes the same photos as uint8 NHWC.",
        "- Files: our `mnet export` (fp32) and `mnet export --int8` (static QDQ, per-channel, calibrated on 200 "
        "photos of the task) of the registry's weights: each the task's whole inference network, decoding "
        "included (SSD: box decoding and NMS in the graph, one image at a time, as is the official SSD .tflite's "
        "post-process; so no batch 8). OpenVINO fp32/int8 = the same files with float "
        'layers in f32; "default precision" = OpenVINO\'s own choice on this CPU.',
        "- **Our default path** = what `mnet.tasks.runtime.choice.choose_runtime` picks on this machine (timed "
        "in this run, before the passes); its cells are that runtime's. Bold: the fastest entry of the row.",
        "",
        "## Batch 1: p50 / p95 (ms)",
        "",
    ]
    notes: list[str] = []
    lines += _na_table(prepared, by_key, peers, 1, notes) if 1 in args.batches else []
    for b in (b for b in args.batches if b != 1):
        lines += ["", f"## Batch {b}: p50 / p95 (ms, the whole batch)", ""]
        lines += _na_table(prepared, by_key, peers, b, notes)
    lines += ["", "n/a:"] + [f"{i + 1}. {n}" for i, n in enumerate(notes)] if notes else []
    lines += ["", "## Our default path vs the fastest entry", ""]
    lines += _gap_table(prepared, by_key, peers, list(args.batches), info)
    lines += ["", "## What the choice saw, and the int8 records", ""]
    for p in prepared:
        lines += [
            f"- **{p.model.label}** ({p.weights} weights, `{p.model.weights}`): {p.choice_reason or '–'}. "
            f"int8 file: {p.int8_record or '–'}."
        ]
    lines += ["", "## Every cell", ""] + _all_cells(prepared, cells)
    extra = {k: v for k, v in info.items() if not k.startswith("web_") and k != "openvino default precision"}
    if extra:
        lines += ["", "Worker notes: " + "; ".join(f"{k} = {v}" for k, v in sorted(extra.items()))]
    return "\n".join(lines) + "\n"


def plot(prepared: list[Prepared], cells: list[Cell], path: Path, args: argparse.Namespace) -> None:
    """Batch-1 p50 per runtime, one panel per model (log scale); our default path hatched."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    by_key = {(c.model, c.peer, c.batch): c for c in cells}
    colours = {
        "eager": "tab:red",
        "channels_last": "tab:orange",
        "ort": "tab:blue",
        "ov": "tab:purple",
        "litert": "tab:green",
        "web": "tab:gray",
    }
    fig, axes = plt.subplots(
        len(prepared), 1, figsize=(9, 0.45 * len(args.runtimes) * len(prepared) + 1), squeeze=False
    )
    for ax, p in zip(axes[:, 0], prepared):
        rows = [(k, by_key.get((p.model.name, k, 1))) for k in args.runtimes]
        rows = [(k, c) for k, c in rows if c is not None and c.ok]
        ours = default_peer(p)
        y = np.arange(len(rows))
        ax.barh(
            y,
            [c.p50 for _, c in rows],
            xerr=[[0] * len(rows), [c.p95 - c.p50 for _, c in rows]],
            color=[colours.get(k, colours.get(k.split("_")[0], "k")) for k, _ in rows],
            hatch=["//" if k == ours else "" for k, _ in rows],
            edgecolor="black",
            capsize=2,
        )
        ax.set_yticks(y, [PEERS[k].label + (" ← default" if k == ours else "") for k, _ in rows], fontsize=7)
        ax.invert_yaxis()
        ax.set_xscale("log")
        ax.set_title(f"{p.model.label}, batch 1 (p50, bar to p95)", fontsize=9)
        ax.grid(True, axis="x", which="both", alpha=0.3)
    axes[-1, 0].set_xlabel(f"latency (ms, log scale), {args.threads} threads", fontsize=8)
    fig.suptitle(textwrap.fill(cpu_line(), 110), fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)

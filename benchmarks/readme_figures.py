"""Re-write the README's fenced speed blocks from the committed results files (after re-running a benchmark).

    python -m benchmarks.readme_figures        # peer_runtimes.md and backbone_latency.md blocks

``tests/test_readme_figures.py`` checks that every table row and speed figure inside a
``<!-- figures: FILE -->`` … ``<!-- /figures -->`` fence of README.md comes from FILE; this writes the two
blocks that are pure copies. The compare block and the prose around the fences are edited by hand.
"""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
END = "<!-- /figures -->"


def _table_after(lines: list[str], heading: str) -> list[str]:
    out: list[str] = []
    for line in lines[lines.index(heading) + 1 :]:
        if line.startswith("|"):
            out.append(line)
        elif out:
            break
    return out


def peer_runtimes_block(results: str) -> str:
    lines = results.splitlines()
    b1 = _table_after(lines, "## Batch 1: p50 / p95 (ms)")
    gap = _table_after(lines, "## Our default path vs the fastest entry")
    na = []
    for line in lines[lines.index("n/a:") + 1 :]:
        if not line.strip():
            break
        na.append(re.sub(r"^(\d+)\. ", r"[\1] ", line))
    cpu = next(x for x in lines if x.startswith("- CPU: "))[len("- CPU: ") :].split(", x86_64")[0]
    when = next(x for x in lines if "load average (1 min)" in x)
    load = re.search(r"load average \(1 min\) ([\d.]+) at the start, ([\d.]+) at the end", when).groups()
    wall = re.search(r"wall time ([\d.]+) min", when).group(1)
    reason = next(x for x in lines if x.startswith("- **MobileNetV1 1.0-224**"))
    reason = reason.split("`): ", 1)[1].split(". int8 file:")[0]
    return f"""One run of `python -m benchmarks.peer_runtimes` ([full report](benchmarks/results/peer_runtimes.md): batch 8,
every cell with its per-pass medians, what the choice timed; [plot](benchmarks/results/peer_runtimes.png)) on
this machine's {cpu}, 2 threads, {when.split(";")[0][2:]}. Each runtime in its own process, three
passes in alternating order, {wall} min, load average {load[0]} at the start and {load[1]} at the end
({"a quiet machine; the benchmark's own processes make the load" if float(load[0]) < 1.0 else "**other jobs shared the 2 cores: a noisy run**; re-run it on a quiet machine before quoting an absolute number"};
the report's per-pass medians show the spread).
Batch 1, p50 / p95 in ms (bold: the fastest entry of the row):

{chr(10).join(b1)}

n/a: {"; ".join(na)}.

Our default path (what the per-machine choice picked, timed in the same run before the passes) against the
fastest entry, batch 1 and 8:

{chr(10).join(gap)}

What the choice said for 1.0-224: "{reason}".
"""


def backbone_latency_block(results: str) -> str:
    first, rest = results.strip().split("\n", 1)
    return f"One run on the shared machine (noisy): {first}\n{rest}\n"


BLOCKS = {
    "benchmarks/results/peer_runtimes.md": peer_runtimes_block,
    "benchmarks/results/backbone_latency.md": backbone_latency_block,
}


def rewrite(readme: str) -> str:
    for name, make in BLOCKS.items():
        tag = f"<!-- figures: {name} -->\n"
        start = readme.index(tag) + len(tag)
        end = readme.index(END, start)
        readme = readme[:start] + make((REPO / name).read_text()) + readme[end:]
    return readme


def main() -> None:
    path = REPO / "README.md"
    path.write_text(rewrite(path.read_text()))
    print(f"{path}: {', '.join(BLOCKS)} blocks re-written")


if __name__ == "__main__":
    main()

"""The README's speed figures come from committed results files of one run each, with their CPU line.

The README's benchmark sections are fenced by ``<!-- figures: FILE [FILE ...] -->`` … ``<!-- /figures -->``.
Inside a fence, every table row must be a row of one of the named files, verbatim, and every number with a
speed unit in the prose (ms, %, ×, GOP/s, GFLOP/s, images/s) must appear as a number in one of them; each
named file must say which CPU it was measured on (its model name with family and model numbers).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
FENCE = re.compile(r"<!-- figures: (?P<files>[^>]+?) -->(?P<body>.*?)<!-- /figures -->", re.S)
FIGURE = re.compile(r"(?<![\w.])(\d+(?:\.\d+)?)\s*(?:ms|%|×|GOP/s|GFLOP/s|images/s)")
NUMBER = re.compile(r"\d+(?:\.\d+)?")
CPU_LINE = re.compile(r"\(family \d+, model \d+\)")


def _name(f: Path) -> str:
    return f.relative_to(REPO).as_posix() if f.is_relative_to(REPO) else str(f)


def fences(text: str) -> list[tuple[list[Path], str]]:
    return [([REPO / f for f in m["files"].split()], m["body"]) for m in FENCE.finditer(text)]


def problems(files: list[Path], body: str) -> list[str]:
    """What in ``body`` is not backed by ``files`` (empty: all of it is)."""
    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        return [f"no such results file: {', '.join(missing)}"]
    texts = [f.read_text() for f in files]
    rows = {line.strip() for t in texts for line in t.splitlines() if line.startswith("|")}
    numbers = {n for t in texts for n in NUMBER.findall(t)}
    out = [f"{_name(f)} has no CPU line" for f, t in zip(files, texts) if not CPU_LINE.search(t)]
    in_code = False
    for line in body.splitlines():
        if line.startswith("```"):
            in_code = not in_code
            continue
        if line.startswith("|"):
            if not set(line.replace("|", "").strip()) <= set("-: ") and line.strip() not in rows:
                out.append(f"table row not in the results file: {line}")
        elif in_code:
            if line.strip() and line.strip() not in {r.strip() for t in texts for r in t.splitlines()}:
                out.append(f"line not in the results file: {line}")
        else:
            out += [
                f"figure {n} not in the results file: …{line.strip()[:100]}"
                for n in FIGURE.findall(line)
                if n not in numbers
            ]
    return out


def test_readme_speed_figures_come_from_results_files():
    found = fences((REPO / "README.md").read_text())
    cited = {_name(f) for files, _ in found for f in files}
    assert {"benchmarks/results/peer_runtimes.md", "benchmarks/results/compare.md"} <= cited, cited
    errors = [p for files, body in found for p in problems(files, body)]
    assert not errors, "\n".join(errors)


def test_the_check_catches_a_figure_or_row_that_is_not_in_the_file(tmp_path):
    results = tmp_path / "r.md"
    results.write_text("CPU: AMD EPYC (family 26, model 2)\n\n| model | p50 |\n|---|---|\n| a | 5.10 |\n")
    assert problems([results], "| model | p50 |\n|---|---|\n| a | 5.10 |\nit ran in 5.10 ms, 1.2× fp32") == [
        "figure 1.2 not in the results file: …it ran in 5.10 ms, 1.2× fp32"
    ]
    assert problems([results], "| a | 5.11 |") == ["table row not in the results file: | a | 5.11 |"]
    results.write_text("| a | 5.10 |\n")
    assert problems([results], "5.10 ms") == [f"{results} has no CPU line"]


@pytest.mark.parametrize("text", ["<!-- figures: nope.md -->\n1 ms\n<!-- /figures -->"])
def test_a_missing_results_file_is_reported(text):
    ((files, body),) = fences(text)
    assert problems(files, body) == [f"no such results file: {REPO / 'nope.md'}"]


def test_generated_blocks_are_up_to_date():
    """The blocks `python -m benchmarks.readme_figures` writes match the committed results files."""
    from benchmarks.readme_figures import rewrite

    readme = (REPO / "README.md").read_text()
    assert rewrite(readme) == readme, "README is stale: run `python -m benchmarks.readme_figures`"

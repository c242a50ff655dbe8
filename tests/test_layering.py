"""The package's shape: one top-level import name, layers importing downward only, no import circle.

Layers (``backbone → weights → tasks → tasks.engine / tasks.runtime → apps``): a module may import
its own layer and those below it. Every import counts — at the top of a module or inside a function —
and so do the dotted ``"mnet.x.y:fn"`` references the weights registry resolves at run time.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import tomllib

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("backbone", "weights", "tasks", "apps")
#: module prefix → layer (the most specific prefix wins)
LAYERS = {
    "mnet.backbone": 0,
    "mnet.weights": 1,
    "mnet.tasks": 2,
    "mnet.tasks.engine": 3,
    "mnet.tasks.runtime": 3,
    "mnet.apps": 4,
    "mnet": 0,  # the root package: its version only
}
DOTTED_REF = re.compile(r"[\"'](mnet(?:\.\w+)+):\w+[\"']")


def module_name(path: Path) -> str:
    rel = path.relative_to(REPO).with_suffix("")
    parts = [p for p in rel.parts if p != "__init__"]
    return ".".join(["mnet", *parts]) if parts else "mnet"


def modules() -> dict[str, Path]:
    found = {"mnet": REPO / "__init__.py"}
    for pkg in PACKAGES:
        for path in (REPO / pkg).rglob("*.py"):
            found[module_name(path)] = path
    return found


def imports_of(name: str, path: Path) -> set[str]:
    """Every ``mnet`` module ``path`` imports (absolute or relative, anywhere in the file)."""
    tree = ast.parse(path.read_text(), str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.startswith("mnet")}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            if mod.startswith("mnet"):
                out.add(mod)
                out |= {f"{mod}.{a.name}" for a in node.names}
    out |= set(DOTTED_REF.findall(path.read_text()))
    return out


def layer(name: str) -> int:
    best = max((p for p in LAYERS if name == p or name.startswith(p + ".")), key=len)
    return LAYERS[best]


def graph() -> dict[str, set[str]]:
    mods = modules()
    return {name: {m for m in imports_of(name, path) if m in mods and m != name} for name, path in mods.items()}


def test_layers_import_downward_only():
    upward = sorted(
        f"{src} (layer {layer(src)}) imports {dst} (layer {layer(dst)})"
        for src, dsts in graph().items()
        for dst in dsts
        if layer(dst) > layer(src)
    )
    assert not upward, "upward imports:\n" + "\n".join(upward)


def _package(name: str) -> str:
    """The sub-package a module belongs to (``mnet.tasks.detection.model`` → ``mnet.tasks.detection``)."""
    parts = name.split(".")
    return ".".join(parts[:3]) if len(parts) > 3 or (REPO / Path(*parts[1:])).is_dir() else ".".join(parts[:2])


def test_no_import_circle_between_packages():
    """Sub-packages (``mnet.tasks.detection``, ``mnet.weights``, ...) form a DAG."""
    edges: dict[str, set[str]] = {}
    for src, dsts in graph().items():
        for dst in dsts:
            a, b = _package(src), _package(dst)
            if a != b and not a.startswith(b + ".") and not b.startswith(a + "."):
                edges.setdefault(a, set()).add(b)
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                cycle = stack[stack.index(nxt) :] + [nxt]
                raise AssertionError("import circle: " + " → ".join(cycle))
            if nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(edges):
        if node not in state:
            visit(node)


def test_one_top_level_import_name():
    """``pip install`` adds the package ``mnet`` only, and every sub-package with code is in it."""
    cfg = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert cfg["package-dir"] == {"mnet": "."}
    listed = set(cfg["packages"])
    assert {p.split(".")[0] for p in listed} == {"mnet"}
    on_disk = {module_name(p.parent / "__init__.py") for pkg in PACKAGES for p in (REPO / pkg).rglob("__init__.py")}
    assert listed == on_disk | {"mnet"}, f"missing from pyproject: {on_disk - listed}; stale: {listed - on_disk}"

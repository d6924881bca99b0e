"""Data flows one way: no module imports from a layer above its own, and no module import cycle.

Layers, lowest first:

    base -> model -> spec and tasks -> circuit -> engine -> reference -> experiment -> run directory
         -> analyses and figures -> cli

Imports inside functions count (a lazy import is still an arrow); imports under
``if TYPE_CHECKING:`` do not (they never run). Torch-free.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "microcircuit"

#: (layer, modules): a module belongs to the entry that names it or its longest named parent package
LAYERS: list[tuple[str, list[str]]] = [
    ("base", ["microcircuit", "microcircuit.registry", "microcircuit.seeds", "microcircuit.threads",
              "microcircuit.shipped", "microcircuit.devices", "microcircuit.exitcodes", "microcircuit.checksums",
              "microcircuit.circuits", "microcircuit.reference.feedforward", "=microcircuit.reference"]),
    ("model", ["microcircuit.model"]),
    # validation consults the task registry and tasks read their parameters from the schema: one layer
    ("spec and tasks", ["microcircuit.spec", "microcircuit.tasks", "microcircuit.datadir"]),
    ("circuit", ["microcircuit.circuit"]),
    ("engine", ["microcircuit.state", "microcircuit.fused", "microcircuit.engine", "microcircuit.recording",
                "microcircuit.prospective"]),
    ("reference", ["microcircuit.reference", "microcircuit.prospective.feedforward"]),
    ("experiment", ["microcircuit.experiment"]),
    # what starts, resumes and writes runs (the backprop baseline writes its own CSV)
    ("run directory", ["microcircuit.rundir", "microcircuit.launch", "microcircuit.baseline"]),
    ("analyses and figures", ["microcircuit.analysis", "microcircuit.plotting", "microcircuit.drawing",
                              "microcircuit.sweep"]),
    ("cli", ["microcircuit.cli", "microcircuit.__main__"]),
]


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[0] == "circuits":  # installed as microcircuit.circuits
        parts.insert(0, "microcircuit")
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def layer_of(module: str) -> int:
    best, best_len = None, -1
    for index, (_, names) in enumerate(LAYERS):
        for name in names:
            exact = name.startswith("=")
            name = name.lstrip("=")
            if module == name or (not exact and module.startswith(name + ".")):
                if len(name) > best_len:
                    best, best_len = index, len(name)
    assert best is not None, f"module {module} is in no layer: add it to LAYERS in tests/test_layers.py"
    return best


def _type_checking_lines(tree: ast.AST) -> set[int]:
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            for child in node.body:
                lines.update(range(child.lineno, (child.end_lineno or child.lineno) + 1))
    return lines


def imports_of(path: Path, modules: set[str], me: str | None = None) -> set[str]:
    """The package modules that ``path`` (module ``me``) imports (``from a import b`` counts a.b when that
    is a module)."""
    tree = ast.parse(path.read_text(), str(path))
    skip = _type_checking_lines(tree)
    me = module_name(path) if me is None else me
    found: set[str] = set()
    for node in ast.walk(tree):
        if getattr(node, "lineno", None) in skip:
            continue
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative import
                package = me if path.name == "__init__.py" else me.rpartition(".")[0]
                for _ in range(node.level - 1):
                    package = package.rpartition(".")[0]
                base = f"{package}.{base}".rstrip(".")
            names = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
        else:
            continue
        found.update(n for n in names if n in modules and n != me)
    return found


def import_graph() -> dict[str, set[str]]:
    paths = [p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts]
    paths += [p for p in (ROOT / "circuits").glob("*.py")]
    modules = {module_name(p) for p in paths}
    return {module_name(p): imports_of(p, modules) for p in paths}


def test_every_module_has_a_layer():
    for module in import_graph():
        layer_of(module)


def test_no_module_imports_up_the_layers():
    upward = []
    for module, imported in import_graph().items():
        mine = layer_of(module)
        for other in imported:
            theirs = layer_of(other)
            if theirs > mine:
                upward.append(f"{module} ({LAYERS[mine][0]}) imports {other} ({LAYERS[theirs][0]})")
    assert upward == [], "imports that run up the layers:\n" + "\n".join(sorted(upward))


def test_no_import_cycle():
    graph = import_graph()
    state: dict[str, int] = {}
    cycles: list[list[str]] = []

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                cycles.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt, stack + [nxt])
        state[node] = 2

    for start in sorted(graph):
        if start not in state:
            visit(start, [start])
    assert cycles == [], "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)


def test_the_checker_sees_lazy_imports(tmp_path):
    """A function-level import counts: it is the same arrow, taken later."""
    source = tmp_path / "mod.py"
    source.write_text("def f():\n    from microcircuit.cli import main\n    return main\n")
    assert imports_of(source, {"microcircuit.cli"}, me="microcircuit.mod") == {"microcircuit.cli"}


# ---------------------------------------------------------------- one definition per rule
def _lines_with(pattern: str) -> list[str]:
    import re

    found = []
    for path in PACKAGE.rglob("*.py"):
        for n, line in enumerate(path.read_text().splitlines(), 1):
            code = line.split("#")[0]
            if re.search(pattern, code) and not code.strip().startswith(('"', "'", "``")):
                found.append(f"{path.relative_to(ROOT)}:{n}")
    return found


def test_the_eta_by_t_pres_rule_is_written_once():
    """``eta_scale: inverse_t_pres`` means eta / t_pres: Phase.eta_factor says so, nothing else."""
    assert _lines_with(r"""== *["']inverse_t_pres["']""") == ["microcircuit/spec/schema.py:" +
                                                                _schema_line("inverse_t_pres\" else")]


def _schema_line(text: str) -> str:
    for n, line in enumerate((PACKAGE / "spec" / "schema.py").read_text().splitlines(), 1):
        if text in line:
            return str(n)
    return "?"


def test_metric_columns_are_written_once_in_the_package():
    """The columns of a metric row: experiment.METRIC_COLUMNS (rundir keeps its own name for them until it
    imports that one)."""
    allowed = {"microcircuit/experiment.py", "microcircuit/rundir.py"}
    columns = r"""["']phase["'], *["']epoch["'], *["']seed["'], *["']metric["']"""
    places = {x.split(":")[0] for x in _lines_with(columns)}
    assert places <= allowed | {"microcircuit/sweep/worker.py"}, places

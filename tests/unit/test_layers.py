"""The import graph runs one way: entry points → stages → adapters → contracts/config/errors.

Every ``from recpipe… import`` in the package is read from the source (lazy imports inside
functions included), so a new module cannot quietly import upwards or close a cycle.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import recpipe

ROOT = Path(recpipe.__file__).parent
LAYERS: dict[str, float] = {
    "errors": 0, "__init__": 0, "progress": 0, "contracts": 0.5, "credentials": 0.75,
    "config": 1,
    "adapters": 2,
    "source": 3, "etl": 3, "ranking": 3, "vectors": 3, "inference": 3, "training": 3, "streaming": 3,
    "deploy": 3, "report": 3,
    "cli": 4, "api": 4, "jobs": 4, "__main__": 5,
}


def _unit(module: str) -> str:
    """The top-level package (or module) under ``recpipe`` that ``module`` belongs to."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _edges() -> dict[tuple[str, str], set[str]]:
    """(importer unit, imported unit) -> the importing files."""
    edges: dict[tuple[str, str], set[str]] = defaultdict(set)
    for path in ROOT.rglob("*.py"):
        rel = path.relative_to(ROOT.parent).with_suffix("")
        module = ".".join(rel.parts).removesuffix(".__init__")
        if module == "recpipe.__init__" or module == "recpipe":
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            targets: list[str] = []
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets = [node.module] if node.module != "recpipe" else [f"recpipe.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            for target in targets:
                if target == "recpipe" or target.startswith("recpipe."):
                    a, b = _unit(module), _unit(target if target != "recpipe" else "recpipe.__init__")
                    if b == "__version__":
                        b = "__init__"
                    if a != b:
                        edges[(a, b)].add(str(rel))
    return edges


def test_every_unit_has_a_layer() -> None:
    units = {p.stem if p.is_file() else p.name for p in ROOT.iterdir()
             if (p.suffix == ".py" or (p.is_dir() and (p / "__init__.py").exists()))}
    assert units - set(LAYERS) == set(), "give the new package a layer in this test"


def test_imports_only_go_down() -> None:
    upward = {f"{a} -> {b} ({', '.join(sorted(files))})" for (a, b), files in _edges().items()
              if LAYERS[a] < LAYERS[b]}
    assert not upward


def test_contracts_import_nothing_but_the_errors() -> None:
    assert not {b for (a, b) in _edges() if a == "errors" or (a == "contracts" and b != "errors")}


def test_the_graph_has_no_cycle() -> None:
    graph: dict[str, set[str]] = defaultdict(set)
    for a, b in _edges():
        graph[a].add(b)
    state: dict[str, int] = {}  # 1 visiting, 2 done

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                raise AssertionError("import cycle: " + " -> ".join([*path[path.index(nxt):], nxt]))
            if nxt not in state:
                visit(nxt, [*path, nxt])
        state[node] = 2

    for start in sorted(graph):
        if start not in state:
            visit(start, [start])


def test_serving_and_streaming_never_import_training() -> None:
    """The service, the Lambdas and the stream run without torch: nothing there reaches training."""
    assert not {(a, b) for (a, b) in _edges() if a in ("inference", "streaming", "api", "vectors") and b == "training"}


def _strings(path: Path) -> list[str]:
    """Every string literal of a module, f-strings' literal parts joined."""
    out = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            out.append(node.value)
        elif isinstance(node, ast.JoinedStr):
            out.append(" ".join(v.value for v in node.values if isinstance(v, ast.Constant)))
    return out


def test_serving_sql_lives_in_vectors_and_the_adapters() -> None:
    """The service, the page, the command line, the stream and the model code run no SQL of
    their own: they call ``recpipe.vectors`` (serving reads) or an adapter."""
    import re

    sql = re.compile(r"\b(SELECT\b.*\bFROM|INSERT INTO|DELETE FROM|UPDATE \w+ SET|to_regclass)\b", re.S)
    found = {str(p.relative_to(ROOT)) for unit in ("api", "cli", "streaming", "inference", "training")
             for p in (ROOT / unit).rglob("*.py") if any(sql.search(s) for s in _strings(p))}
    assert not found, found


def test_the_api_opens_backends_only_through_the_composition_root() -> None:
    """``recpipe.api`` imports ``recpipe.adapters`` (``Backends``) and the Protocols in
    ``recpipe.adapters.base``, never an adapter's own module."""
    direct = set()
    for path in (ROOT / "api").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if (isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("recpipe.adapters.")
                    and node.module != "recpipe.adapters.base"):
                direct.add(f"{path.relative_to(ROOT)}: {node.module}")
    assert not direct, direct


def test_no_function_in_the_api_is_longer_than_40_lines() -> None:
    """The service is routers of short endpoints; a factory of closures does not grow back."""
    long = []
    for path in (ROOT / "api").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.end_lineno is not None \
                    and node.end_lineno - node.lineno + 1 > 40:
                long.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name}")
    assert not long, long

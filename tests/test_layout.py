"""The tree reads as the data flow: dependencies point one way, no import cycles (parsed with ast).

Layers, lowest first: schemas/ (columns, config primitives) <- transforms/ (one module per step)
<- pipeline/ (command line, settings, graph assembly) and analyst/ (views, query, shell, report);
bench/ and deploy/ sit on top and nothing at runtime imports them except the CLI's `bench`/`eval`
commands, lazily. Inside transforms/ a step imports only shared helpers and the steps before it:
read -> normalize -> dedupe -> language -> topics -> write -> commit (docs/architecture.md).
"""

from __future__ import annotations

import ast
import pathlib

PROJECT = pathlib.Path(__file__).resolve().parent.parent
PACKAGES = ("schemas", "transforms", "pipeline", "analyst", "bench", "deploy")

# Which top-level packages each package may import.
ALLOWED = {
    "schemas": {"schemas"},
    "transforms": {"schemas", "transforms"},
    "analyst": {"schemas", "transforms", "analyst"},
    "pipeline": {"schemas", "transforms", "analyst", "pipeline"},
    "bench": set(PACKAGES),
    "deploy": set(PACKAGES),
}
# The CLI commands that run the tools: the only runtime modules that may import bench/ (lazily).
TOOL_COMMANDS = {"pipeline.commands.bench", "pipeline.commands.eval"}

# Rank of each module of transforms/ in the data flow; a module may import only lower ranks.
# Shared helpers (rank 0) import nothing above them. Modules not listed are checked for cycles only.
RANKS = {
    "transforms.common": 0, "transforms.text": 0, "transforms.minhash": 0, "transforms.dates": 0,
    "transforms.sources": 0, "transforms.storage": 0, "transforms.lease": 0, "transforms.urls": 0,
    "transforms.fetch": 1,
    "transforms.read": 2, "transforms.feeds": 2, "transforms.feed_state": 2.5, "transforms.page": 2.5,
    "transforms.normalize": 3,
    "transforms.dedupe": 4,
    "transforms.language": 5,
    "transforms.topics": 6,
    "transforms.write": 7,
    "transforms.layout": 7.2,
    # The cross-run index belongs to dedupe but stores its segments with write's Parquet writer.
    "transforms.dedup_index": 7.5,
    "transforms.commit": 8,
    "transforms.rewrite": 9,
    "transforms.streaming": 10,
    "transforms.feed_poll": 11,
}
FLOW = ["read", "normalize", "dedupe", "language", "topics", "write", "commit"]


def module_name(path: pathlib.Path) -> str:
    parts = list(path.relative_to(PROJECT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def project_modules() -> dict[str, pathlib.Path]:
    found = {}
    for package in PACKAGES:
        for path in sorted((PROJECT / package).rglob("*.py")):
            found[module_name(path)] = path
    return found


def imports_of(path: pathlib.Path, modules: dict[str, pathlib.Path]) -> set[str]:
    """Project modules imported anywhere in the file (top level and inside functions)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            # `from transforms import dedupe` imports the submodule transforms.dedupe
            names = [f"{node.module}.{alias.name}" if f"{node.module}.{alias.name}" in modules else node.module
                     for alias in node.names]
        else:
            continue
        for name in names:
            while name and name not in modules:
                name = name.rpartition(".")[0]
            if name:
                found.add(name)
    return found


def graph() -> dict[str, set[str]]:
    modules = project_modules()
    return {name: imports_of(path, modules) - {name} for name, path in modules.items()}


def test_packages_import_only_the_layers_below_them():
    wrong = []
    for module, deps in graph().items():
        package = module.split(".")[0]
        for dep in deps:
            top = dep.split(".")[0]
            if top == "bench" and module in TOOL_COMMANDS:
                continue
            if top not in ALLOWED[package]:
                wrong.append(f"{module} imports {dep}")
    assert not wrong, "imports against the layering:\n" + "\n".join(sorted(wrong))


def test_transforms_never_import_pipeline():
    upward = [(m, d) for m, deps in graph().items() if m.startswith("transforms")
              for d in deps if not d.startswith(("transforms", "schemas"))]
    assert upward == []


def test_steps_import_only_helpers_and_earlier_steps():
    ranks = [RANKS[f"transforms.{step}"] for step in FLOW]
    assert ranks == sorted(ranks) and len(set(ranks)) == len(ranks), "RANKS must follow the data flow"
    wrong = []
    for module, deps in graph().items():
        if module not in RANKS:
            continue
        for dep in deps:
            if dep in RANKS and RANKS[dep] >= RANKS[module] and RANKS[module] > 0:
                wrong.append(f"{module} (rank {RANKS[module]}) imports {dep} (rank {RANKS[dep]})")
            if RANKS[module] == 0 and dep.startswith("transforms.") and RANKS.get(dep, 1) > 0:
                wrong.append(f"helper {module} imports the step {dep}")
    assert not wrong, "\n".join(wrong)


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for dep in sorted(edges.get(node, ())):
            if state.get(dep) == 1:
                return stack[stack.index(dep):] + [dep]
            if dep not in state:
                cycle = visit(dep)
                if cycle:
                    return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(edges):
        if node not in state:
            cycle = visit(node)
            if cycle:
                return cycle
    return None


def test_no_import_cycles():
    edges = graph()
    # a package's __init__ re-exporting its own submodules is not a cycle between modules
    for name in list(edges):
        edges[name] = {d for d in edges[name] if not (name.startswith(d + ".") and d in PACKAGES)}
    assert find_cycle(edges) is None, " -> ".join(find_cycle(edges))


def test_the_cycle_finder_finds_cycles():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None

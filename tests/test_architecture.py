"""The package's shape, read from the source: imports go one way (../shared/DESIGN.md), no cycles
(function-level and TYPE_CHECKING imports included: hiding a cycle does not remove it), no
private names imported across modules, no module over 400 lines.

An import is any `import`/`from ... import` at any depth, `importlib.import_module("advbench...")`
(an f-string counts for every module its constant prefix names), and a module-level dict whose
string values name advbench modules (a lazy `_EXPORTS` table). The layer rules hold for
everything a module reaches, not only for what it names: importing a module runs its parent
packages' `__init__` and their imports at load time, so `report/a -> models/b` reaches whatever
`models/__init__` loads. A module is held to what it loads when imported and what its own
functions import; the lazy imports inside the modules it reaches count for those modules only
(that is what importing lazily is for).
"""

from __future__ import annotations

import ast
from collections import deque
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "advbench"
# Bottom up; a module may import only from its own layer or below. `api` is the package itself
# (`import advbench`: `advbench.evaluate`/`certify` load the engine on first use); `__main__` runs the CLI.
LAYERS = {
    "core": 1, "data": 2, "models": 3, "attacks": 4, "train": 5, "certification": 5, "analysis": 5, "store": 6,
    "engine": 7, "api": 8, "report": 8, "cli": 9,
}
TOP_LEVEL = {"advbench": "api", "advbench.__main__": "cli"}  # modules directly under advbench/
NO_TORCH = ("store", "report")
NOT_FROM_MODELS = ("attacks", "train", "store", "report")


def module_name(path: Path) -> str:
    parts = ["advbench", *path.relative_to(ROOT).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in ROOT.rglob("*.py")}


@dataclass(frozen=True)
class Import:
    target: str  # a module: an advbench module's full name, or an outside one's dotted name
    names: tuple[str, ...]  # names taken from it (`from target import names`)
    when: str  # "load": runs when the module loads; "call": inside a function, or by name; "typing": TYPE_CHECKING only
    line: int


def parse_imports(source: str, module: str, is_package: bool, known: set[str] | frozenset[str] = frozenset()) -> list[Import]:
    """Every import of one module's source, with when it runs; `known`: the advbench modules (so
    `from advbench.attacks import gradient` is read as importing the module advbench.attacks.gradient)."""
    package = module if is_package else module.rpartition(".")[0]
    found: list[Import] = []

    def absolute(node: ast.ImportFrom) -> str:
        base = node.module or ""
        if not node.level:
            return base
        parts = package.split(".")
        return ".".join(parts[: len(parts) - node.level + 1] + ([base] if base else []))

    def by_name(call: ast.Call) -> list[str]:
        """Modules an `importlib.import_module(...)` / `__import__(...)` call may load."""
        func = call.func
        name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
        if name not in ("import_module", "__import__") or not call.args:
            return []
        arg = call.args[0]
        if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
            return [arg.value]
        prefix = ""
        if isinstance(arg, ast.JoinedStr) and arg.values and isinstance(arg.values[0], ast.Constant):
            prefix = str(arg.values[0].value)
        elif isinstance(arg, ast.BinOp) and isinstance(arg.left, ast.Constant) and isinstance(arg.left.value, str):
            prefix = arg.left.value
        if not prefix.startswith("advbench"):
            return [prefix.rstrip(".")] if prefix else []
        return sorted(m for m in known if m.startswith(prefix) and m != module) or [prefix.rstrip(".")]

    def is_type_checking(test: ast.expr) -> bool:
        return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")

    def visit(node: ast.AST, when: str, top: bool) -> None:
        if isinstance(node, ast.Import):
            found.extend(Import(alias.name, (), when, node.lineno) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = absolute(node)
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                found.append(Import(sub, (), when, node.lineno) if sub in known else Import(base, (alias.name,), when, node.lineno))
        elif isinstance(node, ast.Call):
            found.extend(Import(target, (), when, node.lineno) for target in by_name(node))
        elif top and isinstance(node, (ast.Assign, ast.AnnAssign)) and isinstance(node.value, ast.Dict):
            # A module-level table of lazily loaded modules (`_EXPORTS = {"name": "advbench.x.y"}`).
            for value in node.value.values:
                if isinstance(value, ast.Constant) and value.value in known and value.value != module:
                    found.append(Import(value.value, (), "call" if when == "load" else when, value.lineno))
        if isinstance(node, ast.If) and is_type_checking(node.test):
            for child in node.body:
                visit(child, "typing", False)
            for child in node.orelse:
                visit(child, when, top)
            return
        inner = when == "load" and isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
        for child in ast.iter_child_nodes(node):
            visit(child, "call" if inner else when, top and isinstance(node, (ast.Module, ast.If, ast.Try)))

    visit(ast.parse(source), "load", True)
    return found


def imports(module: str) -> list[Import]:
    path = MODULES[module]
    return parse_imports(path.read_text(), module, path.name == "__init__.py", frozenset(MODULES))


IMPORTS = {m: imports(m) for m in MODULES}


def graph() -> dict[str, set[str]]:
    """Module -> the advbench modules it imports, every kind (for the cycle test)."""
    return {name: {i.target for i in found if i.target in MODULES and i.target != name} for name, found in IMPORTS.items()}


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(edges[node]):
            # A package's __init__ importing its own submodules is how registration works; a
            # submodule importing the package it belongs to closes a real loop and is kept.
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state:
                cycle = visit(nxt)
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


def parents(module: str) -> list[str]:
    """The packages whose `__init__` runs before `module` loads, innermost first."""
    parts = module.split(".")
    return [".".join(parts[:i]) for i in range(len(parts) - 1, 0, -1)]


@dataclass(frozen=True)
class Step:
    node: str
    via: str  # "import", or "package" when reached only as a parent package that loads first


def reach(start: str, own: list[Import], load_time: dict[str, list[Import]]) -> dict[str, list[Step]]:
    """Everything `start` loads (advbench modules and outside modules), each with the path that
    reaches it: `start`'s own imports of every kind but typing, then what each module reached
    imports at load time, with the parent packages of every advbench module on the way."""
    paths: dict[str, list[Step]] = {start: []}
    queue: deque[str] = deque()

    def add(node: str, path: list[Step]) -> None:
        if node not in paths:
            paths[node] = path
            if node in load_time:
                queue.append(node)

    def expand(node: str, found: list[Import]) -> None:
        here = paths[node]
        for package in parents(node):
            add(package, here + [Step(package, "package")])
        for i in found:
            if i.when == "typing":
                continue
            # An outside module counts once, by its top-level package (torch.nn.functional is torch).
            target = i.target if i.target in load_time or i.target.startswith("advbench") else i.target.split(".")[0]
            add(target, here + [Step(target, "import")])
            for package in parents(target) if target in load_time else ():
                add(package, here + [Step(target, "import"), Step(package, "package")])

    expand(start, own)
    while queue:
        node = queue.popleft()
        expand(node, [i for i in load_time[node] if i.when == "load"])
    return paths


def layer(module: str) -> str | None:
    if module in TOP_LEVEL:
        return TOP_LEVEL[module]
    parts = module.split(".")
    return parts[1] if parts[0] == "advbench" and len(parts) > 1 and parts[1] in LAYERS else None


def shown(start: str, path: list[Step]) -> str:
    return " -> ".join([start, *[s.node + (" (package)" if s.via == "package" else "") for s in path]])


def violations(module: str, paths: dict[str, list[Step]]) -> list[str]:
    """What `module` reaches that its layer forbids, each with the import path that reaches it."""
    mine = layer(module)
    found = []
    for node, path in sorted(paths.items()):
        if not path:
            continue
        theirs = layer(node)
        # A parent package's own layer is not a choice of the importer (advbench/__init__ loads
        # before every module); what that package imports at load time is, and is checked.
        if mine and theirs and path[-1].via == "import" and LAYERS[theirs] > LAYERS[mine]:
            found.append(f"{module} ({mine}) reaches {node} ({theirs}), a higher layer: {shown(module, path)}")
        if mine in NO_TORCH and node.split(".")[0] in ("torch", "torchvision"):
            found.append(f"{module} ({mine}) loads torch; {mine} must load without it: {shown(module, path)}")
        if mine == "models" and theirs in NOT_FROM_MODELS:
            found.append(f"models must not reach {node}: {shown(module, path)}")
    return found


LOAD_TIME = {m: [i for i in found if i.when == "load"] for m, found in IMPORTS.items()}


def test_the_import_graph_has_no_cycle() -> None:
    cycle = find_cycle(graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_the_cycle_finder_finds_cycles() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_every_module_has_a_layer() -> None:
    assert not [m for m in MODULES if layer(m) is None], "give new packages and top-level modules a layer in LAYERS / TOP_LEVEL"


def test_imports_by_name_and_lazy_tables_are_imports() -> None:
    source = '''
import importlib
from typing import TYPE_CHECKING
if TYPE_CHECKING:
    import torch
_EXPORTS = {"Store": "advbench.store.sqlite", "note": "not a module"}
def plot(module):
    from advbench.report import leaderboard
    importlib.import_module(f"advbench.analysis.{module}")
    return importlib.import_module("advbench.core.errors")
'''
    known = {"advbench.store.sqlite", "advbench.analysis.psr", "advbench.analysis.snr", "advbench.core.errors", "advbench.report.leaderboard", "advbench.x"}
    found = {(i.target, i.when) for i in parse_imports(source, "advbench.x", False, known)}
    assert found == {
        ("importlib", "load"), ("typing", "load"), ("torch", "typing"), ("advbench.store.sqlite", "call"),
        ("advbench.report.leaderboard", "call"), ("advbench.analysis.psr", "call"), ("advbench.analysis.snr", "call"),
        ("advbench.core.errors", "call"),
    }


def test_the_rules_follow_imports_through_other_modules_and_packages() -> None:
    # report/a imports models/b lazily; loading models/b runs models/__init__, which imports torch.
    load_time = {
        "advbench": [Import("advbench.core.version", (), "load", 1)],
        "advbench.core": [], "advbench.core.version": [],
        "advbench.report": [], "advbench.report.a": [],
        "advbench.models": [Import("torch", (), "load", 1)], "advbench.models.b": [],
    }
    own = [Import("advbench.models.b", ("facts",), "call", 3)]
    found = violations("advbench.report.a", reach("advbench.report.a", own, load_time))
    assert found == ["advbench.report.a (report) loads torch; report must load without it: "
                     "advbench.report.a -> advbench.models.b -> advbench.models (package) -> torch"]
    # The lazy imports of a module reached count for that module only.
    load_time["advbench.models"] = [Import("torch", (), "call", 1)]
    assert violations("advbench.report.a", reach("advbench.report.a", own, load_time)) == []


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_go_down_the_layers_and_take_no_private_names(module: str) -> None:
    mine = layer(module)
    for i in IMPORTS[module]:
        if mine and i.target.startswith("advbench") and layer(i.target):
            assert LAYERS[layer(i.target)] <= LAYERS[mine], f"{module} ({mine}) imports {i.target}, a higher layer (line {i.line})"
        if i.target.startswith("advbench") and i.target != module:
            private = [n for n in i.names if n.startswith("_") and not n.startswith("__")]
            assert not private, f"{module} imports private names {private} from {i.target}"
        if mine in NO_TORCH:
            assert not i.target.startswith("torch"), f"{module} imports torch; {mine} must load without it"
        if mine == "models":
            assert layer(i.target) not in NOT_FROM_MODELS, f"models must not import {i.target}"


@pytest.mark.parametrize("module", sorted(MODULES))
def test_what_a_module_reaches_obeys_its_layer(module: str) -> None:
    found = violations(module, reach(module, IMPORTS[module], LOAD_TIME))
    assert not found, "\n".join(found)


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_module_is_over_400_lines(module: str) -> None:
    lines = len(MODULES[module].read_text().splitlines())
    assert lines <= 400, f"{module} has {lines} lines"

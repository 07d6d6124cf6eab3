"""The import rules of DESIGN.md, checked on the source: every import of every .py under node/ and protocol/,
at any depth (inside functions too), read from its AST.

- a private name of hivemind (a module path or an imported name with a component starting with ``_``) is
  imported only in the declared hivemind layer, node/swarm/hivemind_ext;
- hivemind is imported only in node/swarm; web3 only in node/ledger;
- protocol imports neither node nor torch, web3 or hivemind;
- no import cycle between packages (each node.X subpackage and each top-level node module is one unit,
  protocol another).

A failure names the file, the line and the rule.

    .venv/bin/python -m pytest tests/test_layering.py -q
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SOURCES = ("node", "protocol")
HIVEMIND_EXT = "node/swarm/hivemind_ext/"


@dataclass(frozen=True)
class Import:
    path: str  # relative to the repository root, with forward slashes
    line: int
    module: str  # the absolute module imported from (``a.b`` for ``from a.b import c``)
    names: tuple[str, ...]  # the names imported from it (empty for ``import a.b``)


def _module_of(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _resolve(path: Path, node: ast.ImportFrom) -> str:
    """The absolute module of a (possibly relative) ``from ... import``."""
    if not node.level:
        return node.module or ""
    package = _module_of(path).split(".")
    if path.name != "__init__.py":
        package.pop()
    base = package[: len(package) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def imports_of(path: Path) -> Iterator[Import]:
    rel = path.relative_to(ROOT).as_posix()
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=rel)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield Import(rel, node.lineno, alias.name, ())
        elif isinstance(node, ast.ImportFrom):
            yield Import(rel, node.lineno, _resolve(path, node), tuple(a.name for a in node.names))


def all_imports() -> list[Import]:
    return [imp for top in SOURCES for path in sorted((ROOT / top).rglob("*.py")) for imp in imports_of(path)]


def _top(module: str) -> str:
    return module.split(".")[0]


def unit_of(module: str) -> str | None:
    """The package a module belongs to for the cycle rule: ``node.X`` (a subpackage or a top-level module of
    node), ``protocol``, or None for a third-party module."""
    parts = module.split(".")
    if parts[0] == "protocol":
        return "protocol"
    if parts[0] == "node" and len(parts) >= 2:
        return f"node.{parts[1]}"
    return None


def _names_imported(imp: Import) -> list[str]:
    """Every dotted name the import brings in: the module, and each ``module.name``."""
    return [imp.module] + [f"{imp.module}.{name}" for name in imp.names if name != "*"]


def violations(imports: list[Import]) -> list[str]:
    out: list[str] = []
    for imp in imports:
        where = f"{imp.path}:{imp.line}"
        top = _top(imp.module)
        in_protocol = imp.path.startswith("protocol/")
        if top == "hivemind":
            private = [n for n in _names_imported(imp) if any(part.startswith("_") for part in n.split("."))]
            if private and not imp.path.startswith(HIVEMIND_EXT):
                out.append(f"{where}: imports hivemind's private {private[0]} outside {HIVEMIND_EXT}")
            if not imp.path.startswith("node/swarm/"):
                out.append(f"{where}: imports {imp.module} (hivemind) outside node/swarm")
        if top == "web3" and not imp.path.startswith("node/ledger/"):
            out.append(f"{where}: imports {imp.module} (web3) outside node/ledger")
        if in_protocol and top in ("node", "torch", "web3", "hivemind"):
            out.append(f"{where}: protocol imports {imp.module}")
    return out + cycles(imports)


def cycles(imports: list[Import]) -> list[str]:
    """One message per set of packages that import each other (a strongly connected component of the package
    graph), naming one cycle through it and the import that starts it."""
    edges: dict[str, dict[str, Import]] = {}
    for imp in imports:
        source = unit_of(_module_of(ROOT / imp.path))
        for name in _names_imported(imp):
            target = unit_of(name)
            if source is not None and target is not None and target != source:
                edges.setdefault(source, {}).setdefault(target, imp)
    out = []
    for component in _components(edges):
        start = min(component)
        chain = _cycle_through(edges, start, component)
        first = edges[start][chain[1]]
        out.append(f"{first.path}:{first.line}: import cycle between packages: {' -> '.join(chain)}")
    return sorted(out)


def _components(edges: dict[str, dict[str, Import]]) -> list[set[str]]:
    """The strongly connected components of more than one unit (Tarjan's algorithm, iteratively)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[set[str]] = []
    units = sorted(set(edges) | {t for targets in edges.values() for t in targets})
    for root in units:
        if root in index:
            continue
        work = [(root, iter(sorted(edges.get(root, {}))))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            unit, successors = work[-1]
            nxt = next(successors, None)
            if nxt is not None:
                if nxt not in index:
                    index[nxt] = low[nxt] = len(index)
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(sorted(edges.get(nxt, {})))))
                elif nxt in on_stack:
                    low[unit] = min(low[unit], index[nxt])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[unit])
            if low[unit] == index[unit]:
                component = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.add(member)
                    if member == unit:
                        break
                if len(component) > 1:
                    found.append(component)
    return found


def _cycle_through(edges: dict[str, dict[str, Import]], start: str, component: set[str]) -> list[str]:
    """A shortest cycle from ``start`` back to itself inside ``component`` (``start`` first and last)."""
    queue, came = [start], {start: ""}
    while queue:
        unit = queue.pop(0)
        for nxt in sorted(edges.get(unit, {})):
            if nxt == start:
                chain = [unit]
                while came[chain[-1]]:
                    chain.append(came[chain[-1]])
                return chain[::-1] + [start]
            if nxt in component and nxt not in came:
                came[nxt] = unit
                queue.append(nxt)
    raise AssertionError(f"{start} is in a cycle but none was found")


def test_import_rules_hold_for_every_module_of_node_and_protocol():
    found = violations(all_imports())
    assert not found, "import rules broken (DESIGN.md, Layout):\n" + "\n".join(found)


# -- the checker itself, on made-up imports -----------------------------------------------------------------------


def _imp(path: str, module: str, *names: str) -> Import:
    return Import(path, 1, module, names)


def test_a_private_hivemind_name_outside_the_declared_layer_is_named_with_its_file_and_line():
    found = violations([_imp("node/swarm/dht.py", "hivemind.compression.serialization", "_BASE_COMPRESSION_TYPES"),
                        _imp("node/swarm/hivemind_ext/x.py", "hivemind.utils._private", "thing")])
    assert found == ["node/swarm/dht.py:1: imports hivemind's private "
                     "hivemind.compression.serialization._BASE_COMPRESSION_TYPES outside node/swarm/hivemind_ext/"]


def test_hivemind_outside_swarm_web3_outside_ledger_and_protocol_importing_node_are_refused():
    found = violations([_imp("node/data/exchange.py", "hivemind.p2p", "P2P"),
                        _imp("node/validator.py", "web3", "Web3"),
                        _imp("node/ledger/chain.py", "web3", "Web3"),
                        _imp("protocol/merkle.py", "node.swarm.dht", "x"),
                        _imp("protocol/merkle.py", "torch")])
    assert found == ["node/data/exchange.py:1: imports hivemind.p2p (hivemind) outside node/swarm",
                     "node/validator.py:1: imports web3 (web3) outside node/ledger",
                     "protocol/merkle.py:1: protocol imports node.swarm.dht",
                     "protocol/merkle.py:1: protocol imports torch"]


def test_two_packages_importing_each_other_through_a_third_are_a_cycle():
    found = cycles([_imp("node/train/loop.py", "node.swarm.collab", "make_optimizer"),
                    _imp("node/swarm/dht.py", "node.data", "store"),
                    _imp("node/data/store.py", "node.train.model", "GPT"),
                    _imp("node/cli/app.py", "node.train", "loop")])
    assert len(found) == 1 and "import cycle between packages" in found[0], found
    assert all(unit in found[0] for unit in ("node.train", "node.swarm", "node.data")), found


def test_one_way_imports_are_no_cycle():
    assert cycles([_imp("node/cli/app.py", "node.train", "loop"), _imp("node/train/loop.py", "node.swarm.dht", "x"),
                   _imp("node/swarm/dht.py", "protocol.types", "PeerId")]) == []

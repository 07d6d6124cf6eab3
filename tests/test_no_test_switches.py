"""Test-only behaviour (attacks, delays, round dumps, wrong roots) is injected through node.hooks, never built in.

Production modules are every module under node/ and protocol/ except the testnet's own (node/testnet/,
which supplies the hooks, and the CLI groups that drive it). None of them may name a fault in code (an
identifier, attribute, argument or keyword), read an environment switch for one, hide a CLI option, or
import the testnet.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
import torch

from node.hooks import NO_HOOKS, Hooks

ROOT = Path(__file__).resolve().parent.parent
# The testnet supplies hooks; node/hooks.py declares them (its method names describe what they change).
TESTNET_SIDE = {"node/testnet", "node/cli/testnet_cmd.py", "node/cli/testnet_peer.py", "node/cli/scenario_cmd.py",
                "node/hooks.py"}
# Words of the testnet's switches. A corrupt chunk or a faulty serving peer is real-world input that production
# code must handle, so "corrupt" and "faulty" alone are not flagged; a corrupt *root* is a test switch.
# json.dumps is no round dump, and the testnet's CLI group is no switch: only these names are.
FAULT_WORDS = {"attack", "attacks", "attacker", "faults", "slowdown", "byzantine"}
FAULT_PHRASES = ("send_delay", "corrupt_root", "dump_round", "round_dump", "dump_dir", "dump_param", "dump_name",
                 "testnet_env", "hivenet_testnet")


def names_a_fault(identifier: str) -> bool:
    snake = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", identifier.lstrip("-")).replace("-", "_").lower()
    return bool(FAULT_WORDS & set(snake.split("_"))) or any(p in snake for p in FAULT_PHRASES)


def production_modules() -> list[Path]:
    files = sorted((ROOT / "node").rglob("*.py")) + sorted((ROOT / "protocol").rglob("*.py"))
    return [f for f in files if not any(str(f.relative_to(ROOT)).startswith(t) for t in TESTNET_SIDE)]


def identifiers(tree: ast.AST) -> list[tuple[int, str]]:
    out: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            out.append((node.lineno, node.id))
        elif isinstance(node, ast.Attribute):
            out.append((node.lineno, node.attr))
        elif isinstance(node, ast.arg):
            out.append((node.lineno, node.arg))
        elif isinstance(node, ast.keyword) and node.arg:
            out.append((node.value.lineno, node.arg))
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            out.append((node.lineno, node.name))
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value.startswith("-"):
            out.append((node.lineno, node.value))  # CLI option names such as "--attack"
    return out


def violations(path: Path) -> list[str]:
    source = path.read_text()
    tree = ast.parse(source)
    rel = path.relative_to(ROOT)
    found = [f"{rel}:{line}: names a fault: {name}" for line, name in identifiers(tree) if names_a_fault(name)]
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("node.testnet"):
            found.append(f"{rel}:{node.lineno}: imports the testnet ({node.module})")
        if isinstance(node, ast.keyword) and node.arg == "hidden" and isinstance(node.value, ast.Constant) \
                and node.value.value is True:
            found.append(f"{rel}:{node.value.lineno}: a hidden CLI option")
    return found


def test_no_production_module_names_a_fault_or_reads_a_testnet_switch():
    found = [v for f in production_modules() for v in violations(f)]
    assert not found, "test-only switches in production modules (inject them through node.hooks):\n" + "\n".join(found)


def test_the_scan_finds_a_built_in_fault(tmp_path):
    bad = ROOT / "node" / "_scan_probe_tmp.py"
    bad.write_text("import typer\n\ndef start(attack=None, x=typer.Option(hidden=True)):\n"
                   "    from node.testnet.attacks import make_attack\n    return send_delay, cfg.corrupt_root, round_dump_dir\n")
    try:
        found = violations(bad)
    finally:
        bad.unlink()
    assert any("attack" in v for v in found) and any("hidden" in v for v in found)
    assert any("imports the testnet" in v for v in found) and any("send_delay" in v for v in found)
    assert any("corrupt_root" in v for v in found) and any("round_dump_dir" in v for v in found)
    assert not names_a_fault("json_dumps") and not names_a_fault("ChunkCorrupt") and not names_a_fault("default")


def test_default_hooks_change_nothing():
    y = torch.arange(10)
    assert NO_HOOKS.transform_labels(y, 256) is y
    assert NO_HOOKS.gradient_transform() is None and NO_HOOKS.stream_spacing_s() == 0.0
    cumulative = {"0xabc": 5}
    assert NO_HOOKS.rewards_to_post(cumulative, "0xabc") is cumulative
    assert NO_HOOKS.after_local_step(1.0) is None and NO_HOOKS.on_send_start() is None
    assert NO_HOOKS.on_round("r", {}) is None


@pytest.mark.parametrize("name", [n for n in vars(Hooks) if not n.startswith("_")])
def test_every_hook_is_used_by_production_code(name):
    """A hook nobody calls is dead weight, or a fault that silently stopped working."""
    callers = [f for f in production_modules() if f.name != "hooks.py" and re.search(rf"\.{name}\(", f.read_text())]
    assert callers, f"no production module calls Hooks.{name}"

"""The layout's rules, checked on every import of every module (function-level imports included).

Imports run downward: the library never imports the commands, data never imports the networks or
the training, training never imports evaluation, and only the commands parse arguments.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "mldanet"

# module prefix -> prefixes it must not import
FORBIDDEN = {
    "mldanet.data": ("mldanet.models", "mldanet.losses", "mldanet.training", "mldanet.evaluation", "mldanet.commands",
                     "mldanet.cli", "mldanet.self_supervised", "mldanet.demo", "mldanet.predict", "mldanet.export",
                     "mldanet.synth"),
    "mldanet.sgm": ("mldanet.data.base", "mldanet.models", "mldanet.losses", "mldanet.training", "mldanet.evaluation",
                    "mldanet.commands", "torch"),
    "mldanet.geometry": ("mldanet.",),
    # back-projection and the PLY writer: geometry and paths only, no data, networks or predict
    "mldanet.pointcloud": ("mldanet.data", "mldanet.config", "mldanet.models", "mldanet.losses", "mldanet.training",
                           "mldanet.evaluation", "mldanet.commands", "mldanet.cli", "mldanet.predict",
                           "mldanet.self_supervised", "mldanet.synth"),
    "mldanet.config": ("mldanet.data", "mldanet.models", "mldanet.losses", "mldanet.training", "mldanet.evaluation",
                       "mldanet.commands"),
    "mldanet.models": ("mldanet.data.base", "mldanet.losses", "mldanet.training", "mldanet.evaluation",
                       "mldanet.commands", "mldanet.cli", "mldanet.self_supervised"),
    "mldanet.losses": ("mldanet.models", "mldanet.data", "mldanet.training", "mldanet.evaluation", "mldanet.commands"),
    "mldanet.self_supervised": ("mldanet.training", "mldanet.evaluation", "mldanet.commands"),
    "mldanet.training": ("mldanet.evaluation", "mldanet.commands", "mldanet.cli", "mldanet.demo", "mldanet.predict",
                         "mldanet.export"),
    "mldanet.evaluation": ("mldanet.training", "mldanet.commands", "mldanet.cli"),
    "mldanet.synth": ("mldanet.training", "mldanet.evaluation", "mldanet.commands", "mldanet.models", "torch"),
    "mldanet.view": ("mldanet.training", "mldanet.commands", "mldanet.cli", "mldanet.demo", "mldanet.export"),
    # the run folder's layout and its resume/overwrite policy: pure paths, below models and training
    "mldanet.run_dir": ("mldanet.",),
    # the loop's hooks act on the trainer, never on the networks or the losses themselves
    "mldanet.training.hooks": ("mldanet.self_supervised", "mldanet.models", "mldanet.losses"),
    "mldanet.training.checkpoint_keeper": ("mldanet.self_supervised", "mldanet.models.depth_net", "mldanet.losses"),
}
# torch-free modules: hint worker processes and the renderer import them
TORCH_FREE = ("mldanet.sgm", "mldanet.data.depth_hints", "mldanet.data.kitti", "mldanet.units", "mldanet.synth",
              "mldanet.synth.layouts", "mldanet.run_dir")


def modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def imports_of(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def within(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix.rstrip(".") + ".") or (prefix.endswith(".") and name.startswith(prefix))


@pytest.mark.parametrize("module", sorted(modules()))
def test_imports_run_downward(module):
    rules = [bad for owner, bad in FORBIDDEN.items() if within(module, owner)]
    imported = imports_of(modules()[module])
    wrong = sorted(
        name for name in imported for bad in rules for prefix in bad
        if within(name, prefix) and not within(name, module)
    )
    assert not wrong, f"{module} imports {wrong}"


def test_only_commands_parse_arguments():
    parsers = sorted(m for m, path in modules().items() if "argparse" in imports_of(path))
    assert all(m == "mldanet.cli" or m.startswith("mldanet.commands") for m in parsers), parsers


@pytest.mark.parametrize("module", TORCH_FREE)
def test_worker_modules_never_import_torch(module):
    import subprocess
    import sys

    code = f"import sys, importlib; importlib.import_module({module!r}); print('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "False"


def test_every_command_module_is_registered():
    from mldanet.cli import COMMANDS

    registered = {module for module, _ in COMMANDS.values()}
    present = {m for m in modules() if m.startswith("mldanet.commands.")}
    assert registered == present
